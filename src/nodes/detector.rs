//! detector_node: learns where the rotation symmetry breaks from what it observes, whoever drives
//! the arm, and publishes λ for monitoring.
//!
//! ```text
//! cargo run --release --bin detector_node -- --ros-args --params-file config/detector_ur5e.yaml
//! ros2 run equigate detector_node --ros-args -p gate_checkpoint:=runs/x/checkpoint
//! ```
//!
//! Subscribes `joint_states` (sensor_msgs/JointState), `goal` (geometry_msgs/PointStamped) and
//! `forward_velocity_controller/commands` (std_msgs/Float64MultiArray); publishes
//! `/equigate/lambda` (std_msgs/Float32, λ of the latest transition) and `/equigate/lambda_map`
//! (sensor_msgs/Image 32FC1 on the depth camera's grid, NaN where there is no data; the recent
//! transitions scored with the current gate before each publication) with its rgb8 rendering
//! `/equigate/lambda_map/rgb`. Parameters: [`crate::monitor::DetectorNodeConfig`].

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::monitor::{DetectorNodeConfig, OnlineDetector, TransitionAssembler};
use crate::safety::read_joint_state;
use crate::sim_server::Every;
use anyhow::{Context as _, Result};
use burn::backend::{Autodiff, Flex};
use equigate_ros::msg::{Float32, Float64MultiArray, Image, JointState, PointStamped, Time};
use equigate_ros::{qos_reliable, qos_sensor_data, Params, Ros, RosArgs};
use nalgebra::Vector3;

type B = Autodiff<Flex>;

/// A received message of one of the two paired streams.
enum Event {
    Command(Float64MultiArray),
    State(JointState),
}

/// Writes the map and depth PNGs, warning on failure (never stops the node).
fn save_pngs(detector: &OnlineDetector<B>, dir: &std::path::Path, depth: Option<&Image>) {
    if let Err(e) = detector.write_pngs(dir, depth) {
        tracing::warn!("writing the λ map PNGs into {}: {e:#}", dir.display());
    }
}

/// The writer's send time, ns (the receipt order when the writer gave none).
fn sent_at(info: &equigate_ros::ros2_client::MessageInfo) -> i64 {
    info.source_timestamp().or(info.received_timestamp()).map_or(i64::MAX, |t| t.to_nanos())
}

/// Runs the node with its ROS arguments until SIGINT/SIGTERM (or, for a training policy node,
/// the end of training).
///
/// # Errors
/// Bad arguments, parameters or files, DDS failures; the node has stopped then.
pub fn run(args: RosArgs) -> Result<()> {
    crate::logging::init(args.log_filter().as_deref());
    let node_name = args.node_name("detector_node");
    let namespace = args.namespace("detector_node", "/");
    let config: DetectorNodeConfig = Params::load(&args, &node_name, &namespace)?.deserialize()?;
    config.validate()?;
    let mut detector = OnlineDetector::<B>::new(&config, &Default::default())?;
    let joints = detector.model().joint_names().to_vec();

    let mut ros = Ros::new("detector_node", "/", &args)?;
    let states = ros.subscription::<JointState>(&config.joint_states_topic, qos_reliable())?;
    let goals = ros.subscription::<PointStamped>(&config.goal_topic, qos_reliable())?;
    let commands = ros.subscription::<Float64MultiArray>(&config.commands_topic, qos_reliable())?;
    let lambda_pub = ros.publisher::<Float32>(&config.lambda_topic, qos_reliable())?;
    let map_pub = ros.publisher::<Image>(&config.lambda_map_topic, qos_reliable())?;
    let rgb_pub = ros.publisher::<Image>(&config.lambda_map_rgb_topic, qos_reliable())?;
    let depth_sub = ros.subscription::<Image>(&config.depth_topic, qos_sensor_data())?;
    let output_dir = (!config.output_dir.is_empty()).then(|| PathBuf::from(&config.output_dir));
    let mut latest_depth: Option<Image> = None;
    let mut save_due = Every::hz(0.1);
    let stop = crate::logging::stop_flag().context("installing the SIGINT/SIGTERM handler")?;
    tracing::info!(
        node = %ros.fully_qualified_name(), joints = %joints.join(" "),
        learning = config.gate_checkpoint.is_empty(), "detector_node running"
    );

    let start = Instant::now();
    let (mut map_due, mut warn_due, mut status_due) =
        (Every::hz(config.map_rate_hz), Every::hz(1.0), Every::hz(0.2));
    let mut assembler = TransitionAssembler::default();
    let (mut q, mut qdot) = (Vec::new(), Vec::new());
    let (mut goal_version, mut goal) = (0u64, None::<Vector3<f64>>);
    let mut bad_inputs = 0u64;
    let mut lambda_sum = (0.0f64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        let now = start.elapsed().as_secs_f64();
        let mut idle = true;
        while let Ok(Some((msg, _))) = goals.take() {
            idle = false;
            let p = Vector3::new(msg.point.x, msg.point.y, msg.point.z);
            if p.iter().all(|v| v.is_finite()) && goal != Some(p) {
                goal = Some(p);
                goal_version += 1;
            }
        }
        // Commands and joint states in the order their writers sent them (source timestamps),
        // so that a state pairs with the command sent before it even when both are pending.
        let mut events: Vec<(i64, Event)> = Vec::new();
        while let Ok(Some((msg, info))) = commands.take() {
            events.push((sent_at(&info), Event::Command(msg)));
        }
        while let Ok(Some((msg, info))) = states.take() {
            events.push((sent_at(&info), Event::State(msg)));
        }
        events.sort_by_key(|e| e.0);
        idle &= events.is_empty();
        for (_, event) in events {
            match event {
                Event::Command(msg) => {
                    if msg.data.len() == joints.len() && msg.data.iter().all(|v| v.is_finite()) {
                        assembler.on_command(&detector.model().to_model_order(&msg.data), now);
                    } else {
                        bad_inputs += 1;
                    }
                }
                Event::State(msg) => {
                    if let Err(e) = read_joint_state(&joints, &msg, &mut q, &mut qdot) {
                        bad_inputs += 1;
                        if warn_due.due(now) {
                            tracing::warn!("ignoring a joint state: {e} ({bad_inputs} so far)");
                        }
                        continue;
                    }
                    let Some(g) = goal else { continue };
                    let state = detector.model().state(&q, &qdot, g);
                    let Some((before, a, after)) = assembler.on_state(
                        &state,
                        msg.header.stamp.as_secs_f64(),
                        now,
                        goal_version,
                    ) else {
                        continue;
                    };
                    match detector.observe(&before, &a, &after) {
                        Ok(lambda) => {
                            lambda_sum = (lambda_sum.0 + f64::from(lambda), lambda_sum.1 + 1);
                            if let Err(e) = lambda_pub.publish(Float32 { data: lambda }) {
                                tracing::warn!("publishing λ failed: {e:?}");
                            }
                        }
                        Err(e) => {
                            bad_inputs += 1;
                            if warn_due.due(now) {
                                tracing::warn!("skipping a transition: {e:#}");
                            }
                        }
                    }
                }
            }
        }
        // Learn with what time is left, a bounded slice so that λ keeps up with the topics.
        match detector.update(Duration::from_millis(20)) {
            Ok(0) => {}
            Ok(_) => idle = false,
            Err(e) => tracing::warn!("detector update failed: {e:#}"),
        }
        while let Ok(Some((image, _))) = depth_sub.take() {
            latest_depth = Some(image);
        }
        if let Some(dir) = &output_dir {
            if save_due.due(now) && detector.transitions > 0 {
                detector.rescore_map();
                save_pngs(&detector, dir, latest_depth.as_ref());
            }
        }
        if map_due.due(now) {
            detector.rescore_map();
            let stamp = Time::now();
            let map = detector.map();
            let _ = map_pub.publish(map.image_32fc1(stamp, &config.camera_frame));
            let _ = rgb_pub.publish(map.image_rgb8(stamp, &config.camera_frame));
        }
        if status_due.due(now) {
            let mean = lambda_sum.0 / lambda_sum.1.max(1) as f64;
            tracing::info!(
                "{} transitions ({} state pairs dropped: resets, no command), {} updates ({} \
                 owed), mean λ {mean:.3}, {} bad inputs",
                assembler.produced,
                assembler.dropped,
                detector.updates(),
                detector.owed(),
                bad_inputs
            );
            lambda_sum = (0.0, 0);
        }
        if idle {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    if let Some(dir) = &output_dir {
        detector.rescore_map();
        save_pngs(&detector, dir, latest_depth.as_ref());
        tracing::info!("wrote lambda_map.png and depth.png into {}", dir.display());
    }
    tracing::info!("detector_node stopped");
    Ok(())
}
