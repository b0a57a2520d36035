//! policy_node: PE-SAC (or a baseline) on a UR5e or Fetch over ROS 2, in two modes.
//!
//! ```text
//! # learn online against the simulator in lockstep (checkpoints into runs/ur5e_online)
//! cargo run --release --bin sim_node -- --ros-args --params-file config/ur5e.yaml -p mode:=lockstep
//! cargo run --release --bin policy_node -- --ros-args --params-file config/policy_ur5e.yaml \
//!     -p mode:=train -p use_sim_time:=true -p run_dir:=runs/ur5e_online
//! # act with a trained run directory (from `equigate train` or train mode)
//! cargo run --release --bin policy_node -- --ros-args --params-file config/policy_ur5e.yaml \
//!     -p mode:=run -p run_dir:=runs/ur5e_online
//! ```
//!
//! Subscribes `joint_states` (sensor_msgs/JointState, joints matched by name), `goal`
//! (geometry_msgs/PointStamped, m in the base frame) and with `use_sim_time` `/clock`;
//! publishes `forward_velocity_controller/commands` (std_msgs/Float64MultiArray, rad/s in
//! `joint_names` order) and `/diagnostics`; train mode calls the simulator's `~/reset`
//! (std_srvs/Trigger) between episodes. Every command passes the safety layer
//! ([`equigate::safety::SafetyGuard`]): stale, NaN/Inf, incomplete or malformed joint states give
//! zero velocity and a throttled warning.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::AutodiffBackend;
use equigate::observe::ObservationModel;
use equigate::online::{self, OnlineLearner, OnlineStep};
use equigate::policy::{self, DeviceKind, PolicyMode, PolicyNodeConfig};
use equigate::safety::{SafetyGuard, StopKind, Verdict, WarnThrottle};
use equigate::sim_server::Every;
use equigate::train::{EnvSpec, Scaling};
use equigate_learn::sac::ActMode;
use equigate_robot::task::State;
use equigate_ros::msg::{
    Clock, DiagnosticArray, EmptyStruct, Float64MultiArray, JointState, PointStamped, Time,
    TriggerSrv,
};
use equigate_ros::ros2_client::request_id::RmwRequestId;
use equigate_ros::ros2_client::{Publisher, Subscription};
use equigate_ros::{qos_reliable, Params, Ros, RosArgs};
use nalgebra::Vector3;

type Cpu = Autodiff<Flex>;

/// A reset request without an answer is sent again after this long.
const RESET_RETRY: Duration = Duration::from_secs(2);
#[cfg(feature = "cuda")]
type Gpu = Autodiff<burn::backend::Cuda>;

fn main() {
    if let Err(e) = run() {
        eprintln!("policy_node: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args = RosArgs::from_env()?;
    equigate::logging::init(args.log_filter().as_deref());
    let node_name = args.node_name("policy_node");
    let namespace = args.namespace("policy_node", "/");
    let config: PolicyNodeConfig = Params::load(&args, &node_name, &namespace)?.deserialize()?;
    config.validate()?;
    match config.device {
        DeviceKind::Cpu => spin::<Cpu>(&config, &args, &Default::default()),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => spin::<Gpu>(&config, &args, &Default::default()),
        #[cfg(not(feature = "cuda"))]
        DeviceKind::Cuda => bail!(
            "parameter `device` is `cuda` but this policy_node was built without CUDA: rebuild \
             with `cargo build --release --features cuda --bin policy_node`, or set device:=cpu"
        ),
    }
}

/// Topics, the service client and the node's clock.
struct Io {
    states: Subscription<JointState>,
    goals: Subscription<PointStamped>,
    clock: Option<Subscription<Clock>>,
    commands: Publisher<Float64MultiArray>,
    diagnostics: Publisher<DiagnosticArray>,
    start: Instant,
    /// Latest `/clock`, s (with `use_sim_time`).
    sim_now: f64,
}

impl Io {
    /// Seconds on the safety layer's clock: `/clock` with `use_sim_time`, else wall time since
    /// start.
    fn now(&self) -> f64 {
        if self.clock.is_some() {
            self.sim_now
        } else {
            self.start.elapsed().as_secs_f64()
        }
    }

    fn publish_command(&self, cmd: &[f64]) {
        if let Err(e) = self.commands.publish(Float64MultiArray::flat(cmd.to_vec())) {
            tracing::warn!("publishing the command failed: {e:?}");
        }
    }
}

/// What the topics said: the safety guard's latest joint state and the latest goal.
struct Inputs {
    guard: SafetyGuard,
    goal: Option<Vector3<f64>>,
    /// Valid joint states and goals received so far.
    states_ok: u64,
    goals: u64,
    /// Header stamp of the latest valid joint state, s.
    stamp: f64,
    warn: WarnThrottle<&'static str>,
}

impl Inputs {
    fn poll(&mut self, io: &mut Io) {
        if let Some(clock) = &io.clock {
            while let Ok(Some((c, _))) = clock.take() {
                io.sim_now = io.sim_now.max(c.clock.as_secs_f64());
            }
        }
        while let Ok(Some((msg, _))) = io.states.take() {
            let stamp = msg.header.stamp.as_secs_f64();
            let received = if io.clock.is_some() { io.sim_now.max(stamp) } else { io.now() };
            if self.guard.on_joint_state(&msg, received).is_ok() {
                self.states_ok += 1;
                self.stamp = stamp;
            }
        }
        while let Ok(Some((msg, _))) = io.goals.take() {
            let p = Vector3::new(msg.point.x, msg.point.y, msg.point.z);
            if p.iter().all(|x| x.is_finite()) {
                self.goal = Some(p);
                self.goals += 1;
            } else if self.warn.check("goal", io.now()).is_some() {
                tracing::warn!("ignoring a goal that is not finite: {p:?}");
            }
        }
    }

    /// The task state of the latest joint state and goal, if both are usable at `now`.
    fn state(&self, om: &ObservationModel, now: f64) -> Option<State> {
        self.guard.state_ok(now).ok()?;
        Some(om.state(self.guard.q(), self.guard.qdot(), self.goal?))
    }

    /// Sends `desired` (topic order) through the safety guard; returns what went out.
    fn command(&mut self, io: &Io, desired: &[f64]) -> (Vec<f64>, Option<String>) {
        let (cmd, verdict) = self.guard.decide(desired, io.now());
        io.publish_command(cmd);
        if let Some(w) = verdict.warning() {
            tracing::warn!("{w}");
        }
        let stopping = match &verdict {
            Verdict::Stopped { reason, .. } => Some(reason.to_string()),
            Verdict::Sent(_) => None,
        };
        (cmd.to_vec(), stopping)
    }
}

fn spin<B: AutodiffBackend>(
    config: &PolicyNodeConfig,
    args: &RosArgs,
    device: &B::Device,
) -> Result<()> {
    let mut ros = Ros::new("policy_node", "/", args)?;
    let mut io = Io {
        states: ros.subscription(&config.joint_states_topic, qos_reliable())?,
        goals: ros.subscription(&config.goal_topic, qos_reliable())?,
        clock: if config.use_sim_time {
            Some(ros.subscription(&config.clock_topic, qos_reliable())?)
        } else {
            None
        },
        commands: ros.publisher(&config.commands_topic, qos_reliable())?,
        diagnostics: ros.publisher("/diagnostics", qos_reliable())?,
        start: Instant::now(),
        sim_now: 0.0,
    };
    let stop = equigate::logging::stop_flag().context("installing the SIGINT/SIGTERM handler")?;
    match config.mode {
        PolicyMode::Run => run_mode::<B>(config, &mut io, &stop, device),
        PolicyMode::Train => {
            let reset = if config.reset_service.is_empty() {
                None
            } else {
                Some(ros.service_client::<TriggerSrv>(&config.reset_service)?)
            };
            train_mode::<B>(config, &mut io, reset, &stop, device)
        }
    }
}

fn inputs(config: &PolicyNodeConfig, spec: &EnvSpec, period: f64) -> Result<Inputs> {
    let guard = SafetyGuard::new(&spec.model, &config.joint_names, &config.safety, period)
        .context("the safety layer")?;
    Ok(Inputs {
        guard,
        goal: None,
        states_ok: 0,
        goals: 0,
        stamp: f64::NEG_INFINITY,
        warn: { WarnThrottle::new(config.safety.warn_period_s) },
    })
}

/// Run mode: deterministic actions of a trained run at the control rate.
fn run_mode<B: AutodiffBackend>(
    config: &PolicyNodeConfig,
    io: &mut Io,
    stop: &AtomicBool,
    device: &B::Device,
) -> Result<()> {
    let run_dir = config.run_dir();
    let online::LoadedRun { config: train, spec, scaling, mut agent } =
        online::load_run::<B>(&run_dir, device)
            .with_context(|| format!("parameter `run_dir` = {}", run_dir.display()))?;
    if train.robot != config.robot {
        bail!(
            "run {} is for {:?}, parameter `robot` is {:?}",
            run_dir.display(),
            train.robot,
            config.robot
        );
    }
    let period = config.command_period_s(spec.task.control_period_s);
    let mut om = ObservationModel::new(spec.model.clone(), spec.task.clone(), &config.joint_names)?;
    let mut inputs = inputs(config, &spec, period)?;
    let zeros = vec![0.0; om.dof()];
    tracing::info!(
        "policy_node running {} from {} at {:.1} Hz, joints: {}",
        train.agent,
        run_dir.display(),
        1.0 / period,
        om.joint_names().join(" ")
    );
    let (mut diag_due, mut status_due) = (Every::hz(config.diagnostics_rate_hz), Every::hz(1.0));
    let (mut next, mut distance) = (Instant::now(), f64::NAN);
    while !stop.load(Ordering::Relaxed) {
        inputs.poll(io);
        let now = io.now();
        let desired = match inputs.state(&om, now) {
            Some(s) => match om.observe(&s) {
                Ok(obs) => {
                    distance = om.distance(&s).unwrap_or(f64::NAN);
                    let a = agent.act(&scaling.obs.normalize(&obs), ActMode::Deterministic);
                    om.to_topic_order(&scaling.act.to_velocity(&a))
                }
                Err(e) => {
                    warn_throttled(&mut inputs.warn, "observe", now, &format!("{e:#}"));
                    zeros.clone()
                }
            },
            None => {
                if inputs.goal.is_none() && inputs.guard.state_ok(now).is_ok() {
                    let why = format!("no goal on `{}` yet: holding still", config.goal_topic);
                    warn_throttled(&mut inputs.warn, "goal", now, &why);
                }
                zeros.clone()
            }
        };
        let stopping = inputs.command(io, &desired).1;
        let wall = io.start.elapsed().as_secs_f64();
        if diag_due.due(wall) {
            let extra = [("distance_to_goal_m", format!("{distance:.4}"))];
            let d = policy::diagnostics(
                Time::now(),
                config.mode,
                config.robot,
                None,
                &inputs.guard.stats(),
                stopping.as_deref(),
                &extra,
            );
            let _ = io.diagnostics.publish(d);
        }
        if status_due.due(wall) && distance.is_finite() {
            let s = inputs.guard.stats();
            tracing::info!(
                "end effector {distance:.3} m from the goal; commands: {} sent, {} zero",
                s.sent,
                s.stopped_total()
            );
        }
        next += Duration::from_secs_f64(period);
        let now_i = Instant::now();
        if next > now_i {
            std::thread::sleep(next - now_i);
        } else {
            next = now_i; // missed ticks are skipped, not burst
        }
    }
    io.publish_command(&zeros);
    tracing::info!("policy_node: shutting down ({} commands sent)", inputs.guard.stats().sent);
    Ok(())
}

/// The command of the step being waited for.
struct Pending {
    before: State,
    obs: Vec<f64>,
    /// The executed command as an action in [-1, 1] and in rad/s (model order).
    action: Vec<f32>,
    command: Vec<f64>,
    stamp: f64,
    states_ok: u64,
    sent: Instant,
}

enum Phase {
    /// Asking the simulator for a new episode: when the last request went out and the ids of
    /// this reset's requests (`None`: not asked yet).
    Reset(Option<(Instant, Vec<RmwRequestId>)>),
    /// Waiting for a joint state and a goal newer than these counts.
    First { states_ok: u64, goals: u64, since: Instant },
    /// Acting from this state.
    Act(State),
    /// Waiting for the state after the command.
    Next(Pending),
}

/// Train mode: online learning with episodes reset through the simulator's service.
fn train_mode<B: AutodiffBackend>(
    config: &PolicyNodeConfig,
    io: &mut Io,
    reset: Option<
        equigate_ros::ros2_client::Client<EmptyStruct, equigate_ros::msg::TriggerResponse>,
    >,
    stop: &AtomicBool,
    device: &B::Device,
) -> Result<()> {
    let train = config.train_config()?;
    let spec = EnvSpec::load(&train)?;
    let run_dir = config.run_dir();
    let mut learner = OnlineLearner::<B>::create(train, &spec, &run_dir, config.resume, device)?;
    let scaling: Scaling = learner.scaling().clone();
    let period = config.command_period_s(spec.task.control_period_s);
    let mut om = ObservationModel::new(spec.model.clone(), spec.task.clone(), &config.joint_names)?;
    let mut inputs = inputs(config, &spec, period)?;
    let timeout = Duration::from_secs_f64(config.lockstep_timeout_s);
    if config.lockstep && !config.use_sim_time {
        tracing::warn!(
            "lockstep training on the wall clock: an update longer than safety.max_state_age_s \
             ({} s) makes the next command zero velocity; set use_sim_time:=true",
            config.safety.max_state_age_s
        );
    }
    tracing::info!(
        "policy_node training {} into {} ({} steps, {}), joints: {}",
        learner.config().agent,
        run_dir.display(),
        learner.config().total_steps,
        if config.lockstep { "lockstep" } else { "real time" },
        om.joint_names().join(" ")
    );
    let mut diag_due = Every::hz(config.diagnostics_rate_hz);
    let mut phase = Phase::Reset(None);
    let mut episode_steps = 0usize;
    let mut stopping: Option<String> = None;
    while !stop.load(Ordering::Relaxed) && !learner.done() {
        inputs.poll(io);
        let now = io.now();
        let mut busy = false;
        phase = match phase {
            Phase::Reset(asked) => match &reset {
                None => {
                    Phase::First { states_ok: inputs.states_ok, goals: 0, since: Instant::now() }
                }
                Some(client) => {
                    // Only an answer to this reset's requests counts (a late answer to an earlier
                    // request must not start an episode that was never reset).
                    let ids: &[RmwRequestId] = asked.as_ref().map_or(&[], |(_, ids)| &ids[..]);
                    let mut answer = None;
                    while let Ok(Some((id, r))) = client.receive_response() {
                        if ids.contains(&id) && r.success {
                            answer = Some(r);
                        }
                    }
                    match answer {
                        Some(r) => {
                            tracing::debug!("reset: {}", r.message);
                            inputs.guard.clear_state();
                            Phase::First {
                                states_ok: inputs.states_ok,
                                goals: inputs.goals,
                                since: Instant::now(),
                            }
                        }
                        None if inputs.states_ok == 0 => Phase::Reset(asked), // the sim is not up
                        None if asked.as_ref().is_none_or(|(t, _)| t.elapsed() > RESET_RETRY) => {
                            let mut ids = asked.map(|(_, ids)| ids).unwrap_or_default();
                            if !ids.is_empty() {
                                let why = format!(
                                    "no answer from `{}` yet; asking again",
                                    config.reset_service
                                );
                                warn_throttled(&mut inputs.warn, "reset", now, &why);
                            }
                            match client.send_request(EmptyStruct::default()) {
                                Ok(id) => ids.push(id),
                                Err(e) => tracing::warn!("reset request failed: {e:?}"),
                            }
                            Phase::Reset(Some((Instant::now(), ids)))
                        }
                        None => Phase::Reset(asked),
                    }
                }
            },
            Phase::First { states_ok, goals, since } => match inputs.state(&om, now) {
                Some(s) if inputs.states_ok > states_ok && inputs.goals > goals => {
                    episode_steps = 0;
                    learner.abandon_episode();
                    Phase::Act(s)
                }
                _ if since.elapsed() > 5 * timeout => {
                    warn_throttled(
                        &mut inputs.warn,
                        "first",
                        now,
                        "no joint state and goal after the reset: resetting again",
                    );
                    Phase::Reset(None)
                }
                _ => Phase::First { states_ok, goals, since },
            },
            Phase::Act(before) => {
                busy = true;
                let obs = om.observe(&before)?;
                let action = learner.act(&obs);
                let desired = om.to_topic_order(&scaling.act.to_velocity(&action));
                let (sent, why) = inputs.command(io, &desired);
                stopping = why;
                let command = om.to_model_order(&sent);
                Phase::Next(Pending {
                    before,
                    obs,
                    action: scaling.act.to_action(&command),
                    command,
                    stamp: inputs.stamp,
                    states_ok: inputs.states_ok,
                    sent: Instant::now(),
                })
            }
            Phase::Next(p) => {
                let new_state = inputs.states_ok > p.states_ok
                    && if config.lockstep {
                        inputs.stamp > p.stamp
                    } else {
                        p.sent.elapsed().as_secs_f64() >= period
                    };
                match inputs.state(&om, now) {
                    Some(after) if new_state && after.goal != p.before.goal => {
                        // A new goal mid-step (a late reset or goal message): not a transition.
                        learner.abandon_episode();
                        episode_steps = 0;
                        Phase::Act(after)
                    }
                    Some(after) if new_state => {
                        busy = true;
                        episode_steps += 1;
                        let o = om.outcome(&p.before, &p.command, &after, episode_steps)?;
                        let next_obs = om.observe(&after)?;
                        let step = OnlineStep {
                            obs: &p.obs,
                            action: &p.action,
                            reward: o.reward,
                            next_obs: &next_obs,
                            terminated: o.terminated,
                            truncated: o.truncated,
                            in_breaking_region: o.in_breaking_region,
                        };
                        if let Some(r) = learner.record(&step)? {
                            log_episode(&learner, r, o.terminated, o.distance);
                        }
                        if !(o.terminated || o.truncated) {
                            Phase::Act(after)
                        } else if reset.is_some() {
                            Phase::Reset(None)
                        } else {
                            episode_steps = 0;
                            Phase::Act(after)
                        }
                    }
                    _ if p.sent.elapsed() > timeout => {
                        warn_throttled(
                            &mut inputs.warn,
                            "lockstep",
                            now,
                            &format!(
                                "no new joint state {:.1} s after the command: dropping that \
                             transition",
                                timeout.as_secs_f64()
                            ),
                        );
                        match inputs.state(&om, now) {
                            Some(s) => Phase::Act(s),
                            None => Phase::Reset(None),
                        }
                    }
                    _ => Phase::Next(p),
                }
            }
        };
        let wall = io.start.elapsed().as_secs_f64();
        if diag_due.due(wall) {
            let d = policy::diagnostics(
                Time::now(),
                config.mode,
                config.robot,
                Some(learner.stats()),
                &inputs.guard.stats(),
                stopping.as_deref(),
                &[],
            );
            let _ = io.diagnostics.publish(d);
        }
        if !busy {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    io.publish_command(&vec![0.0; om.dof()]);
    learner.finish()?;
    let s = learner.stats();
    tracing::info!(
        "policy_node: training done: {} steps, {} updates, {} episodes, mean return of the last \
         {} episodes {:.3}, checkpoint in {}",
        s.env_steps,
        s.updates,
        s.episodes,
        online::RECENT_EPISODES,
        s.mean_return.unwrap_or(f64::NAN),
        run_dir.display()
    );
    let stats = inputs.guard.stats();
    if stats.stopped_total() > 0 {
        tracing::info!(
            "zero commands sent: {} (stale: {})",
            stats.stopped_total(),
            stats.stopped_by(StopKind::Stale)
        );
    }
    Ok(())
}

fn log_episode<B: AutodiffBackend>(learner: &OnlineLearner<B>, ret: f64, success: bool, d: f64) {
    let s = learner.stats();
    let line =
        format!(
        "episode {}: return {ret:.3}, {}, final distance {d:.3} m; last {} episodes: mean return \
         {:.3}, success {:.2}; {} steps, {} updates",
        s.episodes, if success { "success" } else { "timeout" }, online::RECENT_EPISODES,
        s.mean_return.unwrap_or(f64::NAN), s.success_rate.unwrap_or(f64::NAN), s.env_steps,
        s.updates
    );
    if s.episodes.is_multiple_of(10) {
        tracing::info!("{line}");
    } else {
        tracing::debug!("{line}");
    }
}

fn warn_throttled(warn: &mut WarnThrottle<&'static str>, key: &'static str, now: f64, what: &str) {
    if let Some(held) = warn.check(key, now) {
        if held > 0 {
            tracing::warn!("{what} ({held} more since the last warning)");
        } else {
            tracing::warn!("{what}");
        }
    }
}
