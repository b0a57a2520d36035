//! ROS 2 message and service types as serde structs, in exact wire field order.
//!
//! Every field order below is the order of the `.msg` definition, which is the CDR (XCDR1) wire
//! order (see `shared/reference/ros2-conventions.md`). The structs serialize with the same CDR
//! serializer that ros2-client uses on the wire (RustDDS `CDRSerializerAdapter`, little endian);
//! [`to_cdr`] and [`from_cdr`] expose it, with the 4-byte encapsulation header, for bags and tests.
//!
//! `uint8[]` fields (`Image::data`) go through `serde_bytes`, so they serialize as one
//! `u32` length and one block copy instead of element by element.
//!
//! Each message implements [`RosMsg`], which names its ROS type (`pkg/msg/Type`) for ros2-client's
//! [`MessageTypeName`]; on DDS that becomes `pkg::msg::dds_::Type_`. Services implement [`RosSrv`].

use ros2_client::dds::rustdds::{
    self, no_key::SerializerAdapter, CDRSerializerAdapter, RepresentationIdentifier,
};
use ros2_client::{MessageTypeName, ServiceTypeName};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// A ROS 2 message type: serde in wire order plus its ROS type name.
pub trait RosMsg: ros2_client::Message + Clone + Send + 'static {
    /// ROS package, e.g. `sensor_msgs`.
    const PACKAGE: &'static str;
    /// Type name inside the package, e.g. `JointState`.
    const NAME: &'static str;

    /// The type name for ros2-client (`sensor_msgs/msg/JointState`,
    /// on DDS `sensor_msgs::msg::dds_::JointState_`).
    fn type_name() -> MessageTypeName {
        MessageTypeName::new(Self::PACKAGE, Self::NAME)
    }
}

/// A ROS 2 service type: request and response messages plus the service's ROS type name.
pub trait RosSrv: 'static {
    /// Request message (`pkg::srv::dds_::Name_Request_` on DDS).
    type Request: ros2_client::Message + Clone + Send + 'static;
    /// Response message (`pkg::srv::dds_::Name_Response_` on DDS).
    type Response: ros2_client::Message + Clone + Send + 'static;
    /// ROS package, e.g. `std_srvs`.
    const PACKAGE: &'static str;
    /// Service name inside the package, e.g. `Trigger`.
    const NAME: &'static str;

    /// The service type name for ros2-client (`std_srvs/srv/Trigger`).
    fn type_name() -> ServiceTypeName {
        ServiceTypeName::new(Self::PACKAGE, Self::NAME)
    }
}

macro_rules! ros_msg {
    ($ty:ty, $pkg:literal, $name:literal) => {
        impl ros2_client::Message for $ty {}
        impl RosMsg for $ty {
            const PACKAGE: &'static str = $pkg;
            const NAME: &'static str = $name;
        }
    };
}

/// Errors of the CDR helpers [`to_cdr`] and [`from_cdr`].
#[derive(Debug, thiserror::Error)]
pub enum CdrError {
    /// The payload is shorter than the 4-byte encapsulation header.
    #[error("CDR payload of {len} bytes is shorter than the 4-byte encapsulation header")]
    TooShort {
        /// Payload length in bytes.
        len: usize,
    },
    /// The encapsulation header names a representation other than plain CDR (XCDR1).
    #[error("unsupported CDR encapsulation {header:02x?} (expected 00 00 or 00 01)")]
    Encapsulation {
        /// The first two header bytes.
        header: [u8; 2],
    },
    /// The serializer or deserializer failed (bad length, truncated data, bad UTF-8, ...).
    #[error("CDR (de)serialization failed: {0}")]
    Codec(String),
}

/// Serializes `msg` as ros2-client does on the wire: the encapsulation header `00 01 00 00`
/// (CDR little endian) followed by the XCDR1 body.
pub fn to_cdr<M: Serialize>(msg: &M) -> Result<Vec<u8>, CdrError> {
    let body =
        CDRSerializerAdapter::<M>::to_bytes(msg).map_err(|e| CdrError::Codec(e.to_string()))?;
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&[0x00, 0x01, 0x00, 0x00]);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Deserializes a CDR payload with its 4-byte encapsulation header (big or little endian).
pub fn from_cdr<M: DeserializeOwned>(payload: &[u8]) -> Result<M, CdrError> {
    if payload.len() < 4 {
        return Err(CdrError::TooShort { len: payload.len() });
    }
    let rep = match [payload[0], payload[1]] {
        [0x00, 0x01] => RepresentationIdentifier::CDR_LE,
        [0x00, 0x00] => RepresentationIdentifier::CDR_BE,
        header => return Err(CdrError::Encapsulation { header }),
    };
    let (value, _) =
        rustdds::serialization::deserialize_from_cdr_with_rep_id::<M>(&payload[4..], rep)
            .map_err(|e| CdrError::Codec(e.to_string()))?;
    Ok(value)
}

// ---------------------------------------------------------------------------------------------
// builtin_interfaces, std_msgs
// ---------------------------------------------------------------------------------------------

/// builtin_interfaces/msg/Time: `int32 sec`, `uint32 nanosec` (since the Unix epoch, or since
/// the start of simulation under `/clock`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Time {
    /// Seconds.
    pub sec: i32,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub nanosec: u32,
}

impl Time {
    /// Time from nanoseconds; seconds saturate at the `int32` range.
    pub fn from_nanos(nanos: i64) -> Self {
        let sec = nanos.div_euclid(1_000_000_000);
        let nanosec = nanos.rem_euclid(1_000_000_000) as u32;
        let sec = sec.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        Time { sec, nanosec }
    }

    /// Nanoseconds since the epoch.
    pub fn as_nanos(&self) -> i64 {
        i64::from(self.sec) * 1_000_000_000 + i64::from(self.nanosec)
    }

    /// Seconds as f64.
    pub fn as_secs_f64(&self) -> f64 {
        f64::from(self.sec) + f64::from(self.nanosec) * 1e-9
    }

    /// The wall clock now (system time since the Unix epoch); zero if the clock is before 1970.
    pub fn now() -> Self {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| Time::from_nanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
            .unwrap_or_default()
    }
}

/// std_msgs/msg/Header: `builtin_interfaces/Time stamp`, `string frame_id`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Acquisition time.
    pub stamp: Time,
    /// Frame this data is associated with (REP 105 names, e.g. `base_link`).
    pub frame_id: String,
}

impl Header {
    /// A header with the given stamp and frame.
    pub fn new(stamp: Time, frame_id: impl Into<String>) -> Self {
        Header { stamp, frame_id: frame_id.into() }
    }
}

/// std_msgs/msg/Float32: `float32 data`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Float32 {
    /// The value.
    pub data: f32,
}
ros_msg!(Float32, "std_msgs", "Float32");

/// std_msgs/msg/MultiArrayDimension: `string label`, `uint32 size`, `uint32 stride`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MultiArrayDimension {
    /// Label of the dimension.
    pub label: String,
    /// Size of the dimension.
    pub size: u32,
    /// Stride of the dimension.
    pub stride: u32,
}

/// std_msgs/msg/MultiArrayLayout: `MultiArrayDimension[] dim`, `uint32 data_offset`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MultiArrayLayout {
    /// Array of dimension properties (empty for a flat vector, as ros2_control sends).
    pub dim: Vec<MultiArrayDimension>,
    /// Padding elements at the front of `data`.
    pub data_offset: u32,
}

/// std_msgs/msg/Float64MultiArray: `MultiArrayLayout layout`, `float64[] data`.
///
/// ros2_control's forward_velocity_controller takes one value per configured joint (rad/s).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Float64MultiArray {
    /// Layout (usually empty).
    pub layout: MultiArrayLayout,
    /// The values.
    pub data: Vec<f64>,
}
ros_msg!(Float64MultiArray, "std_msgs", "Float64MultiArray");

impl Float64MultiArray {
    /// A flat array with an empty layout, as ros2_control's command topics expect.
    pub fn flat(data: Vec<f64>) -> Self {
        Float64MultiArray { layout: MultiArrayLayout::default(), data }
    }
}

// ---------------------------------------------------------------------------------------------
// sensor_msgs
// ---------------------------------------------------------------------------------------------

/// sensor_msgs/msg/JointState: `Header header`, `string[] name`, `float64[] position`,
/// `float64[] velocity`, `float64[] effort`.
///
/// Units: rad (m for prismatic), rad/s, N m. Match joints by `name`, never by index; the three
/// value arrays are either empty or as long as `name`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JointState {
    /// Stamp of the measurement.
    pub header: Header,
    /// Joint names.
    pub name: Vec<String>,
    /// Positions (rad or m).
    pub position: Vec<f64>,
    /// Velocities (rad/s or m/s).
    pub velocity: Vec<f64>,
    /// Efforts (N m or N).
    pub effort: Vec<f64>,
}
ros_msg!(JointState, "sensor_msgs", "JointState");

/// sensor_msgs/msg/Image: `Header header`, `uint32 height`, `uint32 width`, `string encoding`,
/// `uint8 is_bigendian`, `uint32 step`, `uint8[] data`.
///
/// Depth images follow REP 118: `32FC1` metres along the optical z axis (REP 117 non-finite
/// values), or `16UC1` millimetres with 0 = invalid.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Stamp and optical frame.
    pub header: Header,
    /// Rows.
    pub height: u32,
    /// Columns.
    pub width: u32,
    /// Pixel encoding, e.g. `32FC1`, `16UC1`, `rgb8`.
    pub encoding: String,
    /// 1 if `data` is big endian.
    pub is_bigendian: u8,
    /// Row length in bytes.
    pub step: u32,
    /// Pixel bytes, `step * height` long.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}
ros_msg!(Image, "sensor_msgs", "Image");

/// sensor_msgs/msg/RegionOfInterest: `uint32 x_offset`, `uint32 y_offset`, `uint32 height`,
/// `uint32 width`, `bool do_rectify`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionOfInterest {
    /// Leftmost pixel of the ROI.
    pub x_offset: u32,
    /// Topmost pixel of the ROI.
    pub y_offset: u32,
    /// Height of the ROI (0 = full resolution).
    pub height: u32,
    /// Width of the ROI (0 = full resolution).
    pub width: u32,
    /// Whether to rectify the ROI.
    pub do_rectify: bool,
}

/// sensor_msgs/msg/CameraInfo: `Header header`, `uint32 height`, `uint32 width`,
/// `string distortion_model`, `float64[] d`, `float64[9] k`, `float64[9] r`, `float64[12] p`,
/// `uint32 binning_x`, `uint32 binning_y`, `RegionOfInterest roi`.
///
/// Fixed-size arrays have no length prefix on the wire (serde tuples).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CameraInfo {
    /// Stamp and optical frame.
    pub header: Header,
    /// Image rows.
    pub height: u32,
    /// Image columns.
    pub width: u32,
    /// Distortion model, e.g. `plumb_bob`.
    pub distortion_model: String,
    /// Distortion parameters (`plumb_bob`: k1, k2, t1, t2, k3).
    pub d: Vec<f64>,
    /// Intrinsic matrix, row major 3x3.
    pub k: [f64; 9],
    /// Rectification matrix, row major 3x3.
    pub r: [f64; 9],
    /// Projection matrix, row major 3x4.
    pub p: [f64; 12],
    /// Horizontal binning.
    pub binning_x: u32,
    /// Vertical binning.
    pub binning_y: u32,
    /// Region of interest.
    pub roi: RegionOfInterest,
}
ros_msg!(CameraInfo, "sensor_msgs", "CameraInfo");

// ---------------------------------------------------------------------------------------------
// geometry_msgs, rosgraph_msgs, diagnostic_msgs
// ---------------------------------------------------------------------------------------------

/// geometry_msgs/msg/Point: `float64 x`, `float64 y`, `float64 z` (m).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// x (m).
    pub x: f64,
    /// y (m).
    pub y: f64,
    /// z (m).
    pub z: f64,
}
ros_msg!(Point, "geometry_msgs", "Point");

/// geometry_msgs/msg/PointStamped: `Header header`, `Point point`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PointStamped {
    /// Stamp and frame of the point.
    pub header: Header,
    /// The point (m).
    pub point: Point,
}
ros_msg!(PointStamped, "geometry_msgs", "PointStamped");

/// rosgraph_msgs/msg/Clock: `builtin_interfaces/Time clock` (published on `/clock`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    /// Current simulation time.
    pub clock: Time,
}
ros_msg!(Clock, "rosgraph_msgs", "Clock");

/// diagnostic_msgs/msg/KeyValue: `string key`, `string value`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// Label.
    pub key: String,
    /// Value, as text.
    pub value: String,
}
ros_msg!(KeyValue, "diagnostic_msgs", "KeyValue");

/// diagnostic_msgs/msg/DiagnosticStatus: `byte level`, `string name`, `string message`,
/// `string hardware_id`, `KeyValue[] values`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticStatus {
    /// One of [`DiagnosticStatus::OK`], `WARN`, `ERROR`, `STALE`.
    pub level: u8,
    /// Name of the component.
    pub name: String,
    /// Human readable status.
    pub message: String,
    /// Hardware identifier.
    pub hardware_id: String,
    /// Key/value pairs (e.g. training metrics).
    pub values: Vec<KeyValue>,
}
ros_msg!(DiagnosticStatus, "diagnostic_msgs", "DiagnosticStatus");

impl DiagnosticStatus {
    /// Level OK.
    pub const OK: u8 = 0;
    /// Level WARN.
    pub const WARN: u8 = 1;
    /// Level ERROR.
    pub const ERROR: u8 = 2;
    /// Level STALE.
    pub const STALE: u8 = 3;
}

/// diagnostic_msgs/msg/DiagnosticArray: `Header header`, `DiagnosticStatus[] status`
/// (published on `/diagnostics`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticArray {
    /// Stamp.
    pub header: Header,
    /// Statuses.
    pub status: Vec<DiagnosticStatus>,
}
ros_msg!(DiagnosticArray, "diagnostic_msgs", "DiagnosticArray");

// ---------------------------------------------------------------------------------------------
// std_srvs
// ---------------------------------------------------------------------------------------------

/// An empty ROS 2 structure. ROS 2 code generators give every empty structure one member,
/// `uint8 structure_needs_at_least_one_member`, so it is one byte on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyStruct {
    /// Always 0.
    pub structure_needs_at_least_one_member: u8,
}
impl ros2_client::Message for EmptyStruct {}

/// std_srvs/srv/Empty: empty request, empty response.
#[derive(Clone, Copy, Debug)]
pub enum EmptySrv {}
impl RosSrv for EmptySrv {
    type Request = EmptyStruct;
    type Response = EmptyStruct;
    const PACKAGE: &'static str = "std_srvs";
    const NAME: &'static str = "Empty";
}

/// std_srvs/srv/Trigger response: `bool success`, `string message`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerResponse {
    /// Whether the trigger succeeded.
    pub success: bool,
    /// Informational, e.g. an error message.
    pub message: String,
}
impl ros2_client::Message for TriggerResponse {}

/// std_srvs/srv/Trigger: empty request, [`TriggerResponse`].
#[derive(Clone, Copy, Debug)]
pub enum TriggerSrv {}
impl RosSrv for TriggerSrv {
    type Request = EmptyStruct;
    type Response = TriggerResponse;
    const PACKAGE: &'static str = "std_srvs";
    const NAME: &'static str = "Trigger";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32le(v: u32) -> [u8; 4] {
        v.to_le_bytes()
    }

    #[test]
    fn joint_state_bytes_match_hand_computed() {
        let js = JointState {
            header: Header::new(Time { sec: 1, nanosec: 2 }, "b"),
            name: vec!["j1".into()],
            position: vec![1.5],
            velocity: vec![],
            effort: vec![],
        };
        let mut want: Vec<u8> = vec![0, 1, 0, 0];
        // body offsets count from here
        want.extend(1i32.to_le_bytes()); // 0 sec
        want.extend(u32le(2)); // 4 nanosec
        want.extend(u32le(2)); // 8 frame_id length incl NUL
        want.extend(b"b\0"); // 12
        want.extend([0, 0]); // 14 pad to 16
        want.extend(u32le(1)); // 16 name count
        want.extend(u32le(3)); // 20 "j1\0"
        want.extend(b"j1\0"); // 24
        want.push(0); // 27 pad to 28
        want.extend(u32le(1)); // 28 position count
        want.extend(1.5f64.to_le_bytes()); // 32 (already 8-aligned)
        want.extend(u32le(0)); // 40 velocity count, no element padding
        want.extend(u32le(0)); // 44 effort count
        let got = to_cdr(&js).unwrap();
        assert_eq!(got, want);
        assert_eq!(from_cdr::<JointState>(&got).unwrap(), js);
    }

    #[test]
    fn f64_sequence_pads_to_8_only_when_nonempty() {
        let m = Float64MultiArray {
            layout: MultiArrayLayout {
                dim: vec![MultiArrayDimension { label: "x".into(), size: 2, stride: 2 }],
                data_offset: 0,
            },
            data: vec![0.25, -1.0],
        };
        let mut want: Vec<u8> = vec![0, 1, 0, 0];
        want.extend(u32le(1)); // 0 dim count
        want.extend(u32le(2)); // 4 label len
        want.extend(b"x\0"); // 8
        want.extend([0, 0]); // 10 pad
        want.extend(u32le(2)); // 12 size
        want.extend(u32le(2)); // 16 stride
        want.extend(u32le(0)); // 20 data_offset
        want.extend(u32le(2)); // 24 data count
        want.extend([0; 4]); // 28 pad to 32 for f64
        want.extend(0.25f64.to_le_bytes()); // 32
        want.extend((-1.0f64).to_le_bytes()); // 40
        let got = to_cdr(&m).unwrap();
        assert_eq!(got, want);
        assert_eq!(from_cdr::<Float64MultiArray>(&got).unwrap(), m);

        // Empty data: the count only, no padding after it.
        let empty = Float64MultiArray::flat(vec![]);
        let want: Vec<u8> = [&[0u8, 1, 0, 0][..], &u32le(0), &u32le(0), &u32le(0)].concat();
        assert_eq!(to_cdr(&empty).unwrap(), want);
    }

    #[test]
    fn image_data_is_a_byte_block() {
        let img = Image {
            header: Header::new(Time::default(), ""),
            height: 1,
            width: 3,
            encoding: "mono8".into(),
            is_bigendian: 0,
            step: 3,
            data: vec![7, 8, 9],
        };
        let mut want: Vec<u8> = vec![0, 1, 0, 0];
        want.extend([0; 8]); // 0 stamp
        want.extend(u32le(1)); // 8 frame_id "" (just NUL)
        want.push(0); // 12
        want.extend([0; 3]); // 13 pad
        want.extend(u32le(1)); // 16 height
        want.extend(u32le(3)); // 20 width
        want.extend(u32le(6)); // 24 "mono8\0"
        want.extend(b"mono8\0"); // 28
        want.push(0); // 34 is_bigendian
        want.push(0); // 35 pad to 36
        want.extend(u32le(3)); // 36 step
        want.extend(u32le(3)); // 40 data count
        want.extend([7, 8, 9]); // 44
        let got = to_cdr(&img).unwrap();
        assert_eq!(got, want);
        assert_eq!(from_cdr::<Image>(&got).unwrap(), img);
    }

    #[test]
    fn round_trips_every_message() {
        fn rt<M: RosMsg + PartialEq + std::fmt::Debug>(m: M) {
            let bytes = to_cdr(&m).unwrap();
            assert_eq!(from_cdr::<M>(&bytes).unwrap(), m, "{}", M::NAME);
        }
        let h = Header::new(Time { sec: -3, nanosec: 999_999_999 }, "camera_optical");
        rt(Float32 { data: 0.5 });
        rt(Clock { clock: Time { sec: 5, nanosec: 6 } });
        rt(PointStamped { header: h.clone(), point: Point { x: 1.0, y: -2.0, z: 3.5 } });
        rt(CameraInfo {
            header: h.clone(),
            height: 64,
            width: 64,
            distortion_model: "plumb_bob".into(),
            d: vec![0.0; 5],
            k: [55.4256, 0.0, 31.5, 0.0, 55.4256, 31.5, 0.0, 0.0, 1.0],
            r: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            p: [55.4256, 0.0, 31.5, 0.0, 0.0, 55.4256, 31.5, 0.0, 0.0, 0.0, 1.0, 0.0],
            binning_x: 0,
            binning_y: 0,
            roi: RegionOfInterest {
                x_offset: 1,
                y_offset: 2,
                height: 3,
                width: 4,
                do_rectify: true,
            },
        });
        rt(DiagnosticArray {
            header: h,
            status: vec![DiagnosticStatus {
                level: DiagnosticStatus::WARN,
                name: "policy".into(),
                message: "ok".into(),
                hardware_id: "".into(),
                values: vec![KeyValue { key: "return".into(), value: "1.5".into() }],
            }],
        });
        let tr = TriggerResponse { success: true, message: "reset".into() };
        assert_eq!(from_cdr::<TriggerResponse>(&to_cdr(&tr).unwrap()).unwrap(), tr);
        assert_eq!(to_cdr(&EmptyStruct::default()).unwrap(), vec![0, 1, 0, 0, 0]);
    }

    #[test]
    fn camera_info_fixed_arrays_have_no_length_prefix() {
        let ci = CameraInfo::default();
        let bytes = to_cdr(&ci).unwrap();
        // header 8 + frame_id 4+1 pad 3 = 16; h,w = 24; "" model 4+1 pad 3 = 32; d count = 36;
        // pad to 40; k 72 -> 112; r 72 -> 184; p 96 -> 280; binning 8 -> 288; roi 4*4+1 -> 305.
        assert_eq!(bytes.len(), 4 + 305);
    }

    #[test]
    fn type_names_map_to_dds_names() {
        assert_eq!(JointState::type_name().dds_msg_type(), "sensor_msgs::msg::dds_::JointState_");
        assert_eq!(
            Float64MultiArray::type_name().dds_msg_type(),
            "std_msgs::msg::dds_::Float64MultiArray_"
        );
        assert_eq!(TriggerSrv::type_name().type_name(), "Trigger");
    }

    #[test]
    fn bad_payloads_are_errors_not_panics() {
        assert!(matches!(from_cdr::<JointState>(&[0, 1]), Err(CdrError::TooShort { len: 2 })));
        assert!(matches!(
            from_cdr::<JointState>(&[0, 9, 0, 0]),
            Err(CdrError::Encapsulation { .. })
        ));
        // Claims a name sequence of 1000 elements but ends.
        let mut bad = vec![0, 1, 0, 0];
        bad.extend([0; 8]);
        bad.extend(1u32.to_le_bytes());
        bad.extend([0, 0, 0, 0]);
        bad.extend(1000u32.to_le_bytes());
        assert!(matches!(from_cdr::<JointState>(&bad), Err(CdrError::Codec(_))));
        assert!(Time::from_nanos(-1).nanosec == 999_999_999);
    }
}
