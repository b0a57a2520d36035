"""Train PE-SAC (or a baseline) online: the simulator in lockstep and policy_node in train mode,
as separate processes.

    ros2 launch equigate train.launch.py robot:=ur5e
    ros2 launch equigate train.launch.py robot:=fetch agent:=sac total_steps:=20000 run_dir:=runs/fetch_sac

sim_node reads share/equigate/config/<robot>.yaml with mode:=lockstep (one command -> one control
period -> the next /joint_states, time on /clock); policy_node reads config/policy_<robot>.yaml
with mode:=train and use_sim_time. Checkpoints land in run_dir, in the layout of `equigate train`
(`equigate eval <run_dir>` and policy_node's run mode load it). Training metrics are on
/diagnostics.
detector_node (config/detector_<robot>.yaml) watches the same topics and publishes λ and the
λ map; detector:=false leaves it out.
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
    task = _arg(context, "task")
    sim_overrides = {"mode": "lockstep"}
    policy_overrides = {
        "mode": "train",
        "use_sim_time": True,
        "lockstep": True,
        "run_dir": _arg(context, "run_dir") or f"runs/{robot}_online",
        "resume": _arg(context, "resume") == "true",
    }
    if task:  # both nodes must use the same task, or the rewards do not match the simulator
        sim_overrides["task_file"] = task
        policy_overrides["task_file"] = task
    if _arg(context, "agent"):
        policy_overrides["agent"] = _arg(context, "agent")
    if _arg(context, "total_steps"):
        policy_overrides["total_steps"] = int(_arg(context, "total_steps"))
    if _arg(context, "device"):
        policy_overrides["device"] = _arg(context, "device")
    nodes = [
        Node(
            package="equigate",
            executable="sim_node",
            name="sim_node",
            namespace=namespace,
            output="screen",
            parameters=[f"{share}/config/{robot}.yaml", sim_overrides],
        ),
        Node(
            package="equigate",
            executable="policy_node",
            name="policy_node",
            namespace=namespace,
            output="screen",
            parameters=[f"{share}/config/policy_{robot}.yaml", policy_overrides],
        ),
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
                "run_dir", default_value="", description="run directory (empty: runs/<robot>_online)"
            ),
            DeclareLaunchArgument(
                "agent", default_value="", description="pe-sac | sac | equi-sac | rpp-sac | approx-sac"
            ),
            DeclareLaunchArgument(
                "total_steps", default_value="", description="environment steps (empty: the train file's)"
            ),
            DeclareLaunchArgument(
                "task", default_value="", description="task file for both nodes (empty: config's)"
            ),
            DeclareLaunchArgument("resume", default_value="false", choices=["true", "false"]),
            DeclareLaunchArgument("device", default_value="", description="cpu | cuda"),
            DeclareLaunchArgument(
                "detector", default_value="true", choices=["true", "false"],
                description="also start detector_node (config/detector_<robot>.yaml)",
            ),
            DeclareLaunchArgument("namespace", default_value=""),
            OpaqueFunction(function=_nodes),
        ]
    )
