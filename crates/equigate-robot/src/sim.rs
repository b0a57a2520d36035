//! Kinematic simulator: integrates commanded joint velocities at a fixed internal rate.
//!
//! One tick of [`KinematicSim::step`]:
//! 1. the command (rad/s for revolute, m/s for prismatic joints) is clamped to each joint's URDF
//!    velocity limit, then, if configured, to the acceleration limit around the previous velocity;
//! 2. positions advance by `velocity * dt` (explicit Euler) and are clamped to the URDF position
//!    limits; a joint that reaches a limit has its velocity set to zero; continuous joints are
//!    never clamped;
//! 3. if any moving link's collision primitive at the new positions intersects an obstacle of the
//!    scene, the tick is *blocked*: positions stay where they were, velocities become zero (the
//!    arm did not move), and [`StepInfo::collided`] is set.
//!
//! There are no dynamics, no gravity and no self-collision: this is the "kinematic integrator"
//! of DESIGN.md, the default simulator behind `sim_node`.

use std::sync::Arc;

use nalgebra::Isometry3;

use crate::model::{ModelError, RobotModel};
use crate::scene::{Primitive, Scene, SceneColliders};

/// Simulator settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimConfig {
    /// Internal integration step in seconds (default: `0.002` s, i.e. 500 Hz). Must be > 0.
    pub dt: f64,
    /// Optional acceleration limit for every joint, rad/s² or m/s² (default: `None`, the
    /// commanded velocity is reached in one tick).
    pub max_acceleration: Option<f64>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self { dt: 0.002, max_acceleration: None }
    }
}

/// Why a simulator call was refused. The state is unchanged when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A joint vector of the wrong length.
    #[error("expected {expected} joint values, got {got}")]
    LengthMismatch { expected: usize, got: usize },
    /// A NaN or infinite value in a command or state.
    #[error("value {value} for joint `{joint}` (index {index}) is not finite")]
    NonFinite { index: usize, joint: String, value: f64 },
    /// A position outside the joint's URDF limits in [`KinematicSim::set_state`].
    #[error("position {value} of joint `{joint}` is outside its limits [{lower}, {upper}]")]
    OutOfLimits { joint: String, value: f64, lower: f64, upper: f64 },
    /// Invalid [`SimConfig`].
    #[error("invalid simulator config: {0}")]
    InvalidConfig(String),
    /// Error from the robot model.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Result alias for this module.
pub type Result<T, E = SimError> = std::result::Result<T, E>;

/// What happened during one tick or one control period (flags OR-ed over its ticks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepInfo {
    /// Number of internal ticks run.
    pub ticks: usize,
    /// At least one tick was blocked by a collision with the scene.
    pub collided: bool,
    /// At least one commanded velocity exceeded its URDF limit (or the acceleration limit).
    pub velocity_clamped: bool,
    /// At least one joint was stopped at a position limit.
    pub position_clamped: bool,
}

impl StepInfo {
    fn merge(&mut self, other: StepInfo) {
        self.ticks += other.ticks;
        self.collided |= other.collided;
        self.velocity_clamped |= other.velocity_clamped;
        self.position_clamped |= other.position_clamped;
    }
}

/// The kinematic simulator of one arm in a static [`Scene`].
#[derive(Debug, Clone)]
pub struct KinematicSim {
    model: Arc<RobotModel>,
    config: SimConfig,
    scene: Scene,
    /// Parry shapes of `scene`'s obstacles, rebuilt by [`KinematicSim::set_scene`].
    colliders: SceneColliders,
    /// Joint positions (rad or m), in the model's joint order.
    q: Vec<f64>,
    /// Joint velocities (rad/s or m/s) of the last tick.
    qdot: Vec<f64>,
    /// Simulated time since construction (s).
    time: f64,
    // Scratch buffers, reused every tick.
    q_next: Vec<f64>,
    qdot_next: Vec<f64>,
    link_poses: Vec<Isometry3<f64>>,
    primitives: Vec<Primitive>,
}

impl KinematicSim {
    /// A simulator at `q = 0` clamped into the limits, at rest, in an empty scene.
    ///
    /// # Errors
    /// [`SimError::InvalidConfig`] when `dt` is not a positive finite number or the acceleration
    /// limit is not positive.
    pub fn new(model: impl Into<Arc<RobotModel>>, config: SimConfig) -> Result<Self> {
        if !(config.dt.is_finite() && config.dt > 0.0) {
            return Err(SimError::InvalidConfig(format!("dt = {} must be > 0", config.dt)));
        }
        if let Some(a) = config.max_acceleration {
            if a.is_nan() || a <= 0.0 {
                return Err(SimError::InvalidConfig(format!("max_acceleration = {a} must be > 0")));
            }
        }
        let model = model.into();
        let n = model.dof();
        let q = model.limits().iter().map(|l| l.clamp_position(0.0)).collect();
        Ok(Self {
            model,
            config,
            scene: Scene::default(),
            colliders: SceneColliders::new(&Scene::default()),
            q,
            qdot: vec![0.0; n],
            time: 0.0,
            q_next: vec![0.0; n],
            qdot_next: vec![0.0; n],
            link_poses: Vec::new(),
            primitives: Vec::new(),
        })
    }

    /// The robot model.
    pub fn model(&self) -> &Arc<RobotModel> {
        &self.model
    }

    /// The settings this simulator runs with.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Obstacles the arm collides with.
    pub fn scene(&self) -> &Scene {
        &self.scene
    }

    /// Replaces the scene; the arm's state is kept.
    pub fn set_scene(&mut self, scene: Scene) {
        self.colliders = SceneColliders::new(&scene);
        self.scene = scene;
    }

    /// Joint positions (rad or m).
    pub fn q(&self) -> &[f64] {
        &self.q
    }

    /// Joint velocities of the last tick (rad/s or m/s).
    pub fn qdot(&self) -> &[f64] {
        &self.qdot
    }

    /// Simulated time in seconds since construction.
    pub fn time(&self) -> f64 {
        self.time
    }

    /// Number of ticks in a control period of `period` seconds: `round(period / dt)`, at least 1.
    pub fn ticks_per(&self, period: f64) -> usize {
        ((period / self.config.dt).round() as usize).max(1)
    }

    /// Sets positions and velocities (no collision check: a state inside an obstacle blocks
    /// every tick whose end state still intersects it).
    ///
    /// # Errors
    /// [`SimError::LengthMismatch`], [`SimError::NonFinite`], [`SimError::OutOfLimits`].
    pub fn set_state(&mut self, q: &[f64], qdot: &[f64]) -> Result<()> {
        self.check_vector(q)?;
        self.check_vector(qdot)?;
        for ((name, l), &x) in self.model.joint_names().iter().zip(self.model.limits()).zip(q) {
            if l.clamp_position(x) != x {
                return Err(SimError::OutOfLimits {
                    joint: name.clone(),
                    value: x,
                    lower: l.lower,
                    upper: l.upper,
                });
            }
        }
        self.q.copy_from_slice(q);
        self.qdot.copy_from_slice(qdot);
        Ok(())
    }

    /// Whether the moving links at positions `q` intersect the scene.
    ///
    /// # Errors
    /// [`SimError::LengthMismatch`].
    pub fn collides_at(&mut self, q: &[f64]) -> Result<bool> {
        self.check_vector(q)?;
        Ok(moving_links_hit(
            &self.model,
            &self.colliders,
            q,
            &mut self.link_poses,
            &mut self.primitives,
        ))
    }

    /// Advances one internal tick (`dt` seconds) with commanded velocities `qdot_cmd`.
    ///
    /// # Errors
    /// [`SimError::LengthMismatch`], [`SimError::NonFinite`]; the state is then unchanged.
    pub fn step(&mut self, qdot_cmd: &[f64]) -> Result<StepInfo> {
        self.check_vector(qdot_cmd)?;
        Ok(self.tick(qdot_cmd))
    }

    /// Advances `ticks` internal ticks with the same command (one control period); the flags of
    /// the returned [`StepInfo`] are OR-ed over the ticks.
    ///
    /// # Errors
    /// As [`KinematicSim::step`], checked once before any tick runs.
    pub fn advance(&mut self, qdot_cmd: &[f64], ticks: usize) -> Result<StepInfo> {
        self.check_vector(qdot_cmd)?;
        let mut info = StepInfo::default();
        for _ in 0..ticks {
            info.merge(self.tick(qdot_cmd));
        }
        Ok(info)
    }

    fn check_vector(&self, v: &[f64]) -> Result<()> {
        let expected = self.model.dof();
        if v.len() != expected {
            return Err(SimError::LengthMismatch { expected, got: v.len() });
        }
        if let Some(index) = v.iter().position(|x| !x.is_finite()) {
            let joint = self.model.joint_names()[index].clone();
            return Err(SimError::NonFinite { index, joint, value: v[index] });
        }
        Ok(())
    }

    /// One tick; `qdot_cmd` has been checked.
    fn tick(&mut self, qdot_cmd: &[f64]) -> StepInfo {
        let dt = self.config.dt;
        let mut info = StepInfo { ticks: 1, ..StepInfo::default() };
        for (i, limits) in self.model.limits().iter().enumerate() {
            let mut v = qdot_cmd[i].clamp(-limits.velocity, limits.velocity);
            if let Some(a) = self.config.max_acceleration {
                let dv = a * dt;
                v = v.clamp(self.qdot[i] - dv, self.qdot[i] + dv);
            }
            info.velocity_clamped |= v != qdot_cmd[i];
            let x = self.q[i] + v * dt;
            let clamped = limits.clamp_position(x);
            if clamped != x {
                info.position_clamped = true;
                v = 0.0;
            }
            self.q_next[i] = clamped;
            self.qdot_next[i] = v;
        }
        self.time += dt;
        let blocked = moving_links_hit(
            &self.model,
            &self.colliders,
            &self.q_next,
            &mut self.link_poses,
            &mut self.primitives,
        );
        if blocked {
            info.collided = true;
            self.qdot.iter_mut().for_each(|v| *v = 0.0);
        } else {
            std::mem::swap(&mut self.q, &mut self.q_next);
            std::mem::swap(&mut self.qdot, &mut self.qdot_next);
        }
        info
    }
}

/// Whether the moving links of `model` at positions `q` (length already checked) intersect an
/// obstacle of `scene` ([`SceneColliders::intersects`]). `poses` and `primitives` are scratch
/// buffers.
fn moving_links_hit(
    model: &RobotModel,
    scene: &SceneColliders,
    q: &[f64],
    poses: &mut Vec<Isometry3<f64>>,
    primitives: &mut Vec<Primitive>,
) -> bool {
    if scene.is_empty() {
        return false;
    }
    model
        .collision_primitives_into(q, poses, primitives)
        .expect("q has the model's length: checked by every public caller");
    primitives.iter().any(|p| scene.intersects(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RobotKind;

    fn ur5e_sim() -> KinematicSim {
        KinematicSim::new(RobotModel::ur5e().unwrap(), SimConfig::default()).unwrap()
    }

    #[test]
    fn integrates_commanded_velocity() {
        let mut sim = ur5e_sim();
        sim.set_state(&RobotKind::Ur5e.home(), &[0.0; 6]).unwrap();
        let cmd = [0.5, -0.25, 0.1, 0.0, 0.0, 1.0];
        let info = sim.advance(&cmd, 20).unwrap();
        assert_eq!(info, StepInfo { ticks: 20, ..StepInfo::default() });
        for (i, (home, v)) in RobotKind::Ur5e.home().iter().zip(cmd).enumerate() {
            assert!((sim.q()[i] - (home + v * 0.04)).abs() < 1e-12);
            assert_eq!(sim.qdot()[i], v);
        }
        assert!((sim.time() - 0.04).abs() < 1e-12);
        assert_eq!(sim.ticks_per(0.04), 20);
    }

    #[test]
    fn velocity_is_clamped_to_the_urdf_limit() {
        let mut sim = ur5e_sim();
        let info = sim.step(&[10.0, -10.0, 0.0, 0.0, 0.0, 0.0]).unwrap();
        assert!(info.velocity_clamped);
        let pi = std::f64::consts::PI;
        assert!((sim.qdot()[0] - pi).abs() < 1e-12 && (sim.qdot()[1] + pi).abs() < 1e-12);
        assert!((sim.q()[0] - pi * 0.002).abs() < 1e-12);
    }

    #[test]
    fn positions_stop_at_limits_but_continuous_joints_do_not() {
        let mut sim =
            KinematicSim::new(RobotModel::fetch().unwrap(), SimConfig::default()).unwrap();
        // Torso at its top, pan near its limit, upperarm roll (continuous) far past 2 pi.
        let mut q = vec![0.38615, 1.6, 0.0, 7.0, 0.0, 0.0, 0.0, 0.0];
        sim.set_state(&q, &[0.0; 8]).unwrap();
        let cmd = [0.1, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let info = sim.advance(&cmd, 10).unwrap();
        assert!(info.position_clamped);
        assert_eq!(sim.q()[0], 0.38615);
        assert_eq!(sim.q()[1], 1.6056);
        assert_eq!(sim.qdot()[0], 0.0);
        assert_eq!(sim.qdot()[1], 0.0);
        assert!((sim.q()[3] - (7.0 + 10.0 * 0.002)).abs() < 1e-12);
        assert_eq!(sim.qdot()[3], 1.0);
        q[1] = 2.0;
        assert!(matches!(sim.set_state(&q, &[0.0; 8]), Err(SimError::OutOfLimits { .. })));
    }

    #[test]
    fn acceleration_limit_ramps_velocity() {
        let config = SimConfig { max_acceleration: Some(10.0), ..SimConfig::default() };
        let mut sim = KinematicSim::new(RobotModel::ur5e().unwrap(), config).unwrap();
        sim.step(&[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]).unwrap();
        assert!((sim.qdot()[0] - 0.02).abs() < 1e-12);
        sim.advance(&[1.0, 0.0, 0.0, 0.0, 0.0, 0.0], 100).unwrap();
        assert_eq!(sim.qdot()[0], 1.0);
    }

    #[test]
    fn a_step_into_an_obstacle_is_blocked() {
        use nalgebra::Vector3;
        let mut sim = ur5e_sim();
        let home = RobotKind::Ur5e.home();
        sim.set_state(&home, &[0.0; 6]).unwrap();
        let tool = sim.model().fk_ee(&home).unwrap().translation.vector;
        // A box whose top is 1 cm above tool0, the lower face of the flange disc.
        let top = tool.z + 0.01;
        let obstacle = Primitive::cuboid(
            Vector3::new(tool.x, tool.y, top - 0.05),
            Vector3::new(0.1, 0.1, 0.05),
            0.0,
        );
        assert!(!sim.collides_at(&home).unwrap());
        sim.set_scene(Scene { floor_z: None, obstacles: vec![obstacle] });
        // The tool hangs 1 cm into the box: home itself now collides.
        assert!(sim.collides_at(&home).unwrap());
        let mut lifted = home.clone();
        lifted[2] -= 0.1;
        let above = sim.model().fk_ee(&lifted).unwrap().translation.vector;
        assert!(above.z > tool.z + 0.01, "lowering the elbow angle lifts the tool");
        assert!(!sim.collides_at(&lifted).unwrap());
        sim.set_state(&lifted, &[0.0; 6]).unwrap();
        let down = [0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        let info = sim.advance(&down, 100).unwrap();
        assert!(info.collided);
        let stopped = sim.q().to_vec();
        assert!(stopped[2] > lifted[2] && stopped[2] < home[2], "moved, then stopped at the box");
        assert!(sim.qdot().iter().all(|v| *v == 0.0));
        let info = sim.step(&down).unwrap();
        assert!(info.collided);
        assert_eq!(sim.q(), &stopped[..]);
        assert!(!sim.step(&[0.0, 0.0, -1.0, 0.0, 0.0, 0.0]).unwrap().collided);
    }

    #[test]
    fn bad_commands_are_errors_and_leave_the_state_alone() {
        let mut sim = ur5e_sim();
        let before = sim.q().to_vec();
        assert!(matches!(
            sim.step(&[0.0; 5]),
            Err(SimError::LengthMismatch { expected: 6, got: 5 })
        ));
        let err = sim.step(&[0.0, f64::NAN, 0.0, 0.0, 0.0, 0.0]).unwrap_err();
        assert!(
            matches!(&err, SimError::NonFinite { index: 1, joint, .. } if joint == "shoulder_lift_joint")
        );
        assert!(sim.advance(&[f64::INFINITY; 6], 3).is_err());
        assert_eq!(sim.q(), &before[..]);
        assert_eq!(sim.time(), 0.0);
        let bad = SimConfig { dt: 0.0, ..SimConfig::default() };
        assert!(KinematicSim::new(RobotModel::ur5e().unwrap(), bad).is_err());
    }
}
