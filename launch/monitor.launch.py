"""Start only the equigate detector node: it watches an arm that something else drives (a real
UR5e or Fetch under ros2_control, Gazebo, or equigate's sim_node) and publishes λ and the λ map.

    ros2 launch equigate monitor.launch.py robot:=ur5e
    ros2 launch equigate monitor.launch.py robot:=fetch gate_checkpoint:=/path/to/run/checkpoint

Parameters come from share/equigate/config/detector_<robot>.yaml; the arguments override them.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def _detector_node(context):
    robot = LaunchConfiguration("robot").perform(context)
    share = FindPackageShare("equigate").perform(context)
    overrides = {}
    for name in ("gate_checkpoint", "task_file"):
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    return [
        Node(
            package="equigate",
            executable="detector_node",
            name="detector_node",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            parameters=[f"{share}/config/detector_{robot}.yaml", overrides],
        )
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot", default_value="ur5e", choices=["ur5e", "fetch"]),
            DeclareLaunchArgument(
                "gate_checkpoint",
                default_value="",
                description="a PE-SAC checkpoint directory to take the gate from (empty: learn)",
            ),
            DeclareLaunchArgument(
                "task_file", default_value="", description="the arm's task file (empty: config)"
            ),
            DeclareLaunchArgument("namespace", default_value=""),
            OpaqueFunction(function=_detector_node),
        ]
    )
