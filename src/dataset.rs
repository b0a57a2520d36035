//! From recorded messages to offline transitions (s, a, r, s', terminated, truncated).
//!
//! A bag holds what the graph said, not transitions: `/joint_states`
//! (sensor_msgs/msg/JointState), `/goal` (geometry_msgs/msg/PointStamped) and the velocity
//! commands (std_msgs/msg/Float64MultiArray on `/forward_velocity_controller/commands`). The
//! [`DatasetBuilder`] replays them in log-time order through the same pieces the detector node
//! uses live:
//! - joint states are matched by name ([`crate::safety::read_joint_state`]); a bad one (NaN,
//!   missing joint, wrong lengths) is skipped and counted, never guessed;
//! - a state is paired with the command that drove the arm since the previous state
//!   ([`TransitionAssembler`]: a lockstep command, or a held one at most `hold_s` old);
//! - observation, reward, success and truncation come from the task's model
//!   ([`ObservationModel::transition`]): the reward is recomputed from forward kinematics and a
//!   replay of the command in the kinematic simulator, so a bag from a real arm gets the same
//!   reward rule as the simulator;
//! - episodes are delimited by goal changes: the simulator's reset service (and a real arm's
//!   homing) always publishes a new goal, and the state pair across a goal change is dropped.
//!
//! [`DatasetSummary`] says what was aligned, what was dropped and why.

use std::collections::BTreeMap;

use anyhow::Context as _;
use equigate_ros::msg::{from_cdr, Float64MultiArray, JointState, PointStamped};
use nalgebra::Vector3;
use serde::{Deserialize, Serialize};

use crate::monitor::TransitionAssembler;
use crate::observe::{ObservationModel, ObservedTransition};

/// Topic names a dataset is built from (defaults: the ros2_control and equigate names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetTopics {
    /// sensor_msgs/msg/JointState (default: `/joint_states`).
    pub joint_states: String,
    /// geometry_msgs/msg/PointStamped, the goal in the base frame (default: `/goal`).
    pub goal: String,
    /// std_msgs/msg/Float64MultiArray, rad/s per configured joint (default:
    /// `/forward_velocity_controller/commands`).
    pub command: String,
}

impl Default for DatasetTopics {
    fn default() -> Self {
        Self {
            joint_states: "/joint_states".to_owned(),
            goal: "/goal".to_owned(),
            command: "/forward_velocity_controller/commands".to_owned(),
        }
    }
}

impl DatasetTopics {
    /// The three topic names, for a bag reader's topic filter.
    pub fn names(&self) -> Vec<String> {
        vec![self.joint_states.clone(), self.goal.clone(), self.command.clone()]
    }
}

/// What building a dataset read, kept and dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DatasetSummary {
    /// Joint states read (valid ones).
    pub states: u64,
    /// Goal messages read.
    pub goals: u64,
    /// Valid commands read.
    pub commands: u64,
    /// Transitions produced.
    pub transitions: u64,
    /// Episodes seen (goal changes after the first goal, plus the first).
    pub episodes: u64,
    /// Transitions that ended in success.
    pub terminated: u64,
    /// Transitions that reached the task's episode length.
    pub truncated: u64,
    /// Transitions whose command was blocked by a collision in the replay.
    pub collided: u64,
    /// Dropped or skipped messages by reason (e.g. `"state before the first goal"`,
    /// `"state pair without a command"`, `"joint state has no velocities"`).
    pub dropped: BTreeMap<String, u64>,
    /// Log time of the first and last message used, ns.
    pub span_ns: Option<(i64, i64)>,
}

impl DatasetSummary {
    fn drop_one(&mut self, reason: impl Into<String>) {
        *self.dropped.entry(reason.into()).or_default() += 1;
    }

    /// Messages dropped, all reasons.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

impl std::fmt::Display for DatasetSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} transitions in {} episodes ({} successes, {} truncations, {} collisions) from {} \
             joint states, {} commands, {} goals",
            self.transitions,
            self.episodes,
            self.terminated,
            self.truncated,
            self.collided,
            self.states,
            self.commands,
            self.goals
        )?;
        if let Some((a, b)) = self.span_ns {
            writeln!(f, "span {:.3} s", (b - a) as f64 * 1e-9)?;
        }
        if self.dropped.is_empty() {
            write!(f, "nothing dropped")
        } else {
            write!(f, "dropped:")?;
            for (reason, n) in &self.dropped {
                write!(f, "\n  {n:>8}  {reason}")?;
            }
            Ok(())
        }
    }
}

/// Replays messages into transitions (module docs).
pub struct DatasetBuilder {
    model: ObservationModel,
    topics: DatasetTopics,
    assembler: TransitionAssembler,
    goal: Option<Vector3<f64>>,
    goal_version: u64,
    episode_steps: usize,
    transitions: Vec<ObservedTransition>,
    summary: DatasetSummary,
    q: Vec<f64>,
    qdot: Vec<f64>,
}

impl DatasetBuilder {
    /// A builder reading `topics` with the task and joint order of `model`.
    pub fn new(model: ObservationModel, topics: DatasetTopics) -> Self {
        Self {
            model,
            topics,
            assembler: TransitionAssembler::default(),
            goal: None,
            goal_version: 0,
            episode_steps: 0,
            transitions: Vec::new(),
            summary: DatasetSummary::default(),
            q: Vec::new(),
            qdot: Vec::new(),
        }
    }

    /// The observation model (task, joint order).
    pub fn model(&self) -> &ObservationModel {
        &self.model
    }

    /// One message, in log-time order: `data` is its CDR payload (with the 4-byte encapsulation
    /// header), `log_time_ns` the time the recorder received it. Messages on other topics are
    /// ignored. A message that does not decode, or a state or command that fails its checks, is
    /// skipped and counted in the summary by reason.
    ///
    /// # Errors
    /// Only failures of the task model on a state that passed the checks (a bug, or a goal that
    /// is not finite).
    pub fn push(&mut self, topic: &str, log_time_ns: i64, data: &[u8]) -> anyhow::Result<()> {
        let now_s = log_time_ns as f64 * 1e-9;
        if topic == self.topics.goal {
            let Ok(msg) = from_cdr::<PointStamped>(data) else {
                self.summary.drop_one(format!("{topic}: does not decode as PointStamped"));
                return Ok(());
            };
            let p = Vector3::new(msg.point.x, msg.point.y, msg.point.z);
            if !p.iter().all(|v| v.is_finite()) {
                self.summary.drop_one("goal is not finite");
                return Ok(());
            }
            self.summary.goals += 1;
            if self.goal.is_none_or(|g| (g - p).norm() > 1e-9) {
                self.goal = Some(p);
                self.goal_version += 1;
                self.episode_steps = 0;
                self.summary.episodes += 1;
            }
            self.touch(log_time_ns);
        } else if topic == self.topics.command {
            let Ok(msg) = from_cdr::<Float64MultiArray>(data) else {
                self.summary.drop_one(format!("{topic}: does not decode as Float64MultiArray"));
                return Ok(());
            };
            if let Err(e) = crate::command::validate(self.model.joint_names(), &msg.data) {
                self.summary.drop_one(strip_values(&e.to_string()));
                return Ok(());
            }
            self.summary.commands += 1;
            let command = self.model.to_model_order(&msg.data);
            self.assembler.on_command(&command, now_s);
            self.touch(log_time_ns);
        } else if topic == self.topics.joint_states {
            let Ok(msg) = from_cdr::<JointState>(data) else {
                self.summary.drop_one(format!("{topic}: does not decode as JointState"));
                return Ok(());
            };
            let joints = self.model.joint_names().to_vec();
            if let Err(e) =
                crate::safety::read_joint_state(&joints, &msg, &mut self.q, &mut self.qdot)
            {
                self.summary.drop_one(strip_values(&e.to_string()));
                return Ok(());
            }
            self.summary.states += 1;
            let Some(goal) = self.goal else {
                self.summary.drop_one("state before the first goal");
                return Ok(());
            };
            let state = self.model.state(&self.q, &self.qdot, goal);
            let stamp_s = msg.header.stamp.as_secs_f64();
            // None without a drop: the first state, or a repeated stamp (a lockstep heartbeat).
            let dropped = self.assembler.dropped;
            let pair = self.assembler.on_state(&state, stamp_s, now_s, self.goal_version);
            if self.assembler.dropped > dropped {
                self.summary.drop_one("state pair without a fresh command or across a goal change");
            }
            if let Some((before, command, after)) = pair {
                self.episode_steps += 1;
                let t = self
                    .model
                    .transition(&before, &command, &after, self.episode_steps)
                    .context("task model on a checked state")?;
                self.summary.transitions += 1;
                self.summary.terminated += u64::from(t.outcome.terminated);
                self.summary.truncated += u64::from(t.outcome.truncated);
                self.summary.collided += u64::from(t.outcome.collided);
                self.transitions.push(t);
            }
            self.touch(log_time_ns);
        }
        Ok(())
    }

    fn touch(&mut self, t: i64) {
        self.summary.span_ns = Some(match self.summary.span_ns {
            None => (t, t),
            Some((a, b)) => (a.min(t), b.max(t)),
        });
    }

    /// The transitions and the summary.
    pub fn finish(self) -> (Vec<ObservedTransition>, DatasetSummary) {
        (self.transitions, self.summary)
    }
}

/// An error text without its numbers, so that drops group by kind (`"... is not finite: NaN"` →
/// `"... is not finite"`).
fn strip_values(text: &str) -> String {
    match text.rfind(": ") {
        Some(i) if text[i + 2..].parse::<f64>().is_ok() => text[..i].to_owned(),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{drive, ScriptedReach};
    use crate::train::EnvSpec;
    use equigate_robot::model::RobotKind;
    use equigate_ros::msg::{to_cdr, Header, JointState, Time};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    type Message = (String, i64, Vec<u8>);

    fn obstacle_spec() -> EnvSpec {
        let path = crate::resources::resolve("config/tasks/ur5e_reach_obstacles.yaml");
        let task = crate::resources::load_task(RobotKind::Ur5e, Some(&path)).unwrap();
        EnvSpec::with_task(RobotKind::Ur5e, task).unwrap()
    }

    fn messages(spec: &EnvSpec, steps: usize) -> (Vec<Message>, crate::collect::CollectSummary) {
        let controller = ScriptedReach::default();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut out = Vec::new();
        let summary = drive(
            spec,
            3,
            steps,
            |env| controller.command(env, &mut rng),
            |topic, _, t, cdr| {
                out.push((topic.to_owned(), t, cdr));
                Ok(())
            },
        )
        .unwrap();
        (out, summary)
    }

    fn builder(spec: &EnvSpec) -> DatasetBuilder {
        let model = ObservationModel::new(spec.model.clone(), spec.task.clone(), &[]).unwrap();
        DatasetBuilder::new(model, DatasetTopics::default())
    }

    /// Every driven step becomes one transition; the only pairs dropped are those across a
    /// reset; successes and collisions agree with the simulator; each reward follows the task's
    /// rule from the recomputed distance.
    #[test]
    fn a_driven_stream_gives_one_transition_per_step() {
        let spec = obstacle_spec();
        let (msgs, driven) = messages(&spec, 600);
        let mut b = builder(&spec);
        for (topic, t, data) in &msgs {
            b.push(topic, *t, data).unwrap();
        }
        let (transitions, summary) = b.finish();
        assert_eq!(transitions.len(), driven.steps, "{summary}");
        assert_eq!(summary.episodes as usize, driven.episodes);
        assert_eq!(summary.terminated as usize, driven.successes);
        assert_eq!(summary.collided as usize, driven.collisions);
        assert!(driven.successes > 5 && driven.collisions > 0, "{driven:?}");
        assert_eq!(summary.dropped_total() as usize, driven.episodes - 1, "{summary}");
        let task = &spec.task;
        for t in &transitions {
            let o = &t.outcome;
            let expected = -o.distance + if o.terminated { task.success_bonus } else { 0.0 }
                - if o.collided { task.collision_penalty } else { 0.0 };
            assert!((o.reward - expected).abs() < 1e-12);
            assert_eq!(t.obs.len(), 22);
            assert_eq!(t.command.len(), 6);
        }
    }

    /// Bad messages are skipped and counted by reason; the good ones around them still pair up.
    #[test]
    fn bad_messages_are_counted_and_lose_nothing_else() {
        let spec = obstacle_spec();
        let (msgs, driven) = messages(&spec, 50);
        let mut b = builder(&spec);
        let names = spec.model.joint_names().to_vec();
        let nan_state = JointState {
            header: Header::new(Time::from_nanos(5), "base_link"),
            name: names.clone(),
            position: vec![f64::NAN; 6],
            velocity: vec![0.0; 6],
            effort: vec![],
        };
        let missing = JointState {
            name: names[..5].to_vec(),
            position: vec![0.0; 5],
            velocity: vec![0.0; 5],
            ..nan_state.clone()
        };
        b.push("/joint_states", 0, &to_cdr(&nan_state).unwrap()).unwrap();
        b.push("/joint_states", 0, &to_cdr(&missing).unwrap()).unwrap();
        b.push("/joint_states", 0, &[0, 1, 0, 0, 7]).unwrap();
        let short = equigate_ros::msg::Float64MultiArray::flat(vec![0.0; 5]);
        b.push("/forward_velocity_controller/commands", 0, &to_cdr(&short).unwrap()).unwrap();
        b.push("/unrelated", 0, &[1, 2, 3]).unwrap();
        for (topic, t, data) in &msgs {
            b.push(topic, *t, data).unwrap();
        }
        let (transitions, summary) = b.finish();
        assert_eq!(transitions.len(), driven.steps, "{summary}");
        let reasons: Vec<&String> = summary.dropped.keys().collect();
        assert!(reasons.iter().any(|r| r.contains("not finite")), "{summary}");
        assert!(reasons.iter().any(|r| r.contains("lacks joint")), "{summary}");
        assert!(reasons.iter().any(|r| r.contains("does not decode")), "{summary}");
        assert!(reasons.iter().any(|r| r.contains("command has 5 values")), "{summary}");
    }
}
