//! The policy node's parameters and `/diagnostics` message, free of DDS so that every shipped
//! parameter file is tested (tests/configs.rs). `nodes/policy_node.rs` wires them to topics.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use equigate_robot::model::RobotKind;
use equigate_ros::msg::{DiagnosticArray, DiagnosticStatus, Header, KeyValue, Time};
use serde::{Deserialize, Serialize};

use crate::agent::AgentKind;
use crate::online::OnlineStats;
use crate::safety::{SafetyConfig, SafetyStats, StopKind};
use crate::train::TrainConfig;

/// What the policy node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyMode {
    /// Learn online from the topics, reset episodes through the simulator's service, write
    /// checkpoints into `run_dir`.
    Train,
    /// Load `run_dir`'s checkpoint and act deterministically (default).
    #[default]
    Run,
}

/// Where the networks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// burn's flex CPU backend (default).
    #[default]
    Cpu,
    /// burn-cuda; the binary must be built with `--features cuda`.
    Cuda,
}

/// The policy node's ROS parameters (`policy_node: ros__parameters:` in
/// config/policy_&lt;robot&gt;.yaml). Unknown parameters are rejected, naming the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyNodeConfig {
    /// `ur5e` or `fetch` (default: `ur5e`). In run mode it must match the run's robot.
    pub robot: RobotKind,
    /// `train` or `run` (default: `run`).
    pub mode: PolicyMode,
    /// Run directory: written in train mode (the layout of `equigate train`), read in run mode
    /// (default: `runs/policy_node`). Relative paths are taken from the working directory.
    pub run_dir: String,
    /// Train mode: continue the run in `run_dir` from its checkpoint (default: `false`).
    pub resume: bool,
    /// Train mode: a train config (`config/train/*.yaml`, [`TrainConfig`]) for the learner's
    /// hyperparameters; empty (default): [`TrainConfig::default`] for `robot`.
    pub train_file: String,
    /// Train mode: the reach task file; empty (default): the train file's task. Must be the
    /// simulator's task so that rewards match. Run mode uses the run's `task.yaml`.
    pub task_file: String,
    /// Train mode: the learner (`pe-sac`, `sac`, `equi-sac`, `rpp-sac`, `approx-sac`); unset
    /// (default): the train file's.
    pub agent: Option<AgentKind>,
    /// Train mode: environment steps to learn for, then a final checkpoint and exit; 0
    /// (default): the train file's `total_steps`.
    pub total_steps: usize,
    /// Train mode: checkpoint every this many steps; 0 (default): the train file's.
    pub checkpoint_every: usize,
    /// Train mode: seed of the networks, exploration and replay; unset (default): the train
    /// file's.
    pub seed: Option<u64>,
    /// `sensor_msgs/JointState` topic (default: `joint_states`).
    pub joint_states_topic: String,
    /// `geometry_msgs/PointStamped` goal topic, m in the base frame (default: `goal`).
    pub goal_topic: String,
    /// `std_msgs/Float64MultiArray` velocity command topic, rad/s in `joint_names` order
    /// (default: `forward_velocity_controller/commands`).
    pub commands_topic: String,
    /// `std_srvs/Trigger` service that starts a new episode (default: `sim_node/reset`, the sim
    /// node's `~/reset` in the same namespace); empty:
    /// no resets (episodes are then only counted, e.g. on a real arm).
    pub reset_service: String,
    /// Train mode without a reset service (a real arm): the home pose, joint positions in rad
    /// (m for a prismatic joint) in `joint_names` order, that the node drives the arm to between
    /// episodes with q̇ = `home_gain` · (q_home − q) through the safety layer; empty (default):
    /// no homing, an episode starts where the last one ended. Must lie inside the URDF limits.
    pub home_positions: Vec<f64>,
    /// Homing is done when every joint is within this of `home_positions`, rad (default:
    /// `0.02`).
    pub home_tolerance_rad: f64,
    /// Homing gain, 1/s: rad/s commanded per rad of error, before the safety layer's velocity
    /// limits (default: `1.0`).
    pub home_gain: f64,
    /// Homing gives up after this many wall seconds, warns and starts the episode from where
    /// the arm is (default: `30.0`).
    pub home_timeout_s: f64,
    /// `rosgraph_msgs/Clock` topic read with `use_sim_time` (default: `/clock`).
    pub clock_topic: String,
    /// Command order and the joints read from `/joint_states` (by name); empty (default): the
    /// URDF's order. Must name every actuated joint once.
    pub joint_names: Vec<String>,
    /// Command rate, Hz; 0 (default): one command per task control period (25 Hz for the
    /// shipped tasks). Run mode supports up to 500 Hz (the simulator's tick).
    pub control_rate_hz: f64,
    /// Run mode: compute and publish a command as soon as a joint state arrives (the command
    /// rate then follows the `joint_states` rate; the safety ramps still use `control_rate_hz`'s
    /// period), and from the timer only after a control period without a command, so that a
    /// stalled stream still gets zero velocity (default: `false`: one command per control period
    /// from the latest state, a fixed rate that does not depend on the publisher; a state then
    /// waits up to one period before it shapes a command).
    pub act_on_state: bool,
    /// `cpu` (default) or `cuda`.
    pub device: DeviceKind,
    /// The safety layer: state age limit (`safety.max_state_age_s`, default 0.1 s: the stale
    /// limit), slowdown zones, warning period.
    pub safety: SafetyConfig,
    /// Time from `/clock` instead of the wall clock for the safety layer's staleness
    /// (default: `false`; `true` with a lockstep simulator, whose time stands still while the
    /// learner updates).
    pub use_sim_time: bool,
    /// Train mode: the simulator runs in lockstep (one command → one control period → the next
    /// joint state, recognised by its later stamp) (default: `true`); `false`: one transition
    /// per control period of wall time.
    pub lockstep: bool,
    /// Lockstep: wall seconds to wait for the state after a command before giving up on that
    /// transition and acting again (default: `2.0`).
    pub lockstep_timeout_s: f64,
    /// `/diagnostics` rate, Hz of wall time (default: `1`).
    pub diagnostics_rate_hz: f64,
}

impl Default for PolicyNodeConfig {
    fn default() -> Self {
        Self {
            robot: RobotKind::Ur5e,
            mode: PolicyMode::Run,
            run_dir: "runs/policy_node".into(),
            resume: false,
            train_file: String::new(),
            task_file: String::new(),
            agent: None,
            total_steps: 0,
            checkpoint_every: 0,
            seed: None,
            joint_states_topic: "joint_states".into(),
            goal_topic: "goal".into(),
            commands_topic: "forward_velocity_controller/commands".into(),
            reset_service: "sim_node/reset".into(),
            home_positions: Vec::new(),
            home_tolerance_rad: 0.02,
            home_gain: 1.0,
            home_timeout_s: 30.0,
            clock_topic: "/clock".into(),
            joint_names: Vec::new(),
            control_rate_hz: 0.0,
            act_on_state: false,
            device: DeviceKind::Cpu,
            safety: SafetyConfig::default(),
            use_sim_time: false,
            lockstep: true,
            lockstep_timeout_s: 2.0,
            diagnostics_rate_hz: 1.0,
        }
    }
}

impl PolicyNodeConfig {
    /// Checks ranges.
    ///
    /// # Errors
    /// A negative or non-finite rate, a rate above 500 Hz, an empty `run_dir` or topic name.
    pub fn validate(&self) -> anyhow::Result<()> {
        let rate = self.control_rate_hz;
        if !(rate.is_finite() && (0.0..=500.0).contains(&rate)) {
            bail!("parameter `control_rate_hz` must be in [0, 500] (0: the task's), got {rate}");
        }
        for (name, v) in [
            ("lockstep_timeout_s", self.lockstep_timeout_s),
            ("diagnostics_rate_hz", self.diagnostics_rate_hz),
            ("home_tolerance_rad", self.home_tolerance_rad),
            ("home_gain", self.home_gain),
            ("home_timeout_s", self.home_timeout_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                bail!("parameter `{name}` must be > 0, got {v}");
            }
        }
        for (name, v) in [
            ("run_dir", &self.run_dir),
            ("joint_states_topic", &self.joint_states_topic),
            ("goal_topic", &self.goal_topic),
            ("commands_topic", &self.commands_topic),
            ("clock_topic", &self.clock_topic),
        ] {
            if v.is_empty() {
                bail!("parameter `{name}` must not be empty");
            }
        }
        if let Some(v) = self.home_positions.iter().find(|v| !v.is_finite()) {
            bail!("parameter `home_positions` must be finite, got {v}");
        }
        if !self.home_positions.is_empty() && !self.reset_service.is_empty() {
            bail!(
                "parameters `home_positions` and `reset_service` both start episodes: set \
                 reset_service:=\"\" to drive a real arm home, or leave home_positions empty"
            );
        }
        self.safety.validate().context("parameter `safety`")?;
        Ok(())
    }

    /// The run directory.
    pub fn run_dir(&self) -> PathBuf {
        PathBuf::from(&self.run_dir)
    }

    /// Train mode: the train config (`train_file` or the defaults) with this node's overrides
    /// (robot, task, agent, total_steps, checkpoint_every, seed) applied and validated. One
    /// environment: `num_envs` is 1.
    ///
    /// # Errors
    /// An unreadable or invalid train file, or invalid overrides.
    pub fn train_config(&self) -> anyhow::Result<TrainConfig> {
        let mut config = if self.train_file.is_empty() {
            TrainConfig { robot: self.robot, ..TrainConfig::default() }
        } else {
            TrainConfig::load(&crate::resources::resolve(&self.train_file))?
        };
        if self.train_file.is_empty() && self.robot == RobotKind::Fetch {
            config.task = Some("config/tasks/fetch_reach.yaml".into());
        }
        if config.robot != self.robot {
            bail!(
                "parameter `robot` is {:?} but train file {} is for {:?}",
                self.robot,
                self.train_file,
                config.robot
            );
        }
        if !self.task_file.is_empty() {
            config.task = Some(self.task_file.clone());
        }
        if let Some(agent) = self.agent {
            config.agent = agent;
        }
        if self.total_steps > 0 {
            config.total_steps = self.total_steps;
        }
        if self.checkpoint_every > 0 {
            config.checkpoint_every = self.checkpoint_every;
        }
        if let Some(seed) = self.seed {
            config.seed = seed;
        }
        config.num_envs = 1;
        config.validate().context("the policy node's train config")?;
        Ok(config)
    }

    /// Seconds between two commands: `1 / control_rate_hz`, or the task's control period.
    pub fn command_period_s(&self, task_control_period_s: f64) -> f64 {
        if self.control_rate_hz > 0.0 {
            1.0 / self.control_rate_hz
        } else {
            task_control_period_s
        }
    }
}

/// `/diagnostics` of the policy node: one status with the mode, the training metrics (return,
/// success rate, λ fraction, losses, updates/s) when training, and the safety counters. WARN
/// while commands are being replaced by zero velocity (`stopping`).
pub fn diagnostics(
    stamp: Time,
    mode: PolicyMode,
    robot: RobotKind,
    training: Option<&OnlineStats>,
    safety: &SafetyStats,
    stopping: Option<&str>,
    extra: &[(&str, String)],
) -> DiagnosticArray {
    let kv = |k: &str, v: String| KeyValue { key: k.into(), value: v };
    let opt = |v: Option<f64>| v.map_or_else(|| "nan".to_owned(), |x| format!("{x:.4}"));
    let mut values = vec![kv("mode", format!("{mode:?}").to_lowercase())];
    if let Some(s) = training {
        let u = s.last_update;
        values.extend([
            kv("env_steps", s.env_steps.to_string()),
            kv("updates", s.updates.to_string()),
            kv("episodes", s.episodes.to_string()),
            kv("return", opt(s.last_return)),
            kv("mean_return", opt(s.mean_return)),
            kv("success_rate", opt(s.success_rate)),
            kv("lambda_fraction", opt(u.and_then(|m| m.lambda_fraction).map(f64::from))),
            kv("q_loss", opt(u.map(|m| f64::from(m.q_loss)))),
            kv("actor_loss", opt(u.map(|m| f64::from(m.actor_loss)))),
            kv("alpha", opt(u.map(|m| f64::from(m.alpha)))),
            kv("updates_per_s", format!("{:.2}", s.updates_per_s)),
            kv("replay_size", s.buffer_len.to_string()),
            kv("random_phase", s.random_phase.to_string()),
        ]);
    }
    values.push(kv("commands_sent", safety.sent.to_string()));
    values.push(kv("commands_velocity_clamped", safety.velocity_clamped.to_string()));
    values.push(kv("commands_slowed", safety.slowed.to_string()));
    for kind in StopKind::ALL {
        values.push(kv(&format!("zero_commands_{}", kind.as_str()), {
            safety.stopped_by(kind).to_string()
        }));
    }
    values.push(kv("bad_joint_states", safety.bad_states.to_string()));
    values.extend(extra.iter().map(|(k, v)| kv(k, v.clone())));
    let (level, message) = match stopping {
        Some(why) => (DiagnosticStatus::WARN, format!("sending zero velocity: {why}")),
        None => (DiagnosticStatus::OK, "commanding".to_owned()),
    };
    DiagnosticArray {
        header: Header::new(stamp, ""),
        status: vec![DiagnosticStatus {
            level,
            name: "equigate: policy_node".into(),
            message,
            hardware_id: format!("{robot:?}").to_lowercase(),
            values,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn train_config_applies_the_node_overrides() {
        let node = PolicyNodeConfig {
            mode: PolicyMode::Train,
            train_file: "config/train/ur5e_reach.yaml".into(),
            agent: Some(AgentKind::Sac),
            total_steps: 1234,
            checkpoint_every: 100,
            seed: Some(7),
            ..Default::default()
        };
        let c = node.train_config().unwrap();
        assert_eq!(
            (c.agent, c.total_steps, c.checkpoint_every, c.seed),
            (AgentKind::Sac, 1234, 100, 7)
        );
        assert_eq!(c.num_envs, 1);
        let fetch = PolicyNodeConfig { robot: RobotKind::Fetch, ..node };
        assert!(format!("{:#}", fetch.train_config().unwrap_err()).contains("robot"));
        let bad = PolicyNodeConfig { control_rate_hz: 1000.0, ..Default::default() };
        assert!(format!("{:#}", bad.validate().unwrap_err()).contains("control_rate_hz"));
    }

    #[test]
    fn diagnostics_warn_while_stopping() {
        let d = diagnostics(
            Time::default(),
            PolicyMode::Run,
            RobotKind::Ur5e,
            None,
            &SafetyStats::default(),
            Some("joint state is stale"),
            &[],
        );
        assert_eq!(d.status[0].level, DiagnosticStatus::WARN);
        assert!(d.status[0].values.iter().any(|kv| kv.key == "zero_commands_stale_state"));
    }
}
