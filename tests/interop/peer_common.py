"""Cyclone DDS (PyPI `cyclonedds`) definitions of the ROS 2 messages equigate speaks.

An independent peer for interop tests: the types are written from the .msg definitions with the
DDS type names rmw uses (`pkg::msg::dds_::Type_`), and the participant is confined to loopback.

Only ever run this inside a network namespace that has just `lo` (`unshare -rn`), see
crates/equigate-ros/tests/interop.rs.
"""


import os
from dataclasses import dataclass, field

# The config must be in place before the C library reads it (first participant).
LOOPBACK_CONFIG = """<CycloneDDS xmlns="https://cdds.io/config">
  <Domain Id="any">
    <General>
      <Interfaces><NetworkInterface name="lo"/></Interfaces>
      <AllowMulticast>false</AllowMulticast>
    </General>
    <Discovery>
      <ParticipantIndex>auto</ParticipantIndex>
      <MaxAutoParticipantIndex>20</MaxAutoParticipantIndex>
      <Peers><Peer address="127.0.0.1"/></Peers>
    </Discovery>
  </Domain>
</CycloneDDS>"""
os.environ["CYCLONEDDS_URI"] = LOOPBACK_CONFIG

from cyclonedds.core import Policy, Qos  # noqa: E402
from cyclonedds.domain import DomainParticipant  # noqa: E402
from cyclonedds.idl import IdlStruct  # noqa: E402
from cyclonedds.idl.types import array, float64, int32, sequence, uint8, uint32  # noqa: E402
from cyclonedds.pub import DataWriter  # noqa: E402
from cyclonedds.sub import DataReader  # noqa: E402
from cyclonedds.topic import Topic  # noqa: E402
from cyclonedds.util import duration  # noqa: E402


@dataclass
class Time(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: int32 = 0
    nanosec: uint32 = 0


@dataclass
class Header(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Time = field(default_factory=Time)
    frame_id: str = ""


@dataclass
class JointState(IdlStruct, typename="sensor_msgs::msg::dds_::JointState_"):
    header: Header = field(default_factory=Header)
    name: sequence[str] = field(default_factory=list)
    position: sequence[float64] = field(default_factory=list)
    velocity: sequence[float64] = field(default_factory=list)
    effort: sequence[float64] = field(default_factory=list)


@dataclass
class MultiArrayDimension(IdlStruct, typename="std_msgs::msg::dds_::MultiArrayDimension_"):
    label: str = ""
    size: uint32 = 0
    stride: uint32 = 0


@dataclass
class MultiArrayLayout(IdlStruct, typename="std_msgs::msg::dds_::MultiArrayLayout_"):
    dim: sequence[MultiArrayDimension] = field(default_factory=list)
    data_offset: uint32 = 0


@dataclass
class Float64MultiArray(IdlStruct, typename="std_msgs::msg::dds_::Float64MultiArray_"):
    layout: MultiArrayLayout = field(default_factory=MultiArrayLayout)
    data: sequence[float64] = field(default_factory=list)


@dataclass
class Image(IdlStruct, typename="sensor_msgs::msg::dds_::Image_"):
    header: Header = field(default_factory=Header)
    height: uint32 = 0
    width: uint32 = 0
    encoding: str = ""
    is_bigendian: uint8 = 0
    step: uint32 = 0
    data: sequence[uint8] = field(default_factory=list)


@dataclass
class Point(IdlStruct, typename="geometry_msgs::msg::dds_::Point_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@dataclass
class PointStamped(IdlStruct, typename="geometry_msgs::msg::dds_::PointStamped_"):
    header: Header = field(default_factory=Header)
    point: Point = field(default_factory=Point)


@dataclass
class Clock(IdlStruct, typename="rosgraph_msgs::msg::dds_::Clock_"):
    clock: Time = field(default_factory=Time)


@dataclass
class RegionOfInterest(IdlStruct, typename="sensor_msgs::msg::dds_::RegionOfInterest_"):
    x_offset: uint32 = 0
    y_offset: uint32 = 0
    height: uint32 = 0
    width: uint32 = 0
    do_rectify: bool = False


@dataclass
class CameraInfo(IdlStruct, typename="sensor_msgs::msg::dds_::CameraInfo_"):
    header: Header = field(default_factory=Header)
    height: uint32 = 0
    width: uint32 = 0
    distortion_model: str = ""
    d: sequence[float64] = field(default_factory=list)
    k: array[float64, 9] = field(default_factory=lambda: [0.0] * 9)
    r: array[float64, 9] = field(default_factory=lambda: [0.0] * 9)
    p: array[float64, 12] = field(default_factory=lambda: [0.0] * 12)
    binning_x: uint32 = 0
    binning_y: uint32 = 0
    roi: RegionOfInterest = field(default_factory=RegionOfInterest)


# std_srvs/srv/Trigger as rmw_cyclonedds puts it on the wire: every request and reply starts
# with a header {8 bytes of the client GUID, sequence number as int32 high, uint32 low}
# (rmw_cyclonedds_cpp serdata.hpp, cdds_request_header_t).
@dataclass
class TriggerRequestCyclone(IdlStruct, typename="std_srvs::srv::dds_::Trigger_Request_"):
    guid: array[uint8, 8] = field(default_factory=lambda: [0] * 8)
    seq_high: int32 = 0
    seq_low: uint32 = 0
    structure_needs_at_least_one_member: uint8 = 0


@dataclass
class TriggerResponseCyclone(IdlStruct, typename="std_srvs::srv::dds_::Trigger_Response_"):
    guid: array[uint8, 8] = field(default_factory=lambda: [0] * 8)
    seq_high: int32 = 0
    seq_low: uint32 = 0
    success: bool = False
    message: str = ""


# ROS 2 topic /x travels as DDS topic rt/x; service /s as rq/sRequest and rr/sReply.
DEPTH_IMAGE = "rt/camera/depth/image_raw"
JOINT_STATES = "rt/joint_states"
COMMANDS = "rt/forward_velocity_controller/commands"

JOINTS = [
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
]


def expected_joint_state(k: int) -> JointState:
    """The k-th JointState of the test stream (the Rust examples use the same formulas)."""
    n = len(JOINTS)
    return JointState(
        header=Header(stamp=Time(sec=k, nanosec=500), frame_id="base_link"),
        name=list(JOINTS),
        position=[k + i / 10 for i in range(n)],
        velocity=[-0.5 * k + i for i in range(n)],
        effort=[0.25 * i for i in range(n)],
    )


def expected_command(k: int) -> Float64MultiArray:
    """The k-th Float64MultiArray of the test stream."""
    n = len(JOINTS)
    return Float64MultiArray(
        layout=MultiArrayLayout(dim=[MultiArrayDimension("joints", n, n)], data_offset=0),
        data=[k * 0.01 + i for i in range(n)],
    )


def reliable_qos() -> Qos:
    """ROS default QoS for states and commands: reliable, volatile, keep last 10, XCDR1."""
    return Qos(
        Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100)),
        Policy.Durability.Volatile,
        Policy.History.KeepLast(10),
        Policy.DataRepresentation(use_cdrv0_representation=True),
    )


def sensor_qos() -> Qos:
    """ROS sensor-data QoS: best effort, volatile, keep last 5, XCDR1."""
    return Qos(
        Policy.Reliability.BestEffort,
        Policy.Durability.Volatile,
        Policy.History.KeepLast(5),
        Policy.DataRepresentation(use_cdrv0_representation=True),
    )


def check_depth_image(img: Image) -> str | None:
    """None if `img` is the talker's k-th 32FC1 test image (pixel p = p/2 + k), else why not."""
    import struct

    k, n = img.header.stamp.sec, img.width
    if (img.height, img.encoding, img.is_bigendian, img.step) != (n, "32FC1", 0, 4 * n):
        return f"bad image header {img.height}x{img.width} {img.encoding} step {img.step}"
    if img.header.frame_id != "camera_depth_optical_frame" or len(img.data) != 4 * n * n:
        return f"bad frame {img.header.frame_id!r} or data length {len(img.data)}"
    values = struct.unpack(f"<{n * n}f", bytes(img.data))
    for p, v in enumerate(values):
        if v != p * 0.5 + k:
            return f"pixel {p} = {v}, expected {p * 0.5 + k}"
    return None


def participant() -> DomainParticipant:
    return DomainParticipant(int(os.environ.get("ROS_DOMAIN_ID", "0")))


def reader(dp: DomainParticipant, name: str, ty) -> DataReader:
    return DataReader(dp, Topic(dp, name, ty, qos=reliable_qos()), qos=reliable_qos())


def sensor_reader(dp: DomainParticipant, name: str, ty) -> DataReader:
    return DataReader(dp, Topic(dp, name, ty, qos=sensor_qos()), qos=sensor_qos())


def writer(dp: DomainParticipant, name: str, ty) -> DataWriter:
    return DataWriter(dp, Topic(dp, name, ty, qos=reliable_qos()), qos=reliable_qos())


def sensor_writer(dp: DomainParticipant, name: str, ty) -> DataWriter:
    return DataWriter(dp, Topic(dp, name, ty, qos=sensor_qos()), qos=sensor_qos())
