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
//! ([`crate::safety::SafetyGuard`]): stale, NaN/Inf, incomplete or malformed joint states give
//! zero velocity and a throttled warning. Run mode commands at `control_rate_hz`, or with
//! `act_on_state` as soon as a joint state arrives (the timer then only fills gaps, so a stalled
//! stream still gets zero velocity). The loops live in [`crate::policy_loop`].

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::observe::ObservationModel;
use crate::online::{self, OnlineLearner};
use crate::policy::{self, DeviceKind, PolicyMode, PolicyNodeConfig};
use crate::policy_loop::{EpisodeReset, Homing, Inputs, RunPolicy, TrainLoop, Turn};
use crate::safety::SafetyGuard;
use crate::sim_server::Every;
use crate::train::EnvSpec;
use anyhow::{bail, Context as _, Result};
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::AutodiffBackend;
use equigate_ros::msg::{
    Clock, DiagnosticArray, EmptyStruct, Float64MultiArray, JointState, PointStamped, Time,
    TriggerSrv,
};
use equigate_ros::ros2_client::dds::rustdds::mio1;
use equigate_ros::ros2_client::{Publisher, Subscription};
use equigate_ros::{qos_reliable, Params, Ros, RosArgs};

type Cpu = Autodiff<Flex>;

#[cfg(feature = "cuda")]
type Gpu = Autodiff<burn::backend::Cuda>;

/// With `act_on_state`, the longest wait for a joint state between ticks (the wait wakes on
/// the subscription's readiness; this bounds the cost of a missed wake-up).
const STATE_WAIT_MAX: Duration = Duration::from_millis(1);

/// Runs the node with its ROS arguments until SIGINT/SIGTERM (or, for a training policy node,
/// the end of training).
///
/// # Errors
/// Bad arguments, parameters or files, DDS failures; the node has stopped then.
pub fn run(args: RosArgs) -> Result<()> {
    crate::logging::init(args.log_filter().as_deref());
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

/// Run or train, built before any DDS entity so that a bad run directory or file fails first.
enum Brain<B: AutodiffBackend> {
    Run(Box<RunPolicy<B>>),
    Train(Box<TrainLoop<B>>),
}

fn build<B: AutodiffBackend>(
    config: &PolicyNodeConfig,
    device: &B::Device,
) -> Result<(Brain<B>, Inputs)> {
    let run_dir = config.run_dir();
    let (brain, spec) = match config.mode {
        PolicyMode::Run => {
            let run = online::load_run::<B>(&run_dir, device)
                .with_context(|| format!("parameter `run_dir` = {}", run_dir.display()))?;
            if run.config.robot != config.robot {
                bail!(
                    "run {} is for {:?}, not {:?}",
                    run_dir.display(),
                    run.config.robot,
                    config.robot
                );
            }
            let om = ObservationModel::new(
                run.spec.model.clone(),
                run.spec.task.clone(),
                &config.joint_names,
            )?;
            tracing::info!("policy_node running {} from {}", run.config.agent, run_dir.display());
            (Brain::Run(Box::new(RunPolicy::new(run.agent, run.scaling, om))), run.spec)
        }
        PolicyMode::Train => {
            let train = config.train_config()?;
            let spec = EnvSpec::load(&train)?;
            let learner =
                OnlineLearner::<B>::create(train, &spec, &run_dir, config.resume, device)?;
            let om =
                ObservationModel::new(spec.model.clone(), spec.task.clone(), &config.joint_names)?;
            let c = learner.config();
            tracing::info!(
                "policy_node training {} into {} ({} steps)",
                c.agent,
                run_dir.display(),
                c.total_steps
            );
            if config.lockstep && !config.use_sim_time {
                tracing::warn!(
                    "lockstep training on the wall clock: an update longer than \
                     safety.max_state_age_s ({} s) makes the next command zero; set use_sim_time:=true",
                    config.safety.max_state_age_s
                );
            }
            let period = config.command_period_s(spec.task.control_period_s);
            let reset = episode_reset(config, &spec.model, &om)?;
            let lp = TrainLoop::new(
                learner,
                om,
                config.lockstep,
                reset,
                period,
                config.lockstep_timeout_s,
            );
            (Brain::Train(Box::new(lp)), spec)
        }
    };
    let period = config.command_period_s(spec.task.control_period_s);
    let guard = SafetyGuard::new(&spec.model, &config.joint_names, &config.safety, period)
        .context("the safety layer")?;
    Ok((brain, Inputs::new(guard, config.safety.warn_period_s)))
}

/// Topics and the node's clock.
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

    /// Hands everything received to `inputs`. With `use_sim_time` a state counts as received at
    /// the later of `/clock` and its stamp (the two topics may arrive in either order). Returns
    /// how many joint states (valid or not) arrived.
    fn poll(&mut self, inputs: &mut Inputs) -> usize {
        if let Some(clock) = &self.clock {
            while let Ok(Some((c, _))) = clock.take() {
                self.sim_now = self.sim_now.max(c.clock.as_secs_f64());
            }
        }
        let mut states = 0;
        while let Ok(Some((msg, _))) = self.states.take() {
            let stamp = msg.header.stamp.as_secs_f64();
            let received = if self.clock.is_some() { self.sim_now.max(stamp) } else { self.now() };
            inputs.on_joint_state(&msg, received);
            states += 1;
        }
        while let Ok(Some((msg, _))) = self.goals.take() {
            inputs.on_goal(&msg, self.now());
        }
        states
    }

    fn publish_command(&self, cmd: &[f64]) {
        if let Err(e) = self.commands.publish(Float64MultiArray::flat(cmd.to_vec())) {
            tracing::warn!("publishing the command failed: {e:?}");
        }
    }
}

/// How train mode starts an episode: the reset service when one is named, else homing when
/// `home_positions` is set (checked against the joint count and the URDF limits), else none.
///
/// # Errors
/// `home_positions` of the wrong length or outside a joint's limits.
fn episode_reset(
    config: &PolicyNodeConfig,
    model: &equigate_robot::model::RobotModel,
    om: &ObservationModel,
) -> Result<EpisodeReset> {
    if !config.reset_service.is_empty() {
        return Ok(EpisodeReset::Service);
    }
    let home = &config.home_positions;
    if home.is_empty() {
        return Ok(EpisodeReset::None);
    }
    if home.len() != om.dof() {
        bail!(
            "parameter `home_positions` has {} values for {} joints ({:?})",
            home.len(),
            om.dof(),
            om.joint_names()
        );
    }
    // The model index of each configured joint: the model-order list 0, 1, … in topic order.
    let model_index = om.to_topic_order(&(0..om.dof()).map(|i| i as f64).collect::<Vec<_>>());
    for ((q, name), i) in home.iter().zip(om.joint_names()).zip(model_index) {
        let l = &model.limits()[i as usize];
        if *q < l.lower || *q > l.upper {
            bail!(
                "parameter `home_positions`: {name} = {q} is outside its limits [{}, {}]",
                l.lower,
                l.upper
            );
        }
    }
    Ok(EpisodeReset::Home(Homing {
        q: home.clone(),
        tolerance_rad: config.home_tolerance_rad,
        gain: config.home_gain,
        timeout: Duration::from_secs_f64(config.home_timeout_s),
    }))
}

fn spin<B: AutodiffBackend>(
    config: &PolicyNodeConfig,
    args: &RosArgs,
    device: &B::Device,
) -> Result<()> {
    let (mut brain, mut inputs) = build::<B>(config, device)?;
    let mut ros = Ros::new("policy_node", "/", args)?;
    let mut io = Io {
        states: ros.subscription(&config.joint_states_topic, qos_reliable())?,
        goals: ros.subscription(&config.goal_topic, qos_reliable())?,
        clock: match config.use_sim_time {
            true => Some(ros.subscription(&config.clock_topic, qos_reliable())?),
            false => None,
        },
        commands: ros.publisher(&config.commands_topic, qos_reliable())?,
        diagnostics: ros.publisher("/diagnostics", qos_reliable())?,
        start: Instant::now(),
        sim_now: 0.0,
    };
    let reset = match (&brain, config.reset_service.is_empty()) {
        (Brain::Train(_), false) => Some(ros.service_client::<TriggerSrv>(&config.reset_service)?),
        _ => None,
    };
    let stop = crate::logging::stop_flag().context("installing the SIGINT/SIGTERM handler")?;
    let (mut diag_due, mut status_due) = (Every::hz(config.diagnostics_rate_hz), Every::hz(1.0));
    let period = Duration::from_secs_f64(config.command_period_s(match &brain {
        Brain::Run(p) => p.model().task().control_period_s,
        Brain::Train(lp) => lp.model().task().control_period_s,
    }));
    let dof = inputs.guard().joint_names().len();
    tracing::info!(
        "joints: {}; {:.1} Hz",
        inputs.guard().joint_names().join(" "),
        1.0 / period.as_secs_f64()
    );
    let (mut next, mut reset_ids, mut stopping) = (Instant::now(), Vec::new(), None);
    let (mut distance, mut last_command) = (None, Instant::now());
    let act_on_state = config.act_on_state && matches!(brain, Brain::Run(_));
    // act_on_state waits on the joint-state subscription's readiness between ticks.
    let mut state_wait = match act_on_state {
        true => {
            let poll = mio1::Poll::new().context("creating the joint-state wait")?;
            let token = mio1::Token(0);
            poll.registry()
                .register(&mut io.states, token, mio1::Interest::READABLE)
                .context("registering joint_states for waiting")?;
            tracing::info!("acting on each joint state; the timer fills gaps longer than a period");
            Some((poll, mio1::Events::with_capacity(4)))
        }
        false => None,
    };
    while !stop.load(Ordering::Relaxed) {
        let arrived = io.poll(&mut inputs);
        let now = io.now();
        let mut wait = true;
        let tick = Instant::now() >= next;
        match &mut brain {
            Brain::Run(policy) => {
                // Timer mode: one command per tick. act_on_state: one per poll that brought
                // joint states, and from the timer only after a period without a command (so a
                // stalled stream still gets zero velocity once the state is stale).
                let timer = tick && (!act_on_state || last_command.elapsed() >= period);
                if (act_on_state && arrived > 0) || timer {
                    let (desired, d) = policy.desired(&mut inputs, now);
                    distance = d.or(distance);
                    let (cmd, why) = inputs.decide(&desired, now);
                    io.publish_command(&cmd);
                    last_command = Instant::now();
                    stopping = why;
                }
            }
            Brain::Train(lp) => {
                if let Some(client) = &reset {
                    while let Ok(Some((id, answer))) = client.receive_response() {
                        if reset_ids.contains(&id) && answer.success {
                            tracing::debug!("reset: {}", answer.message);
                            reset_ids.clear();
                            lp.reset_done(&mut inputs);
                        }
                    }
                }
                match lp.tick(&mut inputs, now)? {
                    Turn::Done => break,
                    Turn::SendReset { first } => {
                        let client = reset.as_ref().expect("TrainLoop resets only with a service");
                        if first {
                            reset_ids.clear();
                        }
                        match client.send_request(EmptyStruct::default()) {
                            Ok(id) => reset_ids.push(id),
                            Err(e) => tracing::warn!("reset request failed: {e:?}"),
                        }
                    }
                    Turn::Publish(cmd) => {
                        io.publish_command(&cmd);
                        stopping = lp.stopping().map(str::to_owned);
                        wait = false;
                    }
                    Turn::Busy => wait = false,
                    Turn::Wait => {}
                }
            }
        }
        let wall = io.start.elapsed().as_secs_f64();
        if diag_due.due(wall) {
            let training = match &brain {
                Brain::Train(lp) => Some(lp.learner().stats()),
                Brain::Run(_) => None,
            };
            let extra = distance.map(|d| ("distance_to_goal_m", format!("{d:.4}")));
            let d = policy::diagnostics(
                Time::now(),
                config.mode,
                config.robot,
                training,
                &inputs.guard().stats(),
                stopping.as_deref(),
                extra.as_slice(),
            );
            let _ = io.diagnostics.publish(d);
        }
        if let (Brain::Run(_), Some(d), true) = (&brain, distance, status_due.due(wall)) {
            let s = inputs.guard().stats();
            tracing::info!(
                "end effector {d:.3} m from the goal; commands: {} sent, {} zero",
                s.sent,
                s.stopped_total()
            );
        }
        match &brain {
            Brain::Run(_) => {
                // Ticks at the control rate: a late tick is made up by the next one; more than
                // a period behind, the missed ticks are skipped, not burst. act_on_state wakes
                // in between as soon as joint states arrive.
                let now_i = Instant::now();
                if tick {
                    next += period;
                    if now_i > next + period {
                        next = now_i;
                    }
                }
                let until = next.saturating_duration_since(now_i);
                match &mut state_wait {
                    Some((poll, events)) => {
                        if let Err(e) = poll.poll(events, Some(until.min(STATE_WAIT_MAX))) {
                            if e.kind() != std::io::ErrorKind::Interrupted {
                                tracing::warn!("waiting for joint states failed: {e}");
                                std::thread::sleep(until.min(STATE_WAIT_MAX));
                            }
                        }
                    }
                    None => std::thread::sleep(until),
                }
            }
            Brain::Train(_) if wait => std::thread::sleep(Duration::from_micros(200)),
            Brain::Train(_) => {}
        }
    }
    io.publish_command(&vec![0.0; dof]);
    if let Brain::Train(lp) = &mut brain {
        lp.learner_mut().finish()?;
        let s = lp.learner().stats();
        tracing::info!(
            "policy_node: training done: {} steps, {} updates, {} episodes, mean return of the \
             last {} episodes {:.3}, checkpoint in {}",
            s.env_steps,
            s.updates,
            s.episodes,
            online::RECENT_EPISODES,
            s.mean_return.unwrap_or(f64::NAN),
            config.run_dir().display()
        );
    }
    tracing::info!("policy_node: shutting down ({} commands sent)", inputs.guard().stats().sent);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use equigate_robot::model::RobotKind;

    /// The reset service wins when named; without one, `home_positions` gives homing after
    /// checks of its length and of the URDF limits, each failing with a message that names it.
    #[test]
    fn episode_reset_checks_the_home_pose() {
        let train = crate::train::TrainConfig { robot: RobotKind::Ur5e, ..Default::default() };
        let spec = EnvSpec::load(&train).unwrap();
        let om = ObservationModel::new(spec.model.clone(), spec.task.clone(), &[]).unwrap();
        let home = vec![0.8, -1.2, 1.1, -1.5, -1.57, 0.3];
        let config = PolicyNodeConfig::default();
        let reset = |c: &PolicyNodeConfig| episode_reset(c, &spec.model, &om);
        assert_eq!(reset(&config).unwrap(), EpisodeReset::Service);
        let real_arm = PolicyNodeConfig { reset_service: String::new(), ..config };
        assert_eq!(reset(&real_arm).unwrap(), EpisodeReset::None);
        let homed = PolicyNodeConfig { home_positions: home.clone(), ..real_arm.clone() };
        let EpisodeReset::Home(h) = reset(&homed).unwrap() else { panic!("homing expected") };
        assert_eq!((h.q, h.tolerance_rad, h.gain), (home.clone(), 0.02, 1.0));
        let short = PolicyNodeConfig { home_positions: home[..5].to_vec(), ..real_arm.clone() };
        assert!(format!("{:#}", reset(&short).unwrap_err()).contains("5 values for 6 joints"));
        let mut outside = home.clone();
        outside[2] = 4.0; // the elbow's limits are ±π
        let outside = PolicyNodeConfig { home_positions: outside, ..real_arm.clone() };
        let e = format!("{:#}", reset(&outside).unwrap_err());
        assert!(e.contains("elbow_joint = 4 is outside its limits"), "{e}");
        let both = PolicyNodeConfig { home_positions: home, ..PolicyNodeConfig::default() };
        assert!(format!("{:#}", both.validate().unwrap_err()).contains("reset_service"));
        let nan = PolicyNodeConfig { home_positions: vec![f64::NAN; 6], ..real_arm };
        assert!(format!("{:#}", nan.validate().unwrap_err()).contains("finite"));
    }
}
