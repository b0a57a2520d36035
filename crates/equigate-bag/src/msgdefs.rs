//! ros2msg schema texts of the types equigate records, for MCAP schemas with encoding `ros2msg`.
//!
//! Format (rosbag2's `LocalMessageDefinitionSource`, the MCAP ros2 profile): the type's own
//! .msg text, then for each dependency, depth first, a line of 80 `=`, a line `MSG: pkg/Type`
//! and that type's .msg text. The texts hold the fields and constants of the ROS 2 message
//! definitions (comments left out); field order is the wire order.

macro_rules! sep {
    ($name:literal) => {
        concat!(
            "================================================================================\n",
            "MSG: ",
            $name,
            "\n"
        )
    };
}

macro_rules! time {
    () => {
        concat!(sep!("builtin_interfaces/Time"), "int32 sec\nuint32 nanosec\n")
    };
}

macro_rules! header {
    () => {
        concat!(
            sep!("std_msgs/Header"),
            "builtin_interfaces/Time stamp\nstring frame_id\n",
            time!()
        )
    };
}

const JOINT_STATE: &str = concat!(
    "std_msgs/Header header\n",
    "string[] name\n",
    "float64[] position\n",
    "float64[] velocity\n",
    "float64[] effort\n",
    header!()
);

const IMAGE: &str = concat!(
    "std_msgs/Header header\n",
    "uint32 height\n",
    "uint32 width\n",
    "string encoding\n",
    "uint8 is_bigendian\n",
    "uint32 step\n",
    "uint8[] data\n",
    header!()
);

const CAMERA_INFO: &str = concat!(
    "std_msgs/Header header\n",
    "uint32 height\n",
    "uint32 width\n",
    "string distortion_model\n",
    "float64[] d\n",
    "float64[9] k\n",
    "float64[9] r\n",
    "float64[12] p\n",
    "uint32 binning_x\n",
    "uint32 binning_y\n",
    "sensor_msgs/RegionOfInterest roi\n",
    header!(),
    sep!("sensor_msgs/RegionOfInterest"),
    "uint32 x_offset\n",
    "uint32 y_offset\n",
    "uint32 height\n",
    "uint32 width\n",
    "bool do_rectify\n"
);

const FLOAT64_MULTI_ARRAY: &str = concat!(
    "std_msgs/MultiArrayLayout layout\n",
    "float64[] data\n",
    sep!("std_msgs/MultiArrayLayout"),
    "std_msgs/MultiArrayDimension[] dim\n",
    "uint32 data_offset\n",
    sep!("std_msgs/MultiArrayDimension"),
    "string label\n",
    "uint32 size\n",
    "uint32 stride\n"
);

const FLOAT32: &str = "float32 data\n";

const POINT_STAMPED: &str = concat!(
    "std_msgs/Header header\n",
    "geometry_msgs/Point point\n",
    header!(),
    sep!("geometry_msgs/Point"),
    "float64 x\n",
    "float64 y\n",
    "float64 z\n"
);

const CLOCK: &str = concat!("builtin_interfaces/Time clock\n", time!());

const DIAGNOSTIC_ARRAY: &str = concat!(
    "std_msgs/Header header\n",
    "diagnostic_msgs/DiagnosticStatus[] status\n",
    header!(),
    sep!("diagnostic_msgs/DiagnosticStatus"),
    "byte OK=0\n",
    "byte WARN=1\n",
    "byte ERROR=2\n",
    "byte STALE=3\n",
    "byte level\n",
    "string name\n",
    "string message\n",
    "string hardware_id\n",
    "diagnostic_msgs/KeyValue[] values\n",
    sep!("diagnostic_msgs/KeyValue"),
    "string key\n",
    "string value\n"
);

/// The ros2msg text (with dependencies) of `type_name` (`pkg/msg/Type`), or `None` for a type
/// without a built-in definition. Known: sensor_msgs/msg/JointState, Image, CameraInfo;
/// std_msgs/msg/Float64MultiArray, Float32; geometry_msgs/msg/PointStamped;
/// rosgraph_msgs/msg/Clock; diagnostic_msgs/msg/DiagnosticArray.
pub fn message_definition(type_name: &str) -> Option<&'static str> {
    Some(match type_name {
        "sensor_msgs/msg/JointState" => JOINT_STATE,
        "sensor_msgs/msg/Image" => IMAGE,
        "sensor_msgs/msg/CameraInfo" => CAMERA_INFO,
        "std_msgs/msg/Float64MultiArray" => FLOAT64_MULTI_ARRAY,
        "std_msgs/msg/Float32" => FLOAT32,
        "geometry_msgs/msg/PointStamped" => POINT_STAMPED,
        "rosgraph_msgs/msg/Clock" => CLOCK,
        "diagnostic_msgs/msg/DiagnosticArray" => DIAGNOSTIC_ARRAY,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_follow_the_separator_format() {
        let text = message_definition("sensor_msgs/msg/JointState").unwrap();
        let parts: Vec<&str> = text.split(&format!("{}\n", "=".repeat(80))).collect();
        assert_eq!(parts.len(), 3);
        assert!(parts[1].starts_with("MSG: std_msgs/Header\n"));
        assert!(parts[2].starts_with("MSG: builtin_interfaces/Time\nint32 sec\n"));
        assert!(message_definition("std_msgs/msg/String").is_none());
    }
}
