//! The policy node's two loops without DDS, so that they are tested against the simulator in
//! process (`nodes/policy_node.rs` feeds them messages and carries out what they return).
//!
//! - [`Inputs`]: the latest joint state (through the [`SafetyGuard`]) and goal.
//! - [`RunPolicy`]: run mode, deterministic actions of a loaded run.
//! - [`TrainLoop`]: train mode, one [`Turn`] per call: start an episode ([`EpisodeReset`]: ask
//!   the simulator's reset service, or drive a real arm to its home pose), wait for the first
//!   state and goal of the episode, command, wait for the state after the command (in lockstep
//!   the one with a later stamp), record the transition ([`OnlineLearner::record`]), and again.
//!
//! Time: `now` is the safety layer's clock (see [`crate::safety`]); timeouts are wall time.

use std::time::{Duration, Instant};

use burn::tensor::backend::AutodiffBackend;
use equigate_learn::sac::ActMode;
use equigate_robot::task::State;
use equigate_ros::msg::{JointState, PointStamped};
use nalgebra::Vector3;

use crate::agent::Agent;
use crate::observe::ObservationModel;
use crate::online::{OnlineLearner, OnlineStep, RECENT_EPISODES};
use crate::safety::{SafetyGuard, Verdict, WarnThrottle};
use crate::train::Scaling;

/// A reset request without an answer is sent again after this long.
pub const RESET_RETRY: Duration = Duration::from_secs(2);

/// What the topics said: the safety guard's latest joint state and the latest goal.
#[derive(Debug, Clone)]
pub struct Inputs {
    guard: SafetyGuard,
    goal: Option<Vector3<f64>>,
    /// Valid joint states received so far.
    states_ok: u64,
    /// Finite goals received so far.
    goals: u64,
    /// Header stamp of the latest valid joint state, s.
    stamp: f64,
    warn: WarnThrottle<&'static str>,
}

impl Inputs {
    /// Inputs checked by `guard`; warnings of this module at most once per `warn_period_s`.
    pub fn new(guard: SafetyGuard, warn_period_s: f64) -> Self {
        Self {
            guard,
            goal: None,
            states_ok: 0,
            goals: 0,
            stamp: f64::NEG_INFINITY,
            warn: WarnThrottle::new(warn_period_s),
        }
    }

    /// A joint state received at `received_s` (the guard's clock). Returns whether it was valid.
    pub fn on_joint_state(&mut self, msg: &JointState, received_s: f64) -> bool {
        let ok = self.guard.on_joint_state(msg, received_s).is_ok();
        if ok {
            self.states_ok += 1;
            self.stamp = msg.header.stamp.as_secs_f64();
        }
        ok
    }

    /// A goal (m, base frame); a non-finite one is ignored with a throttled warning.
    pub fn on_goal(&mut self, msg: &PointStamped, now: f64) {
        let p = Vector3::new(msg.point.x, msg.point.y, msg.point.z);
        if p.iter().all(|x| x.is_finite()) {
            self.goal = Some(p);
            self.goals += 1;
        } else {
            self.warn("goal", now, &format!("ignoring a goal that is not finite: {p:?}"));
        }
    }

    /// The safety guard.
    pub fn guard(&self) -> &SafetyGuard {
        &self.guard
    }

    /// The latest goal.
    pub fn goal(&self) -> Option<Vector3<f64>> {
        self.goal
    }

    /// The task state of the latest joint state and goal, if both are usable at `now`.
    pub fn state(&self, om: &ObservationModel, now: f64) -> Option<State> {
        self.guard.state_ok(now).ok()?;
        Some(om.state(self.guard.q(), self.guard.qdot(), self.goal?))
    }

    /// The command to publish for `desired` (topic order) at `now`, after the safety guard, with
    /// its throttled warning logged. Returns it and why it is zero, if it was stopped.
    pub fn decide(&mut self, desired: &[f64], now: f64) -> (Vec<f64>, Option<String>) {
        let (cmd, verdict) = self.guard.decide(desired, now);
        if let Some(w) = verdict.warning() {
            tracing::warn!("{w}");
        }
        let stopping = match &verdict {
            Verdict::Stopped { reason, .. } => Some(reason.to_string()),
            Verdict::Sent(_) => None,
        };
        (cmd.to_vec(), stopping)
    }

    /// Logs `what` at most once per warning period per `key`.
    pub fn warn(&mut self, key: &'static str, now: f64, what: &str) {
        if let Some(held) = self.warn.check(key, now) {
            if held > 0 {
                tracing::warn!("{what} ({held} more since the last warning)");
            } else {
                tracing::warn!("{what}");
            }
        }
    }
}

/// Run mode: a loaded agent acting deterministically.
pub struct RunPolicy<B: AutodiffBackend> {
    agent: Box<dyn Agent<B>>,
    scaling: Scaling,
    om: ObservationModel,
}

impl<B: AutodiffBackend> RunPolicy<B> {
    /// `agent` with the scalings and the observation model of its run.
    pub fn new(agent: Box<dyn Agent<B>>, scaling: Scaling, om: ObservationModel) -> Self {
        Self { agent, scaling, om }
    }

    /// The observation model.
    pub fn model(&self) -> &ObservationModel {
        &self.om
    }

    /// The desired joint velocities (rad/s, topic order) at `now` and the distance to the goal
    /// (m): the policy's deterministic action when the state and goal are usable, else zero
    /// velocity (with a throttled warning when only the goal is missing; the safety guard warns
    /// about the state).
    pub fn desired(&mut self, inputs: &mut Inputs, now: f64) -> (Vec<f64>, Option<f64>) {
        let zeros = vec![0.0; self.om.dof()];
        let Some(state) = inputs.state(&self.om, now) else {
            if inputs.goal.is_none() && inputs.guard.state_ok(now).is_ok() {
                inputs.warn("goal", now, "no goal received yet: holding still");
            }
            return (zeros, None);
        };
        match self.om.observe(&state) {
            Ok(obs) => {
                let distance = self.om.distance(&state).ok();
                let a = self.agent.act(&self.scaling.obs.normalize(&obs), ActMode::Deterministic);
                (self.om.to_topic_order(&self.scaling.act.to_velocity(&a)), distance)
            }
            Err(e) => {
                inputs.warn("observe", now, &format!("{e:#}"));
                (zeros, None)
            }
        }
    }
}

/// What the node must do after a [`TrainLoop::tick`].
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    /// Nothing to send: poll the topics again (after a short sleep).
    Wait,
    /// Call the reset service (`first`: the first request of this reset; forget the ids of
    /// earlier ones), then report its answer with [`TrainLoop::reset_done`].
    SendReset {
        /// A new reset, not a retry.
        first: bool,
    },
    /// Publish this command (rad/s, topic order; already through the safety guard).
    Publish(Vec<f64>),
    /// Work was done (a transition recorded); poll again at once.
    Busy,
    /// The training budget is spent.
    Done,
}

/// How train mode starts a new episode.
#[derive(Debug, Clone, PartialEq)]
pub enum EpisodeReset {
    /// No reset: episodes run on from where the last one ended and are only counted.
    None,
    /// Call the reset service (the simulator's `~/reset`, [`Turn::SendReset`]).
    Service,
    /// Drive the arm to a home pose (a real arm, which nothing else resets).
    Home(Homing),
}

/// Driving the arm to a home pose between episodes: q̇ = gain · (q_home − q) per joint, sent
/// through the safety layer (so its velocity limits, position slowdown and staleness rules
/// apply), one command per control period, until every joint is within `tolerance_rad`.
#[derive(Debug, Clone, PartialEq)]
pub struct Homing {
    /// Home joint positions, rad (m for a prismatic joint), configured (topic) order.
    pub q: Vec<f64>,
    /// Done when every |q_home − q| is below this, rad.
    pub tolerance_rad: f64,
    /// Proportional gain, 1/s (rad/s commanded per rad of error).
    pub gain: f64,
    /// After this long (wall time) without reaching home: warn, stop, and start the episode
    /// from where the arm is.
    pub timeout: Duration,
}

/// The homing command being waited for: when it was sent, and the inputs' counters then.
struct Sent {
    at: Instant,
    states_ok: u64,
    stamp: f64,
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
    /// Waiting for the reset service (`None`: not asked yet; else when it was last asked).
    Reset(Option<Instant>),
    /// Driving to the home pose since `since`; `sent`: the last homing command.
    Home { since: Instant, sent: Option<Sent> },
    /// Waiting for a joint state and a goal newer than these counts.
    First { states_ok: u64, goals: u64, since: Instant },
    /// Acting from this state.
    Act(State),
    /// Waiting for the state after the command.
    Next(Pending),
}

/// Train mode's loop (module docs).
pub struct TrainLoop<B: AutodiffBackend> {
    learner: OnlineLearner<B>,
    om: ObservationModel,
    scaling: Scaling,
    phase: Phase,
    episode_steps: usize,
    lockstep: bool,
    reset: EpisodeReset,
    period: Duration,
    timeout: Duration,
    /// Why the last command was zero velocity, if it was.
    stopping: Option<String>,
}

impl<B: AutodiffBackend> TrainLoop<B> {
    /// A loop training `learner` from states read through `om`. `lockstep`: the state after a
    /// command is the first with a later stamp; else the latest one a `period_s` (wall) after
    /// the command. `reset`: how an episode starts. A command whose state has not come after
    /// `timeout_s` (wall) is given up and the loop acts again.
    pub fn new(
        learner: OnlineLearner<B>,
        om: ObservationModel,
        lockstep: bool,
        reset: EpisodeReset,
        period_s: f64,
        timeout_s: f64,
    ) -> Self {
        Self {
            scaling: learner.scaling().clone(),
            learner,
            om,
            phase: Phase::Reset(None),
            episode_steps: 0,
            lockstep,
            reset,
            period: Duration::from_secs_f64(period_s),
            timeout: Duration::from_secs_f64(timeout_s),
            stopping: None,
        }
    }

    /// The learner.
    pub fn learner(&self) -> &OnlineLearner<B> {
        &self.learner
    }

    /// The learner, to finish it.
    pub fn learner_mut(&mut self) -> &mut OnlineLearner<B> {
        &mut self.learner
    }

    /// The observation model.
    pub fn model(&self) -> &ObservationModel {
        &self.om
    }

    /// Why the last command was zero velocity, if it was.
    pub fn stopping(&self) -> Option<&str> {
        self.stopping.as_deref()
    }

    /// The reset service answered (success) one of this reset's requests: the episode starts
    /// with the next joint state and goal.
    pub fn reset_done(&mut self, inputs: &mut Inputs) {
        if matches!(self.phase, Phase::Reset(_)) {
            inputs.guard.clear_state();
            self.phase = Phase::First {
                states_ok: inputs.states_ok,
                goals: inputs.goals,
                since: Instant::now(),
            };
        }
    }

    /// One turn at `now` (the safety clock) with the inputs received so far.
    ///
    /// # Errors
    /// Recording failed (I/O writing metrics or checkpoints) or a state the model rejects.
    pub fn tick(&mut self, inputs: &mut Inputs, now: f64) -> anyhow::Result<Turn> {
        if self.learner.done() {
            return Ok(Turn::Done);
        }
        let (phase, turn) = match std::mem::replace(&mut self.phase, Phase::Reset(None)) {
            Phase::Reset(_) if self.reset == EpisodeReset::None => {
                (self.first(inputs, false), Turn::Wait)
            }
            Phase::Reset(_) if matches!(self.reset, EpisodeReset::Home(_)) => {
                (Phase::Home { since: Instant::now(), sent: None }, Turn::Busy)
            }
            Phase::Home { since, sent } => self.home(since, sent, inputs, now),
            Phase::Reset(_) if inputs.states_ok == 0 => (Phase::Reset(None), Turn::Wait), // no sim
            Phase::Reset(None) => {
                (Phase::Reset(Some(Instant::now())), Turn::SendReset { first: true })
            }
            Phase::Reset(Some(t)) if t.elapsed() > RESET_RETRY => {
                inputs.warn("reset", now, "no answer from the reset service yet; asking again");
                (Phase::Reset(Some(Instant::now())), Turn::SendReset { first: false })
            }
            p @ Phase::Reset(_) => (p, Turn::Wait),
            Phase::First { states_ok, goals, since } => match inputs.state(&self.om, now) {
                Some(s) if inputs.states_ok > states_ok && inputs.goals > goals => {
                    self.episode_steps = 0;
                    self.learner.abandon_episode();
                    (Phase::Act(s), Turn::Busy)
                }
                _ if since.elapsed() > 5 * self.timeout => {
                    inputs.warn("first", now, "no joint state and goal after the reset: again");
                    (Phase::Reset(None), Turn::Wait)
                }
                _ => (Phase::First { states_ok, goals, since }, Turn::Wait),
            },
            Phase::Act(before) => {
                let obs = self.om.observe(&before)?;
                let action = self.learner.act(&obs);
                let desired = self.om.to_topic_order(&self.scaling.act.to_velocity(&action));
                let (sent, stopping) = inputs.decide(&desired, now);
                self.stopping = stopping;
                let command = self.om.to_model_order(&sent);
                let pending = Pending {
                    before,
                    obs,
                    action: self.scaling.act.to_action(&command),
                    command,
                    stamp: inputs.stamp,
                    states_ok: inputs.states_ok,
                    sent: Instant::now(),
                };
                (Phase::Next(pending), Turn::Publish(sent))
            }
            Phase::Next(p) => self.next(p, inputs, now)?,
        };
        self.phase = phase;
        Ok(turn)
    }

    /// One turn of homing ([`Homing`]): wait for the state after the last homing command, then
    /// either the next command or, at home (or after the timeout), a stop and the episode's
    /// first state.
    fn home(
        &mut self,
        since: Instant,
        sent: Option<Sent>,
        inputs: &mut Inputs,
        now: f64,
    ) -> (Phase, Turn) {
        let EpisodeReset::Home(home) = &self.reset else {
            unreachable!("homing only with EpisodeReset::Home")
        };
        if let Some(s) = &sent {
            if !self.arrived(inputs, s.states_ok, s.stamp, s.at) && s.at.elapsed() <= self.timeout {
                return (Phase::Home { since, sent }, Turn::Wait);
            }
        }
        let usable = inputs.guard.state_ok(now).is_ok();
        let error: Vec<f64> = home.q.iter().zip(inputs.guard.q()).map(|(h, q)| h - q).collect();
        let worst = error.iter().fold(0.0f64, |m, e| m.max(e.abs()));
        let at_home = usable && worst < home.tolerance_rad;
        if at_home || since.elapsed() > home.timeout {
            if !at_home {
                let why = format!(
                    "home pose not reached in {:.0} s (largest joint error {worst:.3} rad):                      starting the episode from here",
                    home.timeout.as_secs_f64()
                );
                inputs.warn("home", now, &why);
            }
            let (stop, _) = inputs.decide(&vec![0.0; error.len()], now);
            return (self.first(inputs, false), Turn::Publish(stop));
        }
        let desired: Vec<f64> = if usable {
            error.iter().map(|e| home.gain * e).collect()
        } else {
            vec![0.0; error.len()] // the guard says why it stops
        };
        let (command, stopping) = inputs.decide(&desired, now);
        self.stopping = stopping;
        let sent = Sent { at: Instant::now(), states_ok: inputs.states_ok, stamp: inputs.stamp };
        (Phase::Home { since, sent: Some(sent) }, Turn::Publish(command))
    }

    /// Whether the state after a command sent at `sent` (when the inputs had `states_ok` valid
    /// states, the latest stamped `stamp`) has come: in lockstep the first with a later stamp,
    /// else any new one a control period later.
    fn arrived(&self, inputs: &Inputs, states_ok: u64, stamp: f64, sent: Instant) -> bool {
        inputs.states_ok > states_ok
            && if self.lockstep { inputs.stamp > stamp } else { sent.elapsed() >= self.period }
    }

    /// After a reset (or without resets): wait for the episode's first state and goal.
    fn first(&self, inputs: &Inputs, need_goal: bool) -> Phase {
        let goals = if need_goal { inputs.goals } else { 0 };
        Phase::First { states_ok: inputs.states_ok, goals, since: Instant::now() }
    }

    fn next(&mut self, p: Pending, inputs: &mut Inputs, now: f64) -> anyhow::Result<(Phase, Turn)> {
        let arrived = self.arrived(inputs, p.states_ok, p.stamp, p.sent);
        let state = inputs.state(&self.om, now);
        let after = match state {
            Some(after) if arrived => after,
            _ if p.sent.elapsed() > self.timeout => {
                let why = format!(
                    "no new joint state {:.1} s after the command: dropping that transition",
                    self.timeout.as_secs_f64()
                );
                inputs.warn("lockstep", now, &why);
                let phase = match inputs.state(&self.om, now) {
                    Some(s) => Phase::Act(s),
                    None => Phase::Reset(None),
                };
                return Ok((phase, Turn::Wait));
            }
            _ => return Ok((Phase::Next(p), Turn::Wait)),
        };
        if after.goal != p.before.goal {
            // A new goal during the step (a late reset or goal message): not a transition.
            self.learner.abandon_episode();
            self.episode_steps = 0;
            return Ok((Phase::Act(after), Turn::Busy));
        }
        self.episode_steps += 1;
        let o = self.om.outcome(&p.before, &p.command, &after, self.episode_steps)?;
        let next_obs = self.om.observe(&after)?;
        let step = OnlineStep {
            obs: &p.obs,
            action: &p.action,
            reward: o.reward,
            next_obs: &next_obs,
            terminated: o.terminated,
            truncated: o.truncated,
            in_breaking_region: o.in_breaking_region,
        };
        if let Some(r) = self.learner.record(&step)? {
            self.log_episode(r, o.terminated, o.distance);
        }
        let phase = if !(o.terminated || o.truncated) {
            Phase::Act(after)
        } else if self.reset != EpisodeReset::None {
            Phase::Reset(None)
        } else {
            self.episode_steps = 0;
            Phase::Act(after)
        };
        Ok((phase, Turn::Busy))
    }

    fn log_episode(&self, ret: f64, success: bool, distance: f64) {
        let s = self.learner.stats();
        let line = format!(
            "episode {}: return {ret:.3}, {}, final distance {distance:.3} m; last {} episodes: \
             mean return {:.3}, success {:.2}; {} steps, {} updates",
            s.episodes,
            if success { "success" } else { "timeout" },
            RECENT_EPISODES,
            s.mean_return.unwrap_or(f64::NAN),
            s.success_rate.unwrap_or(f64::NAN),
            s.env_steps,
            s.updates
        );
        if s.episodes.is_multiple_of(10) {
            tracing::info!("{line}");
        } else {
            tracing::debug!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::AgentKind;
    use crate::safety::SafetyConfig;
    use crate::sim_server::{SimMode, SimNodeConfig, SimServer};
    use crate::train::{EnvSpec, LearnerConfig, TrainConfig};
    use burn::backend::{Autodiff, Flex};
    use equigate_ros::msg::Time;

    type B = Autodiff<Flex>;

    /// The train loop against the lockstep simulator in process, with the message flow of the
    /// node: heartbeat states with an unchanged stamp must not close a transition, every
    /// transition follows one command, an episode ends in a reset, and a goal that changes
    /// during a step drops that transition.
    #[test]
    fn train_loop_steps_the_lockstep_simulator_one_command_per_transition() {
        let (mut lp, mut sim, mut inputs, dir) =
            loop_and_sim("loop", 260, 200, EpisodeReset::Service);
        let (mut commands, mut resets, mut turns) = (0usize, 0usize, 0usize);
        deliver(&sim, &mut inputs);
        loop {
            turns += 1;
            assert!(turns < 100_000, "the loop stalls");
            match lp.tick(&mut inputs, sim.sim_time()).unwrap() {
                Turn::Done => break,
                Turn::SendReset { first } => {
                    assert!(first, "the simulator answers at once");
                    sim.reset();
                    resets += 1;
                    lp.reset_done(&mut inputs);
                    deliver(&sim, &mut inputs);
                }
                Turn::Publish(cmd) => {
                    commands += 1;
                    deliver(&sim, &mut inputs); // a heartbeat: same stamp, not the next state
                    assert!(matches!(lp.tick(&mut inputs, sim.sim_time()).unwrap(), Turn::Wait));
                    sim.step_lockstep(&cmd).unwrap();
                    deliver(&sim, &mut inputs);
                    if commands == 50 {
                        // A goal that changes during a step: this transition and the next (back
                        // to the simulator's goal) are dropped.
                        let mut fake = sim.goal(Time::default());
                        fake.point.x += 0.1;
                        inputs.on_goal(&fake, sim.sim_time());
                    }
                }
                Turn::Wait | Turn::Busy => {}
            }
        }
        let s = lp.learner().stats().clone();
        assert_eq!(s.env_steps, 260);
        assert_eq!(commands, 262, "one command per transition, two dropped for the goal change");
        assert_eq!(s.updates, 60);
        // 100-step episodes without success in 260 random-ish steps: resets at 0, 100, 200.
        assert_eq!(s.episodes + 1, resets, "{s:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A SAC train loop (16×16, batch 16, updates after `learning_starts` steps) on the UR5e
    /// reach (100-step episodes) against the lockstep simulator, episodes started by `reset`.
    fn loop_and_sim(
        name: &str,
        total_steps: usize,
        learning_starts: usize,
        reset: EpisodeReset,
    ) -> (TrainLoop<B>, SimServer, Inputs, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("equigate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let task_file = "config/tasks/ur5e_reach.yaml";
        let config = TrainConfig {
            task: Some(task_file.into()),
            agent: AgentKind::Sac,
            total_steps,
            num_envs: 1,
            learner: LearnerConfig {
                batch_size: 16,
                learning_starts,
                hidden: vec![16, 16],
                ..LearnerConfig::default()
            },
            ..TrainConfig::default()
        };
        let spec = EnvSpec::load(&config).unwrap();
        let learner =
            OnlineLearner::<B>::create(config, &spec, &dir, false, &Default::default()).unwrap();
        let sim = SimServer::new(SimNodeConfig {
            mode: SimMode::Lockstep,
            task_file: task_file.into(),
            ..Default::default()
        })
        .unwrap();
        let joints = sim.joint_names().to_vec();
        let om = ObservationModel::new(spec.model.clone(), spec.task.clone(), &joints).unwrap();
        let period = spec.task.control_period_s;
        let guard =
            SafetyGuard::new(&spec.model, &joints, &SafetyConfig::default(), period).unwrap();
        let lp = TrainLoop::new(learner, om, true, reset, period, 2.0);
        (lp, sim, Inputs::new(guard, 1.0), dir)
    }

    fn deliver(sim: &SimServer, inputs: &mut Inputs) {
        let t = sim.sim_time();
        let stamp = Time::from_nanos((t * 1e9).round() as i64);
        inputs.on_joint_state(&sim.joint_state(stamp), t);
        inputs.on_goal(&sim.goal(stamp), t);
    }

    /// Runs the loop to its end, stepping the simulator with every published command; returns
    /// the commands with the joint positions (topic order) at which each was sent.
    fn drive(
        lp: &mut TrainLoop<B>,
        sim: &mut SimServer,
        inputs: &mut Inputs,
    ) -> Vec<(Vec<f64>, Vec<f64>)> {
        let mut sent = Vec::new();
        deliver(sim, inputs);
        for _ in 0..200_000 {
            match lp.tick(inputs, sim.sim_time()).unwrap() {
                Turn::Done => return sent,
                Turn::SendReset { .. } => panic!("no reset service here"),
                Turn::Publish(cmd) => {
                    sent.push((cmd.clone(), inputs.guard().q().to_vec()));
                    sim.step_lockstep(&cmd).unwrap();
                    deliver(sim, inputs);
                }
                Turn::Wait | Turn::Busy => {}
            }
        }
        panic!("the loop stalls");
    }

    /// Without a reset service, a real arm is driven to its home pose before every episode:
    /// each episode's first command follows a stop within the tolerance of home, the homing
    /// commands are not transitions, and nothing asks for a reset.
    #[test]
    fn train_loop_drives_a_real_arm_home_before_each_episode() {
        let home = vec![0.8, -1.2, 1.1, -1.5, -1.57, 0.3];
        let homing = Homing {
            q: home.clone(),
            tolerance_rad: 0.02,
            gain: 2.0,
            timeout: Duration::from_secs(600),
        };
        let (mut lp, mut sim, mut inputs, dir) =
            loop_and_sim("home", 230, 230, EpisodeReset::Home(homing));
        let sent = drive(&mut lp, &mut sim, &mut inputs);
        let s = lp.learner().stats().clone();
        assert_eq!(s.env_steps, 230);
        let near_home = |q: &[f64]| q.iter().zip(&home).all(|(q, h)| (q - h).abs() < 0.02);
        // A stop at home starts each of the three episodes (steps 0, 100, 200).
        let stops: Vec<usize> = (0..sent.len())
            .filter(|&i| sent[i].0.iter().all(|v| *v == 0.0) && near_home(&sent[i].1))
            .collect();
        assert_eq!(stops.len(), 3, "one stop at home per episode");
        let homing_commands = sent.len() - 230;
        assert!(homing_commands > 3 * 10, "the arm was driven, not teleported: {homing_commands}");
        // Homing moves every joint towards home: the first homing command's signs.
        let (cmd, q) = &sent[0];
        for ((v, q), h) in cmd.iter().zip(q).zip(&home) {
            assert!(v * (h - q) >= 0.0, "{cmd:?} from {q:?} to {home:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A home pose not reached in time: a warning, a stop, and the episode starts from there.
    #[test]
    fn homing_gives_up_after_its_timeout_with_a_stop() {
        let homing = Homing {
            q: vec![0.8, -1.2, 1.1, -1.5, -1.57, 0.3],
            tolerance_rad: 0.02,
            gain: 2.0,
            timeout: Duration::ZERO,
        };
        let (mut lp, mut sim, mut inputs, dir) =
            loop_and_sim("home-timeout", 20, 20, EpisodeReset::Home(homing));
        let sent = drive(&mut lp, &mut sim, &mut inputs);
        assert_eq!(lp.learner().stats().env_steps, 20);
        assert_eq!(sent.len(), 21, "one stop, then one command per transition");
        assert!(sent[0].0.iter().all(|v| *v == 0.0));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
