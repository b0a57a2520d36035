//! Serial robot models from URDF: actuated joints, limits, forward kinematics and the collision
//! primitives of every link, all in the model's base link frame (REP 103: metres, radians,
//! x forward, y left, z up).
//!
//! Loading uses urdf-rs (parsing) and k (the kinematic tree and the chain from base to
//! end-effector). At load time the chain is flattened into a list of [`Segment`]s (fixed origin
//! and joint motion), and forward kinematics runs on that list: no locks, no shared mutable state
//! and no allocation on the hot path. k's own nodes are `Arc<Mutex<..>>` with cached transforms
//! that clones share, so two threads stepping one model through k would race; the flat list lets
//! [`RobotModel`] be `Send + Sync + Clone` and shared by many environments. A test checks the
//! flat FK against k's `end_transform` to 1e-12 m.

use std::f64::consts::FRAC_PI_2;
use std::path::{Path, PathBuf};

use nalgebra::{Isometry3, Translation3, Unit, UnitQuaternion, Vector3};
use serde::{Deserialize, Serialize};

use crate::scene::{Primitive, Shape};

/// Name used as the "file" of a model loaded from a string.
pub const STRING_SOURCE: &str = "<string>";

/// Why a model could not be built or evaluated.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The URDF file could not be read from disk.
    #[error("cannot read URDF file {file}: {source}")]
    Io { file: PathBuf, source: std::io::Error },
    /// The URDF text is not valid URDF (XML errors, missing attributes, bad values).
    #[error("malformed URDF {file}: {reason}")]
    Malformed { file: String, reason: String },
    /// A link name asked for is not in the URDF.
    #[error("link `{link}` not found in URDF {file}")]
    UnknownLink { file: String, link: String },
    /// `base` does not lie on the path from the URDF root to `ee`.
    #[error("link `{base}` is not an ancestor of `{ee}` in URDF {file}")]
    NotAChain { file: String, base: String, ee: String },
    /// A collision geometry that is not a box, cylinder or sphere (meshes, capsules).
    #[error("link `{link}` in URDF {file} has unsupported collision geometry `{geometry}` (box, cylinder and sphere only)")]
    UnsupportedGeometry { file: String, link: String, geometry: String },
    /// An actuated joint with inconsistent limits (lower > upper, velocity <= 0, effort < 0).
    #[error("joint `{joint}` in URDF {file} has invalid limits: {reason}")]
    InvalidLimits { file: String, joint: String, reason: String },
    /// A joint-space vector of the wrong length.
    #[error("expected {expected} joint values, got {got}")]
    LengthMismatch { expected: usize, got: usize },
}

/// Result alias for this module.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// How a joint moves its child frame, in the joint frame (after the fixed origin).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Motion {
    /// No motion.
    Fixed,
    /// Rotation by the joint position (rad) about the unit axis.
    Revolute { axis: Unit<Vector3<f64>> },
    /// Translation by the joint position (m) along the unit axis.
    Prismatic { axis: Unit<Vector3<f64>> },
}

/// One URDF joint on the chain: `parent_link -> child_link = origin * motion(q)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub joint_name: String,
    pub child_link: String,
    /// Fixed pose of the joint frame in the parent link frame (URDF `<origin>`).
    pub origin: Isometry3<f64>,
    pub motion: Motion,
    /// Index into the actuated joint vector `q`; `None` for fixed joints.
    pub dof: Option<usize>,
}

/// Limits of one actuated joint (URDF `<limit>`), in rad (revolute) or m (prismatic).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JointLimits {
    /// Lower position limit; `-inf` for continuous joints.
    pub lower: f64,
    /// Upper position limit; `+inf` for continuous joints.
    pub upper: f64,
    /// Velocity limit (rad/s or m/s), > 0.
    pub velocity: f64,
    /// Effort limit (N m or N), >= 0.
    pub effort: f64,
    /// Continuous joint: no position limits, never clamped. urdf-rs reports lower = upper = 0
    /// for these; we store infinite limits instead.
    pub continuous: bool,
}

impl JointLimits {
    /// `x` clamped to `[lower, upper]`; continuous joints return `x` unchanged.
    pub fn clamp_position(&self, x: f64) -> f64 {
        if self.continuous {
            x
        } else {
            x.clamp(self.lower, self.upper)
        }
    }
}

/// A collision primitive attached to a link.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LinkShape {
    /// Index into [`RobotModel::link_names`].
    link: usize,
    /// Pose of the shape in its link frame (URDF `<collision><origin>`).
    origin: Isometry3<f64>,
    shape: Shape,
}

/// A serial chain from `base_link` to `ee_link` loaded from URDF.
///
/// Link index 0 is `base_link`; link `i + 1` is the child of segment `i`.
#[derive(Debug, Clone)]
pub struct RobotModel {
    source: String,
    base_link: String,
    ee_link: String,
    segments: Vec<Segment>,
    link_names: Vec<String>,
    joint_names: Vec<String>,
    limits: Vec<JointLimits>,
    shapes: Vec<LinkShape>,
    /// Links with index >= this move with some joint; lower ones are fixed to the base.
    first_moving_link: usize,
}

impl RobotModel {
    /// Loads the chain `base_link -> ee_link` from a URDF file.
    ///
    /// # Errors
    /// [`ModelError::Io`], [`ModelError::Malformed`] (with the file and the parser's reason), and
    /// the errors of [`RobotModel::from_urdf_str`].
    pub fn from_urdf_file(path: impl AsRef<Path>, base_link: &str, ee_link: &str) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ModelError::Io { file: path.to_path_buf(), source })?;
        Self::build(&text, &path.display().to_string(), base_link, ee_link)
    }

    /// Loads the chain `base_link -> ee_link` from URDF text; errors name the file `<string>`.
    ///
    /// # Errors
    /// [`ModelError::Malformed`], [`ModelError::UnknownLink`], [`ModelError::NotAChain`],
    /// [`ModelError::UnsupportedGeometry`] (meshes, capsules on the chain's links),
    /// [`ModelError::InvalidLimits`].
    pub fn from_urdf_str(urdf: &str, base_link: &str, ee_link: &str) -> Result<Self> {
        Self::build(urdf, STRING_SOURCE, base_link, ee_link)
    }

    /// The shipped UR5e model (`urdf/ur5e.urdf` at the repository root), `base_link -> tool0`.
    pub fn ur5e() -> Result<Self> {
        RobotKind::Ur5e.load()
    }

    /// The shipped Fetch arm model (`urdf/fetch.urdf`), `base_link -> gripper_link`.
    pub fn fetch() -> Result<Self> {
        RobotKind::Fetch.load()
    }

    fn build(text: &str, file: &str, base_link: &str, ee_link: &str) -> Result<Self> {
        let malformed = |reason: String| ModelError::Malformed { file: file.to_owned(), reason };
        let robot = urdf_rs::read_from_string(text).map_err(|e| malformed(e.to_string()))?;
        check_robot(&robot).map_err(malformed)?;

        let find_urdf_link = |name: &str| {
            robot.links.iter().position(|l| l.name == name).ok_or_else(|| ModelError::UnknownLink {
                file: file.to_owned(),
                link: name.to_owned(),
            })
        };
        find_urdf_link(base_link)?;
        find_urdf_link(ee_link)?;

        // k builds the tree; each node is the joint whose child is the node's link (the root
        // node holds the URDF root link).
        let tree = k::Chain::<f64>::from(&robot);
        let unknown =
            |link: &str| ModelError::UnknownLink { file: file.to_owned(), link: link.to_owned() };
        let ee_node = tree.find_link(ee_link).ok_or_else(|| unknown(ee_link))?;
        let base_node = tree.find_link(base_link).ok_or_else(|| unknown(base_link))?;
        let path = k::SerialChain::from_end_to_root(ee_node, base_node);
        let nodes: Vec<&k::Node<f64>> = path.iter().collect();
        let not_a_chain = || ModelError::NotAChain {
            file: file.to_owned(),
            base: base_link.to_owned(),
            ee: ee_link.to_owned(),
        };
        if nodes.first().map(|n| *n != base_node).unwrap_or(true) {
            return Err(not_a_chain());
        }

        let mut segments = Vec::new();
        let mut link_names = vec![base_link.to_owned()];
        let mut joint_names = Vec::new();
        let mut limits = Vec::new();
        let mut first_moving_link = None;
        // The base node's own joint leads *into* base_link and is not part of the chain.
        for node in nodes.iter().skip(1) {
            let (name, origin) = {
                let joint = node.joint();
                (joint.name.clone(), *joint.origin())
            };
            let urdf_joint =
                robot.joints.iter().find(|j| j.name == name).expect(
                    "every k node below the root was built from a URDF joint of the same name",
                );
            let axis = || Unit::new_normalize(Vector3::from(*urdf_joint.axis.xyz));
            let motion = match urdf_joint.joint_type {
                urdf_rs::JointType::Revolute | urdf_rs::JointType::Continuous => {
                    Motion::Revolute { axis: axis() }
                }
                urdf_rs::JointType::Prismatic => Motion::Prismatic { axis: axis() },
                _ => Motion::Fixed,
            };
            let dof = if motion == Motion::Fixed {
                None
            } else {
                let continuous = urdf_joint.joint_type == urdf_rs::JointType::Continuous;
                limits.push(joint_limits(urdf_joint, continuous, file)?);
                joint_names.push(name.clone());
                first_moving_link.get_or_insert(link_names.len());
                Some(joint_names.len() - 1)
            };
            link_names.push(urdf_joint.child.link.clone());
            segments.push(Segment {
                joint_name: name,
                child_link: urdf_joint.child.link.clone(),
                origin,
                motion,
                dof,
            });
        }
        if link_names.last().map(String::as_str) != Some(ee_link) {
            return Err(not_a_chain());
        }

        let mut shapes = Vec::new();
        for (index, name) in link_names.iter().enumerate() {
            let link = &robot.links[find_urdf_link(name)?];
            for collision in &link.collision {
                shapes.push(LinkShape {
                    link: index,
                    origin: k::urdf::isometry_from(&collision.origin),
                    shape: shape_from(&collision.geometry).ok_or_else(|| {
                        ModelError::UnsupportedGeometry {
                            file: file.to_owned(),
                            link: name.clone(),
                            geometry: geometry_kind(&collision.geometry).to_owned(),
                        }
                    })?,
                });
            }
        }

        Ok(Self {
            source: file.to_owned(),
            base_link: base_link.to_owned(),
            ee_link: ee_link.to_owned(),
            segments,
            first_moving_link: first_moving_link.unwrap_or(link_names.len()),
            link_names,
            joint_names,
            limits,
            shapes,
        })
    }

    /// Where the model was loaded from: a file path or `<string>`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The frame everything is expressed in.
    pub fn base_link(&self) -> &str {
        &self.base_link
    }

    /// The end-effector frame of [`RobotModel::fk_ee`].
    pub fn ee_link(&self) -> &str {
        &self.ee_link
    }

    /// Number of actuated joints (the length of `q`).
    pub fn dof(&self) -> usize {
        self.joint_names.len()
    }

    /// Actuated joint names in chain order (base to end-effector): the order of `q`.
    pub fn joint_names(&self) -> &[String] {
        &self.joint_names
    }

    /// Limits of the actuated joints, in the order of `q`.
    pub fn limits(&self) -> &[JointLimits] {
        &self.limits
    }

    /// Chain links: `base_link` first, then the child link of every segment.
    pub fn link_names(&self) -> &[String] {
        &self.link_names
    }

    /// The chain's joints (fixed ones included), base to end-effector.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Index in `q` of the actuated joint called `name`.
    pub fn joint_index(&self, name: &str) -> Option<usize> {
        self.joint_names.iter().position(|n| n == name)
    }

    fn check_len(&self, q: &[f64]) -> Result<()> {
        if q.len() == self.dof() {
            Ok(())
        } else {
            Err(ModelError::LengthMismatch { expected: self.dof(), got: q.len() })
        }
    }

    /// Pose of `ee_link` in `base_link` at joint positions `q` (rad or m, length [`dof`]).
    ///
    /// About 0.2 µs for the UR5e; does not allocate.
    ///
    /// # Errors
    /// [`ModelError::LengthMismatch`] when `q.len() != dof()`.
    ///
    /// [`dof`]: RobotModel::dof
    pub fn fk_ee(&self, q: &[f64]) -> Result<Isometry3<f64>> {
        self.check_len(q)?;
        Ok(self.segments.iter().fold(Isometry3::identity(), |pose, seg| pose * local(seg, q)))
    }

    /// Poses of all chain links in `base_link`, written into `out` (cleared first; length
    /// `link_names().len()`, index as in [`RobotModel::link_names`]). Reuses `out`'s allocation.
    ///
    /// # Errors
    /// [`ModelError::LengthMismatch`].
    pub fn link_poses_into(&self, q: &[f64], out: &mut Vec<Isometry3<f64>>) -> Result<()> {
        self.check_len(q)?;
        out.clear();
        let mut pose = Isometry3::identity();
        out.push(pose);
        for seg in &self.segments {
            pose *= local(seg, q);
            out.push(pose);
        }
        Ok(())
    }

    /// Pose in `base_link` of the joint frame of actuated joint `dof` (after its origin, before
    /// its motion), i.e. where its axis lies. `None` if `dof >= dof()`.
    ///
    /// # Errors
    /// [`ModelError::LengthMismatch`].
    pub fn joint_frame(&self, q: &[f64], dof: usize) -> Result<Option<Isometry3<f64>>> {
        self.check_len(q)?;
        let mut pose = Isometry3::identity();
        for seg in &self.segments {
            if seg.dof == Some(dof) {
                return Ok(Some(pose * seg.origin));
            }
            pose *= local(seg, q);
        }
        Ok(None)
    }

    /// Every link's collision primitives posed in `base_link`, with the link's name, in chain
    /// order. Allocates; the simulator uses [`RobotModel::collision_primitives_into`].
    ///
    /// # Errors
    /// [`ModelError::LengthMismatch`].
    pub fn link_primitives(&self, q: &[f64]) -> Result<Vec<(String, Primitive)>> {
        let mut poses = Vec::new();
        self.link_poses_into(q, &mut poses)?;
        Ok(self
            .shapes
            .iter()
            .map(|s| {
                let primitive = Primitive { shape: s.shape, pose: poses[s.link] * s.origin };
                (self.link_names[s.link].clone(), primitive)
            })
            .collect())
    }

    /// The collision primitives of the *moving* links (those after the first actuated joint),
    /// posed in `base_link`, written into `out` (cleared first). `poses` is scratch space for the
    /// link poses. Links fixed to the base are left out: they cannot start or stop a collision.
    ///
    /// # Errors
    /// [`ModelError::LengthMismatch`].
    pub fn collision_primitives_into(
        &self,
        q: &[f64],
        poses: &mut Vec<Isometry3<f64>>,
        out: &mut Vec<Primitive>,
    ) -> Result<()> {
        self.link_poses_into(q, poses)?;
        out.clear();
        out.extend(
            self.shapes
                .iter()
                .filter(|s| s.link >= self.first_moving_link)
                .map(|s| Primitive { shape: s.shape, pose: poses[s.link] * s.origin }),
        );
        Ok(())
    }
}

/// `parent -> child` transform of one segment at joint positions `q` (length already checked).
#[inline]
fn local(seg: &Segment, q: &[f64]) -> Isometry3<f64> {
    match (seg.motion, seg.dof) {
        (Motion::Revolute { axis }, Some(i)) => {
            seg.origin * UnitQuaternion::from_axis_angle(&axis, q[i])
        }
        (Motion::Prismatic { axis }, Some(i)) => {
            seg.origin * Translation3::from(axis.into_inner() * q[i])
        }
        _ => seg.origin,
    }
}

/// Checks that k would not panic or produce NaN on this robot: mimic targets exist, axes are
/// non-zero. Returns the reason otherwise.
fn check_robot(robot: &urdf_rs::Robot) -> std::result::Result<(), String> {
    for joint in &robot.joints {
        if let Some(mimic) = &joint.mimic {
            if !robot.joints.iter().any(|j| j.name == mimic.joint) {
                return Err(format!(
                    "joint `{}` mimics unknown joint `{}`",
                    joint.name, mimic.joint
                ));
            }
        }
        let axis = Vector3::from(*joint.axis.xyz);
        if axis.norm().is_nan() || axis.norm() <= 1e-12 {
            return Err(format!("joint `{}` has a zero or NaN axis", joint.name));
        }
    }
    Ok(())
}

fn joint_limits(joint: &urdf_rs::Joint, continuous: bool, file: &str) -> Result<JointLimits> {
    let l = &joint.limit;
    let invalid = |reason: String| ModelError::InvalidLimits {
        file: file.to_owned(),
        joint: joint.name.clone(),
        reason,
    };
    if l.velocity.is_nan() || l.velocity <= 0.0 {
        return Err(invalid(format!("velocity limit {} must be > 0", l.velocity)));
    }
    if l.effort.is_nan() || l.effort < 0.0 {
        return Err(invalid(format!("effort limit {} must be >= 0", l.effort)));
    }
    let (lower, upper) =
        if continuous { (f64::NEG_INFINITY, f64::INFINITY) } else { (l.lower, l.upper) };
    if lower.is_nan() || upper.is_nan() || lower > upper {
        return Err(invalid(format!("lower {lower} > upper {upper}")));
    }
    Ok(JointLimits { lower, upper, velocity: l.velocity, effort: l.effort, continuous })
}

fn shape_from(geometry: &urdf_rs::Geometry) -> Option<Shape> {
    match geometry {
        urdf_rs::Geometry::Box { size } => {
            Some(Shape::Cuboid { half_extents: Vector3::from(**size) * 0.5 })
        }
        urdf_rs::Geometry::Cylinder { radius, length } => {
            Some(Shape::Cylinder { radius: *radius, half_height: length * 0.5 })
        }
        urdf_rs::Geometry::Sphere { radius } => Some(Shape::Sphere { radius: *radius }),
        _ => None,
    }
}

fn geometry_kind(geometry: &urdf_rs::Geometry) -> &'static str {
    match geometry {
        urdf_rs::Geometry::Box { .. } => "box",
        urdf_rs::Geometry::Cylinder { .. } => "cylinder",
        urdf_rs::Geometry::Capsule { .. } => "capsule",
        urdf_rs::Geometry::Sphere { .. } => "sphere",
        urdf_rs::Geometry::Mesh { .. } => "mesh",
    }
}

/// The robots equigate ships a URDF for. Serde names: `ur5e`, `fetch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RobotKind {
    /// Universal Robots UR5e, 6 revolute joints.
    Ur5e,
    /// Fetch: torso lift (prismatic) and the 7-joint arm; the mobile base stands still.
    Fetch,
}

impl RobotKind {
    /// File name in the repository's `urdf/` folder.
    pub fn urdf_file_name(self) -> &'static str {
        match self {
            RobotKind::Ur5e => "ur5e.urdf",
            RobotKind::Fetch => "fetch.urdf",
        }
    }

    /// Path of the shipped URDF: `<repository root>/urdf/<name>`, found from this crate's
    /// `CARGO_MANIFEST_DIR` at build time. Installed binaries should pass the ament share path to
    /// [`RobotKind::load_from_dir`] instead.
    pub fn default_urdf_path(self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../urdf").join(self.urdf_file_name())
    }

    /// Base frame: `base_link` for both.
    pub fn base_link(self) -> &'static str {
        "base_link"
    }

    /// End-effector frame: `tool0` (UR5e), `gripper_link` (Fetch).
    pub fn ee_link(self) -> &'static str {
        match self {
            RobotKind::Ur5e => "tool0",
            RobotKind::Fetch => "gripper_link",
        }
    }

    /// Actuated joints in the order of `q` (the chain order of the shipped URDFs).
    pub fn joint_names(self) -> &'static [&'static str] {
        match self {
            RobotKind::Ur5e => &[
                "shoulder_pan_joint",
                "shoulder_lift_joint",
                "elbow_joint",
                "wrist_1_joint",
                "wrist_2_joint",
                "wrist_3_joint",
            ],
            RobotKind::Fetch => &[
                "torso_lift_joint",
                "shoulder_pan_joint",
                "shoulder_lift_joint",
                "upperarm_roll_joint",
                "elbow_flex_joint",
                "forearm_roll_joint",
                "wrist_flex_joint",
                "wrist_roll_joint",
            ],
        }
    }

    /// The joint whose rotation is the symmetry: `shoulder_pan_joint` (index 0 for the UR5e,
    /// 1 for the Fetch), a vertical axis in `base_link`.
    pub fn pan_joint_index(self) -> usize {
        match self {
            RobotKind::Ur5e => 0,
            RobotKind::Fetch => 1,
        }
    }

    /// Home pose (rad, m for the torso), in the order of [`RobotKind::joint_names`].
    ///
    /// UR5e: upper arm up, forearm forward, tool pointing down:
    /// `[0, -pi/2, pi/2, -pi/2, -pi/2, 0]`. Fetch: torso 0.1 m up, arm forward with the elbow
    /// and wrist bent down.
    pub fn home(self) -> Vec<f64> {
        match self {
            RobotKind::Ur5e => vec![0.0, -FRAC_PI_2, FRAC_PI_2, -FRAC_PI_2, -FRAC_PI_2, 0.0],
            RobotKind::Fetch => vec![0.1, 0.0, -0.3, 0.0, 1.2, 0.0, 0.6, 0.0],
        }
    }

    /// The shipped robot whose joint names (in order) are those of `model`, if any.
    pub fn matching(model: &RobotModel) -> Option<RobotKind> {
        [RobotKind::Ur5e, RobotKind::Fetch].into_iter().find(|kind| {
            model.joint_names().iter().map(String::as_str).eq(kind.joint_names().iter().copied())
        })
    }

    /// Loads the shipped URDF from [`RobotKind::default_urdf_path`].
    pub fn load(self) -> Result<RobotModel> {
        RobotModel::from_urdf_file(self.default_urdf_path(), self.base_link(), self.ee_link())
    }

    /// Loads `<dir>/<urdf_file_name>`, e.g. from the installed ament share folder.
    pub fn load_from_dir(self, dir: impl AsRef<Path>) -> Result<RobotModel> {
        let path = dir.as_ref().join(self.urdf_file_name());
        RobotModel::from_urdf_file(path, self.base_link(), self.ee_link())
    }
}

/// Rotation about `base_link`'s z axis by `angle` (rad).
pub fn rot_z(angle: f64) -> UnitQuaternion<f64> {
    UnitQuaternion::from_axis_angle(&Vector3::z_axis(), angle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::f64::consts::PI;

    /// Standard UR DH forward kinematics (position of frame 6 in the DH base frame).
    fn ur5e_dh(q: &[f64]) -> Vector3<f64> {
        let d = [0.1625, 0.0, 0.0, 0.1333, 0.0997, 0.0996];
        let a = [0.0, -0.425, -0.3922, 0.0, 0.0, 0.0];
        let alpha = [FRAC_PI_2, 0.0, 0.0, FRAC_PI_2, -FRAC_PI_2, 0.0];
        let mut t = nalgebra::Matrix4::<f64>::identity();
        for i in 0..6 {
            let (st, ct) = q[i].sin_cos();
            let (sa, ca) = alpha[i].sin_cos();
            #[rustfmt::skip]
            let ti = nalgebra::Matrix4::new(
                ct, -st * ca,  st * sa, a[i] * ct,
                st,  ct * ca, -ct * sa, a[i] * st,
                0.0,      sa,       ca,      d[i],
                0.0,     0.0,      0.0,       1.0,
            );
            t *= ti;
        }
        Vector3::new(t[(0, 3)], t[(1, 3)], t[(2, 3)])
    }

    fn random_q(model: &RobotModel, rng: &mut ChaCha8Rng) -> Vec<f64> {
        model
            .limits()
            .iter()
            .map(|l| {
                let (lo, hi) = if l.continuous { (-PI, PI) } else { (l.lower, l.upper) };
                rng.random_range(lo..=hi)
            })
            .collect()
    }

    #[test]
    fn ur5e_tool0_matches_dh_on_random_configurations() {
        let model = RobotModel::ur5e().unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..1000 {
            let q = random_q(&model, &mut rng);
            let p = model.fk_ee(&q).unwrap().translation.vector;
            // base_link is the DH base frame turned by pi about z (base_link -> base_link_inertia).
            let expected = rot_z(PI) * ur5e_dh(&q);
            assert!((p - expected).norm() < 1e-9, "q={q:?} urdf={p} dh={expected}");
        }
    }

    #[test]
    fn ur5e_tool0_orientation_at_zero_is_the_ur_convention() {
        // At q = 0 the UR arm lies stretched along base_link +x and tool0's z axis points along +y
        // (-y of the DH base frame, which is turned by pi).
        let model = RobotModel::ur5e().unwrap();
        let pose = model.fk_ee(&[0.0; 6]).unwrap();
        let z = pose.rotation * Vector3::z();
        assert!((z - Vector3::new(0.0, 1.0, 0.0)).norm() < 1e-12, "{z}");
        let p = pose.translation.vector;
        let expected = Vector3::new(0.8172, 0.2329, 0.0628);
        assert!((p - expected).norm() < 1e-9, "{p}");
    }

    #[test]
    fn fetch_gripper_at_zero_matches_published_value() {
        let model = RobotModel::fetch().unwrap();
        let p = model.fk_ee(&[0.0; 8]).unwrap().translation.vector;
        assert!((p - Vector3::new(1.1281, 0.0, 0.7860)).norm() < 1e-4, "{p}");
    }

    #[test]
    fn ur5e_pan_rotation_rotates_the_whole_arm_about_z() {
        let model = RobotModel::ur5e().unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for &t in &[0.3, -1.2, FRAC_PI_2, PI, 2.5] {
            for _ in 0..50 {
                let q = random_q(&model, &mut rng);
                let mut q_t = q.clone();
                q_t[0] += t;
                let a = model.fk_ee(&q).unwrap();
                let b = model.fk_ee(&q_t).unwrap();
                let rotated = Isometry3::from_parts(Translation3::identity(), rot_z(t)) * a;
                assert!((b.translation.vector - rotated.translation.vector).norm() < 1e-12);
                assert!(b.rotation.angle_to(&rotated.rotation) < 1e-9);
            }
        }
    }

    #[test]
    fn flat_fk_agrees_with_k() {
        for kind in [RobotKind::Ur5e, RobotKind::Fetch] {
            let model = kind.load().unwrap();
            let chain = k::Chain::<f64>::from_urdf_file(kind.default_urdf_path()).unwrap();
            let ee = chain.find_link(kind.ee_link()).unwrap();
            let serial = k::SerialChain::from_end(ee);
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            for _ in 0..100 {
                let q = random_q(&model, &mut rng);
                // k clamps to its own limits, which treats continuous joints as unlimited too.
                serial.set_joint_positions_unchecked(&q);
                let expected = serial.end_transform();
                let got = model.fk_ee(&q).unwrap();
                let dp = (got.translation.vector - expected.translation.vector).norm();
                assert!(dp < 1e-12, "{kind:?}: {dp}");
            }
        }
    }

    #[test]
    fn joint_names_and_limits_match_the_kind() {
        for kind in [RobotKind::Ur5e, RobotKind::Fetch] {
            let model = kind.load().unwrap();
            assert_eq!(model.joint_names(), kind.joint_names());
            assert_eq!(RobotKind::matching(&model), Some(kind));
            assert_eq!(kind.home().len(), model.dof());
            for (x, l) in kind.home().iter().zip(model.limits()) {
                assert!(l.lower <= *x && *x <= l.upper);
            }
        }
        let ur = RobotModel::ur5e().unwrap();
        let elbow = ur.limits()[2];
        assert_eq!((elbow.lower, elbow.upper, elbow.effort), (-PI, PI, 150.0));
        assert!((elbow.velocity - PI).abs() < 1e-12);
        let fetch = RobotModel::fetch().unwrap();
        let torso = fetch.limits()[0];
        assert_eq!((torso.lower, torso.upper, torso.velocity), (0.0, 0.38615, 0.1));
    }

    #[test]
    fn continuous_joints_are_flagged_and_never_clamped() {
        let fetch = RobotModel::fetch().unwrap();
        let continuous: Vec<&str> = fetch
            .joint_names()
            .iter()
            .zip(fetch.limits())
            .filter(|(_, l)| l.continuous)
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(continuous, ["upperarm_roll_joint", "forearm_roll_joint", "wrist_roll_joint"]);
        let roll = fetch.limits()[3];
        assert_eq!(roll.clamp_position(10.0), 10.0);
        assert_eq!(roll.clamp_position(-7.5), -7.5);
        assert_eq!(fetch.limits()[1].clamp_position(3.0), 1.6056);
        assert!((roll.velocity - 1.571).abs() < 1e-12);
    }

    #[test]
    fn malformed_urdf_reports_file_and_reason() {
        let dir = std::env::temp_dir().join(format!("equigate-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("broken.urdf");
        std::fs::write(&path, "<robot name=\"r\"><link name=\"a\"></robot>").unwrap();
        let err = RobotModel::from_urdf_file(&path, "a", "a").unwrap_err();
        match &err {
            ModelError::Malformed { file, reason } => {
                assert_eq!(file, &path.display().to_string());
                assert!(!reason.is_empty());
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
        assert!(err.to_string().contains("broken.urdf"));
        std::fs::remove_dir_all(&dir).unwrap();

        let missing = RobotModel::from_urdf_file(dir.join("none.urdf"), "a", "a").unwrap_err();
        assert!(matches!(missing, ModelError::Io { .. }));
    }

    #[test]
    fn unknown_links_and_broken_chains_are_errors() {
        let text = std::fs::read_to_string(RobotKind::Ur5e.default_urdf_path()).unwrap();
        let err = RobotModel::from_urdf_str(&text, "base_link", "gripper").unwrap_err();
        assert!(
            matches!(&err, ModelError::UnknownLink { file, link } if file == STRING_SOURCE && link == "gripper")
        );
        let err = RobotModel::from_urdf_str(&text, "tool0", "base_link").unwrap_err();
        assert!(matches!(err, ModelError::NotAChain { .. }), "{err:?}");
        // A sub-chain starting at a moving link works and has fewer joints.
        let sub = RobotModel::from_urdf_str(&text, "upper_arm_link", "tool0").unwrap();
        assert_eq!(sub.joint_names()[0], "elbow_joint");
        assert_eq!(sub.dof(), 4);
        assert!(matches!(
            RobotModel::ur5e().unwrap().fk_ee(&[0.0; 5]),
            Err(ModelError::LengthMismatch { expected: 6, got: 5 })
        ));
    }

    #[test]
    fn mesh_geometry_is_rejected_with_the_link() {
        let text = r#"<robot name="r">
            <link name="a"/>
            <link name="b"><collision><geometry><mesh filename="b.stl"/></geometry></collision></link>
            <joint name="j" type="revolute"><parent link="a"/><child link="b"/><axis xyz="0 0 1"/>
              <limit lower="-1" upper="1" effort="1" velocity="1"/></joint>
          </robot>"#;
        let err = RobotModel::from_urdf_str(text, "a", "b").unwrap_err();
        assert!(
            matches!(&err, ModelError::UnsupportedGeometry { link, geometry, .. } if link == "b" && geometry == "mesh")
        );
    }

    #[test]
    fn link_primitives_follow_the_links() {
        let model = RobotModel::ur5e().unwrap();
        let q = RobotKind::Ur5e.home();
        let prims = model.link_primitives(&q).unwrap();
        let names: Vec<&str> = prims.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "base_link_inertia",
                "shoulder_link",
                "upper_arm_link",
                "upper_arm_link",
                "forearm_link",
                "forearm_link",
                "wrist_1_link",
                "wrist_2_link",
                "wrist_3_link"
            ]
        );
        // The flange disc sits just behind tool0 along tool0's z axis.
        let tool0 = model.fk_ee(&q).unwrap();
        let flange = prims.last().unwrap().1;
        let expected = tool0 * nalgebra::Point3::new(0.0, 0.0, -0.02);
        assert!((flange.pose.translation.vector - expected.coords).norm() < 1e-12);
        // The moving-link list leaves out the base.
        let mut poses = Vec::new();
        let mut moving = Vec::new();
        model.collision_primitives_into(&q, &mut poses, &mut moving).unwrap();
        assert_eq!(moving.len(), prims.len() - 1);
    }
}
