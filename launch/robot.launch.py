"""Run a trained policy on a real arm or in Gazebo through ros2_control: policy_node in run mode,
no simulator node.

    ros2 launch equigate robot.launch.py robot:=ur5e run_dir:=/path/to/runs/ur5e
    ros2 launch equigate robot.launch.py robot:=fetch run_dir:=runs/fetch use_sim_time:=true  # Gazebo

policy_node reads share/equigate/config/policy_<robot>.yaml: /joint_states from the
joint_state_broadcaster (joints matched by name), velocity commands on
forward_velocity_controller/commands (std_msgs/Float64MultiArray, rad/s in the configured joint
order) for ros2_control's forward_command_controller, the goal on /goal (geometry_msgs/PointStamped
in base_link). Start that velocity controller before this launch; remap with commands_topic:=...
Stale (older than safety.max_state_age_s), NaN or incomplete joint states stop the arm (zero
velocity). There are no episode resets here: publish a new /goal to move on.
detector_node (config/detector_<robot>.yaml) runs beside it unless detector:=false.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def _arg(context, name):
    return LaunchConfiguration(name).perform(context)


def _nodes(context):
    robot = _arg(context, "robot")
    share = FindPackageShare("equigate").perform(context)
    namespace = LaunchConfiguration("namespace")
    overrides = {
        "mode": "run",
        "run_dir": _arg(context, "run_dir"),
        "reset_service": "",
        "use_sim_time": _arg(context, "use_sim_time") == "true",
    }
    for name in ("commands_topic", "joint_states_topic", "goal_topic", "device"):
        if _arg(context, name):
            overrides[name] = _arg(context, name)
    if _arg(context, "control_rate_hz"):
        overrides["control_rate_hz"] = float(_arg(context, "control_rate_hz"))
    nodes = [
        Node(
            package="equigate",
            executable="policy_node",
            name="policy_node",
            namespace=namespace,
            output="screen",
            parameters=[f"{share}/config/policy_{robot}.yaml", overrides],
        )
    ]
    nodes += _detector(context, share, robot, namespace)
    return nodes


def _detector(context, share, robot, namespace):
    """detector_node (learns λ from /joint_states, the commands and /goal; publishes
    /equigate/lambda and the λ map) beside the policy, unless detector:=false. It only listens, so
    it can join or leave without changing the policy; see monitor.launch.py for it alone."""
    if _arg(context, "detector") != "true":
        return []
    overrides = {}
    task = _arg(context, "task") if "task" in context.launch_configurations else ""
    if task:
        overrides["task_file"] = task
    return [
        Node(
            package="equigate",
            executable="detector_node",
            name="detector_node",
            namespace=namespace,
            output="screen",
            parameters=[f"{share}/config/detector_{robot}.yaml", overrides],
        )
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot", default_value="ur5e", choices=["ur5e", "fetch"]),
            DeclareLaunchArgument(
                "run_dir", description="run directory from `equigate train` or train.launch.py"
            ),
            DeclareLaunchArgument("use_sim_time", default_value="false", choices=["true", "false"]),
            DeclareLaunchArgument(
                "commands_topic", default_value="", description="empty: config's (ros2_control)"
            ),
            DeclareLaunchArgument("joint_states_topic", default_value=""),
            DeclareLaunchArgument("goal_topic", default_value=""),
            DeclareLaunchArgument(
                "control_rate_hz", default_value="", description="empty: the task's (25 Hz); <= 500"
            ),
            DeclareLaunchArgument("device", default_value="", description="cpu | cuda"),
            DeclareLaunchArgument(
                "detector", default_value="true", choices=["true", "false"],
                description="also start detector_node (config/detector_<robot>.yaml)",
            ),
            DeclareLaunchArgument("namespace", default_value=""),
            OpaqueFunction(function=_nodes),
        ]
    )
