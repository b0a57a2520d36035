//! `equigate collect`: record a dataset bag from a controller driving the built-in simulator,
//! without DDS.
//!
//! The bag holds exactly what the lockstep graph would carry and `equigate record` would write:
//! per control step `/clock` (rosgraph_msgs/msg/Clock), `/joint_states`
//! (sensor_msgs/msg/JointState, stamped with simulated time) and the controller's command on
//! `/forward_velocity_controller/commands` (std_msgs/msg/Float64MultiArray, rad/s), and a
//! `/goal` (geometry_msgs/msg/PointStamped) at every reset. Log times are simulated time, the
//! command 1 ms after the state it answers, as a lockstep policy would send it. With a
//! [`DepthStream`], also depth images on `/camera/depth/image_raw` (sensor_msgs/msg/Image,
//! `32FC1`) from the sim node's camera at a rate of simulated time, each rendered at a state and
//! stamped (and logged) with that state's stamp, as the lockstep sim node does.
//!
//! Controllers: [`ScriptedReach`], a damped least-squares Cartesian controller with exploration
//! noise (a "medium" behaviour policy in D4RL's sense: it reaches most goals, never optimally,
//! and it drives into obstacles it cannot see), or a trained run's deterministic actor plus noise.

use std::path::Path;

use anyhow::Context as _;
use equigate_bag::{BagWriter, Qos, TopicInfo, WriterOptions};
use equigate_robot::camera::DepthCameraConfig;
use equigate_robot::task::ReachEnv;
use equigate_ros::msg::{to_cdr, Clock, Float64MultiArray, Time};
use nalgebra::{DMatrix, DVector, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::convert;
use crate::dataset::{DatasetTopics, DEPTH_TOPIC};
use crate::sim_server::{DepthRenderer, Every, SimNodeConfig};
use crate::train::EnvSpec;

/// A damped least-squares reaching controller in joint velocity (Wampler 1986; Buss 2004 §5).
///
/// `q̇ = k · Jᵀ (J Jᵀ + μ² I)⁻¹ (goal − ee)`, J the 3×n position Jacobian of the end effector
/// (central differences of forward kinematics), then scaled down uniformly so that no joint
/// exceeds `speed` times its velocity limit. Exploration: Gaussian noise of standard deviation
/// `noise · q̇_max` per joint, and with probability `random_prob` (always, after a step that left
/// the arm at rest: it was blocked by a collision) a uniform random command.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedReach {
    /// Gain k, 1/s (default: `4.0`: the error would close with a 0.25 s time constant).
    pub gain: f64,
    /// Damping μ, m (default: `0.05`; keeps q̇ bounded near singularities).
    pub damping: f64,
    /// Fraction of the velocity limits the controller uses before noise (default: `0.8`: commands
    /// rarely saturate, so offline learners with a tanh-Gaussian actor see few actions at ±1,
    /// where its log-likelihood is extreme).
    pub speed: f64,
    /// Noise standard deviation as a fraction of each velocity limit, added after the speed
    /// scaling and clamped to the limits (default: `0.1`).
    pub noise: f64,
    /// Probability of a uniform random command instead (default: `0.1`).
    pub random_prob: f64,
}

impl Default for ScriptedReach {
    fn default() -> Self {
        Self { gain: 4.0, damping: 0.05, speed: 0.8, noise: 0.1, random_prob: 0.1 }
    }
}

impl ScriptedReach {
    /// The command for `env`'s current state, rad/s (or m/s) in model order, within the limits.
    ///
    /// # Errors
    /// Forward kinematics failing on a state set from `env` itself (not expected).
    pub fn command(&self, env: &ReachEnv, rng: &mut impl Rng) -> anyhow::Result<Vec<f64>> {
        let limits: Vec<f64> = env.model().limits().iter().map(|l| l.velocity).collect();
        let n = limits.len();
        // A blocked step leaves the arm at rest (the simulator stops it at the contact): a
        // controller that cannot see obstacles escapes by a random command.
        let stuck = env.steps() > 0 && env.qdot().iter().all(|v| *v == 0.0);
        if stuck || rng.random::<f64>() < self.random_prob {
            return Ok(limits.iter().map(|&l| rng.random_range(-l..l)).collect());
        }
        let error = env.goal() - env.ee();
        let jacobian = position_jacobian(env)?;
        let jjt = &jacobian * jacobian.transpose()
            + DMatrix::<f64>::identity(3, 3) * self.damping.powi(2);
        let e = DVector::from_column_slice(error.as_slice());
        let y = jjt.lu().solve(&e).context("J Jᵀ + μ² I is positive definite")?;
        let qdot = jacobian.transpose() * y * self.gain;
        let over =
            qdot.iter().zip(&limits).map(|(v, l)| v.abs() / (self.speed * l)).fold(1.0, f64::max);
        let noise = equigate_learn::sac::standard_normal(rng, n);
        Ok(qdot
            .iter()
            .zip(&limits)
            .zip(noise)
            .map(|((v, &l), z)| (v / over + self.noise * l * f64::from(z)).clamp(-l, l))
            .collect())
    }
}

/// The 3×n Jacobian of the end-effector position by central differences (h = 1e-6 rad or m).
fn position_jacobian(env: &ReachEnv) -> anyhow::Result<DMatrix<f64>> {
    let q = env.q().to_vec();
    let qdot = env.qdot().to_vec();
    let mut probe = env.clone();
    let n = q.len();
    let h = 1e-6;
    let mut jacobian = DMatrix::zeros(3, n);
    for i in 0..n {
        // One-sided at a position limit: the probe never leaves the joint's range.
        let limit = &env.model().limits()[i];
        let (lo, hi) = (limit.clamp_position(q[i] - h), limit.clamp_position(q[i] + h));
        let mut at = |x: f64| -> anyhow::Result<Vector3<f64>> {
            let mut qi = q.clone();
            qi[i] = x;
            probe.set_state(&qi, &qdot)?;
            Ok(probe.ee())
        };
        let column = (at(hi)? - at(lo)?) / (hi - lo);
        jacobian.set_column(i, &column);
    }
    Ok(jacobian)
}

/// What [`collect`] wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectSummary {
    /// Control steps (transitions) driven.
    pub steps: usize,
    /// Episodes started.
    pub episodes: usize,
    /// Episodes that ended in success.
    pub successes: usize,
    /// Steps blocked by a collision.
    pub collisions: usize,
    /// Depth images written (with a [`DepthStream`]).
    pub depth_images: usize,
    /// Messages written.
    pub messages: u64,
}

/// Depth images for [`drive`]: the simulator's top-down depth camera, rendered at `rate_hz` of
/// simulated time.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthStream {
    /// Images per second of simulated time, > 0 (the sim node's `camera_rate_hz` is 15). An
    /// image is rendered at the first state at or after each period's start.
    pub rate_hz: f64,
    /// The camera (default: the sim node's `camera` parameter).
    pub camera: DepthCameraConfig,
    /// `frame_id` of the images (default: the sim node's `camera_frame`).
    pub frame_id: String,
}

impl DepthStream {
    /// The sim node's camera at `rate_hz`.
    pub fn at(rate_hz: f64) -> Self {
        let sim = SimNodeConfig::default();
        Self { rate_hz, camera: sim.camera, frame_id: sim.camera_frame }
    }
}

/// The camera of a [`DepthStream`] and its schedule.
struct DepthSchedule {
    renderer: DepthRenderer,
    due: Every,
}

/// `/clock` and `/joint_states` for `env`'s current state at simulated time `t_ns`, then a depth
/// image of the same state and stamp when one is due; counted in `summary`.
fn publish_state(
    env: &ReachEnv,
    t_ns: i64,
    depth: &mut Option<DepthSchedule>,
    summary: &mut CollectSummary,
    sink: &mut impl FnMut(&str, &str, i64, Vec<u8>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let topics = DatasetTopics::default();
    let stamp = Time::from_nanos(t_ns);
    sink("/clock", "rosgraph_msgs/msg/Clock", t_ns, to_cdr(&Clock { clock: stamp })?)?;
    let js = convert::joint_state(stamp, env.model().joint_names(), env.q(), env.qdot());
    sink(&topics.joint_states, "sensor_msgs/msg/JointState", t_ns, to_cdr(&js)?)?;
    summary.messages += 2;
    let Some(d) = depth.as_mut() else { return Ok(()) };
    if d.due.due(t_ns as f64 * 1e-9) {
        let image = d.renderer.image(env, stamp);
        sink(DEPTH_TOPIC, "sensor_msgs/msg/Image", t_ns, to_cdr(&image)?)?;
        summary.messages += 1;
        summary.depth_images += 1;
    }
    Ok(())
}

/// Drives `steps` control steps of the task in `spec` with `controller` (given the environment,
/// returns a command in rad/s, model order) and hands every message to `sink` as (topic, type
/// name, log time in ns, CDR payload), in log-time order; with `depth`, depth images too (module
/// docs). The episode in progress when the budget runs out is cut there.
///
/// # Errors
/// A controller or sink error, an invalid camera or depth rate.
pub fn drive(
    spec: &EnvSpec,
    seed: u64,
    steps: usize,
    depth: Option<&DepthStream>,
    mut controller: impl FnMut(&ReachEnv) -> anyhow::Result<Vec<f64>>,
    mut sink: impl FnMut(&str, &str, i64, Vec<u8>) -> anyhow::Result<()>,
) -> anyhow::Result<CollectSummary> {
    let topics = DatasetTopics::default();
    let mut depth = match depth {
        None => None,
        Some(d) => {
            anyhow::ensure!(
                d.rate_hz.is_finite() && d.rate_hz > 0.0,
                "depth rate must be > 0 Hz, got {}",
                d.rate_hz
            );
            let renderer = DepthRenderer::new(d.camera, &d.frame_id).context("depth camera")?;
            Some(DepthSchedule { renderer, due: Every::hz(d.rate_hz) })
        }
    };
    let mut env = spec.env(seed)?;
    let period_ns = (env.ticks_per_step() as f64 * spec.task.sim_dt_s * 1e9).round() as i64;
    let mut summary = CollectSummary::default();
    // Simulated time starts at 1 s so that no stamp is zero.
    let mut t_ns: i64 = 1_000_000_000;
    let mut episode_over = true;
    while summary.steps < steps {
        if episode_over {
            env.reset();
            summary.episodes += 1;
            let g = convert::point_stamped(Time::from_nanos(t_ns), "base_link", &env.goal());
            sink(&topics.goal, "geometry_msgs/msg/PointStamped", t_ns, to_cdr(&g)?)?;
            summary.messages += 1;
            publish_state(&env, t_ns, &mut depth, &mut summary, &mut sink)?;
        }
        let command = controller(&env)?;
        let msg = Float64MultiArray::flat(command.clone());
        let command_type = "std_msgs/msg/Float64MultiArray";
        sink(&topics.command, command_type, t_ns + 1_000_000, to_cdr(&msg)?)?;
        let t = env.step(&command)?;
        t_ns += period_ns;
        summary.messages += 1;
        publish_state(&env, t_ns, &mut depth, &mut summary, &mut sink)?;
        summary.steps += 1;
        summary.collisions += usize::from(t.collided);
        summary.successes += usize::from(t.terminated);
        episode_over = t.terminated || t.truncated;
        if episode_over {
            // The reset service call takes simulated time too; keep the next episode apart.
            t_ns += period_ns;
        }
    }
    Ok(summary)
}

/// [`drive`] into a new rosbag2 bag at `out` (MCAP, zstd, metadata version 9; `out` must not
/// exist).
///
/// # Errors
/// Creating or writing the bag, or a controller error.
pub fn collect(
    spec: &EnvSpec,
    seed: u64,
    steps: usize,
    depth: Option<&DepthStream>,
    out: &Path,
    controller: impl FnMut(&ReachEnv) -> anyhow::Result<Vec<f64>>,
) -> anyhow::Result<CollectSummary> {
    let mut writer = BagWriter::create(out, WriterOptions::default())
        .with_context(|| format!("creating bag {}", out.display()))?;
    let mut ids = std::collections::HashMap::new();
    let summary = drive(spec, seed, steps, depth, controller, |topic, type_name, t, cdr| {
        let id = match ids.get(topic) {
            Some(id) => *id,
            None => {
                let id = writer.add_topic(TopicInfo {
                    name: topic.to_owned(),
                    type_name: type_name.to_owned(),
                    serialization_format: "cdr".to_owned(),
                    offered_qos: vec![Qos::reliable(10)],
                })?;
                ids.insert(topic.to_owned(), id);
                id
            }
        };
        writer.write(id, t, &cdr)?;
        Ok(())
    })?;
    writer.finish().with_context(|| format!("finishing bag {}", out.display()))?;
    Ok(summary)
}

/// [`collect`] with a seeded [`ScriptedReach`].
///
/// # Errors
/// As [`collect`].
pub fn collect_scripted(
    spec: &EnvSpec,
    controller: &ScriptedReach,
    seed: u64,
    steps: usize,
    depth: Option<&DepthStream>,
    out: &Path,
) -> anyhow::Result<CollectSummary> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0c01_1ec7);
    collect(spec, seed, steps, depth, out, |env| controller.command(env, &mut rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use equigate_robot::model::RobotKind;

    /// Without noise the scripted controller reaches most goals of the plain UR5e task (a random
    /// policy reaches about none): it is a behaviour policy worth learning from.
    #[test]
    fn scripted_controller_reaches_goals() {
        let task = crate::resources::load_task(RobotKind::Ur5e, None).unwrap();
        let spec = EnvSpec::with_task(RobotKind::Ur5e, task).unwrap();
        let controller = ScriptedReach { noise: 0.0, random_prob: 0.0, ..ScriptedReach::default() };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut successes = 0;
        for episode in 0..10 {
            let mut env = spec.env(100 + episode).unwrap();
            env.reset();
            for _ in 0..spec.task.max_episode_steps {
                let command = controller.command(&env, &mut rng).unwrap();
                let t = env.step(&command).unwrap();
                if t.terminated {
                    successes += 1;
                    break;
                }
            }
        }
        assert!(successes >= 8, "scripted controller reached {successes}/10 goals");
    }

    /// At a position limit the Jacobian is taken one-sided and the command stays within the
    /// velocity limits (a central difference would step outside the joint's range).
    #[test]
    fn commands_at_a_position_limit() {
        let spec = EnvSpec::with_task(RobotKind::Ur5e, Default::default()).unwrap();
        let mut env = spec.env(0).unwrap();
        env.reset();
        let mut q = env.q().to_vec();
        q[2] = env.model().limits()[2].upper;
        env.set_state(&q, &[0.0; 6]).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let controller = ScriptedReach { random_prob: 0.0, ..ScriptedReach::default() };
        let command = controller.command(&env, &mut rng).unwrap();
        for (v, l) in command.iter().zip(env.model().limits()) {
            assert!(v.abs() <= l.velocity, "{command:?}");
        }
    }
}
