//! Top-down depth camera over the arm's base axis, rendered by ray casting primitives:
//! cuboids and balls with parry3d's analytic ray casts, cylinders with an exact f64 ray cast
//! (parry's GJK cylinder cast is off by millimetres near the cap rims), the floor as a plane.
//!
//! The camera is a square pinhole with a 60 degree field of view whose optical centre sits at
//! (0, 0, `height_m`) in `base_link`, looking straight down (−z). Because it is centred on the
//! base axis and looks along it, rotating the world about base z by a multiple of 90 degrees
//! rotates the image on the pixel grid exactly (see [`DepthCamera`] for the sense): the same
//! C4 symmetry the task and the networks use.
//!
//! Conventions: REP 103 optical frame (z forward = down, x right, y down in the image);
//! REP 118 depth (32FC1, metres along the optical z axis); REP 117 non-finite values
//! (+Inf where the ray hits nothing). The intrinsics follow sensor_msgs/CameraInfo
//! ([`CameraInfoData`]); no ROS types live here.

use nalgebra::{Isometry3, Matrix3, Rotation3, Translation3, UnitQuaternion, Vector3};
use serde::{Deserialize, Serialize};

use crate::scene::{Primitive, Scene};

/// Full field of view (degrees), horizontal = vertical (the image is square).
pub const FOV_DEG: f64 = 60.0;

/// Suggested `frame_id` of the optical frame, child of `base_link` (REP 103/105 naming).
pub const DEFAULT_OPTICAL_FRAME_ID: &str = "depth_camera_optical_frame";

/// Largest accepted image width (px); keeps `width * width` far from overflow.
pub const MAX_WIDTH_PX: u32 = 8192;

/// Camera settings (runtime config, `deny_unknown_fields`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DepthCameraConfig {
    /// Image width = image height (px), 1 ..= [`MAX_WIDTH_PX`] (default: `64`).
    pub width_px: u32,
    /// Height of the optical centre above the `base_link` origin (m, > 0) (default: `2.0m`).
    ///
    /// With the 60 degree FOV the image covers a square of half side
    /// `(height_m - z) * tan(30 deg)` on the plane at height z: 1.15 m on z = 0 at the
    /// default, enough for the UR5e's 0.85 m reach. The Fetch arm (1.13 m reach at
    /// z ~ 0.8 m) needs about 3 m.
    pub height_m: f64,
}

impl Default for DepthCameraConfig {
    fn default() -> Self {
        DepthCameraConfig { width_px: 64, height_m: 2.0 }
    }
}

/// Errors of [`DepthCamera`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CameraError {
    /// `width_px` outside 1 ..= [`MAX_WIDTH_PX`].
    #[error("image width {width_px} px must be in 1..={max}", max = MAX_WIDTH_PX)]
    InvalidWidth { width_px: u32 },
    /// `height_m` not finite or not positive.
    #[error("camera height {height_m} m must be finite and > 0")]
    InvalidHeight { height_m: f64 },
    /// The output buffer of [`DepthCamera::render`] has the wrong length.
    #[error("depth buffer holds {actual} values, a {width_px}x{width_px} image needs {expected}")]
    BufferLength { width_px: usize, expected: usize, actual: usize },
}

/// Intrinsics in the layout of sensor_msgs/CameraInfo (row-major arrays), without the header.
/// `binning_x = binning_y = 0` and a zero ROI (full image) are implied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraInfoData {
    /// Image height (px).
    pub height: u32,
    /// Image width (px).
    pub width: u32,
    /// Always `"plumb_bob"`.
    pub distortion_model: &'static str,
    /// Distortion (k1, k2, t1, t2, k3): all zero.
    pub d: [f64; 5],
    /// Intrinsic matrix `[fx 0 cx; 0 fy cy; 0 0 1]`, fx = fy = (W/2) / tan(30 deg) px,
    /// cx = cy = W/2 − 0.5 px (pixel centres at integer coordinates).
    pub k: [f64; 9],
    /// Rectification rotation: identity (monocular).
    pub r: [f64; 9],
    /// Projection `[K | 0]` (3x4).
    pub p: [f64; 12],
}

/// The top-down depth camera.
///
/// # Frames and image layout
/// Optical frame in `base_link` ([`DepthCamera::optical_frame_pose`]): origin (0, 0, h),
/// optical z = −z_base (down), optical x (image right) = −y_base, optical y (image down) =
/// −x_base. So the image shows the scene from above with the arm's forward (+x) at the top
/// and its left (+y) on the left. Buffers are row-major: `out[v * width + u]`, row `v` from
/// the top, column `u` from the left.
///
/// # Symmetry
/// Rendering the world rotated by +90 degrees about base z (counter-clockwise seen from above)
/// gives the image rotated by +90 degrees counter-clockwise as displayed, i.e.
/// `np.rot90(image, k=1)` on the `[v, u]` array: `rotated[W-1-u, v] = image[v, u]`.
/// This holds on the pixel grid because cx = cy = W/2 − 0.5 (the grid is symmetric about the
/// optical axis); the ray set is mapped onto itself exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthCamera {
    config: DepthCameraConfig,
    /// fx = fy (px).
    focal_px: f64,
    /// cx = cy (px).
    center_px: f64,
    /// `(i - c) / f` for each pixel index i: the optical x (or y) of the ray through the
    /// centre of column (or row) i at optical z = 1.
    offsets: Vec<f64>,
}

impl DepthCamera {
    /// A camera from validated settings.
    ///
    /// # Errors
    /// [`CameraError::InvalidWidth`], [`CameraError::InvalidHeight`].
    pub fn new(config: DepthCameraConfig) -> Result<Self, CameraError> {
        if config.width_px == 0 || config.width_px > MAX_WIDTH_PX {
            return Err(CameraError::InvalidWidth { width_px: config.width_px });
        }
        if !(config.height_m.is_finite() && config.height_m > 0.0) {
            return Err(CameraError::InvalidHeight { height_m: config.height_m });
        }
        let w = f64::from(config.width_px);
        let focal_px = (0.5 * w) / (0.5 * FOV_DEG).to_radians().tan();
        let center_px = 0.5 * w - 0.5;
        let offsets = (0..config.width_px).map(|i| (f64::from(i) - center_px) / focal_px).collect();
        Ok(DepthCamera { config, focal_px, center_px, offsets })
    }

    /// The settings this camera was built from.
    pub fn config(&self) -> &DepthCameraConfig {
        &self.config
    }

    /// Image width = height (px).
    pub fn width(&self) -> usize {
        self.offsets.len()
    }

    /// Number of pixels, `width * width`: the length [`DepthCamera::render`] wants.
    pub fn pixel_count(&self) -> usize {
        self.width() * self.width()
    }

    /// Height of the optical centre above the `base_link` origin (m).
    pub fn height_m(&self) -> f64 {
        self.config.height_m
    }

    /// fx = fy (px).
    pub fn focal_px(&self) -> f64 {
        self.focal_px
    }

    /// cx = cy (px).
    pub fn center_px(&self) -> f64 {
        self.center_px
    }

    /// The CameraInfo intrinsics (see [`CameraInfoData`]).
    pub fn camera_info(&self) -> CameraInfoData {
        let (f, c) = (self.focal_px, self.center_px);
        let w = self.config.width_px;
        CameraInfoData {
            height: w,
            width: w,
            distortion_model: "plumb_bob",
            d: [0.0; 5],
            k: [f, 0.0, c, 0.0, f, c, 0.0, 0.0, 1.0],
            r: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            p: [f, 0.0, c, 0.0, 0.0, f, c, 0.0, 0.0, 0.0, 1.0, 0.0],
        }
    }

    /// Pose of the optical frame in `base_link` (the transform base_link -> optical frame to
    /// publish on /tf_static): translation (0, 0, h); rotation with columns
    /// x_opt = (0, −1, 0), y_opt = (−1, 0, 0), z_opt = (0, 0, −1) (a half turn about
    /// (1, −1, 0)/√2).
    pub fn optical_frame_pose(&self) -> Isometry3<f64> {
        #[rustfmt::skip]
        let m = Matrix3::new(
            0.0, -1.0, 0.0,
            -1.0, 0.0, 0.0,
            0.0, 0.0, -1.0,
        );
        Isometry3::from_parts(
            Translation3::new(0.0, 0.0, self.config.height_m),
            UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_unchecked(m)),
        )
    }

    /// Where the ray through image point (u, v) (px, continuous; pixel centres at integers)
    /// meets the horizontal plane at height `z` (m): (x, y) in `base_link` (m). Extrapolates
    /// outside the image. `(NaN, NaN)` when `z >= height_m` (the plane is not below the
    /// camera, so the ray never reaches it).
    pub fn image_point_on_plane(&self, u: f64, v: f64, z: f64) -> (f64, f64) {
        let s = self.config.height_m - z;
        if s <= 0.0 {
            return (f64::NAN, f64::NAN);
        }
        let a = (u - self.center_px) / self.focal_px;
        let b = (v - self.center_px) / self.focal_px;
        (-b * s, -a * s)
    }

    /// Where the ray through the centre of pixel (u = column, v = row) meets the plane at
    /// height `z` (m): (x, y) in `base_link` (m). See [`DepthCamera::image_point_on_plane`];
    /// the λ map is drawn on this grid.
    pub fn pixel_center_on_plane(&self, u: usize, v: usize, z: f64) -> (f64, f64) {
        self.image_point_on_plane(u as f64, v as f64, z)
    }

    /// Image point (u, v) (px, continuous, pixel centres at integers) of the point (x, y, z)
    /// in `base_link` (m); inverse of [`DepthCamera::image_point_on_plane`]. May lie outside
    /// the image. `None` when `z >= height_m` (not in front of the camera).
    pub fn project(&self, x: f64, y: f64, z: f64) -> Option<(f64, f64)> {
        let s = self.config.height_m - z;
        if s <= 0.0 {
            return None;
        }
        let u = self.focal_px * (-y / s) + self.center_px;
        let v = self.focal_px * (-x / s) + self.center_px;
        Some((u, v))
    }

    /// The pixel (u = column, v = row) whose square contains the image of (x, y, z) in
    /// `base_link` (m); inverse of [`DepthCamera::pixel_center_on_plane`]. `None` outside
    /// the image or when `z >= height_m`.
    pub fn pixel_at(&self, x: f64, y: f64, z: f64) -> Option<(usize, usize)> {
        let (u, v) = self.project(x, y, z)?;
        let w = self.width() as f64;
        let (u, v) = ((u + 0.5).floor(), (v + 0.5).floor());
        if (0.0..w).contains(&u) && (0.0..w).contains(&v) {
            Some((u as usize, v as usize))
        } else {
            None
        }
    }

    /// Renders a depth image of the scene's obstacles, its floor (if any) and the arm's
    /// `links` into `out` (row-major, `out[v * width + u]`, see [`DepthCamera`]).
    ///
    /// Values are f32 metres along the optical axis (REP 118 32FC1): each ray has optical
    /// direction ((u − cx)/fx, (v − cy)/fy, 1), so parry's time of impact is the z-depth.
    /// +Inf where the ray hits nothing (REP 117); 0 for a ray that starts inside a solid.
    /// The floor, a plane perpendicular to the optical axis, has the constant depth
    /// `height_m − floor_z` (set directly: it is what a ray cast returns); it is invisible
    /// when it is not below the camera.
    ///
    /// Does not allocate: each primitive is converted to its parry shape on the stack and
    /// cast only against the rays of the pixels inside its projected bounding sphere whose
    /// line passes through that sphere.
    /// Does not validate the scene ([`Scene::validate`]).
    ///
    /// # Errors
    /// [`CameraError::BufferLength`] when `out.len() != width * width`.
    pub fn render(
        &self,
        scene: &Scene,
        links: &[Primitive],
        out: &mut [f32],
    ) -> Result<(), CameraError> {
        if out.len() != self.pixel_count() {
            return Err(CameraError::BufferLength {
                width_px: self.width(),
                expected: self.pixel_count(),
                actual: out.len(),
            });
        }
        let background = match scene.floor_z {
            Some(z) if z < self.config.height_m => (self.config.height_m - z) as f32,
            _ => f32::INFINITY,
        };
        out.fill(background);
        for p in scene.obstacles.iter().chain(links) {
            self.splat(p, out);
        }
        Ok(())
    }

    /// Casts the rays that may hit `p` and keeps the nearer depth in `out` (a z-buffer).
    /// Taking minima in any order gives the same image, so the output does not depend on the
    /// order of the primitives.
    fn splat(&self, p: &Primitive, out: &mut [f32]) {
        let h = self.config.height_m;
        let (center, radius) = p.bounding_sphere();
        // Conservative cull slack (m): the sphere tests below run in f64 and must never
        // reject a ray that parry (f32) reports as a hit.
        let radius = radius * (1.0 + 1e-6) + 1e-6;
        // Bounding sphere centre relative to the optical centre, in optical coordinates.
        let (xo, yo, zo) = (-center.y, -center.x, h - center.z);
        let (Some((u0, u1)), Some((v0, v1))) =
            (self.pixel_range(xo, zo, radius), self.pixel_range(yo, zo, radius))
        else {
            return;
        };

        let shape = p.shape.to_parry();
        let rotation = p.pose.rotation.to_rotation_matrix();
        let r = rotation.matrix();
        let rel = Vector3::new(0.0, 0.0, h) - p.pose.translation.vector;
        // Ray origin in the primitive's own frame, R^T (O - t). Rays are moved into the own
        // frame in f64: for a world turned by a multiple of 90 degrees the f64 rounding
        // differences (~1e-16) almost never survive the rounding to f32 (parry's input and
        // the output), so quarter turns rotate the image bitwise.
        let origin = r.tr_mul(&rel);
        // w = bounding sphere centre - optical centre, for the per-ray sphere test.
        let w = center - Vector3::new(0.0, 0.0, h);
        let ww = w.norm_squared();
        let r2 = radius * radius;
        let n = self.width();

        for v in v0..=v1 {
            let bx = -self.offsets[v];
            for u in u0..=u1 {
                // Ray direction in base_link: optical (a, b, 1) -> (−b, −a, −1).
                let d = Vector3::new(bx, -self.offsets[u], -1.0);
                let wd = w.dot(&d);
                let dd = d.norm_squared();
                // Skip rays whose line misses the bounding sphere, or that point away from it
                // while starting outside it.
                if ww - wd * wd / dd > r2 || (wd <= 0.0 && ww > r2) {
                    continue;
                }
                let local = r.tr_mul(&d);
                let idx = v * n + u;
                let best = out[idx];
                let max_toi = if best.is_finite() { best } else { f32::MAX };
                if let Some(toi) = shape.cast_own_frame_ray(origin, local, max_toi) {
                    if toi < best {
                        out[idx] = toi;
                    }
                }
            }
        }
    }

    /// Inclusive range of pixel indices along one image axis that can see a sphere with
    /// optical lateral coordinate `lateral` (m), depth `depth` (m, along the optical axis) and
    /// `radius` (m), widened by one pixel each side. `None` when it is outside the image.
    fn pixel_range(&self, lateral: f64, depth: f64, radius: f64) -> Option<(usize, usize)> {
        let last = self.width() - 1;
        if depth - radius <= 1e-9 {
            // Reaches the camera plane: no finite projection; take the whole axis.
            return Some((0, last));
        }
        // Tangent lines from the optical centre to the sphere's cross-section circle.
        let alpha = lateral.atan2(depth);
        let beta = (radius / lateral.hypot(depth)).asin();
        let lo = self.focal_px * (alpha - beta).tan() + self.center_px;
        let hi = self.focal_px * (alpha + beta).tan() + self.center_px;
        let lo = (lo.floor() - 1.0).max(0.0);
        let hi = (hi.ceil() + 1.0).min(last as f64);
        if lo > hi {
            None
        } else {
            Some((lo as usize, hi as usize))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::Shape;
    use nalgebra::Vector2;
    use std::f64::consts::FRAC_PI_2;

    fn camera(width_px: u32) -> DepthCamera {
        DepthCamera::new(DepthCameraConfig { width_px, height_m: 2.0 }).expect("valid config")
    }

    fn render(cam: &DepthCamera, scene: &Scene, links: &[Primitive]) -> Vec<f32> {
        let mut out = vec![0.0; cam.pixel_count()];
        cam.render(scene, links, &mut out).expect("buffer sized");
        out
    }

    /// np.rot90(img, k=1) on a row-major W x W image: `rotated[W-1-u, v] = image[v, u]`.
    fn rot90(img: &[f32], w: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; img.len()];
        for v in 0..w {
            for u in 0..w {
                out[(w - 1 - u) * w + v] = img[v * w + u];
            }
        }
        out
    }

    /// Ray from the optical centre through the centre of pixel (u, v), in base_link, with
    /// optical z = 1.
    fn ray_dir(cam: &DepthCamera, u: usize, v: usize) -> Vector3<f64> {
        Vector3::new(-cam.offsets[v], -cam.offsets[u], -1.0)
    }

    /// f64 reference: time of impact of origin + t dir on a solid primitive with its sizes
    /// grown by `grow` (m; negative shrinks), or None.
    fn reference_toi(
        p: &Primitive,
        origin: Vector3<f64>,
        dir: Vector3<f64>,
        grow: f64,
    ) -> Option<f64> {
        let inv = p.pose.inverse();
        let o = inv * nalgebra::Point3::from(origin);
        let d = inv * dir;
        match p.shape {
            Shape::Cuboid { half_extents } => {
                let (mut t0, mut t1) = (0.0_f64, f64::INFINITY);
                for i in 0..3 {
                    let hgrown = half_extents[i] + grow;
                    if d[i] == 0.0 {
                        if o[i].abs() > hgrown {
                            return None;
                        }
                        continue;
                    }
                    let (a, b) = ((-hgrown - o[i]) / d[i], (hgrown - o[i]) / d[i]);
                    t0 = t0.max(a.min(b));
                    t1 = t1.min(a.max(b));
                }
                (t0 <= t1).then_some(t0)
            }
            Shape::Cylinder { radius, half_height } => {
                let (r, hh) = (radius + grow, half_height + grow);
                let mut best: Option<f64> = None;
                let mut keep = |t: f64| {
                    if t >= 0.0 && best.is_none_or(|b| t < b) {
                        best = Some(t);
                    }
                };
                let a = d.x * d.x + d.y * d.y;
                let b = 2.0 * (o.x * d.x + o.y * d.y);
                let c = o.x * o.x + o.y * o.y - r * r;
                let disc = b * b - 4.0 * a * c;
                if a > 0.0 && disc >= 0.0 {
                    let t = (-b - disc.sqrt()) / (2.0 * a);
                    if (o.z + t * d.z).abs() <= hh {
                        keep(t);
                    }
                }
                if d.z != 0.0 {
                    for z in [-hh, hh] {
                        let t = (z - o.z) / d.z;
                        let (x, y) = (o.x + t * d.x, o.y + t * d.y);
                        if x * x + y * y <= r * r {
                            keep(t);
                        }
                    }
                }
                best
            }
            Shape::Sphere { radius } => {
                let r = radius + grow;
                let o = o.coords;
                let (a, b, c) = (d.dot(&d), 2.0 * o.dot(&d), o.dot(&o) - r * r);
                let disc = b * b - 4.0 * a * c;
                (disc >= 0.0).then(|| (-b - disc.sqrt()) / (2.0 * a))
            }
        }
    }

    /// Table, floor, two yawed boxes, a few link cylinders and a ball: nothing symmetric.
    fn asymmetric_scene() -> (Scene, Vec<Primitive>) {
        let scene = Scene {
            floor_z: Some(-0.75),
            obstacles: vec![
                Primitive::table(Vector2::new(0.35, 0.1), Vector2::new(0.6, 0.45), -0.01, 0.04),
                Primitive::cuboid(
                    Vector3::new(0.55, -0.3, 0.1),
                    Vector3::new(0.08, 0.05, 0.11),
                    0.3,
                ),
                Primitive::cuboid(
                    Vector3::new(-0.2, 0.5, 0.15),
                    Vector3::new(0.1, 0.1, 0.16),
                    -1.1,
                ),
            ],
        };
        let chain = [
            Vector3::new(0.0, 0.0, 0.0),
            Vector3::new(0.0, 0.0, 0.163),
            Vector3::new(0.13, 0.3, 0.35),
            Vector3::new(0.4, 0.25, 0.5),
            Vector3::new(0.55, 0.05, 0.4),
            Vector3::new(0.6, -0.1, 0.2),
        ];
        let mut links: Vec<Primitive> =
            chain.windows(2).map(|s| Primitive::cylinder_between(s[0], s[1], 0.055)).collect();
        links.push(Primitive::sphere(Vector3::new(0.62, -0.12, 0.15), 0.04));
        (scene, links)
    }

    #[test]
    fn camera_info_follows_the_pinhole_formulas() {
        let cam = camera(64);
        let info = cam.camera_info();
        let f = 32.0 / 30f64.to_radians().tan();
        assert!((f - 55.4256).abs() < 1e-4);
        assert_eq!((info.width, info.height), (64, 64));
        assert_eq!(info.distortion_model, "plumb_bob");
        assert_eq!(info.d, [0.0; 5]);
        assert_eq!(info.k, [f, 0.0, 31.5, 0.0, f, 31.5, 0.0, 0.0, 1.0]);
        assert_eq!(info.r, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(info.p, [f, 0.0, 31.5, 0.0, 0.0, f, 31.5, 0.0, 0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn rejects_bad_config_and_buffer() {
        let bad_w = DepthCameraConfig { width_px: 0, height_m: 2.0 };
        assert_eq!(DepthCamera::new(bad_w), Err(CameraError::InvalidWidth { width_px: 0 }));
        let bad_h = DepthCameraConfig { width_px: 8, height_m: -1.0 };
        assert_eq!(DepthCamera::new(bad_h), Err(CameraError::InvalidHeight { height_m: -1.0 }));
        let cam = camera(8);
        let mut short = vec![0.0; 63];
        assert_eq!(
            cam.render(&Scene::default(), &[], &mut short),
            Err(CameraError::BufferLength { width_px: 8, expected: 64, actual: 63 })
        );
    }

    #[test]
    fn config_defaults() {
        let d = DepthCameraConfig::default();
        assert_eq!((d.width_px, d.height_m), (64, 2.0));
        assert_eq!(camera(64).width(), 64);
    }

    #[test]
    fn optical_frame_follows_rep_103_and_matches_the_pixel_mapping() {
        let cam = camera(16);
        let pose = cam.optical_frame_pose();
        let r = pose.rotation.to_rotation_matrix();
        assert!((r * Vector3::z() - Vector3::new(0.0, 0.0, -1.0)).norm() < 1e-12);
        assert!((r * Vector3::x() - Vector3::new(0.0, -1.0, 0.0)).norm() < 1e-12);
        assert!((r * Vector3::y() - Vector3::new(-1.0, 0.0, 0.0)).norm() < 1e-12);
        assert_eq!(pose.translation.vector, Vector3::new(0.0, 0.0, 2.0));
        // A point at optical depth s through pixel (u, v), by K and the pose, lands where
        // pixel_center_on_plane says.
        let (f, c) = (cam.focal_px(), cam.center_px());
        for (u, v, z) in [(0, 0, 0.0), (3, 11, 0.4), (15, 7, -0.8)] {
            let s = 2.0 - z;
            let optical = nalgebra::Point3::new((u as f64 - c) / f * s, (v as f64 - c) / f * s, s);
            let world = pose * optical;
            let (x, y) = cam.pixel_center_on_plane(u, v, z);
            assert!((world - nalgebra::Point3::new(x, y, z)).norm() < 1e-12);
        }
        // Forward (+x) is at the top of the image, left (+y) on the left.
        assert!(cam.pixel_at(0.5, 0.0, 0.0).expect("visible").1 < 8);
        assert!(cam.pixel_at(0.0, 0.5, 0.0).expect("visible").0 < 8);
    }

    #[test]
    fn pixel_world_mapping_round_trips() {
        let cam = camera(64);
        for z in [-0.75, 0.0, 0.6, 1.9] {
            for v in 0..64 {
                for u in 0..64 {
                    let (x, y) = cam.pixel_center_on_plane(u, v, z);
                    assert_eq!(cam.pixel_at(x, y, z), Some((u, v)));
                    let (uf, vf) = cam.project(x, y, z).expect("below the camera");
                    assert!((uf - u as f64).abs() < 1e-9 && (vf - v as f64).abs() < 1e-9);
                    let (x2, y2) = cam.image_point_on_plane(uf, vf, z);
                    assert!((x2 - x).abs() < 1e-12 && (y2 - y).abs() < 1e-12);
                }
            }
            // Just outside the image: no pixel.
            let s = 2.0 - z;
            let edge = 32.0 / cam.focal_px() * s;
            assert_eq!(cam.pixel_at(edge * 1.001, 0.0, z), None);
            assert!(cam.pixel_at(edge * 0.999, 0.0, z).is_some());
        }
        assert_eq!(cam.project(0.0, 0.0, 2.0), None);
        assert!(cam.image_point_on_plane(1.0, 1.0, 2.5).0.is_nan());
    }

    #[test]
    fn nothing_hit_is_positive_infinity() {
        let cam = camera(32);
        let img = render(&cam, &Scene::default(), &[]);
        assert!(img.iter().all(|&d| d == f32::INFINITY));
        // A floor above the camera is not seen either.
        let img = render(&cam, &Scene { floor_z: Some(2.5), obstacles: vec![] }, &[]);
        assert!(img.iter().all(|&d| d == f32::INFINITY));
        // One small ball: hit where it is, +Inf elsewhere.
        let ball = Primitive::sphere(Vector3::new(0.3, 0.2, 0.0), 0.05);
        let img = render(&cam, &Scene::default(), &[ball]);
        let hits = img.iter().filter(|d| d.is_finite()).count();
        assert!(hits > 0 && hits < 20, "{hits} pixels see the ball");
        let (u, v) = cam.pixel_at(0.3, 0.2, 0.05).expect("visible");
        assert!((img[v * 32 + u] - 1.95).abs() < 0.01);
    }

    #[test]
    fn floor_and_table_depth_is_the_plane_distance() {
        let cam = camera(64);
        let floor = render(&cam, &Scene { floor_z: Some(-0.75), obstacles: vec![] }, &[]);
        assert!(floor.iter().all(|&d| (f64::from(d) - 2.75).abs() < 1e-5));

        let (top, thickness) = (-0.01, 0.04);
        let (cxy, half) = (Vector2::new(0.35, 0.1), Vector2::new(0.6, 0.45));
        let table = Primitive::table(cxy, half, top, thickness);
        let scene = Scene { floor_z: Some(-0.75), obstacles: vec![table] };
        let img = render(&cam, &scene, &[]);
        let inside = |(x, y): (f64, f64), m: f64| {
            (x - cxy.x).abs() < half.x - m && (y - cxy.y).abs() < half.y - m
        };
        let (mut n_table, mut n_floor) = (0, 0);
        for v in 0..64 {
            for u in 0..64 {
                let d = f64::from(img[v * 64 + u]);
                let on_top = cam.pixel_center_on_plane(u, v, top);
                let on_bottom = cam.pixel_center_on_plane(u, v, top - thickness);
                if inside(on_top, 1e-6) {
                    assert!((d - (2.0 - top)).abs() < 1e-5, "table pixel ({u}, {v}): {d}");
                    n_table += 1;
                } else {
                    // The ray's xy path between the table's top and bottom planes misses the
                    // footprint when both ends lie beyond the same edge.
                    let beyond = |p: (f64, f64), k: usize| match k {
                        0 => p.0 > cxy.x + half.x,
                        1 => p.0 < cxy.x - half.x,
                        2 => p.1 > cxy.y + half.y,
                        _ => p.1 < cxy.y - half.y,
                    };
                    if (0..4).any(|k| beyond(on_top, k) && beyond(on_bottom, k)) {
                        assert!((d - 2.75).abs() < 1e-5, "floor pixel ({u}, {v}): {d}");
                        n_floor += 1;
                    }
                }
            }
        }
        assert!(n_table > 500 && n_floor > 500, "{n_table} table, {n_floor} floor pixels");
    }

    #[test]
    fn cylinder_box_and_ball_hits_match_analytic_values() {
        let cam = camera(64);
        let origin = Vector3::new(0.0, 0.0, 2.0);
        let prims = [
            // Horizontal cylinder (seen from the side), vertical one (seen on its cap), a
            // tilted one, a yawed box (top face and a side facing the camera) and a ball.
            Primitive::cylinder_between(
                Vector3::new(0.3, -0.4, 0.5),
                Vector3::new(0.3, 0.4, 0.5),
                0.08,
            ),
            Primitive::cylinder_between(
                Vector3::new(-0.4, 0.3, 0.0),
                Vector3::new(-0.4, 0.3, 0.6),
                0.1,
            ),
            Primitive::cylinder_between(
                Vector3::new(-0.1, -0.5, 0.2),
                Vector3::new(-0.5, -0.2, 0.7),
                0.06,
            ),
            Primitive::cuboid(Vector3::new(0.6, 0.5, 0.3), Vector3::new(0.1, 0.15, 0.3), 0.4),
            Primitive::sphere(Vector3::new(-0.6, -0.6, 0.3), 0.12),
        ];
        for p in &prims {
            let img = render(&cam, &Scene::default(), std::slice::from_ref(p));
            let (mut n_hit, mut n_miss) = (0, 0);
            for v in 0..64 {
                for u in 0..64 {
                    let d = ray_dir(&cam, u, v);
                    let got = img[v * 64 + u];
                    if let Some(t) = reference_toi(p, origin, d, -2e-3) {
                        let exact = reference_toi(p, origin, d, 0.0).expect("shrunk shape hit");
                        assert!(
                            (f64::from(got) - exact).abs() < 1e-5,
                            "{p:?} pixel ({u}, {v}): {got} vs {exact} (shrunk {t})"
                        );
                        n_hit += 1;
                    } else if reference_toi(p, origin, d, 1e-5).is_none() {
                        assert_eq!(got, f32::INFINITY, "{p:?} pixel ({u}, {v})");
                        n_miss += 1;
                    }
                }
            }
            assert!(n_hit >= 10 && n_miss > 1000, "{p:?}: {n_hit} hits, {n_miss} misses");
        }
        // A side hit on the box: the ray towards its face nearest the camera axis.
        let side = Primitive::cuboid(Vector3::new(0.8, 0.0, 0.4), Vector3::new(0.1, 0.2, 0.4), 0.0);
        let img = render(&cam, &Scene::default(), &[side]);
        let (u, v) = cam.pixel_at(0.7, 0.0, 0.3).expect("visible");
        let d = ray_dir(&cam, u, v);
        let t = 0.7 / d.x; // x = 0.7 face
        let z = 2.0 - t;
        assert!(z < 0.8 && z > 0.0, "hits the side face, z = {z}");
        assert!((f64::from(img[v * 64 + u]) - t).abs() < 1e-5);
    }

    #[test]
    fn quarter_turns_of_the_world_rotate_the_image_exactly() {
        let (scene, links) = asymmetric_scene();
        for w in [64usize, 37] {
            let cam = camera(w as u32);
            let base = render(&cam, &scene, &links);
            assert!(base.iter().any(|d| d.is_finite() && *d < 2.5), "links visible");
            let mut expected = base.clone();
            for k in 1..4 {
                expected = rot90(&expected, w);
                let theta = k as f64 * FRAC_PI_2;
                let turned: Vec<Primitive> =
                    links.iter().map(|p| p.rotated_about_z(theta)).collect();
                let img = render(&cam, &scene.rotated_about_z(theta), &turned);
                let mut max_diff = 0.0f32;
                let mut not_bitwise = 0;
                for (a, b) in img.iter().zip(&expected) {
                    assert_eq!(a.is_finite(), b.is_finite());
                    if a.to_bits() != b.to_bits() {
                        not_bitwise += 1;
                        max_diff = max_diff.max((a - b).abs());
                    }
                }
                assert!(max_diff <= 1e-6, "w {w} k {k}: {not_bitwise} px differ, max {max_diff}");
                // The scene is not symmetric, so the image really changed.
                assert_ne!(img, base);
            }
        }
    }

    #[test]
    fn output_does_not_depend_on_primitive_order() {
        let (scene, links) = asymmetric_scene();
        let cam = camera(48);
        let a = render(&cam, &scene, &links);
        let mut reversed = links.clone();
        reversed.reverse();
        let mut scene_r = scene.clone();
        scene_r.obstacles.reverse();
        assert_eq!(a, render(&cam, &scene_r, &reversed));
    }
}
