//! The reach task: move the end-effector to a goal point, by joint-velocity commands, in a scene
//! whose symmetry-breaking factors (table, boxes, a sector-local actuator fault) are set in
//! [`TaskConfig`].
//!
//! # Symmetry
//! The group is rotation about the shoulder-pan axis (vertical in `base_link`), C_n inside SO(2)
//! (reference/algorithms.md §4). Turning the world (goal, obstacles) by θ about that axis and
//! shifting the pan angle q1 by θ turns the whole arm by θ (exact for both shipped robots: the pan
//! axis is vertical and only the torso, a vertical slide, lies before it on the Fetch). Joint
//! velocities and the action are invariant.
//!
//! Positions in the observation are measured from the pan axis: x and y are relative to the axis'
//! point in the base xy plane ([`ReachEnv::pan_axis_xy`]: `(0, 0)` for the UR5e,
//! `(0.03265, 0)` for the Fetch, whose pan axis sits ahead of `base_link`'s origin), z is
//! `base_link`'s z. With that choice every xy pair of the observation turns by the plain 2D
//! rotation of θ; see [`observation_layout`] and [`act_on_obs`].
//!
//! # Episodes
//! One control step holds the action for `control_period_s` (default 0.04 s = 25 Hz, as in
//! FetchReach: 20 simulator ticks of 2 ms). An episode `terminated` on success (the end-effector
//! within `success_threshold_m` of the goal) and is `truncated` after `max_episode_steps` control
//! steps without success; the two are never both true.

use std::f64::consts::{PI, TAU};
use std::sync::Arc;

use nalgebra::{Isometry3, Translation3, Vector2, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::model::{ModelError, Motion, RobotKind, RobotModel};
use crate::scene::{Primitive, Scene};
use crate::sim::{KinematicSim, SimConfig, SimError, StepInfo};

/// Where goals are sampled: an annulus sector about the pan axis, between two heights.
/// Radii are uniform in area, angles uniform, heights uniform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GoalRegion {
    /// Inner radius from the pan axis, m (default: `0.3`).
    pub radius_min_m: f64,
    /// Outer radius from the pan axis, m (default: `0.7`; the UR5e reaches about 0.85 m).
    pub radius_max_m: f64,
    /// Lowest goal height in `base_link`, m (default: `0.05`).
    pub z_min_m: f64,
    /// Highest goal height in `base_link`, m (default: `0.6`).
    pub z_max_m: f64,
    /// Start of the goal azimuth range about the pan axis, rad from base +x, counter-clockwise
    /// (default: `-pi`).
    pub angle_min_rad: f64,
    /// End of the goal azimuth range, rad (default: `pi`; the full circle keeps the goal
    /// distribution rotation invariant).
    pub angle_max_rad: f64,
}

impl Default for GoalRegion {
    fn default() -> Self {
        Self {
            radius_min_m: 0.3,
            radius_max_m: 0.7,
            z_min_m: 0.05,
            z_max_m: 0.6,
            angle_min_rad: -PI,
            angle_max_rad: PI,
        }
    }
}

impl GoalRegion {
    /// The default region for a robot: [`GoalRegion::default`] for the UR5e; for the Fetch radii
    /// 0.4..0.9 m, heights 0.5..1.1 m and azimuths -pi/2..pi/2 (its pan joint turns only
    /// +-92 degrees, so goals behind it are out of reach).
    pub fn for_robot(kind: RobotKind) -> Self {
        match kind {
            RobotKind::Ur5e => Self::default(),
            RobotKind::Fetch => Self {
                radius_min_m: 0.4,
                radius_max_m: 0.9,
                z_min_m: 0.5,
                z_max_m: 1.1,
                angle_min_rad: -PI / 2.0,
                angle_max_rad: PI / 2.0,
            },
        }
    }
}

/// A table top: a slab whose top face is at `top_z_m`, axis-aligned in `base_link`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableConfig {
    /// Centre of the top in base x, y, m (default: `[0.6, 0.0]`, in front of the robot).
    pub center_xy_m: [f64; 2],
    /// Half sizes along base x, y, m (default: `[0.3, 0.5]`).
    pub half_size_xy_m: [f64; 2],
    /// Height of the top face, m (default: `0.1`).
    pub top_z_m: f64,
    /// Thickness of the slab, m (default: `0.05`; legs are not modelled).
    pub thickness_m: f64,
}

impl Default for TableConfig {
    fn default() -> Self {
        Self {
            center_xy_m: [0.6, 0.0],
            half_size_xy_m: [0.3, 0.5],
            top_z_m: 0.1,
            thickness_m: 0.05,
        }
    }
}

impl TableConfig {
    /// The table as a scene primitive.
    pub fn primitive(&self) -> Primitive {
        Primitive::table(
            Vector2::from(self.center_xy_m),
            Vector2::from(self.half_size_xy_m),
            self.top_z_m,
            self.thickness_m,
        )
    }
}

/// A box obstacle in `base_link`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BoxConfig {
    /// Centre, m (default: `[0.5, 0.3, 0.15]`).
    pub center_m: [f64; 3],
    /// Half extents along the box's own axes, m (default: `[0.05, 0.05, 0.15]`).
    pub half_extents_m: [f64; 3],
    /// Turn about base z, rad (default: `0`).
    pub yaw_rad: f64,
}

impl Default for BoxConfig {
    fn default() -> Self {
        Self { center_m: [0.5, 0.3, 0.15], half_extents_m: [0.05, 0.05, 0.15], yaw_rad: 0.0 }
    }
}

impl BoxConfig {
    /// The box as a scene primitive.
    pub fn primitive(&self) -> Primitive {
        Primitive::cuboid(
            Vector3::from(self.center_m),
            Vector3::from(self.half_extents_m),
            self.yaw_rad,
        )
    }
}

/// A sector-local actuator fault: while the pan angle q1 lies in `[start_rad, end_rad)` (taken
/// modulo 2 pi, counter-clockwise from start to end) at the start of a control step, the whole
/// action of that step is multiplied by `scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Sector start, rad (default: `0`).
    pub start_rad: f64,
    /// Sector end, rad (default: `pi/2`). `end - start >= 2 pi` means everywhere.
    pub end_rad: f64,
    /// Action factor inside the sector (default: `-1`, a sign flip; `0.3` a weak actuator).
    pub scale: f64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self { start_rad: 0.0, end_rad: PI / 2.0, scale: -1.0 }
    }
}

impl FaultConfig {
    /// Whether pan angle `q1` (rad) lies in the sector.
    pub fn contains(&self, q1: f64) -> bool {
        let width = self.end_rad - self.start_rad;
        if width >= TAU {
            return true;
        }
        (q1 - self.start_rad).rem_euclid(TAU) < width.rem_euclid(TAU)
    }
}

/// Margins of the symmetry-breaking ground truth ([`ReachEnv::breaking_region`]).
///
/// Both default to 0, which makes the truth exact: a step is broken when its own outcome differs
/// from the free, rotation-equivariant motion (blocked by a collision, clamped at the pan limit,
/// scaled by the fault). The simulator is kinematic, so a step that passes close to an obstacle
/// without touching it moves exactly as its rotated copies do; a positive margin widens the truth
/// into a safety zone whose steps are still symmetric, which no detector of the dynamics (and
/// no gate) can or should flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakingConfig {
    /// A moving link closer than this to an obstacle or the table counts as breaking, m
    /// (default: `0.0`: only steps that collide).
    pub obstacle_margin_m: f64,
    /// Extra margin to the pan joint's position limits, rad (default: `0.0`: only steps that
    /// reach the limit).
    pub pan_limit_margin_rad: f64,
}

impl Default for BreakingConfig {
    fn default() -> Self {
        Self { obstacle_margin_m: 0.0, pan_limit_margin_rad: 0.0 }
    }
}

/// Everything about the reach task. Every symmetry-breaking factor (table, boxes, fault) is off
/// by default. Loaded from YAML with unknown keys rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskConfig {
    /// Time one action is held, s (default: `0.04`, 25 Hz).
    pub control_period_s: f64,
    /// Simulator tick, s (default: `0.002`, 500 Hz). The control period is rounded to a whole
    /// number of ticks.
    pub sim_dt_s: f64,
    /// Joint acceleration limit, rad/s² or m/s² (default: none).
    pub max_acceleration: Option<f64>,
    /// Control steps before truncation (default: `100`, 4 s).
    pub max_episode_steps: usize,
    /// Goal sampling region (default: [`GoalRegion::default`]).
    pub goal: GoalRegion,
    /// Success distance between end-effector and goal, m (default: `0.05`).
    pub success_threshold_m: f64,
    /// Reward added on success (default: `1.0`).
    pub success_bonus: f64,
    /// Reward subtracted when a step was blocked by a collision (default: `1.0`).
    pub collision_penalty: f64,
    /// Initial pose; `None` (default): the robot's [`RobotKind::home`] if its joints are those of
    /// a shipped robot, else all zeros clamped to the limits. Length = number of joints.
    pub home: Option<Vec<f64>>,
    /// Sample the initial pan angle uniformly over `[max(lower, -pi), min(upper, pi))` so the
    /// initial-state distribution is rotation invariant (default: `true`).
    pub random_initial_pan: bool,
    /// Uniform noise half-width added to the other joints' home positions at reset, rad or m
    /// (default: `0.1`).
    pub initial_noise: f64,
    /// Table top (default: none).
    pub table: Option<TableConfig>,
    /// Box obstacles (default: none).
    pub boxes: Vec<BoxConfig>,
    /// Sector-local actuator fault (default: none).
    pub fault: Option<FaultConfig>,
    /// Margins of the breaking-region ground truth.
    pub breaking: BreakingConfig,
    /// Declared half-range of the `goal_minus_ee` observation features for the learners'
    /// observation scaling, m: the vector is divided by it (default: none: twice the arm's reach
    /// bound, about 2.6 m on the UR5e, so a 5 cm miss reads as 0.02). A value near the spread of
    /// the initial goal error lets the networks resolve the last centimetres:
    /// `ur5e_reach_obstacles.yaml` declares 0.5 m, where that error is about 0.6 m long on
    /// average and 0.4 m RMS per component (what a per-feature standardisation would divide by).
    /// Stored with every run, so a checkpoint is read with the scaling it was trained with.
    pub goal_error_range_m: Option<f64>,
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self {
            control_period_s: 0.04,
            sim_dt_s: 0.002,
            max_acceleration: None,
            max_episode_steps: 100,
            goal: GoalRegion::default(),
            success_threshold_m: 0.05,
            success_bonus: 1.0,
            collision_penalty: 1.0,
            home: None,
            random_initial_pan: true,
            initial_noise: 0.1,
            table: None,
            boxes: Vec::new(),
            fault: None,
            breaking: BreakingConfig::default(),
            goal_error_range_m: None,
        }
    }
}

impl TaskConfig {
    /// Defaults with the goal region of [`GoalRegion::for_robot`].
    pub fn for_robot(kind: RobotKind) -> Self {
        Self { goal: GoalRegion::for_robot(kind), ..Self::default() }
    }

    /// The static scene: floor at z = 0, then the table (if any), then the boxes in order.
    pub fn scene(&self) -> Scene {
        let mut obstacles: Vec<Primitive> = self.table.iter().map(TableConfig::primitive).collect();
        obstacles.extend(self.boxes.iter().map(BoxConfig::primitive));
        Scene { floor_z: Some(0.0), obstacles }
    }

    /// Checks values that would make the task meaningless.
    ///
    /// # Errors
    /// [`TaskError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(TaskError::InvalidConfig(what.to_owned()));
        let g = &self.goal;
        if !(self.sim_dt_s > 0.0 && self.control_period_s >= self.sim_dt_s) {
            return bad("need 0 < sim_dt_s <= control_period_s");
        }
        if self.max_episode_steps == 0 {
            return bad("max_episode_steps must be >= 1");
        }
        if !(0.0 <= g.radius_min_m && g.radius_min_m <= g.radius_max_m) {
            return bad("need 0 <= goal.radius_min_m <= goal.radius_max_m");
        }
        if !(g.z_min_m <= g.z_max_m && g.angle_min_rad <= g.angle_max_rad) {
            return bad(
                "need goal.z_min_m <= goal.z_max_m and goal.angle_min_rad <= angle_max_rad",
            );
        }
        if self.success_threshold_m.is_nan() || self.success_threshold_m <= 0.0 {
            return bad("success_threshold_m must be > 0");
        }
        if self.initial_noise.is_nan() || self.initial_noise < 0.0 {
            return bad("initial_noise must be >= 0");
        }
        if !(self.breaking.obstacle_margin_m >= 0.0 && self.breaking.pan_limit_margin_rad >= 0.0) {
            return bad("breaking margins must be >= 0");
        }
        if let Some(r) = self.goal_error_range_m {
            if !(r.is_finite() && r > 0.0) {
                return bad("goal_error_range_m must be finite and > 0");
            }
        }
        if let Some(f) = &self.fault {
            if !(f.scale.is_finite() && f.start_rad.is_finite() && f.end_rad.is_finite()) {
                return bad("fault values must be finite");
            }
        }
        self.scene().validate().map_err(|e| TaskError::InvalidConfig(format!("scene: {e}")))
    }
}

/// Why a task call was refused.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("invalid task config: {0}")]
    InvalidConfig(String),
    /// The model has no revolute joint to act as the pan joint.
    #[error("the model has no revolute joint to serve as the pan (symmetry) joint")]
    NoPanJoint,
    /// The pan joint's axis is not base +z at the home pose, so rotation about it is not a
    /// rotation about a vertical line.
    #[error("pan joint `{joint}` turns about {axis:?} in base_link, not +z")]
    PanAxisNotVertical { joint: String, axis: [f64; 3] },
    /// A goal with a NaN or infinite coordinate.
    #[error("goal {0:?} is not finite")]
    NonFiniteGoal([f64; 3]),
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Result alias for this module.
pub type Result<T, E = TaskError> = std::result::Result<T, E>;

/// How the group acts on a block of features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// A 2-vector turned by the rotation matrix of θ (the representation ρ1).
    Rotation2,
    /// Unchanged (the trivial representation), any length.
    Invariant,
}

/// A named block of the observation or action vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    pub kind: FieldKind,
    /// First index in the vector.
    pub offset: usize,
    /// Number of entries: 2 for [`FieldKind::Rotation2`].
    pub len: usize,
}

/// The observation layout for `dof` joints, in order:
///
/// | name | kind | len |
/// |---|---|---|
/// | `pan_cos_sin` | Rotation2 | 2 (cos q1, sin q1) |
/// | `q_other` | Invariant | dof - 1 (all joints but the pan, in joint order) |
/// | `qdot` | Invariant | dof (all joint velocities) |
/// | `ee_xy`, `ee_z` | Rotation2, Invariant | 2, 1 (relative to the pan axis in xy) |
/// | `goal_xy`, `goal_z` | Rotation2, Invariant | 2, 1 (idem) |
/// | `goal_minus_ee_xy`, `goal_minus_ee_z` | Rotation2, Invariant | 2, 1 |
///
/// Total length `2 * dof + 10` (22 for the UR5e, 26 for the Fetch).
pub fn observation_layout(dof: usize) -> Vec<Field> {
    use FieldKind::{Invariant, Rotation2};
    let blocks = [
        ("pan_cos_sin", Rotation2, 2),
        ("q_other", Invariant, dof - 1),
        ("qdot", Invariant, dof),
        ("ee_xy", Rotation2, 2),
        ("ee_z", Invariant, 1),
        ("goal_xy", Rotation2, 2),
        ("goal_z", Invariant, 1),
        ("goal_minus_ee_xy", Rotation2, 2),
        ("goal_minus_ee_z", Invariant, 1),
    ];
    let mut offset = 0;
    blocks
        .into_iter()
        .map(|(name, kind, len)| {
            let field = Field { name: name.to_owned(), kind, offset, len };
            offset += len;
            field
        })
        .collect()
}

/// The action layout: one invariant block `qdot_cmd` of `dof` joint velocities (rad/s or m/s).
pub fn action_layout(dof: usize) -> Vec<Field> {
    vec![Field { name: "qdot_cmd".to_owned(), kind: FieldKind::Invariant, offset: 0, len: dof }]
}

/// `obs` transformed by the rotation of `theta` (rad, counter-clockwise seen from above): every
/// [`FieldKind::Rotation2`] pair turned, everything else copied.
///
/// # Shapes
/// `obs: [layout total]` -> `[layout total]`.
pub fn act_on_obs(layout: &[Field], theta: f64, obs: &[f64]) -> Vec<f64> {
    let (s, c) = theta.sin_cos();
    let mut out = obs.to_vec();
    for f in layout.iter().filter(|f| f.kind == FieldKind::Rotation2) {
        let (x, y) = (obs[f.offset], obs[f.offset + 1]);
        out[f.offset] = c * x - s * y;
        out[f.offset + 1] = s * x + c * y;
    }
    out
}

/// A full task state: what [`ReachEnv::breaking_region`] judges.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Joint positions, rad or m.
    pub q: Vec<f64>,
    /// Joint velocities, rad/s or m/s.
    pub qdot: Vec<f64>,
    /// Goal in `base_link`, m.
    pub goal: Vector3<f64>,
}

/// What one control step produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// Observation after the step (layout [`ReachEnv::layout`]).
    pub obs: Vec<f64>,
    /// `-‖ee − goal‖ + success_bonus·success − collision_penalty·collided`.
    pub reward: f64,
    /// The end-effector is within `success_threshold_m` of the goal.
    pub terminated: bool,
    /// The episode reached `max_episode_steps` without success.
    pub truncated: bool,
    /// At least one tick of the step was blocked by a collision.
    pub collided: bool,
    /// The step's state and action were in the symmetry-breaking region
    /// ([`ReachEnv::breaking_region`]).
    pub in_breaking_region: bool,
    /// Distance end-effector to goal after the step, m.
    pub distance: f64,
}

/// The reach environment: a [`KinematicSim`], a goal, and the episode bookkeeping.
#[derive(Debug, Clone)]
pub struct ReachEnv {
    sim: KinematicSim,
    config: TaskConfig,
    rng: ChaCha8Rng,
    layout: Vec<Field>,
    home: Vec<f64>,
    /// Index of the pan joint in `q`.
    pan: usize,
    /// Where the pan axis crosses the base xy plane, m.
    pan_axis_xy: Vector2<f64>,
    ticks_per_step: usize,
    goal: Vector3<f64>,
    steps: usize,
}

impl ReachEnv {
    /// A new environment; call [`ReachEnv::reset`] before stepping (until then the arm is at home
    /// and the goal at the pan axis' foot). The pan joint is the first revolute joint of the
    /// chain. All randomness comes from a ChaCha8 generator seeded with `seed`.
    ///
    /// # Errors
    /// [`TaskError::InvalidConfig`], [`TaskError::NoPanJoint`], [`TaskError::PanAxisNotVertical`],
    /// and simulator errors for a bad `home`.
    pub fn new(model: impl Into<Arc<RobotModel>>, config: TaskConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let model: Arc<RobotModel> = model.into();
        let n = model.dof();
        let (pan, pan_axis) = model
            .segments()
            .iter()
            .find_map(|s| match (s.motion, s.dof) {
                (Motion::Revolute { axis }, Some(i)) => Some((i, axis)),
                _ => None,
            })
            .ok_or(TaskError::NoPanJoint)?;
        let home = match &config.home {
            Some(h) => h.clone(),
            None => RobotKind::matching(&model)
                .map(RobotKind::home)
                .unwrap_or_else(|| model.limits().iter().map(|l| l.clamp_position(0.0)).collect()),
        };
        let frame = model.joint_frame(&home, pan)?.expect("pan < dof, found among the segments");
        let axis = frame.rotation * pan_axis.into_inner();
        if (axis - Vector3::z()).norm() > 1e-9 {
            return Err(TaskError::PanAxisNotVertical {
                joint: model.joint_names()[pan].clone(),
                axis: [axis.x, axis.y, axis.z],
            });
        }
        let pan_axis_xy = frame.translation.vector.xy();
        let sim_config =
            SimConfig { dt: config.sim_dt_s, max_acceleration: config.max_acceleration };
        let mut sim = KinematicSim::new(model, sim_config)?;
        sim.set_scene(config.scene());
        sim.set_state(&home, &vec![0.0; n])?;
        let ticks_per_step = sim.ticks_per(config.control_period_s);
        Ok(Self {
            sim,
            rng: ChaCha8Rng::seed_from_u64(seed),
            layout: observation_layout(n),
            home,
            pan,
            pan_axis_xy,
            ticks_per_step,
            goal: Vector3::new(pan_axis_xy.x, pan_axis_xy.y, 0.0),
            steps: 0,
            config,
        })
    }

    /// The shipped UR5e with `config`.
    pub fn ur5e(config: TaskConfig, seed: u64) -> Result<Self> {
        Self::new(RobotModel::ur5e()?, config, seed)
    }

    /// The shipped Fetch with `config`.
    pub fn fetch(config: TaskConfig, seed: u64) -> Result<Self> {
        Self::new(RobotModel::fetch()?, config, seed)
    }

    /// Starts an episode: a new initial pose (home, pan angle uniform if configured, noise on the
    /// other joints; resampled up to 100 times while it collides, then home), zero velocity, a new
    /// goal (resampled up to 100 times while it lies inside an obstacle). Returns the observation.
    pub fn reset(&mut self) -> Vec<f64> {
        let model = Arc::clone(self.sim.model());
        let zeros = vec![0.0; model.dof()];
        let mut start = self.home.clone();
        for _ in 0..100 {
            let q = self.sample_initial_q(&model);
            if !self.sim.collides_at(&q).expect("sampled q has the model's length") {
                start = q;
                break;
            }
        }
        self.sim.set_state(&start, &zeros).expect("start is home or a clamped sample: in limits");
        self.goal = self.sample_goal();
        self.steps = 0;
        self.observation()
    }

    fn sample_initial_q(&mut self, model: &RobotModel) -> Vec<f64> {
        let noise = self.config.initial_noise;
        let mut q: Vec<f64> = self
            .home
            .iter()
            .zip(model.limits())
            .map(|(&h, l)| {
                let x = if noise > 0.0 { h + self.rng.random_range(-noise..noise) } else { h };
                l.clamp_position(x)
            })
            .collect();
        if self.config.random_initial_pan {
            let l = model.limits()[self.pan];
            q[self.pan] = self.rng.random_range(l.lower.max(-PI)..l.upper.min(PI));
        }
        q
    }

    fn sample_goal(&mut self) -> Vector3<f64> {
        let g = self.config.goal.clone();
        let mut goal = Vector3::zeros();
        for _ in 0..100 {
            let r2 = uniform(&mut self.rng, g.radius_min_m.powi(2), g.radius_max_m.powi(2));
            let angle = uniform(&mut self.rng, g.angle_min_rad, g.angle_max_rad);
            let z = uniform(&mut self.rng, g.z_min_m, g.z_max_m);
            let (s, c) = angle.sin_cos();
            let r = r2.sqrt();
            goal = Vector3::new(self.pan_axis_xy.x + r * c, self.pan_axis_xy.y + r * s, z);
            let marker = Primitive::sphere(goal, 0.5 * self.config.success_threshold_m);
            if !self.sim.scene().intersects(&marker) {
                break;
            }
        }
        goal
    }

    /// One control step: the action (joint velocities, rad/s or m/s, one per joint; scaled by
    /// the fault if the pan angle is in its sector) is held for `control_period_s`.
    ///
    /// # Errors
    /// [`TaskError::Sim`] for a wrong length or a non-finite value; nothing changes then.
    pub fn step(&mut self, action: &[f64]) -> Result<Transition> {
        let before = self.state();
        let command = self.faulty_action(&before.q, action);
        let info = self.sim.advance(&command, self.ticks_per_step)?;
        let in_breaking_region = self.fault_active(&before.q)
            || info.collided
            || self.near_obstacle(&before.q)?
            || self.near_pan_limit(&before.q, &command);
        self.steps += 1;
        let distance = (self.goal - self.ee()).norm();
        let terminated = distance < self.config.success_threshold_m;
        let truncated = !terminated && self.steps >= self.config.max_episode_steps;
        let reward = -distance + if terminated { self.config.success_bonus } else { 0.0 }
            - if info.collided { self.config.collision_penalty } else { 0.0 };
        Ok(Transition {
            obs: self.observation(),
            reward,
            terminated,
            truncated,
            collided: info.collided,
            in_breaking_region,
            distance,
        })
    }

    /// Ground truth of where the rotation symmetry is broken, for state `state` and action
    /// `action` (joint velocities). True when any of:
    /// 1. a fault is configured with `scale != 1` and the pan angle q1 lies in its sector;
    /// 2. the control step from `state` with `action` (after the fault) would be blocked by a
    ///    collision in at least one tick;
    /// 3. a moving link's collision primitive at `state.q` is closer than
    ///    `breaking.obstacle_margin_m` to an obstacle (the table's top and edges included; never
    ///    with the default margin 0, see [`BreakingConfig`]);
    /// 4. the pan joint is not continuous and the pan angle comes within `pan_limit_margin_rad`
    ///    of a position limit during the step: with `q1_end = q1 + clamp(a1, ±velocity limit) *
    ///    control_period_s` (a1 after the fault, the position limit ignored),
    ///    `min(q1, q1_end) - margin < lower` or `max(q1, q1_end) + margin > upper`.
    ///
    /// Otherwise the step's outcome commutes with the rotation: the goal plays no part.
    ///
    /// # Errors
    /// [`TaskError::Sim`] for wrong lengths or non-finite values.
    pub fn breaking_region(&self, state: &State, action: &[f64]) -> Result<bool> {
        let mut sim = self.sim.clone();
        sim.set_state(&state.q, &state.qdot)?;
        let command = self.faulty_action(&state.q, action);
        let info: StepInfo = sim.advance(&command, self.ticks_per_step)?;
        Ok(self.fault_active(&state.q)
            || info.collided
            || self.near_obstacle(&state.q)?
            || self.near_pan_limit(&state.q, &command))
    }

    fn fault_active(&self, q: &[f64]) -> bool {
        self.config.fault.as_ref().is_some_and(|f| f.scale != 1.0 && f.contains(q[self.pan]))
    }

    fn faulty_action(&self, q: &[f64], action: &[f64]) -> Vec<f64> {
        match &self.config.fault {
            Some(f) if self.fault_active(q) => action.iter().map(|a| a * f.scale).collect(),
            _ => action.to_vec(),
        }
    }

    fn near_obstacle(&self, q: &[f64]) -> Result<bool> {
        let scene = self.sim.scene();
        if scene.obstacles.is_empty() {
            return Ok(false);
        }
        let model = self.sim.model();
        let (mut poses, mut primitives) = (Vec::new(), Vec::new());
        model.collision_primitives_into(q, &mut poses, &mut primitives)?;
        let margin = self.config.breaking.obstacle_margin_m;
        Ok(primitives.iter().any(|p| scene.distance(p) < margin))
    }

    fn near_pan_limit(&self, q: &[f64], command: &[f64]) -> bool {
        let l = self.sim.model().limits()[self.pan];
        if l.continuous {
            return false;
        }
        let q1 = q[self.pan];
        let q1_end =
            q1 + command[self.pan].clamp(-l.velocity, l.velocity) * self.config.control_period_s;
        let margin = self.config.breaking.pan_limit_margin_rad;
        q1.min(q1_end) - margin < l.lower || q1.max(q1_end) + margin > l.upper
    }

    /// The current observation (layout [`ReachEnv::layout`]).
    ///
    /// # Shapes
    /// `[2 * dof + 10]`.
    pub fn observation(&self) -> Vec<f64> {
        let q = self.sim.q();
        let axis = Vector3::new(self.pan_axis_xy.x, self.pan_axis_xy.y, 0.0);
        let ee = self.ee() - axis;
        let goal = self.goal - axis;
        let diff = goal - ee;
        let mut obs = Vec::with_capacity(2 * q.len() + 10);
        obs.extend([q[self.pan].cos(), q[self.pan].sin()]);
        obs.extend(q.iter().enumerate().filter(|(i, _)| *i != self.pan).map(|(_, x)| *x));
        obs.extend_from_slice(self.sim.qdot());
        obs.extend(ee.iter().chain(goal.iter()).chain(diff.iter()));
        obs
    }

    /// Sets the arm's state (tests, the ROS reset service); the episode step count is kept.
    ///
    /// # Errors
    /// [`TaskError::Sim`]: wrong lengths, non-finite values, positions outside the limits.
    pub fn set_state(&mut self, q: &[f64], qdot: &[f64]) -> Result<()> {
        Ok(self.sim.set_state(q, qdot)?)
    }

    /// Sets the goal (m, `base_link`).
    ///
    /// # Errors
    /// [`TaskError::NonFiniteGoal`].
    pub fn set_goal(&mut self, goal: Vector3<f64>) -> Result<()> {
        if !goal.iter().all(|x| x.is_finite()) {
            return Err(TaskError::NonFiniteGoal([goal.x, goal.y, goal.z]));
        }
        self.goal = goal;
        Ok(())
    }

    /// Replaces the obstacles (the group-action tests turn them; a ROS service may move them).
    pub fn set_scene(&mut self, scene: Scene) {
        self.sim.set_scene(scene);
    }

    /// Joint positions, rad or m.
    pub fn q(&self) -> &[f64] {
        self.sim.q()
    }

    /// Joint velocities, rad/s or m/s.
    pub fn qdot(&self) -> &[f64] {
        self.sim.qdot()
    }

    /// End-effector position in `base_link`, m.
    pub fn ee(&self) -> Vector3<f64> {
        self.ee_pose().translation.vector
    }

    /// End-effector pose in `base_link`.
    pub fn ee_pose(&self) -> Isometry3<f64> {
        self.sim.model().fk_ee(self.sim.q()).expect("the simulator keeps q at the model's length")
    }

    /// Goal in `base_link`, m.
    pub fn goal(&self) -> Vector3<f64> {
        self.goal
    }

    /// The full state.
    pub fn state(&self) -> State {
        State { q: self.q().to_vec(), qdot: self.qdot().to_vec(), goal: self.goal }
    }

    /// The static scene (floor, table, boxes), e.g. for the depth camera.
    pub fn scene(&self) -> &Scene {
        self.sim.scene()
    }

    /// The robot model.
    pub fn model(&self) -> &Arc<RobotModel> {
        self.sim.model()
    }

    /// The simulator underneath.
    pub fn sim(&self) -> &KinematicSim {
        &self.sim
    }

    /// The task configuration.
    pub fn config(&self) -> &TaskConfig {
        &self.config
    }

    /// Observation layout ([`observation_layout`]).
    pub fn layout(&self) -> &[Field] {
        &self.layout
    }

    /// Observation length, `2 * dof + 10`.
    pub fn obs_dim(&self) -> usize {
        self.layout.iter().map(|f| f.len).sum()
    }

    /// Action length: the number of joints.
    pub fn action_dim(&self) -> usize {
        self.sim.model().dof()
    }

    /// Index of the pan (symmetry) joint in `q`.
    pub fn pan_index(&self) -> usize {
        self.pan
    }

    /// Where the pan axis crosses the base xy plane, m.
    pub fn pan_axis_xy(&self) -> Vector2<f64> {
        self.pan_axis_xy
    }

    /// Control steps taken in this episode.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Simulator ticks per control step.
    pub fn ticks_per_step(&self) -> usize {
        self.ticks_per_step
    }

    /// `p` (m, `base_link`) turned by `theta` about the pan axis: the group action on points.
    pub fn rotate_point(&self, theta: f64, p: Vector3<f64>) -> Vector3<f64> {
        let c = Vector3::new(self.pan_axis_xy.x, self.pan_axis_xy.y, 0.0);
        crate::model::rot_z(theta) * (p - c) + c
    }

    /// `scene` turned by `theta` about the pan axis (floor unchanged).
    pub fn rotate_scene(&self, theta: f64, scene: &Scene) -> Scene {
        let c = Translation3::new(self.pan_axis_xy.x, self.pan_axis_xy.y, 0.0);
        let turn = Isometry3::from_parts(c, crate::model::rot_z(theta)) * c.inverse();
        Scene {
            floor_z: scene.floor_z,
            obstacles: scene
                .obstacles
                .iter()
                .map(|p| Primitive { shape: p.shape, pose: turn * p.pose })
                .collect(),
        }
    }
}

/// Uniform in `[lo, hi)`, or `lo` when the range is empty.
fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}

/// `angle` wrapped to `[-pi, pi)`.
pub fn wrap_angle(angle: f64) -> f64 {
    (angle + PI).rem_euclid(TAU) - PI
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() < tol, "index {i}: {x} vs {y}\n{a:?}\n{b:?}");
        }
    }

    /// Turns the world by theta = 2 pi k / n for every k, steps both worlds with the same action,
    /// and checks the observation, reward and flags.
    fn check_equivariance(mut env: ReachEnv, n: usize, q1_range: (f64, f64), seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let scene = env.scene().clone();
        for trial in 0..5 {
            env.set_scene(scene.clone());
            env.reset();
            let mut q = env.q().to_vec();
            q[env.pan_index()] = rng.random_range(q1_range.0..q1_range.1);
            let qdot: Vec<f64> = (0..q.len()).map(|_| rng.random_range(-0.5..0.5)).collect();
            let action: Vec<f64> = (0..q.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
            let goal = env.goal();
            env.set_state(&q, &qdot).unwrap();
            let base = env.step(&action).unwrap();
            assert!(!base.in_breaking_region, "trial {trial}: the untouched world breaks symmetry");
            for k in 0..n {
                let theta = TAU * k as f64 / n as f64;
                let mut q_rot = q.clone();
                q_rot[env.pan_index()] = wrap_angle(q[env.pan_index()] + theta);
                let mut turned = env.clone();
                turned.set_scene(env.rotate_scene(theta, &scene));
                turned.set_state(&q_rot, &qdot).unwrap();
                turned.set_goal(env.rotate_point(theta, goal)).unwrap();
                let t = turned.step(&action).unwrap();
                let expected = act_on_obs(env.layout(), theta, &base.obs);
                assert_close(&t.obs, &expected, 1e-9);
                assert!((t.reward - base.reward).abs() < 1e-9);
                assert!((t.distance - base.distance).abs() < 1e-9);
                assert_eq!(
                    (t.terminated, t.truncated, t.collided),
                    (base.terminated, base.truncated, base.collided)
                );
                assert!(!t.in_breaking_region);
            }
        }
    }

    #[test]
    fn ur5e_observation_is_equivariant_under_c4_and_c8() {
        // A box out of reach: turning the scene is exercised, yet nothing breaks the symmetry.
        let far_box = BoxConfig { center_m: [2.5, 0.5, 0.2], ..BoxConfig::default() };
        let config = TaskConfig { boxes: vec![far_box], ..TaskConfig::default() };
        for n in [4, 8] {
            let env = ReachEnv::ur5e(config.clone(), 1).unwrap();
            check_equivariance(env, n, (-PI, PI), 10 + n as u64);
        }
    }

    #[test]
    fn fetch_observation_is_equivariant_about_the_pan_axis() {
        // The Fetch pan joint turns only +-1.6056 rad: shift by the C_8 elements that keep q1
        // inside its limits (theta in {0, pi/4}, q1 near -pi/8), wrapping theta = 7 pi/4 to -pi/4.
        let env = ReachEnv::fetch(TaskConfig::for_robot(RobotKind::Fetch), 2).unwrap();
        assert!((env.pan_axis_xy() - Vector2::new(0.03265, 0.0)).norm() < 1e-12);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let layout = env.layout().to_vec();
        for _ in 0..5 {
            let mut a = env.clone();
            a.reset();
            let mut q = a.q().to_vec();
            q[1] = rng.random_range(-0.3..0.0);
            let action: Vec<f64> = (0..8).map(|_| rng.random_range(-0.5..0.5)).collect();
            let goal = a.goal();
            a.set_state(&q, &[0.0; 8]).unwrap();
            let base = a.step(&action).unwrap();
            for theta in [PI / 4.0, -PI / 4.0, PI / 2.0] {
                let mut b = env.clone();
                let mut q_rot = q.clone();
                q_rot[1] += theta;
                b.set_state(&q_rot, &[0.0; 8]).unwrap();
                b.set_goal(b.rotate_point(theta, goal)).unwrap();
                let t = b.step(&action).unwrap();
                assert_close(&t.obs, &act_on_obs(&layout, theta, &base.obs), 1e-9);
                assert!((t.reward - base.reward).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn act_on_obs_turns_only_the_declared_pairs() {
        let layout = observation_layout(6);
        assert_eq!(layout.iter().map(|f| f.len).sum::<usize>(), 22);
        assert_eq!(observation_layout(8).iter().map(|f| f.len).sum::<usize>(), 26);
        let pairs: Vec<usize> =
            layout.iter().filter(|f| f.kind == FieldKind::Rotation2).map(|f| f.offset).collect();
        assert_eq!(pairs, [0, 13, 16, 19]);
        let obs: Vec<f64> = (0..22).map(|i| i as f64).collect();
        let turned = act_on_obs(&layout, PI / 2.0, &obs);
        // (x, y) -> (-y, x) for a quarter turn.
        for &o in &pairs {
            assert!(
                (turned[o] + obs[o + 1]).abs() < 1e-12 && (turned[o + 1] - obs[o]).abs() < 1e-12
            );
        }
        for i in (0..22).filter(|i| !pairs.iter().any(|&o| *i == o || *i == o + 1)) {
            assert_eq!(turned[i], obs[i]);
        }
        // A full turn composed of four quarter turns is the identity.
        let mut x = obs.clone();
        for _ in 0..4 {
            x = act_on_obs(&layout, PI / 2.0, &x);
        }
        assert_close(&x, &obs, 1e-12);
    }

    #[test]
    fn observation_holds_the_declared_features() {
        let mut env = ReachEnv::ur5e(TaskConfig::default(), 3).unwrap();
        env.reset();
        let q = [0.3, -1.2, 1.1, -1.4, -1.5, 0.2];
        let qdot = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
        env.set_state(&q, &qdot).unwrap();
        env.set_goal(Vector3::new(0.4, -0.2, 0.3)).unwrap();
        let obs = env.observation();
        let ee = env.ee();
        assert_close(&obs[0..2], &[0.3f64.cos(), 0.3f64.sin()], 1e-15);
        assert_close(&obs[2..7], &q[1..], 0.0 + 1e-15);
        assert_close(&obs[7..13], &qdot, 1e-15);
        assert_close(&obs[13..16], ee.as_slice(), 1e-15);
        assert_close(&obs[16..19], &[0.4, -0.2, 0.3], 1e-15);
        assert_close(&obs[19..22], (Vector3::new(0.4, -0.2, 0.3) - ee).as_slice(), 1e-15);
    }

    #[test]
    fn episodes_are_deterministic_per_seed() {
        let run = |seed| {
            let mut env = ReachEnv::ur5e(TaskConfig::default(), seed).unwrap();
            let mut out = env.reset();
            for i in 0..10 {
                let a: Vec<f64> = (0..6).map(|j| ((i * 6 + j) as f64 * 0.37).sin()).collect();
                out.extend(env.step(&a).unwrap().obs);
            }
            out.extend(env.reset());
            out
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn goals_lie_in_the_configured_region() {
        let config = TaskConfig::default();
        let mut env = ReachEnv::ur5e(config.clone(), 9).unwrap();
        for _ in 0..200 {
            env.reset();
            let g = env.goal();
            let r = g.xy().norm();
            assert!(config.goal.radius_min_m <= r && r <= config.goal.radius_max_m, "{g}");
            assert!(config.goal.z_min_m <= g.z && g.z <= config.goal.z_max_m, "{g}");
            assert!(!env.sim().clone().collides_at(env.q()).unwrap());
        }
    }

    #[test]
    fn resets_avoid_obstacles() {
        let config = TaskConfig {
            table: Some(TableConfig::default()),
            boxes: vec![BoxConfig::default()],
            ..TaskConfig::default()
        };
        let mut env = ReachEnv::ur5e(config, 12).unwrap();
        for _ in 0..100 {
            env.reset();
            assert!(!env.sim().clone().collides_at(env.q()).unwrap(), "start {:?}", env.q());
            let marker = Primitive::sphere(env.goal(), 0.025);
            assert!(!env.scene().intersects(&marker), "goal {}", env.goal());
        }
    }

    #[test]
    fn rotations_turn_points_and_scenes_about_the_pan_axis() {
        let env = ReachEnv::fetch(TaskConfig::for_robot(RobotKind::Fetch), 0).unwrap();
        let axis_point = Vector3::new(0.03265, 0.0, 0.7);
        assert!((env.rotate_point(1.0, axis_point) - axis_point).norm() < 1e-12);
        let p = Vector3::new(0.5, 0.2, 0.3);
        let turned = env.rotate_point(PI / 2.0, p);
        let expected = Vector3::new(0.03265 - 0.2, 0.5 - 0.03265, 0.3);
        assert!((turned - expected).norm() < 1e-12, "{turned}");
        let scene =
            TaskConfig { boxes: vec![BoxConfig::default()], ..TaskConfig::default() }.scene();
        let rotated = env.rotate_scene(0.7, &scene);
        let centre = rotated.obstacles[0].pose.translation.vector;
        let expected = env.rotate_point(0.7, Vector3::from(BoxConfig::default().center_m));
        assert!((centre - expected).norm() < 1e-12);
        assert_eq!(rotated.floor_z, scene.floor_z);
    }

    #[test]
    fn success_terminates_and_time_limit_truncates() {
        let config = TaskConfig { max_episode_steps: 3, ..TaskConfig::default() };
        let mut env = ReachEnv::ur5e(config, 0).unwrap();
        env.reset();
        // Goal on the end-effector: success at once, reward = bonus - distance.
        env.set_goal(env.ee()).unwrap();
        let t = env.step(&[0.0; 6]).unwrap();
        assert!(t.terminated && !t.truncated);
        assert!((t.reward - 1.0).abs() < 1e-12);
        // Far goal: dense reward, truncated on the third step only.
        env.reset();
        env.set_goal(Vector3::new(5.0, 0.0, 0.0)).unwrap();
        let flags: Vec<(bool, bool)> = (0..3)
            .map(|_| env.step(&[0.0; 6]).map(|t| (t.terminated, t.truncated)).unwrap())
            .collect();
        assert_eq!(flags, [(false, false), (false, false), (false, true)]);
        let t = env.step(&[0.0; 6]).unwrap();
        assert!((t.reward + (env.goal() - env.ee()).norm()).abs() < 1e-12);
    }

    #[test]
    fn bad_actions_are_errors() {
        let mut env = ReachEnv::ur5e(TaskConfig::default(), 0).unwrap();
        env.reset();
        let before = env.state();
        assert!(matches!(
            env.step(&[0.0; 3]),
            Err(TaskError::Sim(SimError::LengthMismatch { .. }))
        ));
        assert!(env.step(&[f64::NAN; 6]).is_err());
        assert_eq!(env.state(), before);
        assert_eq!(env.steps(), 0);
        assert!(env.set_goal(Vector3::new(f64::NAN, 0.0, 0.0)).is_err());
    }

    /// UR5e at home turned so that its tool hangs over the table, a few centimetres above it.
    fn over_table() -> (ReachEnv, Vec<f64>) {
        let table = TableConfig { top_z_m: 0.45, ..TableConfig::default() };
        let config = TaskConfig { table: Some(table), ..TaskConfig::default() };
        let mut env = ReachEnv::ur5e(config, 0).unwrap();
        let q = RobotKind::Ur5e.home();
        env.set_state(&q, &[0.0; 6]).unwrap();
        (env, q)
    }

    #[test]
    fn collisions_are_blocked_penalised_and_breaking() {
        let (mut env, q) = over_table();
        env.set_goal(Vector3::new(0.5, 0.0, 0.6)).unwrap();
        // Lower the tool: the elbow joint's sign that decreases ee z.
        let mut probe = q.clone();
        probe[2] += 1e-3;
        let down =
            if env.model().fk_ee(&probe).unwrap().translation.z < env.ee().z { 1.0 } else { -1.0 };
        let action = [0.0, 0.0, down * 0.5, 0.0, 0.0, 0.0];
        // A 5 cm safety margin flags the approach; the exact truth (default) does not.
        let mut margin = env.clone();
        margin.config.breaking.obstacle_margin_m = 0.05;
        assert!(margin.breaking_region(&env.state(), &action).unwrap(), "close to the table");
        let mut collided = None;
        for step in 0..50 {
            let t = env.step(&action).unwrap();
            if t.collided {
                collided = Some((step, t));
                break;
            }
            assert!(!t.in_breaking_region, "step {step} moved freely: symmetric");
        }
        let (step, t) = collided.expect("the tool reaches the table");
        assert!(step > 0, "the approach takes free steps first");
        assert!(t.in_breaking_region);
        let distance = (env.goal() - env.ee()).norm();
        assert!((t.reward - (-distance - 1.0)).abs() < 1e-12);
        // Pushing further is blocked: positions stay, velocities are zero.
        let q_blocked = env.q().to_vec();
        let again = env.step(&action).unwrap();
        assert!(again.collided);
        assert_eq!(env.q(), &q_blocked[..]);
        assert!(env.qdot().iter().all(|v| *v == 0.0));
        // Moving away is free.
        let up = env.step(&[0.0, 0.0, -down * 2.0, 0.0, 0.0, 0.0]).unwrap();
        assert!(!up.collided);
    }

    #[test]
    fn step_flag_matches_breaking_region_ground_truth() {
        let config = TaskConfig {
            table: Some(TableConfig::default()),
            boxes: vec![BoxConfig::default()],
            fault: Some(FaultConfig::default()),
            ..TaskConfig::default()
        };
        let mut env = ReachEnv::ur5e(config, 4).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let (mut inside, mut outside) = (0, 0);
        for _ in 0..20 {
            env.reset();
            for _ in 0..10 {
                let action: Vec<f64> = (0..6).map(|_| rng.random_range(-2.0..2.0)).collect();
                let expected = env.breaking_region(&env.state(), &action).unwrap();
                let t = env.step(&action).unwrap();
                assert_eq!(t.in_breaking_region, expected);
                if expected {
                    inside += 1
                } else {
                    outside += 1
                }
            }
        }
        assert!(inside > 0 && outside > 0, "inside {inside}, outside {outside}");
    }

    #[test]
    fn fault_flips_the_action_inside_its_sector_only() {
        let fault = FaultConfig { start_rad: 0.0, end_rad: 1.0, scale: -1.0 };
        let config = TaskConfig { fault: Some(fault), ..TaskConfig::default() };
        let mut env = ReachEnv::ur5e(config, 0).unwrap();
        let action = [0.5, 0.0, 0.0, 0.0, 0.0, 0.0];
        for (q1, flipped) in [(0.5, true), (-0.5, false), (1.0, false), (0.5 - TAU, true)] {
            let mut q = RobotKind::Ur5e.home();
            q[0] = q1;
            env.set_state(&q, &[0.0; 6]).unwrap();
            assert_eq!(env.breaking_region(&env.state(), &action).unwrap(), flipped, "q1 = {q1}");
            let t = env.step(&action).unwrap();
            let expected = if flipped { -0.5 } else { 0.5 };
            assert!((env.qdot()[0] - expected).abs() < 1e-12, "q1 = {q1}");
            assert_eq!(t.in_breaking_region, flipped);
        }
        assert!(FaultConfig { start_rad: 3.0, end_rad: 3.5, scale: 0.5 }.contains(-3.0));
        assert!(FaultConfig { start_rad: -1.0, end_rad: 6.0, scale: 0.5 }.contains(100.0));
    }

    #[test]
    fn pan_limit_is_a_breaking_factor() {
        // Fetch: shoulder_pan_joint within ±1.6056 rad, at most 1.256 rad/s; steps of 0.04 s.
        let mut env = ReachEnv::fetch(TaskConfig::for_robot(RobotKind::Fetch), 0).unwrap();
        let mut state = env.state();
        let (still, mut turn) = ([0.0; 8], [0.0; 8]);
        turn[1] = 1.2;
        let mut back = turn;
        back[1] = -1.2;
        // Exact truth (margin 0): only a step that reaches the limit (and is clamped there).
        state.q[1] = 0.0;
        assert!(!env.breaking_region(&state, &still).unwrap());
        state.q[1] = 1.58;
        assert!(!env.breaking_region(&state, &still).unwrap(), "close but free");
        assert!(env.breaking_region(&state, &turn).unwrap(), "1.58 + 0.048 passes the limit");
        assert!(!env.breaking_region(&state, &back).unwrap());
        // With a 0.05 rad margin: close is enough.
        env.config.breaking.pan_limit_margin_rad = 0.05;
        assert!(env.breaking_region(&state, &still).unwrap());
        state.q[1] = 1.52;
        assert!(!env.breaking_region(&state, &still).unwrap());
        assert!(env.breaking_region(&state, &turn).unwrap(), "1.568 is within the margin");
        assert!(!env.breaking_region(&state, &back).unwrap());
        env.reset();
    }

    #[test]
    fn config_parses_from_yaml_and_rejects_unknown_keys() {
        let yaml = "control_period_s: 0.05\ntable:\n  top_z_m: 0.2\nfault:\n  scale: 0.3\nboxes:\n  - center_m: [0.4, -0.4, 0.1]\n";
        let config: TaskConfig = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(config.control_period_s, 0.05);
        assert_eq!(config.table.as_ref().unwrap().top_z_m, 0.2);
        assert_eq!(config.table.as_ref().unwrap().half_size_xy_m, [0.3, 0.5]);
        assert_eq!(config.fault.as_ref().unwrap().scale, 0.3);
        assert_eq!(config.boxes[0].half_extents_m, BoxConfig::default().half_extents_m);
        assert_eq!(config.scene().obstacles.len(), 2);
        assert!(serde_yaml_ng::from_str::<TaskConfig>("control_period: 0.05").is_err());
        assert!(serde_yaml_ng::from_str::<TaskConfig>("table: {height: 1}").is_err());
        let default: TaskConfig = serde_yaml_ng::from_str("{}").unwrap();
        assert_eq!(default, TaskConfig::default());
        assert!(default.table.is_none() && default.boxes.is_empty() && default.fault.is_none());
        let bad = TaskConfig { sim_dt_s: 0.1, control_period_s: 0.04, ..TaskConfig::default() };
        assert!(matches!(bad.validate(), Err(TaskError::InvalidConfig(_))));
        let range: TaskConfig = serde_yaml_ng::from_str("goal_error_range_m: 0.5").unwrap();
        assert_eq!(range.goal_error_range_m, Some(0.5));
        range.validate().unwrap();
        for r in [0.0, -0.5, f64::NAN, f64::INFINITY] {
            let bad = TaskConfig { goal_error_range_m: Some(r), ..TaskConfig::default() };
            let err = bad.validate().unwrap_err().to_string();
            assert!(err.contains("goal_error_range_m"), "{r}: {err}");
        }
    }
}
