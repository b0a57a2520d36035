"""Record the equigate graph's topics into a rosbag2 bag (MCAP) with record_node, which is the
`equigate` executable's `record` subcommand.

    ros2 launch equigate record.launch.py output:=bags/run1
    ros2 launch equigate record.launch.py use_sim_time:=true metadata_version:=5 depth:=true

Parameters come from share/equigate/config/record.yaml; the arguments override them. Stop it with
Ctrl-C (SIGINT): record_node then finishes the bag and writes metadata.yaml.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

# config/record.yaml's topics, plus the depth camera's with depth:=true.
TOPICS = [
    "/joint_states",
    "/goal",
    "/forward_velocity_controller/commands",
    "/clock",
    "/diagnostics",
    "/equigate/lambda",
]
DEPTH_TOPICS = ["/camera/depth/image_raw", "/camera/depth/camera_info"]


def _arg(context, name):
    return LaunchConfiguration(name).perform(context)


def _record_node(context):
    share = FindPackageShare("equigate").perform(context)
    overrides = {"use_sim_time": _arg(context, "use_sim_time") == "true"}
    if _arg(context, "output"):
        overrides["output"] = _arg(context, "output")
    if _arg(context, "metadata_version"):
        overrides["metadata_version"] = int(_arg(context, "metadata_version"))
    if _arg(context, "depth") == "true":
        overrides["topics"] = TOPICS + DEPTH_TOPICS
    return [
        Node(
            package="equigate",
            executable="equigate",
            arguments=["record"],
            name="record_node",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            parameters=[f"{share}/config/record.yaml", overrides],
        )
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "output", default_value="", description="bag directory (empty: bags/equigate_<UTC time>)"
            ),
            DeclareLaunchArgument(
                "use_sim_time", default_value="false", choices=["true", "false"],
                description="log times from /clock (lockstep simulator)",
            ),
            DeclareLaunchArgument(
                "metadata_version", default_value="", description="9 (Jazzy) or 5 (Humble); empty: config's"
            ),
            DeclareLaunchArgument(
                "depth", default_value="false", choices=["true", "false"],
                description="also record the depth image and camera info",
            ),
            DeclareLaunchArgument("namespace", default_value=""),
            OpaqueFunction(function=_record_node),
        ]
    )
