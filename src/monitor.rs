//! The detector node's core, free of DDS: its parameters, pairing of topic messages into
//! transitions, and the online detector with its λ map.
//!
//! A transition is (s_k, a_k, s_{k+1}): s_k the latest joint state when command a_k arrives,
//! s_{k+1} the latest joint state when the next command arrives. This is how a controller at a
//! fixed rate (or the simulator in lockstep: one command, one step, one joint state) produces
//! data. A pair is dropped when no new joint state arrived in between, or the goal changed in
//! between (an episode reset teleports the arm and moves the goal).

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use burn::tensor::backend::AutodiffBackend;
use equigate_learn::detector::{Detector, DetectorMetrics};
use equigate_learn::replay::{ReplayBuffer, Transition};
use equigate_robot::camera::{DepthCameraConfig, DEFAULT_OPTICAL_FRAME_ID};
use equigate_robot::model::RobotKind;
use equigate_robot::task::{action_layout, State};
use serde::{Deserialize, Serialize};

use crate::agent::TaskSymmetry;
use crate::lambda_map::LambdaMap;
use crate::observe::ObservationModel;
use crate::train::{EnvSpec, Scaling, TrainConfig};

/// The detector node's ROS parameters (`detector_node: ros__parameters:` in
/// config/detector_<robot>.yaml); unknown parameters are errors naming the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorNodeConfig {
    /// `ur5e` or `fetch` (default: `ur5e`).
    pub robot: RobotKind,
    /// Train config for the group order and the network widths, learning rate and batch size
    /// (default: `config/train/ur5e_reach_obstacles.yaml`).
    pub train_file: String,
    /// The reach task file, for the observation and reward (default: the train file's task).
    pub task_file: String,
    /// Joint names in topic order; empty (default): the URDF's order.
    pub joint_names: Vec<String>,
    /// sensor_msgs/JointState topic (default: `joint_states`).
    pub joint_states_topic: String,
    /// geometry_msgs/PointStamped goal topic (default: `goal`).
    pub goal_topic: String,
    /// std_msgs/Float64MultiArray velocity commands, rad/s in `joint_names` order (default:
    /// `forward_velocity_controller/commands`).
    pub commands_topic: String,
    /// std_msgs/Float32: λ of the latest transition (default: `/equigate/lambda`).
    pub lambda_topic: String,
    /// sensor_msgs/Image 32FC1 λ map (default: `/equigate/lambda_map`).
    pub lambda_map_topic: String,
    /// sensor_msgs/Image rgb8 λ map (default: `/equigate/lambda_map/rgb`).
    pub lambda_map_rgb_topic: String,
    /// The depth camera whose grid the map uses: must equal the simulator's `camera` parameter
    /// for the two images to overlay (default: the simulator's default).
    pub camera: DepthCameraConfig,
    /// `frame_id` of the maps (default: `depth_camera_optical_frame`, as the depth image).
    pub camera_frame: String,
    /// Transitions the map averages over (default: `5000`).
    pub map_capacity: usize,
    /// Map publishing rate, Hz (default: `2`).
    pub map_rate_hz: f64,
    /// A PE-SAC (or detector) checkpoint directory to take the gate from instead of learning
    /// one; empty (default): learn online.
    pub gate_checkpoint: String,
    /// Transitions before the first update (default: `1000`).
    pub learning_starts: usize,
    /// Replay capacity (default: `100000`).
    pub buffer_size: usize,
}

impl Default for DetectorNodeConfig {
    fn default() -> Self {
        Self {
            robot: RobotKind::Ur5e,
            train_file: "config/train/ur5e_reach_obstacles.yaml".into(),
            task_file: String::new(),
            joint_names: Vec::new(),
            joint_states_topic: "joint_states".into(),
            goal_topic: "goal".into(),
            commands_topic: "forward_velocity_controller/commands".into(),
            lambda_topic: "/equigate/lambda".into(),
            lambda_map_topic: "/equigate/lambda_map".into(),
            lambda_map_rgb_topic: "/equigate/lambda_map/rgb".into(),
            camera: DepthCameraConfig::default(),
            camera_frame: DEFAULT_OPTICAL_FRAME_ID.into(),
            map_capacity: 5000,
            map_rate_hz: 2.0,
            gate_checkpoint: String::new(),
            learning_starts: 1000,
            buffer_size: 100_000,
        }
    }
}

impl DetectorNodeConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(self.map_rate_hz.is_finite() && self.map_rate_hz > 0.0) {
            bail!("parameter `map_rate_hz` = {} must be positive", self.map_rate_hz);
        }
        if self.map_capacity == 0 || self.buffer_size == 0 {
            bail!("parameters `map_capacity` and `buffer_size` must be positive");
        }
        Ok(())
    }

    /// The train config (file resolved against the share directory) with this node's robot and
    /// task file.
    pub fn train_config(&self) -> anyhow::Result<TrainConfig> {
        let mut config = TrainConfig::load(&crate::resources::resolve(&self.train_file))?;
        config.robot = self.robot;
        if !self.task_file.is_empty() {
            config.task = Some(self.task_file.clone());
        }
        Ok(config)
    }
}

/// Pairs commands with joint states into transitions (module docs).
#[derive(Debug, Clone, Default)]
pub struct TransitionAssembler {
    /// (state when the pending command arrived, its sequence number, the command, goal version).
    pending: Option<(State, u64, Vec<f64>, u64)>,
    /// Transitions produced and pairs dropped.
    pub produced: u64,
    /// See `produced`.
    pub dropped: u64,
}

impl TransitionAssembler {
    /// A command `command` (model order) arrived; `state` is the latest valid joint state with
    /// sequence number `state_seq` (increasing per received state) and `goal_version` counts goal
    /// changes. Returns the completed transition (s_k, a_k, s_{k+1}), if any.
    pub fn on_command(
        &mut self,
        state: &State,
        state_seq: u64,
        command: &[f64],
        goal_version: u64,
    ) -> Option<(State, Vec<f64>, State)> {
        let previous =
            self.pending.replace((state.clone(), state_seq, command.to_vec(), goal_version));
        let (before, seq, a, goal) = previous?;
        if seq == state_seq || goal != goal_version {
            self.dropped += 1;
            return None;
        }
        self.produced += 1;
        Some((before, a, state.clone()))
    }
}

/// The online detector: observation model, scalings, detector, replay and λ map.
pub struct OnlineDetector<B: AutodiffBackend> {
    model: ObservationModel,
    scaling: Scaling,
    detector: Detector<B>,
    buffer: ReplayBuffer,
    map: LambdaMap,
    learn: bool,
    batch_size: usize,
    learning_starts: usize,
    device: B::Device,
    /// Transitions seen.
    pub transitions: u64,
    /// The latest update's scalars.
    pub last_metrics: Option<DetectorMetrics>,
}

impl<B: AutodiffBackend> OnlineDetector<B> {
    /// Builds everything from the node config.
    ///
    /// # Errors
    /// Unreadable train/task/URDF files, bad joint names, an unloadable gate checkpoint.
    pub fn new(config: &DetectorNodeConfig, device: &B::Device) -> anyhow::Result<Self> {
        let train = config.train_config()?;
        let spec = EnvSpec::load(&train)?;
        let model =
            ObservationModel::new(spec.model.clone(), spec.task.clone(), &config.joint_names)?;
        let scaling = Scaling::new(model.env())?;
        let symmetry =
            TaskSymmetry::new(train.group_order, model.layout(), &action_layout(model.dof()))?;
        let (obs_dim, act_dim) = (symmetry.obs.dim(), symmetry.act.dim());
        let det_config = crate::detect::detector_config(&train, obs_dim, act_dim);
        let mut detector = Detector::<B>::new(det_config, &symmetry.obs, &symmetry.act, device)?;
        let learn = config.gate_checkpoint.is_empty();
        if !learn {
            let dir = PathBuf::from(&config.gate_checkpoint);
            detector = detector
                .load_gate(&dir)
                .with_context(|| format!("loading the gate from {}", dir.display()))?;
        }
        Ok(Self {
            buffer: ReplayBuffer::new(config.buffer_size, obs_dim, act_dim, train.seed + 23)?,
            map: LambdaMap::new(config.camera, config.map_capacity)?,
            batch_size: train.learner.batch_size,
            learning_starts: config.learning_starts.max(train.learner.batch_size),
            device: device.clone(),
            transitions: 0,
            last_metrics: None,
            model,
            scaling,
            detector,
            learn,
        })
    }

    /// The observation model (joint order conversions, task).
    pub fn model(&self) -> &ObservationModel {
        &self.model
    }

    /// The λ map.
    pub fn map(&self) -> &LambdaMap {
        &self.map
    }

    /// Takes one transition (states from topics, command in model order): stores it, updates
    /// the detector once (when learning and past `learning_starts`), and returns λ = p_ω(s, a)
    /// of this transition, also added to the map at the end effector of s.
    ///
    /// # Errors
    /// States or commands the task rejects (non-finite, wrong lengths).
    pub fn observe(
        &mut self,
        before: &State,
        command: &[f64],
        after: &State,
    ) -> anyhow::Result<f32> {
        let t = self.model.transition(before, command, after, 1)?;
        let obs = self.scaling.obs.normalize(&t.obs);
        let next = self.scaling.obs.normalize(&t.next_obs);
        let action = self.scaling.act.to_action(command);
        let ee = {
            self.model.observe(before)?;
            self.model.env().ee()
        };
        self.buffer.push(Transition {
            obs: &obs,
            action: &action,
            reward: t.outcome.reward as f32,
            next_obs: &next,
            terminated: t.outcome.terminated,
            truncated: t.outcome.truncated,
        })?;
        self.transitions += 1;
        if self.learn && self.buffer.len() >= self.learning_starts {
            let batch = self.buffer.sample::<B>(self.batch_size, &self.device)?;
            self.last_metrics = Some(self.detector.train_step(&batch));
        }
        let lambda = self.detector.lambda(&obs, &action)[0];
        self.map.add(ee, lambda);
        Ok(lambda)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    fn state(x: f64) -> State {
        State { q: vec![x; 6], qdot: vec![0.0; 6], goal: Vector3::new(0.5, 0.0, 0.3) }
    }

    #[test]
    fn commands_pair_with_the_next_new_state_and_resets_are_dropped() {
        let mut a = TransitionAssembler::default();
        assert!(a.on_command(&state(0.0), 1, &[1.0], 0).is_none());
        let (s, cmd, s2) = a.on_command(&state(0.1), 2, &[2.0], 0).unwrap();
        assert_eq!((s.q[0], cmd, s2.q[0]), (0.0, vec![1.0], 0.1));
        // No new joint state since the last command: dropped.
        assert!(a.on_command(&state(0.1), 2, &[3.0], 0).is_none());
        // The goal changed (a reset): dropped.
        assert!(a.on_command(&state(0.9), 3, &[4.0], 1).is_none());
        assert!(a.on_command(&state(1.0), 4, &[5.0], 1).is_some());
        assert_eq!((a.produced, a.dropped), (2, 2));
    }

    #[test]
    fn shipped_defaults_build_an_online_detector_that_learns() {
        use burn::backend::{Autodiff, Flex};
        let config = DetectorNodeConfig { learning_starts: 4, ..DetectorNodeConfig::default() };
        config.validate().unwrap();
        let mut det = OnlineDetector::<Autodiff<Flex>>::new(&config, &Default::default()).unwrap();
        let home = det.model().env().q().to_vec();
        let s = State { q: home.clone(), qdot: vec![0.0; 6], goal: Vector3::new(0.4, 0.2, 0.3) };
        for _ in 0..3 {
            let l = det.observe(&s, &[0.1; 6], &s).unwrap();
            assert!((0.0..=1.0).contains(&l));
        }
        assert!(det.last_metrics.is_none());
        // Past learning_starts only when the batch size fits: the default batch is 256.
        assert_eq!(det.transitions, 3);
        assert_eq!(det.map().len(), 3);
    }
}
