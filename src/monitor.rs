//! The detector node's core, free of DDS: its parameters, pairing of topic messages into
//! transitions, and the online detector with its λ map.
//!
//! A transition is (s_k, a_k, s_{k+1}) for two consecutive joint states and the command a_k that
//! drove the arm between them: one received after s_k (the simulator in lockstep: one command,
//! one step, one joint state), or the latest one while it is still held (a controller at a fixed
//! rate with joint states coming faster than commands). A pair is dropped when there is no such
//! command or the goal changed in between (an episode reset teleports the arm and moves the
//! goal).

use std::collections::VecDeque;
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
use crate::lambda_map::{depth_rgb, lambda_rgb, LambdaMap};
use crate::observe::ObservationModel;
use crate::train::{EnvSpec, Scaling, TrainConfig};
use equigate_ros::msg::Image;

/// The detector node's ROS parameters (`detector_node: ros__parameters:` in
/// config/detector_&lt;robot&gt;.yaml); unknown parameters are errors naming the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorNodeConfig {
    /// `ur5e` or `fetch` (default: `ur5e`).
    pub robot: RobotKind,
    /// Train config for the group order, the network widths, learning rate and batch size, and
    /// the `detector` label rule (default: `config/train/ur5e_reach_obstacles.yaml`).
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
    /// sensor_msgs/Image depth topic saved beside the map (default: `camera/depth/image_raw`).
    pub depth_topic: String,
    /// Directory where `lambda_map.png` and `depth.png` (the latest depth image, same grid) are
    /// written every 10 s and at shutdown; empty (default): none.
    pub output_dir: String,
    /// A PE-SAC (or detector) checkpoint directory to take the gate from instead of learning
    /// one; empty (default): learn online.
    pub gate_checkpoint: String,
    /// Transitions before the first update (default: `1000`).
    pub learning_starts: usize,
    /// Replay capacity (default: `100000`).
    pub buffer_size: usize,
    /// Most updates the detector may owe, one per transition (default: `1000`). When
    /// transitions arrive faster than it learns, the surplus beyond this is forgiven (the replay
    /// buffer still holds them), so that λ stays current; a large value makes it learn from
    /// every transition, catching up when the stream pauses.
    pub max_owed_updates: usize,
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
            depth_topic: "camera/depth/image_raw".into(),
            output_dir: String::new(),
            gate_checkpoint: String::new(),
            learning_starts: 1000,
            buffer_size: 100_000,
            max_owed_updates: 1000,
        }
    }
}

impl DetectorNodeConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(self.map_rate_hz.is_finite() && self.map_rate_hz > 0.0) {
            bail!("parameter `map_rate_hz` = {} must be positive", self.map_rate_hz);
        }
        if self.map_capacity == 0 || self.buffer_size == 0 || self.max_owed_updates == 0 {
            bail!(
                "parameters `map_capacity`, `buffer_size` and `max_owed_updates` must be positive"
            );
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

/// Pairs joint states with the command that drove the arm between them (module docs).
#[derive(Debug, Clone)]
pub struct TransitionAssembler {
    /// How long a command is held, s (default: `0.1`, the simulator's command timeout).
    pub hold_s: f64,
    /// (previous state, its header stamp, goal version at it, receipt time of the latest
    /// command before it).
    previous: Option<(State, f64, u64, Option<f64>)>,
    /// Latest command (model order) and its receipt time, s.
    command: Option<(Vec<f64>, f64)>,
    /// Transitions produced.
    pub produced: u64,
    /// State pairs dropped: no command between or held, or the goal changed (a reset).
    pub dropped: u64,
}

impl Default for TransitionAssembler {
    fn default() -> Self {
        Self { hold_s: 0.1, previous: None, command: None, produced: 0, dropped: 0 }
    }
}

impl TransitionAssembler {
    /// A velocity command (model order) arrived at `now_s`.
    pub fn on_command(&mut self, command: &[f64], now_s: f64) {
        self.command = Some((command.to_vec(), now_s));
    }

    /// A valid joint state with header stamp `stamp_s` arrived at `now_s`, with `goal_version`
    /// counting goal changes. Returns (s_k, a_k, s_{k+1}) when a command arrived since the
    /// previous state (lockstep: one command, one step) or the latest one is still held (a
    /// controller at a fixed rate, states faster than commands), and the goal did not change in
    /// between. A state stamped no later than the previous one and equal to it is a repeat (the
    /// lockstep simulator's heartbeat while it waits) and is ignored; one that differs is a new
    /// state (the first of an episode after a reset, which does not advance simulated time).
    pub fn on_state(
        &mut self,
        state: &State,
        stamp_s: f64,
        now_s: f64,
        goal_version: u64,
    ) -> Option<(State, Vec<f64>, State)> {
        if self.previous.as_ref().is_some_and(|p| stamp_s <= p.1 && p.0 == *state) {
            return None;
        }
        let command_time = self.command.as_ref().map(|c| c.1);
        let previous = self.previous.replace((state.clone(), stamp_s, goal_version, command_time));
        let (before, _, goal, command_before) = previous?;
        let Some((command, at)) = &self.command else {
            self.dropped += 1;
            return None;
        };
        let fresh = command_before != Some(*at) || now_s - at <= self.hold_s;
        if !fresh || goal != goal_version {
            self.dropped += 1;
            return None;
        }
        self.produced += 1;
        Some((before, command.clone(), state.clone()))
    }
}

/// The online detector: observation model, scalings, detector, replay and λ map.
pub struct OnlineDetector<B: AutodiffBackend> {
    model: ObservationModel,
    scaling: Scaling,
    detector: Detector<B>,
    buffer: ReplayBuffer,
    map: LambdaMap,
    /// The scaled (observation, action) of each transition in the map's window, oldest first,
    /// so that [`OnlineDetector::rescore_map`] can score them again.
    map_inputs: VecDeque<(Vec<f32>, Vec<f32>)>,
    /// Detector updates when the map was last scored.
    map_scored_at: u64,
    learn: bool,
    batch_size: usize,
    learning_starts: usize,
    device: B::Device,
    /// Updates owed: one per transition, done by [`OnlineDetector::update`] as time allows, at
    /// most `max_owed`.
    owed: usize,
    max_owed: usize,
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
            map_inputs: VecDeque::with_capacity(config.map_capacity),
            map_scored_at: 0,
            batch_size: train.learner.batch_size,
            learning_starts: config.learning_starts.max(train.learner.batch_size),
            device: device.clone(),
            owed: 0,
            max_owed: config.max_owed_updates,
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

    /// Takes one transition (states from topics, command in model order): stores it, owes one
    /// update (when learning and past `learning_starts`; [`Self::update`] does them), and returns
    /// λ = p_ω(s, a) of this transition with the current gate, also added to the map at the end
    /// effector of s.
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
            self.owed = (self.owed + 1).min(self.max_owed);
        }
        let lambda = self.detector.lambda(&obs, &action)[0];
        if self.map.add(ee, lambda) {
            if self.map_inputs.len() == self.map.capacity() {
                self.map_inputs.pop_front();
            }
            self.map_inputs.push_back((obs, action));
        }
        Ok(lambda)
    }

    /// Scores every transition in the map's window again with the current gate, if it learned
    /// since the last time: the map then shows where the detector now sees the symmetry break
    /// over the recently visited states, not the λ each transition had on arrival. One batched
    /// gate pass over up to `map_capacity` rows. Returns whether the map changed.
    pub fn rescore_map(&mut self) -> bool {
        let updates = self.detector.updates();
        if updates == self.map_scored_at || self.map_inputs.is_empty() {
            return false;
        }
        let (obs, actions): (Vec<f32>, Vec<f32>) = (
            self.map_inputs.iter().flat_map(|(o, _)| o.iter().copied()).collect(),
            self.map_inputs.iter().flat_map(|(_, a)| a.iter().copied()).collect(),
        );
        let lambdas = self.detector.lambda(&obs, &actions);
        self.map_scored_at = updates;
        self.map.rescore(&lambdas)
    }

    /// Writes `lambda_map.png` and, given the latest depth image (32FC1, the map's grid),
    /// `depth.png` into `dir` (created if missing).
    ///
    /// # Errors
    /// I/O errors; a depth image of another size or encoding is skipped with an error.
    pub fn write_pngs(&self, dir: &std::path::Path, depth: Option<&Image>) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let w = self.map.width();
        let values = self.map.values();
        crate::lambda_map::write_png(&dir.join("lambda_map.png"), w, |i| lambda_rgb(values[i]), 8)?;
        let Some(image) = depth else { return Ok(()) };
        let depths = depth_values(image, w)?;
        let finite = || depths.iter().copied().filter(|d| d.is_finite());
        let (near, far) =
            (finite().fold(f32::INFINITY, f32::min), finite().fold(0.0_f32, f32::max));
        crate::lambda_map::write_png(
            &dir.join("depth.png"),
            w,
            |i| depth_rgb(depths[i], near, far),
            8,
        )
    }

    /// Does owed updates until `budget` has passed (at least one if any is owed), oldest first;
    /// returns how many it did. Each samples the replay buffer as it stood when its transition
    /// arrived ([`ReplayBuffer::sample_before`]), so that the gate learned from a stream does not
    /// depend on how far the updates fell behind it.
    ///
    /// # Errors
    /// Sampling errors of the replay buffer (none once it holds a batch).
    pub fn update(&mut self, budget: std::time::Duration) -> anyhow::Result<usize> {
        let start = std::time::Instant::now();
        let mut done = 0;
        while self.owed > 0 && (done == 0 || start.elapsed() < budget) {
            let behind = self.owed - 1;
            let batch = self.buffer.sample_before::<B>(self.batch_size, behind, &self.device)?;
            self.last_metrics = Some(self.detector.train_step(&batch));
            self.owed -= 1;
            done += 1;
        }
        Ok(done)
    }

    /// Updates done so far.
    pub fn updates(&self) -> u64 {
        self.detector.updates()
    }

    /// Updates owed (at most `max_owed_updates`).
    pub fn owed(&self) -> usize {
        self.owed
    }
}

/// The values of a 32FC1 little-endian depth image of `width`×`width` pixels.
///
/// # Errors
/// Another encoding, size or byte order.
pub fn depth_values(image: &Image, width: usize) -> anyhow::Result<Vec<f32>> {
    let w = width as u32;
    if image.encoding != "32FC1" || image.width != w || image.height != w || image.is_bigendian != 0
    {
        bail!(
            "depth image {}x{} {} (big endian: {}) does not match the map's {width}x{width} 32FC1",
            image.width,
            image.height,
            image.encoding,
            image.is_bigendian
        );
    }
    let row = image.step as usize;
    if row < 4 * width || image.data.len() < row * width {
        bail!("depth image data is {} bytes, step {}", image.data.len(), image.step);
    }
    Ok((0..width)
        .flat_map(|v| (0..width).map(move |u| (v, u)))
        .map(|(v, u)| {
            let i = v * row + 4 * u;
            f32::from_le_bytes([
                image.data[i],
                image.data[i + 1],
                image.data[i + 2],
                image.data[i + 3],
            ])
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    fn state(x: f64) -> State {
        State { q: vec![x; 6], qdot: vec![0.0; 6], goal: Vector3::new(0.5, 0.0, 0.3) }
    }

    #[test]
    fn states_pair_with_the_command_between_them_and_resets_are_dropped() {
        let mut a = TransitionAssembler::default();
        assert!(a.on_state(&state(0.0), 0.0, 0.0, 0).is_none());
        // No command yet: dropped.
        assert!(a.on_state(&state(0.1), 0.04, 0.04, 0).is_none());
        // Lockstep: one command, one state, however long the step takes in wall time.
        a.on_command(&[1.0], 0.05);
        // A heartbeat repeat of the same stamp is ignored.
        assert!(a.on_state(&state(0.1), 0.04, 4.0, 0).is_none());
        let (s, cmd, s2) = a.on_state(&state(0.2), 0.08, 5.0, 0).unwrap();
        assert_eq!((s.q[0], cmd, s2.q[0]), (0.1, vec![1.0], 0.2));
        // No new command and the old one no longer held: dropped.
        assert!(a.on_state(&state(0.3), 0.12, 5.2, 0).is_none());
        // A fixed-rate controller: the command is held over several faster states.
        a.on_command(&[2.0], 5.21);
        assert!(a.on_state(&state(0.4), 0.16, 5.218, 0).is_some());
        let (_, cmd, _) = a.on_state(&state(0.5), 0.2, 5.226, 0).unwrap();
        assert_eq!(cmd, vec![2.0]);
        // The goal changed (a reset): dropped.
        assert!(a.on_state(&state(0.9), 0.24, 5.234, 1).is_none());
        assert!(a.on_state(&state(1.0), 0.28, 5.242, 1).is_some());
        assert_eq!((a.produced, a.dropped), (4, 3));
        // A lockstep reset: the new goal, then the episode's first state with the previous
        // state's stamp (a reset does not advance simulated time) but another pose. It is not a
        // heartbeat: the pair across the reset is dropped, and the state starts the episode.
        a.on_command(&[3.0], 6.0);
        assert!(a.on_state(&state(1.1), 0.32, 6.001, 1).is_some());
        assert!(a.on_state(&state(5.0), 0.32, 6.01, 2).is_none());
        a.on_command(&[4.0], 6.02);
        let (s, cmd, _) = a.on_state(&state(5.1), 0.36, 6.03, 2).unwrap();
        assert_eq!((s.q[0], cmd), (5.0, vec![4.0]));
        assert_eq!((a.produced, a.dropped), (6, 4));
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
        // learning_starts is at least one batch (256 by default): nothing owed yet.
        assert_eq!(det.update(std::time::Duration::from_millis(1)).unwrap(), 0);
        assert!(det.last_metrics.is_none());
        assert_eq!(det.transitions, 3);
        let dir = std::env::temp_dir().join(format!("equigate-monitor-{}", std::process::id()));
        let w = det.map().width() as u32;
        let depth: Vec<u8> =
            (0..w * w).flat_map(|i| (1.0 + i as f32 * 1e-4).to_le_bytes()).collect();
        let image = Image {
            header: Default::default(),
            height: w,
            width: w,
            encoding: "32FC1".into(),
            is_bigendian: 0,
            step: 4 * w,
            data: depth,
        };
        det.write_pngs(&dir, Some(&image)).unwrap();
        assert!(dir.join("lambda_map.png").is_file() && dir.join("depth.png").is_file());
        let small = Image { width: 2, height: 2, step: 8, data: vec![0; 16], ..image };
        assert!(det.write_pngs(&dir, Some(&small)).is_err());
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(det.map().len(), 3);
    }

    #[test]
    fn owed_updates_are_one_per_transition_up_to_the_cap() {
        use burn::backend::{Autodiff, Flex};
        let owed = |max_owed_updates| {
            let config = DetectorNodeConfig {
                learning_starts: 4,
                max_owed_updates,
                ..DetectorNodeConfig::default()
            };
            let mut det =
                OnlineDetector::<Autodiff<Flex>>::new(&config, &Default::default()).unwrap();
            let home = det.model().env().q().to_vec();
            let s = State { q: home, qdot: vec![0.0; 6], goal: Vector3::new(0.4, 0.2, 0.3) };
            for _ in 0..300 {
                det.observe(&s, &[0.3; 6], &s).unwrap();
            }
            det.owed()
        };
        // Learning starts at one batch (256 by default): transitions 256..=300 are owed.
        assert_eq!(owed(1000), 45);
        assert_eq!(owed(10), 10, "the surplus is forgiven");
        let zero = DetectorNodeConfig { max_owed_updates: 0, ..DetectorNodeConfig::default() };
        assert!(zero.validate().is_err());
    }

    #[test]
    fn updates_that_fall_behind_learn_what_updates_on_time_learn() {
        use burn::backend::{Autodiff, Flex};
        let config = DetectorNodeConfig { learning_starts: 4, ..DetectorNodeConfig::default() };
        let new = || OnlineDetector::<Autodiff<Flex>>::new(&config, &Default::default()).unwrap();
        let (mut on_time, mut late) = (new(), new());
        let home = on_time.model().env().q().to_vec();
        let state = |k: usize| {
            let q = home.iter().enumerate().map(|(j, q)| q + 0.01 * ((k * (j + 1)) % 17) as f64);
            State { q: q.collect(), qdot: vec![0.0; 6], goal: Vector3::new(0.4, 0.2, 0.3) }
        };
        let command =
            |k: usize| -> Vec<f64> { (0..6).map(|j| ((k + j) % 5) as f64 * 0.1).collect() };
        let budget = std::time::Duration::from_secs(60);
        // One batch (256) before learning starts, then 6 owed updates.
        for k in 0..261 {
            let (s, c, s2) = (state(k), command(k), state(k + 1));
            on_time.observe(&s, &c, &s2).unwrap();
            on_time.update(budget).unwrap();
            late.observe(&s, &c, &s2).unwrap();
        }
        assert_eq!((on_time.updates(), late.owed()), (6, 6));
        assert_eq!(late.update(budget).unwrap(), 6);
        let probe = (state(3), command(3), state(4));
        assert_eq!(
            on_time.observe(&probe.0, &probe.1, &probe.2).unwrap(),
            late.observe(&probe.0, &probe.1, &probe.2).unwrap(),
            "the gate learned the same"
        );
    }

    #[test]
    fn the_map_is_scored_again_with_the_gate_that_learned() {
        use burn::backend::{Autodiff, Flex};
        let config = DetectorNodeConfig {
            map_capacity: 100,
            learning_starts: 4,
            ..DetectorNodeConfig::default()
        };
        let mut det = OnlineDetector::<Autodiff<Flex>>::new(&config, &Default::default()).unwrap();
        let home = det.model().env().q().to_vec();
        let s = State { q: home, qdot: vec![0.0; 6], goal: Vector3::new(0.4, 0.2, 0.3) };
        let at_arrival = det.observe(&s, &[0.3; 6], &s).unwrap();
        // One pixel holds the same transition 100 times; a batch (256) is needed to learn.
        for _ in 0..299 {
            det.observe(&s, &[0.3; 6], &s).unwrap();
        }
        assert!(!det.rescore_map(), "no update yet: nothing to rescore");
        let pixel = |det: &OnlineDetector<_>| {
            det.map().values().iter().copied().find(|v| !v.is_nan()).unwrap()
        };
        assert_eq!(pixel(&det), at_arrival);
        assert!(det.update(std::time::Duration::from_millis(1)).unwrap() >= 1);
        assert!(det.rescore_map());
        assert!(!det.rescore_map(), "scored with this gate already");
        let rescored = pixel(&det);
        let now = det.observe(&s, &[0.3; 6], &s).unwrap();
        assert_ne!(now, at_arrival, "the gate changed");
        assert_eq!(rescored, now, "every windowed transition has the current gate's λ");
        assert_eq!(det.map().len(), 100);
    }
}
