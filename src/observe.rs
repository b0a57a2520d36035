//! The reach task seen through topics: `/joint_states` (matched by name, see
//! [`crate::safety::read_joint_state`]), `/goal` and the velocity commands become the task's
//! observation, reward and episode flags, computed by the same code as the simulator
//! ([`ReachEnv::observation`] and the reward rule of [`ReachEnv::step`]), so a learner fed from
//! topics sees exactly what `equigate train` sees in process.
//!
//! [`ObservationModel`] holds a [`ReachEnv`] used only as a model: `set_state` + `set_goal` +
//! `observation()`. Whether a step was blocked by a collision is not in any message; it is
//! recomputed by replaying the command from the state before the step in a second copy of the
//! kinematic simulator (exact for the built-in simulator, a model-based estimate on a real arm).
//! The same replay gives the ground truth of the symmetry-breaking region
//! ([`ReachEnv::breaking_region`]).
//!
//! Joint order: states and commands on topics are in the configured joint order; observations,
//! [`State`] and the agent's actions are in the URDF model's order. [`ObservationModel`] converts.

use std::sync::Arc;

use anyhow::Context as _;
use equigate_robot::model::RobotModel;
use equigate_robot::task::{Field, ReachEnv, State, TaskConfig};
use nalgebra::Vector3;

/// What one control step gave, by the task's rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutcome {
    /// `-‖ee − goal‖ + success_bonus·terminated − collision_penalty·collided` (as
    /// [`ReachEnv::step`]).
    pub reward: f64,
    /// End effector to goal after the step, m.
    pub distance: f64,
    /// Success: `distance < success_threshold_m`.
    pub terminated: bool,
    /// `max_episode_steps` reached without success.
    pub truncated: bool,
    /// Replaying the command from the state before the step was blocked by a collision.
    pub collided: bool,
    /// The state and command before the step lie in the symmetry-breaking region (ground truth).
    pub in_breaking_region: bool,
}

/// One transition observed on topics, in the task's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedTransition {
    /// Observation before the step (unscaled, layout [`ObservationModel::layout`]).
    pub obs: Vec<f64>,
    /// The command held during the step, rad/s or m/s, model order.
    pub command: Vec<f64>,
    /// Observation after the step.
    pub next_obs: Vec<f64>,
    /// Reward and flags.
    pub outcome: StepOutcome,
}

/// The task's observation and reward model for states read from topics.
#[derive(Debug, Clone)]
pub struct ObservationModel {
    /// The observation model: its state is set from the topics, never stepped.
    env: ReachEnv,
    /// Replays commands for collisions and the breaking-region ground truth.
    replay: ReachEnv,
    joints: Vec<String>,
    /// `to_model[i]`: model index of configured joint `i`.
    to_model: Vec<usize>,
}

impl ObservationModel {
    /// The reach task `task` on `model`, reading joints in the order `joints` (empty: the model's
    /// order). Every actuated joint must be named once.
    ///
    /// # Errors
    /// An invalid task, unknown, repeated or missing joint names.
    pub fn new(
        model: Arc<RobotModel>,
        task: TaskConfig,
        joints: &[String],
    ) -> anyhow::Result<Self> {
        let joints: Vec<String> =
            if joints.is_empty() { model.joint_names().to_vec() } else { joints.to_vec() };
        let mut to_model = Vec::with_capacity(joints.len());
        for name in &joints {
            let i = model.joint_index(name).with_context(|| {
                format!(
                    "joint `{name}` is not an actuated joint of the URDF (it has: {})",
                    model.joint_names().join(", ")
                )
            })?;
            anyhow::ensure!(!to_model.contains(&i), "joint `{name}` is configured twice");
            to_model.push(i);
        }
        if let Some(m) = (0..model.dof()).find(|m| !to_model.contains(m)) {
            anyhow::bail!("joint `{}` of the URDF is not configured", model.joint_names()[m]);
        }
        let env = ReachEnv::new(model, task, 0).context("building the reach task model")?;
        Ok(Self { replay: env.clone(), env, joints, to_model })
    }

    /// Configured joint names (topic order).
    pub fn joint_names(&self) -> &[String] {
        &self.joints
    }

    /// The task model (its state is the last one observed).
    pub fn env(&self) -> &ReachEnv {
        &self.env
    }

    /// The task.
    pub fn task(&self) -> &TaskConfig {
        self.env.config()
    }

    /// Observation layout ([`equigate_robot::task::observation_layout`]).
    pub fn layout(&self) -> &[Field] {
        self.env.layout()
    }

    /// Observation length, `2 * dof + 10`.
    pub fn obs_dim(&self) -> usize {
        self.env.obs_dim()
    }

    /// Number of joints (= action length).
    pub fn dof(&self) -> usize {
        self.to_model.len()
    }

    /// `values` in configured (topic) order → model order.
    ///
    /// # Shapes
    /// `[dof]` -> `[dof]`.
    pub fn to_model_order(&self, values: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.to_model.len()];
        for (i, &m) in self.to_model.iter().enumerate() {
            out[m] = values[i];
        }
        out
    }

    /// `values` in model order → configured (topic) order.
    ///
    /// # Shapes
    /// `[dof]` -> `[dof]`.
    pub fn to_topic_order(&self, values: &[f64]) -> Vec<f64> {
        self.to_model.iter().map(|&m| values[m]).collect()
    }

    /// The task state of joint positions `q` (rad or m) and velocities `qdot` (rad/s or m/s) in
    /// configured order and `goal` (m, base frame). Positions are clamped to the URDF limits (a
    /// real arm may report a hair beyond them).
    pub fn state(&self, q: &[f64], qdot: &[f64], goal: Vector3<f64>) -> State {
        let limits = self.env.model().limits();
        let mut q = self.to_model_order(q);
        for (x, l) in q.iter_mut().zip(limits) {
            *x = l.clamp_position(*x);
        }
        State { q, qdot: self.to_model_order(qdot), goal }
    }

    /// The observation of `state` (unscaled, layout [`ObservationModel::layout`]).
    ///
    /// # Errors
    /// Wrong lengths, non-finite values or positions outside the limits, a non-finite goal.
    ///
    /// # Shapes
    /// `-> [2 * dof + 10]`.
    pub fn observe(&mut self, state: &State) -> anyhow::Result<Vec<f64>> {
        self.env.set_state(&state.q, &state.qdot)?;
        self.env.set_goal(state.goal)?;
        Ok(self.env.observation())
    }

    /// End effector to goal in `state`, m.
    ///
    /// # Errors
    /// As [`ObservationModel::observe`].
    pub fn distance(&mut self, state: &State) -> anyhow::Result<f64> {
        self.env.set_state(&state.q, &state.qdot)?;
        Ok((state.goal - self.env.ee()).norm())
    }

    /// The task's reward and flags for the step from `before` with `command` (rad/s or m/s,
    /// model order) to `after`, the `episode_steps`-th step of its episode (1 for the first).
    /// The goal is `after.goal`.
    ///
    /// # Errors
    /// As [`ObservationModel::observe`], or a command of the wrong length or non-finite.
    pub fn outcome(
        &mut self,
        before: &State,
        command: &[f64],
        after: &State,
        episode_steps: usize,
    ) -> anyhow::Result<StepOutcome> {
        self.replay.set_state(&before.q, &before.qdot)?;
        self.replay.set_goal(before.goal)?;
        let replayed = self.replay.step(command)?;
        let task = self.env.config();
        let (threshold, bonus, penalty, max_steps) = (
            task.success_threshold_m,
            task.success_bonus,
            task.collision_penalty,
            task.max_episode_steps,
        );
        let distance = self.distance(after)?;
        let terminated = distance < threshold;
        let truncated = !terminated && episode_steps >= max_steps;
        let reward = -distance + if terminated { bonus } else { 0.0 }
            - if replayed.collided { penalty } else { 0.0 };
        Ok(StepOutcome {
            reward,
            distance,
            terminated,
            truncated,
            collided: replayed.collided,
            in_breaking_region: replayed.in_breaking_region,
        })
    }

    /// [`ObservationModel::outcome`] with both observations.
    ///
    /// # Errors
    /// As [`ObservationModel::outcome`].
    pub fn transition(
        &mut self,
        before: &State,
        command: &[f64],
        after: &State,
        episode_steps: usize,
    ) -> anyhow::Result<ObservedTransition> {
        let outcome = self.outcome(before, command, after, episode_steps)?;
        let obs = self.observe(before)?;
        let next_obs = self.observe(after)?;
        Ok(ObservedTransition { obs, command: command.to_vec(), next_obs, outcome })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use equigate_robot::model::RobotKind;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn task_with_obstacles() -> TaskConfig {
        let path = crate::resources::resolve("config/tasks/ur5e_reach_obstacles.yaml");
        crate::resources::load_task(RobotKind::Ur5e, Some(&path)).unwrap()
    }

    /// Steps a ReachEnv with random full-speed actions (so that it hits the table and boxes) and
    /// checks that the model, fed the states as a topic would carry them (reversed joint order),
    /// gives the same observation, reward, flags, collisions and breaking ground truth.
    #[test]
    fn equals_reach_env_observation_and_reward_for_the_same_states() {
        let model = Arc::new(RobotModel::ur5e().unwrap());
        let task = TaskConfig { max_episode_steps: 30, ..task_with_obstacles() };
        let mut env = ReachEnv::new(Arc::clone(&model), task.clone(), 5).unwrap();
        let mut joints: Vec<String> = model.joint_names().to_vec();
        joints.reverse();
        let mut om = ObservationModel::new(Arc::clone(&model), task, &joints).unwrap();
        let limits: Vec<f64> = model.limits().iter().map(|l| l.velocity).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (mut collided, mut breaking, mut ends) = (0, 0, 0);
        let topic = |om: &ObservationModel, s: &State| {
            om.state(&om.to_topic_order(&s.q), &om.to_topic_order(&s.qdot), s.goal)
        };
        let mut obs = env.reset();
        for _ in 0..300 {
            let before = env.state();
            let a: Vec<f64> = limits.iter().map(|v| rng.random_range(-1.0..1.0) * v).collect();
            let t = env.step(&a).unwrap();
            let after = env.state();
            let (b, n) = (topic(&om, &before), topic(&om, &after));
            let got = om.transition(&b, &a, &n, env.steps()).unwrap();
            assert_eq!(got.obs, obs);
            assert_eq!(got.next_obs, t.obs);
            assert_eq!(got.outcome.reward, t.reward);
            assert_eq!(got.outcome.distance, t.distance);
            assert_eq!(
                (got.outcome.terminated, got.outcome.truncated),
                (t.terminated, t.truncated)
            );
            assert_eq!(got.outcome.collided, t.collided);
            assert_eq!(got.outcome.in_breaking_region, t.in_breaking_region);
            collided += usize::from(t.collided);
            breaking += usize::from(t.in_breaking_region);
            obs = if t.terminated || t.truncated {
                ends += 1;
                env.reset()
            } else {
                t.obs
            };
        }
        assert!(ends >= 5, "episodes ended: {ends}");
        assert!(breaking > 0, "no step in the breaking region: the test would prove little");
        println!(
            "300 steps: {collided} blocked, {breaking} in the breaking region, {ends} episodes"
        );
    }

    #[test]
    fn joint_orders_round_trip_and_bad_names_fail() {
        let model = Arc::new(RobotModel::ur5e().unwrap());
        let names: Vec<String> = ["wrist_3_joint", "shoulder_pan_joint"]
            .iter()
            .map(|s| s.to_string())
            .chain(model.joint_names()[1..5].iter().cloned())
            .collect();
        let om = ObservationModel::new(Arc::clone(&model), TaskConfig::default(), &names).unwrap();
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let m = om.to_model_order(&v);
        assert_eq!(m, [2.0, 3.0, 4.0, 5.0, 6.0, 1.0]);
        assert_eq!(om.to_topic_order(&m), v);
        let err = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            let e = ObservationModel::new(Arc::clone(&model), TaskConfig::default(), &names);
            format!("{:#}", e.unwrap_err())
        };
        assert!(err(&["elbow"]).contains("`elbow`"));
        assert!(err(&["elbow_joint", "elbow_joint"]).contains("twice"));
        assert!(err(&["elbow_joint"]).contains("not configured"));
    }
}
