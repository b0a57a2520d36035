//! Static world geometry (floor, table, box obstacles) and posed link primitives, in the
//! robot's `base_link` frame (REP 103: metres, x forward, y left, z up).
//!
//! [`Scene`] and [`Primitive`] are plain data that the task configuration produces. Collision
//! queries go through parry3d (f32, glam maths): the conversion happens here, at the boundary.
//! [`Scene::intersects`] and [`Scene::distance`] convert each obstacle per call (no heap
//! allocation); [`SceneColliders`] caches the parry shapes and bounding spheres for loops that
//! query the same scene many times (the simulator step).

use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector2, Vector3};
use parry3d::math::{Pose as ParryPose, Rotation as ParryRotation, Vector as ParryVector};
use parry3d::query::{self, Ray, RayCast};
use parry3d::shape as ps;

/// A primitive solid. Sizes in metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// Axis-aligned in its own frame; `half_extents` along x, y, z.
    Cuboid {
        half_extents: Vector3<f64>,
    },
    /// Axis along its own z; total length `2 * half_height`.
    Cylinder {
        radius: f64,
        half_height: f64,
    },
    Sphere {
        radius: f64,
    },
}

/// A shape placed in `base_link`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Primitive {
    pub shape: Shape,
    /// Pose of the shape's own frame in `base_link`.
    pub pose: Isometry3<f64>,
}

/// Everything static the arm can hit and the camera can see.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scene {
    /// Height of the floor plane z = floor_z (m), seen by the camera and never by collisions
    /// (the arm's base stands on it). `None`: no floor.
    pub floor_z: Option<f64>,
    /// Table top, boxes and any other static obstacle.
    pub obstacles: Vec<Primitive>,
}

/// A scene or primitive that collision queries and the camera cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SceneError {
    /// A size (half extent, radius, half height) that is negative or not finite.
    #[error("{field} = {value} m must be finite and >= 0")]
    InvalidSize { field: &'static str, value: f64 },
    /// A pose with a NaN or infinite component.
    #[error("pose has a non-finite component")]
    NonFinitePose,
    /// `floor_z` is NaN or infinite.
    #[error("floor_z = {floor_z} m must be finite")]
    NonFiniteFloor { floor_z: f64 },
    /// The obstacle at `index` in [`Scene::obstacles`] is invalid.
    #[error("obstacle {index}: {source}")]
    Obstacle {
        index: usize,
        #[source]
        source: Box<SceneError>,
    },
}

/// Slack (m) added to bounding-sphere rejection tests, so that the f64 cull never rejects a
/// pair that parry (f32) would report as touching.
const CULL_SLACK_M: f64 = 1e-5;

impl Shape {
    /// Radius (m) of the smallest sphere about the shape's own origin that contains it.
    pub fn bounding_radius(&self) -> f64 {
        match *self {
            Shape::Cuboid { half_extents } => half_extents.norm(),
            Shape::Cylinder { radius, half_height } => radius.hypot(half_height),
            Shape::Sphere { radius } => radius,
        }
    }

    /// Checks that every size is finite and non-negative.
    ///
    /// # Errors
    /// [`SceneError::InvalidSize`] naming the first offending field.
    pub fn validate(&self) -> Result<(), SceneError> {
        let check = |field: &'static str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(SceneError::InvalidSize { field, value })
            }
        };
        match *self {
            Shape::Cuboid { half_extents } => {
                check("half_extents.x", half_extents.x)?;
                check("half_extents.y", half_extents.y)?;
                check("half_extents.z", half_extents.z)
            }
            Shape::Cylinder { radius, half_height } => {
                check("radius", radius)?;
                check("half_height", half_height)
            }
            Shape::Sphere { radius } => check("radius", radius),
        }
    }

    /// The parry shape, in parry's own-frame convention (parry's cylinder axis is y, ours z:
    /// its pose is composed with a +90 degree turn about x). Negative or NaN sizes become 0 (use
    /// [`Shape::validate`] to reject them instead).
    pub(crate) fn to_parry(self) -> ParryShape {
        let size = |v: f64| (v as f32).max(0.0);
        match self {
            Shape::Cuboid { half_extents } => ParryShape::Cuboid(ps::Cuboid::new(
                ParryVector::new(size(half_extents.x), size(half_extents.y), size(half_extents.z)),
            )),
            Shape::Cylinder { radius, half_height } => {
                ParryShape::Cylinder(ps::Cylinder::new(size(half_height), size(radius)))
            }
            Shape::Sphere { radius } => ParryShape::Ball(ps::Ball::new(size(radius))),
        }
    }
}

/// A parry shape with its own-frame ray cast.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ParryShape {
    Cuboid(ps::Cuboid),
    /// Axis along parry's y.
    Cylinder(ps::Cylinder),
    Ball(ps::Ball),
}

impl ParryShape {
    fn as_dyn(&self) -> &dyn ps::Shape {
        match self {
            ParryShape::Cuboid(s) => s,
            ParryShape::Cylinder(s) => s,
            ParryShape::Ball(s) => s,
        }
    }

    /// Time of impact of the ray `origin + t * dir`, given in the primitive's own frame (ours:
    /// cylinder axis z), on the solid shape (0 when the origin is inside); `None` on a miss or
    /// when the impact is beyond `max_toi`. `t` is in units of `dir` (not normalised).
    ///
    /// Cuboids and balls use parry's analytic ray casts (f32). Cylinders are cast
    /// analytically here in f64 ([`ray_toi_cylinder`]): parry 0.31 casts rays on cylinders
    /// with iterative GJK, which in f32 reported a hit 2 mm outside the rim of a cap (0.08 m
    /// radius, 1.5 m away) where the exact answer is a miss.
    #[inline]
    pub(crate) fn cast_own_frame_ray(
        &self,
        origin: Vector3<f64>,
        dir: Vector3<f64>,
        max_toi: f32,
    ) -> Option<f32> {
        match self {
            ParryShape::Cuboid(s) => s.cast_local_ray(&ray(origin, dir), max_toi, true),
            ParryShape::Ball(s) => s.cast_local_ray(&ray(origin, dir), max_toi, true),
            ParryShape::Cylinder(s) => {
                let toi =
                    ray_toi_cylinder(f64::from(s.radius), f64::from(s.half_height), origin, dir)?
                        as f32;
                (toi <= max_toi).then_some(toi)
            }
        }
    }
}

fn ray(origin: Vector3<f64>, dir: Vector3<f64>) -> Ray {
    let v = |v: Vector3<f64>| ParryVector::new(v.x as f32, v.y as f32, v.z as f32);
    Ray::new(v(origin), v(dir))
}

/// Time of impact of the ray `origin + t * dir` (own frame, t >= 0, in units of `dir`) on the
/// solid cylinder of `radius` and `half_height` about the z axis: the entry into the
/// intersection of the infinite cylinder x² + y² <= r² and the slab |z| <= h. 0 when the
/// origin is inside, `None` on a miss.
pub(crate) fn ray_toi_cylinder(
    radius: f64,
    half_height: f64,
    origin: Vector3<f64>,
    dir: Vector3<f64>,
) -> Option<f64> {
    // Slab |z| <= h.
    let (mut t0, mut t1) = if dir.z == 0.0 {
        if origin.z.abs() > half_height {
            return None;
        }
        (f64::NEG_INFINITY, f64::INFINITY)
    } else {
        let a = (-half_height - origin.z) / dir.z;
        let b = (half_height - origin.z) / dir.z;
        (a.min(b), a.max(b))
    };
    // Infinite cylinder: a t² + 2 b t + c <= 0.
    let a = dir.x * dir.x + dir.y * dir.y;
    let b = origin.x * dir.x + origin.y * dir.y;
    let c = origin.x * origin.x + origin.y * origin.y - radius * radius;
    if a == 0.0 {
        if c > 0.0 {
            return None;
        }
    } else {
        let disc = b * b - a * c;
        if disc < 0.0 {
            return None;
        }
        // Numerically stable roots: q = -(b + sign(b) sqrt(disc)); roots q / a and c / q.
        let q = -(b + disc.sqrt().copysign(b));
        let (r0, r1) = if q == 0.0 {
            (0.0, 0.0)
        } else {
            let (x, y) = (q / a, c / q);
            (x.min(y), x.max(y))
        };
        t0 = t0.max(r0);
        t1 = t1.min(r1);
    }
    if t0 > t1 || t1 < 0.0 {
        return None;
    }
    Some(t0.max(0.0))
}

/// A primitive converted for parry queries, with its bounding sphere in `base_link`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Collider {
    shape: ParryShape,
    /// Pose of parry's shape frame in `base_link` (f32).
    pose: ParryPose,
    /// Bounding sphere centre (m, `base_link`).
    center: Vector3<f64>,
    /// Bounding sphere radius (m).
    radius: f64,
}

impl Collider {
    fn new(p: &Primitive) -> Self {
        let shape = p.shape.to_parry();
        // Parry's cylinder axis is y; ours is z: parry frame = own frame rotated +90 deg about x.
        let parry_pose = match p.shape {
            Shape::Cylinder { .. } => {
                p.pose
                    * UnitQuaternion::from_axis_angle(
                        &Vector3::x_axis(),
                        std::f64::consts::FRAC_PI_2,
                    )
            }
            _ => p.pose,
        };
        let (center, radius) = p.bounding_sphere();
        Collider { shape, pose: to_parry_pose(&parry_pose), center, radius }
    }

    fn intersects(&self, other: &Collider) -> bool {
        if (self.center - other.center).norm() > self.radius + other.radius + CULL_SLACK_M {
            return false;
        }
        query::intersection_test(&self.pose, self.shape.as_dyn(), &other.pose, other.shape.as_dyn())
            .expect("parry's default dispatcher supports every pair of cuboid, cylinder and ball")
            .intersecting
    }

    /// Distance (m), 0 when touching or penetrating; skips parry and returns `None` when the
    /// bounding spheres already prove it is at least `at_least`.
    fn distance_below(&self, other: &Collider, at_least: f64) -> Option<f64> {
        let lower = (self.center - other.center).norm() - self.radius - other.radius;
        if lower - CULL_SLACK_M >= at_least {
            return None;
        }
        let d = query::distance(&self.pose, self.shape.as_dyn(), &other.pose, other.shape.as_dyn())
            .expect("parry's default dispatcher supports every pair of cuboid, cylinder and ball")
            .distance;
        Some(f64::from(d).max(0.0))
    }
}

/// nalgebra f64 isometry -> parry (glam f32) pose.
pub(crate) fn to_parry_pose(iso: &Isometry3<f64>) -> ParryPose {
    let q = iso.rotation.quaternion();
    let rotation =
        ParryRotation::from_xyzw(q.i as f32, q.j as f32, q.k as f32, q.w as f32).normalize();
    let t = iso.translation.vector;
    ParryPose::from_parts(ParryVector::new(t.x as f32, t.y as f32, t.z as f32), rotation)
}

fn rotation_about_z(theta: f64) -> Isometry3<f64> {
    Isometry3::from_parts(
        Translation3::identity(),
        UnitQuaternion::from_axis_angle(&Vector3::z_axis(), theta),
    )
}

impl Primitive {
    /// A shape at a pose in `base_link`.
    pub fn new(shape: Shape, pose: Isometry3<f64>) -> Self {
        Primitive { shape, pose }
    }

    /// A box centred at `center` (m, `base_link`) with `half_extents` (m) along its own axes,
    /// turned by `yaw` (rad, about base z, counter-clockwise seen from above).
    pub fn cuboid(center: Vector3<f64>, half_extents: Vector3<f64>, yaw: f64) -> Self {
        Primitive {
            shape: Shape::Cuboid { half_extents },
            pose: Isometry3::new(center, Vector3::z() * yaw),
        }
    }

    /// A table: an axis-aligned slab whose top face is the plane z = `top_z` (m), centred at
    /// `center_xy` (m) with half sizes `half_size_xy` (m) along base x and y, `thickness` (m)
    /// thick (the legs are not modelled: the camera sees the top and collisions happen there).
    pub fn table(
        center_xy: Vector2<f64>,
        half_size_xy: Vector2<f64>,
        top_z: f64,
        thickness: f64,
    ) -> Self {
        let half_z = 0.5 * thickness;
        Primitive::cuboid(
            Vector3::new(center_xy.x, center_xy.y, top_z - half_z),
            Vector3::new(half_size_xy.x, half_size_xy.y, half_z),
            0.0,
        )
    }

    /// A cylinder of `radius` (m) whose axis runs from `a` to `b` (m, `base_link`): the usual
    /// collision primitive of an arm link. With `a == b` it is a flat disc in the xy plane.
    pub fn cylinder_between(a: Vector3<f64>, b: Vector3<f64>, radius: f64) -> Self {
        let axis = b - a;
        let length = axis.norm();
        let rotation = if length > 0.0 {
            UnitQuaternion::rotation_between(&Vector3::z(), &axis).unwrap_or_else(|| {
                // rotation_between fails only for axis antiparallel to z.
                UnitQuaternion::from_axis_angle(&Vector3::x_axis(), std::f64::consts::PI)
            })
        } else {
            UnitQuaternion::identity()
        };
        Primitive {
            shape: Shape::Cylinder { radius, half_height: 0.5 * length },
            pose: Isometry3::from_parts(Translation3::from(0.5 * (a + b)), rotation),
        }
    }

    /// A ball of `radius` (m) centred at `center` (m, `base_link`).
    pub fn sphere(center: Vector3<f64>, radius: f64) -> Self {
        Primitive {
            shape: Shape::Sphere { radius },
            pose: Isometry3::translation(center.x, center.y, center.z),
        }
    }

    /// This primitive turned by `theta` (rad) about the base z axis (through the origin of
    /// `base_link`), counter-clockwise seen from above: the group action of the task's C_n.
    pub fn rotated_about_z(&self, theta: f64) -> Self {
        Primitive { shape: self.shape, pose: rotation_about_z(theta) * self.pose }
    }

    /// Centre (m, `base_link`) and radius (m) of a sphere that contains the primitive.
    pub fn bounding_sphere(&self) -> (Vector3<f64>, f64) {
        (self.pose.translation.vector, self.shape.bounding_radius())
    }

    /// Checks sizes (finite, >= 0) and the pose (finite).
    ///
    /// # Errors
    /// [`SceneError::InvalidSize`] or [`SceneError::NonFinitePose`].
    pub fn validate(&self) -> Result<(), SceneError> {
        self.shape.validate()?;
        let q = self.pose.rotation.quaternion();
        let t = self.pose.translation.vector;
        if q.coords.iter().chain(t.iter()).all(|c| c.is_finite()) {
            Ok(())
        } else {
            Err(SceneError::NonFinitePose)
        }
    }
}

impl Scene {
    /// Checks the floor height and every obstacle ([`Primitive::validate`]).
    ///
    /// # Errors
    /// [`SceneError::NonFiniteFloor`], or [`SceneError::Obstacle`] with the first bad index.
    pub fn validate(&self) -> Result<(), SceneError> {
        if let Some(floor_z) = self.floor_z {
            if !floor_z.is_finite() {
                return Err(SceneError::NonFiniteFloor { floor_z });
            }
        }
        for (index, p) in self.obstacles.iter().enumerate() {
            p.validate().map_err(|e| SceneError::Obstacle { index, source: Box::new(e) })?;
        }
        Ok(())
    }

    /// The scene turned by `theta` (rad) about the base z axis, counter-clockwise seen from
    /// above. The floor is unchanged (it is invariant). Used by symmetry tests and to build
    /// rotated task variants.
    pub fn rotated_about_z(&self, theta: f64) -> Scene {
        Scene {
            floor_z: self.floor_z,
            obstacles: self.obstacles.iter().map(|p| p.rotated_about_z(theta)).collect(),
        }
    }

    /// Whether `p` (a link primitive) touches or penetrates any obstacle (parry intersection
    /// test, f32). The floor is never an obstacle. Converts each obstacle on the fly without
    /// allocating; build [`SceneColliders`] once to query the same scene many times.
    pub fn intersects(&self, p: &Primitive) -> bool {
        let link = Collider::new(p);
        self.obstacles.iter().any(|o| Collider::new(o).intersects(&link))
    }

    /// Smallest distance (m) from `p` to any obstacle: 0 when touching or penetrating,
    /// `f64::INFINITY` when there is no obstacle. The floor is never an obstacle. Parry (f32),
    /// so about 1e-6 m resolution. See [`Scene::intersects`] on caching.
    pub fn distance(&self, p: &Primitive) -> f64 {
        let link = Collider::new(p);
        min_distance(self.obstacles.iter().map(Collider::new), &link)
    }

    /// The parry shapes of the obstacles, built once for repeated queries.
    pub fn colliders(&self) -> SceneColliders {
        SceneColliders::new(self)
    }
}

fn min_distance(obstacles: impl Iterator<Item = Collider>, link: &Collider) -> f64 {
    let mut best = f64::INFINITY;
    for o in obstacles {
        if let Some(d) = o.distance_below(link, best) {
            best = best.min(d);
            if best == 0.0 {
                break;
            }
        }
    }
    best
}

/// The obstacles of a [`Scene`] as cached parry shapes and bounding spheres, for the
/// per-step collision queries of the simulator. Same answers as [`Scene::intersects`] and
/// [`Scene::distance`]; rebuild it when the scene changes.
#[derive(Debug, Clone)]
pub struct SceneColliders {
    obstacles: Vec<Collider>,
}

impl SceneColliders {
    /// Converts every obstacle of `scene` (the floor is not an obstacle).
    pub fn new(scene: &Scene) -> Self {
        SceneColliders { obstacles: scene.obstacles.iter().map(Collider::new).collect() }
    }

    /// Number of obstacles.
    pub fn len(&self) -> usize {
        self.obstacles.len()
    }

    /// Whether there is no obstacle.
    pub fn is_empty(&self) -> bool {
        self.obstacles.is_empty()
    }

    /// See [`Scene::intersects`].
    pub fn intersects(&self, p: &Primitive) -> bool {
        let link = Collider::new(p);
        self.obstacles.iter().any(|o| o.intersects(&link))
    }

    /// See [`Scene::distance`].
    pub fn distance(&self, p: &Primitive) -> f64 {
        let link = Collider::new(p);
        min_distance(self.obstacles.iter().copied(), &link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::{FRAC_PI_2, PI};

    fn close(a: Vector3<f64>, b: Vector3<f64>) -> bool {
        (a - b).norm() < 1e-12
    }

    /// A table top at z = 0 and a box standing on it at x = 0.5.
    fn scene() -> Scene {
        Scene {
            floor_z: Some(-0.75),
            obstacles: vec![
                Primitive::table(Vector2::new(0.3, 0.0), Vector2::new(0.6, 0.5), 0.0, 0.05),
                Primitive::cuboid(Vector3::new(0.5, 0.0, 0.1), Vector3::new(0.05, 0.1, 0.1), 0.0),
            ],
        }
    }

    #[test]
    fn helpers_place_the_shapes() {
        let t = Primitive::table(Vector2::new(0.3, -0.1), Vector2::new(0.6, 0.5), 0.02, 0.04);
        assert_eq!(t.shape, Shape::Cuboid { half_extents: Vector3::new(0.6, 0.5, 0.02) });
        assert!(close(t.pose.translation.vector, Vector3::new(0.3, -0.1, 0.0)));

        let b =
            Primitive::cuboid(Vector3::new(1.0, 2.0, 3.0), Vector3::new(0.1, 0.2, 0.3), FRAC_PI_2);
        assert!(close(b.pose * Vector3::x(), Vector3::y()));

        let a = Vector3::new(0.1, 0.2, 0.3);
        for b in [
            Vector3::new(0.4, -0.2, 0.9),
            Vector3::new(0.1, 0.2, -0.5),
            Vector3::new(0.1, 0.2, 0.9),
        ] {
            let c = Primitive::cylinder_between(a, b, 0.05);
            let Shape::Cylinder { radius, half_height } = c.shape else { panic!("a cylinder") };
            assert_eq!(radius, 0.05);
            let p = |z: f64| (c.pose * nalgebra::Point3::new(0.0, 0.0, z)).coords;
            assert!(close(p(-half_height), a) && close(p(half_height), b), "{b:?}");
        }
        let disc = Primitive::cylinder_between(a, a, 0.05);
        assert!(matches!(disc.shape, Shape::Cylinder { half_height, .. } if half_height == 0.0));
    }

    #[test]
    fn rotation_about_z_turns_poses_and_keeps_the_floor() {
        let p = Primitive::cuboid(Vector3::new(1.0, 0.0, 0.5), Vector3::new(0.1, 0.2, 0.3), 0.0);
        let q = p.rotated_about_z(FRAC_PI_2);
        assert!(close(q.pose.translation.vector, Vector3::new(0.0, 1.0, 0.5)));
        assert!(close(q.pose.rotation * Vector3::x(), Vector3::y()));
        assert_eq!(q.shape, p.shape);
        let s = scene().rotated_about_z(PI);
        assert_eq!(s.floor_z, Some(-0.75));
        assert!(close(s.obstacles[1].pose.translation.vector, Vector3::new(-0.5, 0.0, 0.1)));
        // Intersection and distance are invariant under a common rotation.
        let link = Primitive::sphere(Vector3::new(0.62, 0.05, 0.1), 0.05);
        let turned = link.rotated_about_z(PI);
        assert!((scene().distance(&link) - s.distance(&turned)).abs() < 1e-6);
    }

    #[test]
    fn intersection_and_distance_match_analytic_values() {
        let s = scene();
        let colliders = s.colliders();
        assert_eq!(colliders.len(), 2);
        // A ball beside the box (box face at x = 0.55), above the table top.
        let cases = [
            (Primitive::sphere(Vector3::new(0.65, 0.0, 0.1), 0.05), 0.05),
            // Barely apart and barely touching (contact is decided in f32).
            (Primitive::sphere(Vector3::new(0.6001, 0.0, 0.1), 0.05), 0.0001),
            (Primitive::sphere(Vector3::new(0.5999, 0.0, 0.1), 0.05), 0.0),
            (Primitive::sphere(Vector3::new(0.58, 0.0, 0.1), 0.05), 0.0), // penetrating
            // Horizontal link cylinder along y, 0.3 m above the table, beside the box top.
            (
                Primitive::cylinder_between(
                    Vector3::new(0.0, -0.3, 0.3),
                    Vector3::new(0.0, 0.3, 0.3),
                    0.04,
                ),
                0.26,
            ),
            // Vertical cylinder standing 2 cm above the box top (z = 0.2).
            (
                Primitive::cylinder_between(
                    Vector3::new(0.5, 0.0, 0.22),
                    Vector3::new(0.5, 0.0, 0.5),
                    0.03,
                ),
                0.02,
            ),
        ];
        for (link, expected) in cases {
            let d = s.distance(&link);
            assert!((d - expected).abs() < 1e-5, "{link:?}: {d} vs {expected}");
            assert_eq!(colliders.distance(&link), d);
            let hit = s.intersects(&link);
            assert_eq!(hit, expected == 0.0, "{link:?}");
            assert_eq!(colliders.intersects(&link), hit);
        }
        // The floor is never an obstacle; an empty scene is infinitely far.
        let below = Primitive::sphere(Vector3::new(2.0, 0.0, -0.8), 0.1);
        assert!(!s.intersects(&below));
        assert_eq!(Scene::default().distance(&below), f64::INFINITY);
        assert!(!Scene::default().intersects(&below));
    }

    #[test]
    fn analytic_cylinder_ray_cast() {
        let (r, h) = (0.1, 0.5);
        let hit =
            |o: [f64; 3], d: [f64; 3]| ray_toi_cylinder(r, h, Vector3::from(o), Vector3::from(d));
        let hits_at = |o: [f64; 3], d: [f64; 3], t: f64| {
            let got = hit(o, d).expect("a hit");
            assert!((got - t).abs() < 1e-12, "{o:?} {d:?}: {got} vs {t}");
        };
        hits_at([0.0, 0.0, 2.0], [0.0, 0.0, -1.0], 1.5); // cap
        hits_at([-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], 0.9); // side
        hits_at([-1.0, 0.0, 0.0], [2.0, 0.0, 0.0], 0.45); // in units of dir
        hits_at([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], 0.0); // inside: solid
        assert_eq!(hit([-1.0, 0.2, 0.0], [1.0, 0.0, 0.0]), None); // passes beside
        assert_eq!(hit([-1.0, 0.0, 0.6], [1.0, 0.0, 0.0]), None); // passes above
        assert_eq!(hit([-1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]), None); // points away
        assert_eq!(hit([0.0, 0.3, 2.0], [0.0, 0.0, -1.0]), None); // parallel, outside
                                                                  // Through the rim diagonally: enters the side at z = 0.45 < h.
        hits_at([-1.0, 0.0, 1.35], [1.0, 0.0, -1.0], 0.9);
    }
    #[test]
    fn validation_names_the_bad_field() {
        let mut s = scene();
        assert_eq!(s.validate(), Ok(()));
        s.obstacles[1].shape = Shape::Cylinder { radius: -0.1, half_height: 0.2 };
        assert_eq!(
            s.validate(),
            Err(SceneError::Obstacle {
                index: 1,
                source: Box::new(SceneError::InvalidSize { field: "radius", value: -0.1 })
            })
        );
        s.obstacles.truncate(1);
        s.floor_z = Some(f64::NAN);
        assert!(matches!(s.validate(), Err(SceneError::NonFiniteFloor { .. })));
        let mut p = Primitive::sphere(Vector3::zeros(), 0.1);
        p.pose.translation.vector.x = f64::INFINITY;
        assert_eq!(p.validate(), Err(SceneError::NonFinitePose));
    }
}
