//! The simulator node's logic, free of DDS so that it is tested directly: settings, the command
//! interface (ros2_control's forward_velocity_controller semantics), stepping in real time or in
//! lockstep, and the messages it publishes. `nodes/sim_node.rs` wires it to topics.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use equigate_robot::{
    camera::{CameraError, DepthCamera, DepthCameraConfig, DEFAULT_OPTICAL_FRAME_ID},
    model::{RobotKind, RobotModel},
    scene::Primitive,
    task::{ReachEnv, TaskConfig, Transition},
};
use equigate_ros::msg::{
    CameraInfo, DiagnosticArray, DiagnosticStatus, Header, Image, JointState, KeyValue,
    PointStamped, Time,
};
use nalgebra::Isometry3;
use serde::{Deserialize, Serialize};

use crate::command::{CommandError, CommandGate};
use crate::{convert, resources};

/// How simulated time advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SimMode {
    /// Simulated time follows the wall clock; the latest command is held at every 500 Hz tick
    /// and goes to zero after `command_timeout_s` (default).
    #[default]
    Realtime,
    /// For training: each command advances the simulator by one control period
    /// (`task.control_period_s`), then the state is published with simulated time on `/clock`.
    Lockstep,
}

/// The sim node's ROS parameters (`sim_node: ros__parameters:` in config/&lt;robot&gt;.yaml).
/// Unknown parameters are rejected, naming the file they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimNodeConfig {
    /// `ur5e` or `fetch` (default: `ur5e`).
    pub robot: RobotKind,
    /// URDF file; empty (default): the shipped `urdf/<robot>.urdf`. Relative paths are looked up
    /// in the working directory, then in the package's share directory.
    pub urdf_path: String,
    /// Reach task file (a [`TaskConfig`] in YAML, laid over the robot's defaults); empty
    /// (default): the robot's defaults, no symmetry breakers.
    pub task_file: String,
    /// Joint order of the commands and of `/joint_states`; empty (default): the robot's order
    /// (e.g. shoulder_pan_joint ... wrist_3_joint). Must name every actuated joint once.
    pub joint_names: Vec<String>,
    /// `realtime` (default) or `lockstep`.
    pub mode: SimMode,
    /// `/joint_states` rate in real-time mode, Hz (default: `125`, as ur_robot_driver's
    /// joint_state_broadcaster). In lockstep mode states follow every command.
    pub joint_states_rate_hz: f64,
    /// Depth image and camera info rate, Hz of simulated time (default: `15`).
    pub camera_rate_hz: f64,
    /// `/goal` rate, Hz (default: `10`); the goal is also published after every reset.
    pub goal_rate_hz: f64,
    /// `/diagnostics` rate, Hz of wall time (default: `1`).
    pub diagnostics_rate_hz: f64,
    /// A command older than this is replaced by zero velocity, s (default: `0.1`, like
    /// ros2_control). Real-time mode only.
    pub command_timeout_s: f64,
    /// Seed of the task's random initial poses and goals (default: `0`).
    pub seed: u64,
    /// Frame of the goal and of the robot (default: `base_link`).
    pub base_frame: String,
    /// Optical frame of the depth camera (default: `depth_camera_optical_frame`).
    pub camera_frame: String,
    /// The top-down depth camera (`camera.width_px`, `camera.height_m`).
    pub camera: DepthCameraConfig,
    /// Accepted because launch files pass it to every node; the sim node is the clock source
    /// in lockstep mode and ignores it.
    pub use_sim_time: bool,
}

impl Default for SimNodeConfig {
    fn default() -> Self {
        Self {
            robot: RobotKind::Ur5e,
            urdf_path: String::new(),
            task_file: String::new(),
            joint_names: Vec::new(),
            mode: SimMode::Realtime,
            joint_states_rate_hz: 125.0,
            camera_rate_hz: 15.0,
            goal_rate_hz: 10.0,
            diagnostics_rate_hz: 1.0,
            command_timeout_s: 0.1,
            seed: 0,
            base_frame: "base_link".into(),
            camera_frame: DEFAULT_OPTICAL_FRAME_ID.into(),
            camera: DepthCameraConfig::default(),
            use_sim_time: false,
        }
    }
}

impl SimNodeConfig {
    fn validate(&self) -> anyhow::Result<()> {
        for (name, v) in [
            ("joint_states_rate_hz", self.joint_states_rate_hz),
            ("camera_rate_hz", self.camera_rate_hz),
            ("goal_rate_hz", self.goal_rate_hz),
            ("diagnostics_rate_hz", self.diagnostics_rate_hz),
            ("command_timeout_s", self.command_timeout_s),
        ] {
            anyhow::ensure!(v.is_finite() && v > 0.0, "parameter `{name}` must be > 0, got {v}");
        }
        Ok(())
    }
}

/// A fixed-rate schedule on any clock: `due(now)` is true once per period, without drift, and
/// skips periods that were missed instead of bursting.
#[derive(Debug, Clone, Copy)]
pub struct Every {
    period: f64,
    next: f64,
}

impl Every {
    /// First due at time 0.
    pub fn hz(rate: f64) -> Self {
        Self { period: 1.0 / rate, next: 0.0 }
    }

    pub fn due(&mut self, now: f64) -> bool {
        if now + 1e-9 < self.next {
            return false;
        }
        self.next += self.period;
        if self.next <= now {
            self.next = now + self.period;
        }
        true
    }
}

/// The simulator's depth camera with its buffers: renders a [`ReachEnv`]'s scene and arm at the
/// current pose. The sim node and `equigate collect` share it.
pub struct DepthRenderer {
    camera: DepthCamera,
    frame_id: String,
    depth: Vec<f32>,
    link_poses: Vec<Isometry3<f64>>,
    links: Vec<Primitive>,
}

impl DepthRenderer {
    /// The camera `config`, its images and camera info in the optical frame `frame_id`.
    ///
    /// # Errors
    /// An invalid camera config.
    pub fn new(config: DepthCameraConfig, frame_id: &str) -> Result<Self, CameraError> {
        let camera = DepthCamera::new(config)?;
        Ok(Self {
            depth: vec![0.0; camera.pixel_count()],
            camera,
            frame_id: frame_id.to_owned(),
            link_poses: Vec::new(),
            links: Vec::new(),
        })
    }

    /// The camera.
    pub fn camera(&self) -> &DepthCamera {
        &self.camera
    }

    /// Renders `env`'s scene and arm links at its current pose, row-major `[width * width]`,
    /// metres along the optical axis, +Inf where nothing is hit.
    pub fn render(&mut self, env: &ReachEnv) -> &[f32] {
        env.model()
            .collision_primitives_into(env.q(), &mut self.link_poses, &mut self.links)
            .expect("q has the model's length");
        self.camera
            .render(env.scene(), &self.links, &mut self.depth)
            .expect("depth buffer sized for the camera at construction");
        &self.depth
    }

    /// [`DepthRenderer::render`] as a `32FC1` image stamped `stamp`.
    pub fn image(&mut self, env: &ReachEnv, stamp: Time) -> Image {
        let width = self.camera.width() as u32;
        self.render(env);
        convert::depth_image(stamp, &self.frame_id, width, &self.depth)
    }

    /// The camera's intrinsics stamped `stamp`.
    pub fn camera_info(&self, stamp: Time) -> CameraInfo {
        convert::camera_info(stamp, &self.frame_id, &self.camera.camera_info())
    }
}

/// The simulated arm behind the sim node.
pub struct SimServer {
    config: SimNodeConfig,
    env: ReachEnv,
    camera: DepthRenderer,
    gate: CommandGate,
    /// `to_model[i]`: model joint index of configured joint `i`.
    to_model: Vec<usize>,
    model_cmd: Vec<f64>,
    resets: u64,
    collisions: u64,
}

impl SimServer {
    /// Loads the URDF and task, builds the simulator and camera, and resets the first episode.
    ///
    /// # Errors
    /// A malformed or missing URDF or task file (with the file and reason), joint names that do
    /// not match the URDF, or invalid parameters.
    pub fn new(config: SimNodeConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let kind = config.robot;
        let urdf: PathBuf = if config.urdf_path.is_empty() {
            resources::share_dir().join("urdf").join(kind.urdf_file_name())
        } else {
            resources::resolve(&config.urdf_path)
        };
        let model = RobotModel::from_urdf_file(&urdf, kind.base_link(), kind.ee_link())
            .with_context(|| format!("loading the {kind:?} URDF"))?;
        let task_path =
            (!config.task_file.is_empty()).then(|| resources::resolve(&config.task_file));
        let mut task = resources::load_task(kind, task_path.as_deref())?;
        if config.mode == SimMode::Realtime {
            // One env step per 500 Hz tick, so the command can change at every tick.
            task = TaskConfig { control_period_s: task.sim_dt_s, ..task };
        }
        let joint_names: Vec<String> = if config.joint_names.is_empty() {
            model.joint_names().to_vec()
        } else {
            config.joint_names.clone()
        };
        let to_model = joint_order(&model, &joint_names)?;
        let env = ReachEnv::new(model, task, config.seed).context("building the reach task")?;
        let camera = DepthRenderer::new(config.camera, &config.camera_frame)
            .context("parameter `camera`")?;
        let gate = CommandGate::new(joint_names, Duration::from_secs_f64(config.command_timeout_s));
        let dof = to_model.len();
        let mut server = Self {
            config,
            env,
            camera,
            gate,
            to_model,
            model_cmd: vec![0.0; dof],
            resets: 0,
            collisions: 0,
        };
        server.reset();
        Ok(server)
    }

    pub fn config(&self) -> &SimNodeConfig {
        &self.config
    }

    pub fn env(&self) -> &ReachEnv {
        &self.env
    }

    /// Joint names in command / joint_states order.
    pub fn joint_names(&self) -> &[String] {
        self.gate.joint_names()
    }

    /// Simulated time since start, s.
    pub fn sim_time(&self) -> f64 {
        self.env.sim().time()
    }

    /// Simulator tick, s (default 0.002).
    pub fn dt(&self) -> f64 {
        self.env.config().sim_dt_s
    }

    /// Takes a velocity command (rad/s, configured joint order) received at wall time `now` (s).
    ///
    /// # Errors
    /// Wrong length or a non-finite value: the command is ignored and counted.
    pub fn on_command(&mut self, values: &[f64], now: f64) -> Result<(), CommandError> {
        self.gate.accept(values, now)
    }

    /// Real time: one simulator tick with the current command (zero when stale).
    /// Returns whether the command was fresh.
    pub fn tick(&mut self, now: f64) -> bool {
        let (cmd, fresh) = self.gate.current(now);
        for (i, &m) in self.to_model.iter().enumerate() {
            self.model_cmd[m] = cmd[i];
        }
        self.step_model_cmd();
        fresh
    }

    /// Lockstep: validates `values` (rad/s, configured joint order) and holds it for one control
    /// period. An invalid command is counted and the period runs at zero velocity, so a learner
    /// waiting for the next state never deadlocks.
    ///
    /// # Errors
    /// The reason the command was replaced by zero velocity.
    pub fn step_lockstep(&mut self, values: &[f64]) -> Result<Transition, CommandError> {
        let checked = self.gate.accept(values, self.sim_time());
        let (cmd, _) = self.gate.current(self.sim_time());
        for (i, &m) in self.to_model.iter().enumerate() {
            self.model_cmd[m] = if checked.is_ok() { cmd[i] } else { 0.0 };
        }
        let transition = self.step_model_cmd();
        checked.map(|()| transition)
    }

    fn step_model_cmd(&mut self) -> Transition {
        let cmd = std::mem::take(&mut self.model_cmd);
        let t = self.env.step(&cmd).expect("command validated: one finite value per joint");
        self.model_cmd = cmd;
        self.collisions += u64::from(t.collided);
        t
    }

    /// Starts a new episode (new initial pose and goal from the seeded task) and forgets the
    /// current command. Returns a one-line description for the reset service's reply.
    pub fn reset(&mut self) -> String {
        self.env.reset();
        self.gate.clear();
        self.resets += 1;
        let g = self.env.goal();
        format!(
            "episode {}: goal ({:.3}, {:.3}, {:.3}) m in {}",
            self.resets, g.x, g.y, g.z, self.config.base_frame
        )
    }

    /// `/joint_states` in the configured joint order.
    pub fn joint_state(&self, stamp: Time) -> JointState {
        let (q, qdot) = (self.env.q(), self.env.qdot());
        let pick = |v: &[f64]| self.to_model.iter().map(|&m| v[m]).collect::<Vec<_>>();
        convert::joint_state(stamp, self.joint_names(), &pick(q), &pick(qdot))
    }

    /// Renders the depth camera (scene and the arm's links at the current pose), row-major
    /// `[width * width]`, metres along the optical axis, +Inf where nothing is hit.
    pub fn render_depth(&mut self) -> &[f32] {
        self.camera.render(&self.env)
    }

    /// The depth image (`32FC1`) of the current state.
    pub fn depth_image(&mut self, stamp: Time) -> Image {
        self.camera.image(&self.env, stamp)
    }

    pub fn camera_info(&self, stamp: Time) -> CameraInfo {
        self.camera.camera_info(stamp)
    }

    /// The current goal in the base frame, m.
    pub fn goal(&self, stamp: Time) -> PointStamped {
        convert::point_stamped(stamp, &self.config.base_frame, &self.env.goal())
    }

    /// A one-line summary for the log: simulated time, distance to the goal, command counters.
    pub fn status_line(&self, fresh: bool) -> String {
        let s = self.gate.stats();
        format!(
            "t = {:.1} s, end effector {:.3} m from the goal, commands: {} accepted, {} rejected, {}",
            self.sim_time(),
            (self.env.goal() - self.env.ee()).norm(),
            s.accepted,
            s.rejected_length + s.rejected_not_finite,
            if fresh { "streaming" } else { "none fresh (zero velocity)" },
        )
    }

    /// One status with the command counters; WARN while commands are being rejected or stale.
    pub fn diagnostics(&self, stamp: Time, fresh: bool) -> DiagnosticArray {
        let s = self.gate.stats();
        let rejected = s.rejected_length + s.rejected_not_finite;
        let (level, message) = match (rejected, fresh) {
            (0, true) => (DiagnosticStatus::OK, "commands fresh".to_owned()),
            (0, false) => {
                (DiagnosticStatus::OK, "no fresh command: holding zero velocity".to_owned())
            }
            (n, _) => (DiagnosticStatus::WARN, format!("{n} commands rejected")),
        };
        let kv = |k: &str, v: String| KeyValue { key: k.into(), value: v };
        DiagnosticArray {
            header: Header::new(stamp, ""),
            status: vec![DiagnosticStatus {
                level,
                name: "equigate: sim_node".into(),
                message,
                hardware_id: format!("{:?}", self.config.robot).to_lowercase(),
                values: vec![
                    kv("mode", format!("{:?}", self.config.mode).to_lowercase()),
                    kv("sim_time_s", format!("{:.3}", self.sim_time())),
                    kv("commands_accepted", s.accepted.to_string()),
                    kv("commands_rejected_length", s.rejected_length.to_string()),
                    kv("commands_rejected_not_finite", s.rejected_not_finite.to_string()),
                    kv("command_timeouts", s.timeouts.to_string()),
                    kv("resets", self.resets.to_string()),
                    kv("blocked_steps", self.collisions.to_string()),
                ],
            }],
        }
    }
}

/// Maps configured joint names to model indices.
///
/// # Errors
/// A name the URDF's chain does not have, a repeated name, or a missing joint.
fn joint_order(model: &RobotModel, names: &[String]) -> anyhow::Result<Vec<usize>> {
    let mut seen = vec![false; model.dof()];
    let mut order = Vec::with_capacity(names.len());
    for name in names {
        let i = model.joint_index(name).with_context(|| {
            format!(
                "parameter `joint_names`: unknown joint `{name}` (the URDF has: {})",
                model.joint_names().join(", ")
            )
        })?;
        anyhow::ensure!(!seen[i], "parameter `joint_names`: joint `{name}` appears twice");
        seen[i] = true;
        order.push(i);
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        anyhow::bail!(
            "parameter `joint_names`: joint `{}` is missing",
            model.joint_names()[missing]
        );
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(mode: SimMode) -> SimServer {
        SimServer::new(SimNodeConfig { mode, ..Default::default() }).unwrap()
    }

    fn pan(s: &SimServer) -> f64 {
        s.joint_state(Time::default()).position[0]
    }

    #[test]
    fn realtime_holds_the_command_then_stops_after_the_timeout() {
        let mut s = server(SimMode::Realtime);
        let q0 = pan(&s);
        s.on_command(&[0.5, 0.0, 0.0, 0.0, 0.0, 0.0], 0.0).unwrap();
        // 0.1 s of ticks at 500 Hz with a fresh command: the pan joint turns 0.05 rad.
        let mut t = 0.0;
        for _ in 0..50 {
            t += s.dt();
            assert!(s.tick(t));
        }
        assert!((pan(&s) - q0 - 0.5 * 50.0 * s.dt()).abs() < 1e-9, "moved {}", pan(&s) - q0);
        // Stale from here on: zero velocity, the arm stays put.
        let q1 = pan(&s);
        for _ in 0..100 {
            t += s.dt();
            s.tick(t + 0.2);
        }
        assert_eq!(pan(&s), q1);
        assert!(s.joint_state(Time::default()).velocity.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn bad_commands_are_rejected_and_counted() {
        let mut s = server(SimMode::Realtime);
        assert!(matches!(s.on_command(&[1.0; 5], 0.0), Err(CommandError::LengthMismatch { .. })));
        assert!(matches!(s.on_command(&[f64::NAN; 6], 0.0), Err(CommandError::NotFinite { .. })));
        let d = s.diagnostics(Time::default(), false);
        assert_eq!(d.status[0].level, DiagnosticStatus::WARN);
        assert!(d.status[0]
            .values
            .iter()
            .any(|kv| kv.key == "commands_rejected_length" && kv.value == "1"));
    }

    #[test]
    fn lockstep_advances_one_control_period_per_command_and_zero_on_bad_input() {
        let mut s = server(SimMode::Lockstep);
        let period = s.env().config().control_period_s;
        let q0 = pan(&s);
        s.step_lockstep(&[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]).unwrap();
        assert!((s.sim_time() - period).abs() < 1e-12);
        assert!((pan(&s) - q0 - period).abs() < 1e-9);
        let q1 = pan(&s);
        assert!(s.step_lockstep(&[1.0, f64::INFINITY, 0.0, 0.0, 0.0, 0.0]).is_err());
        assert!((s.sim_time() - 2.0 * period).abs() < 1e-12, "time advances anyway");
        assert_eq!(pan(&s), q1, "a rejected command runs the period at zero velocity");
    }

    #[test]
    fn commands_and_states_follow_the_configured_joint_order() {
        let mut names: Vec<String> =
            RobotKind::Ur5e.joint_names().iter().map(|s| s.to_string()).collect();
        names.reverse();
        let cfg = SimNodeConfig {
            joint_names: names.clone(),
            mode: SimMode::Lockstep,
            ..Default::default()
        };
        let mut s = SimServer::new(cfg).unwrap();
        let before = s.env().q()[0];
        s.step_lockstep(&[0.0, 0.0, 0.0, 0.0, 0.0, 1.0]).unwrap(); // last = shoulder_pan_joint
        assert!(s.env().q()[0] > before);
        let js = s.joint_state(Time::default());
        assert_eq!(js.name, names);
        assert_eq!(js.position[5], s.env().q()[0]);
    }

    #[test]
    fn wrong_joint_names_and_bad_files_fail_at_start_naming_the_cause() {
        let err =
            |cfg: SimNodeConfig| format!("{:#}", SimServer::new(cfg).err().expect("must fail"));
        let unknown =
            err(SimNodeConfig { joint_names: vec!["elbow".into()], ..Default::default() });
        assert!(unknown.contains("unknown joint `elbow`"), "{unknown}");
        let missing =
            err(SimNodeConfig { urdf_path: "/nonexistent/arm.urdf".into(), ..Default::default() });
        assert!(missing.contains("/nonexistent/arm.urdf"), "{missing}");
        let rate = err(SimNodeConfig { camera_rate_hz: 0.0, ..Default::default() });
        assert!(rate.contains("camera_rate_hz"), "{rate}");
    }

    #[test]
    fn depth_image_and_camera_info_describe_the_same_camera() {
        let mut s = server(SimMode::Realtime);
        let img = s.depth_image(Time::default());
        let info = s.camera_info(Time::default());
        assert_eq!((img.width, img.height), (info.width, info.height));
        assert_eq!(img.header.frame_id, info.header.frame_id);
        assert!((info.k[0] - 55.4256).abs() < 1e-4);
        let depth: Vec<f32> =
            img.data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        // The floor is 2 m below the camera; the arm is closer wherever it is seen.
        assert!(depth.iter().all(|d| *d > 0.0 && *d <= 2.0 + 1e-6), "depths in (0, 2] m");
        assert!(depth.iter().any(|d| *d < 1.9), "the arm is visible");
    }

    #[test]
    fn every_runs_once_per_period_without_bursts() {
        let mut e = Every::hz(10.0);
        let fired: Vec<bool> =
            [0.0, 0.05, 0.1, 0.15, 0.2, 0.95, 0.96, 1.05].iter().map(|&t| e.due(t)).collect();
        assert_eq!(fired, [true, false, true, false, true, true, false, true]);
    }
}
