"""Start the equigate simulator node for a UR5e or a Fetch.

    ros2 launch equigate sim.launch.py robot:=ur5e            # real time
    ros2 launch equigate sim.launch.py robot:=fetch mode:=lockstep

Parameters come from share/equigate/config/<robot>.yaml; `mode` overrides the file's value.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def _sim_node(context):
    robot = LaunchConfiguration("robot").perform(context)
    share = FindPackageShare("equigate").perform(context)
    overrides = {}
    mode = LaunchConfiguration("mode").perform(context)
    if mode:
        overrides["mode"] = mode
    return [
        Node(
            package="equigate",
            executable="sim_node",
            name="sim_node",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            parameters=[f"{share}/config/{robot}.yaml", overrides],
        )
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot", default_value="ur5e", choices=["ur5e", "fetch"]),
            DeclareLaunchArgument(
                "mode", default_value="", description="realtime | lockstep (empty: from config)"
            ),
            DeclareLaunchArgument("namespace", default_value=""),
            OpaqueFunction(function=_sim_node),
        ]
    )
