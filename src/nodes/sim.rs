//! sim_node: a simulated UR5e or Fetch that speaks ros2_control's interface.
//!
//! ```text
//! cargo run --release --bin sim_node -- --ros-args -p robot:=ur5e
//! ros2 run equigate sim_node --ros-args --params-file config/fetch.yaml -p mode:=lockstep
//! ```
//!
//! Publishes `joint_states` (sensor_msgs/JointState), `camera/depth/image_raw` (sensor_msgs/Image
//! 32FC1, best effort) with `camera/depth/camera_info`, `goal` (geometry_msgs/PointStamped),
//! `diagnostics`, and in lockstep mode `/clock`; subscribes to
//! `forward_velocity_controller/commands` (std_msgs/Float64MultiArray, rad/s); serves `~/reset`
//! (std_srvs/Trigger). All names are relative and remappable with `-r`.

use std::time::{Duration, Instant};

use crate::sim_server::{Every, SimMode, SimNodeConfig, SimServer};
use anyhow::{Context as _, Result};
use equigate_ros::msg::{
    CameraInfo, Clock, DiagnosticArray, Float64MultiArray, Image, JointState, PointStamped, Time,
    TriggerResponse, TriggerSrv,
};
use equigate_ros::ros2_client::Publisher;
use equigate_ros::{qos_reliable, qos_sensor_data, Params, Ros, RosArgs};

struct Topics {
    joint_states: Publisher<JointState>,
    depth: Publisher<Image>,
    camera_info: Publisher<CameraInfo>,
    goal: Publisher<PointStamped>,
    clock: Publisher<Clock>,
    diagnostics: Publisher<DiagnosticArray>,
}

/// Runs the node with its ROS arguments until SIGINT/SIGTERM (or, for a training policy node,
/// the end of training).
///
/// # Errors
/// Bad arguments, parameters or files, DDS failures; the node has stopped then.
pub fn run(args: RosArgs) -> Result<()> {
    crate::logging::init(args.log_filter().as_deref());
    let node_name = args.node_name("sim_node");
    let namespace = args.namespace("sim_node", "/");
    let params = Params::load(&args, &node_name, &namespace)?;
    let config: SimNodeConfig = params.deserialize()?;
    let mut sim = SimServer::new(config)?;

    let mut ros = Ros::new("sim_node", "/", &args)?;
    let t = Topics {
        joint_states: ros.publisher("joint_states", qos_reliable())?,
        depth: ros.publisher("camera/depth/image_raw", qos_sensor_data())?,
        camera_info: ros.publisher("camera/depth/camera_info", qos_reliable())?,
        goal: ros.publisher("goal", qos_reliable())?,
        clock: ros.publisher("/clock", qos_reliable())?,
        diagnostics: ros.publisher("/diagnostics", qos_reliable())?,
    };
    let commands = ros.subscription::<Float64MultiArray>(
        "forward_velocity_controller/commands",
        qos_reliable(),
    )?;
    let reset = ros.service_server::<TriggerSrv>("~/reset")?;
    let stop = crate::logging::stop_flag().context("installing the SIGINT/SIGTERM handler")?;
    tracing::info!(
        node = %ros.fully_qualified_name(), robot = ?sim.config().robot, mode = ?sim.config().mode,
        joints = %sim.joint_names().join(" "), "sim_node running"
    );

    let cfg = sim.config().clone();
    let (mut js_due, mut cam_due) =
        (Every::hz(cfg.joint_states_rate_hz), Every::hz(cfg.camera_rate_hz));
    let (mut goal_due, mut diag_due) =
        (Every::hz(cfg.goal_rate_hz), Every::hz(cfg.diagnostics_rate_hz));
    let (mut warn_due, mut status_due) = (Every::hz(1.0), Every::hz(0.2));
    let start = Instant::now();
    let mut fresh = false;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let wall = start.elapsed().as_secs_f64();
        let mut stepped = false;
        while let Some((msg, _)) = commands.take().ok().flatten() {
            let result = match cfg.mode {
                SimMode::Realtime => sim.on_command(&msg.data, wall),
                SimMode::Lockstep => sim.step_lockstep(&msg.data).map(|_| stepped = true),
            };
            if let Err(e) = result {
                if warn_due.due(wall) {
                    tracing::warn!(
                        "rejected command on {}: {e}",
                        "forward_velocity_controller/commands"
                    );
                }
            }
        }
        while let Some((id, _)) = reset.receive_request().ok().flatten() {
            let message = sim.reset();
            tracing::info!("reset: {message}");
            let _ = reset.send_response(id, TriggerResponse { success: true, message });
            stepped = true;
            goal_due = Every::hz(cfg.goal_rate_hz);
        }
        let stamp = match cfg.mode {
            SimMode::Realtime => {
                // Catch simulated time up with the wall clock, one 500 Hz tick at a time.
                let mut ticks = 0;
                while sim.sim_time() + sim.dt() <= wall && ticks < 50 {
                    fresh = sim.tick(wall);
                    ticks += 1;
                }
                Time::now()
            }
            SimMode::Lockstep => Time::from_nanos((sim.sim_time() * 1e9).round() as i64),
        };
        let sim_t = sim.sim_time();
        let publish_state = match cfg.mode {
            SimMode::Realtime => js_due.due(wall),
            SimMode::Lockstep => stepped || js_due.due(wall), // after each step; idle: a heartbeat
        };
        // The goal before the state: after a reset, a subscriber sees the new goal before the
        // new episode's first state (the reset does not advance simulated time, so that state
        // carries the previous state's stamp).
        if goal_due.due(wall) {
            publish(&t.goal, sim.goal(stamp));
        }
        if publish_state {
            if cfg.mode == SimMode::Lockstep {
                publish(&t.clock, Clock { clock: stamp });
            }
            publish(&t.joint_states, sim.joint_state(stamp));
        }
        if cam_due.due(sim_t) {
            publish(&t.depth, sim.depth_image(stamp));
            publish(&t.camera_info, sim.camera_info(stamp));
        }
        if diag_due.due(wall) {
            publish(&t.diagnostics, sim.diagnostics(stamp, fresh));
        }
        if status_due.due(wall) {
            tracing::info!("{}", sim.status_line(fresh));
        }
        let idle = match cfg.mode {
            SimMode::Realtime => {
                (sim.sim_time() + sim.dt() - start.elapsed().as_secs_f64()).max(0.0)
            }
            SimMode::Lockstep => 2e-4,
        };
        std::thread::sleep(Duration::from_secs_f64(idle));
    }
    tracing::info!("sim_node: shutting down");
    Ok(())
}

fn publish<M: equigate_ros::msg::RosMsg + std::fmt::Debug>(publisher: &Publisher<M>, msg: M) {
    if let Err(e) = publisher.publish(msg) {
        tracing::warn!("publish failed: {e:?}");
    }
}
