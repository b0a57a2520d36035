//! The λ map: where the symmetry breaks, on the depth camera's pixel grid.
//!
//! Each transition's λ is binned at the pixel where its end effector appears in the top-down
//! depth image ([`DepthCamera::pixel_at`] of the 3-D end-effector position), so the map overlays
//! `camera/depth/image_raw` pixel for pixel. A pixel's value is the mean λ of the most recent
//! `capacity` transitions that fell on it (a sliding window over all pixels), NaN where none did
//! (REP 117: no measurement). [`LambdaMap::rescore`] replaces the window's λ by those of a newer
//! gate, so that a learning detector's map shows what it knows now. Published as
//! sensor_msgs/Image `32FC1`, and as `rgb8` with the viridis colour map (NaN dark grey) for
//! RViz/Foxglove.

use std::collections::VecDeque;
use std::path::Path;

use anyhow::anyhow;
use equigate_robot::camera::{CameraError, DepthCamera, DepthCameraConfig};
use equigate_ros::msg::{Header, Image, Time};
use nalgebra::Vector3;
use plotters::prelude::*;
use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};

/// Colour of pixels without data in the rgb8 image and the PNGs.
pub const NO_DATA_RGB: [u8; 3] = [48, 48, 48];

/// The sliding-window λ map (module docs).
#[derive(Debug, Clone)]
pub struct LambdaMap {
    camera: DepthCamera,
    capacity: usize,
    recent: VecDeque<(u32, f32)>,
    sums: Vec<f64>,
    counts: Vec<u32>,
}

impl LambdaMap {
    /// An empty map on the grid of the camera `config` remembering the last `capacity`
    /// transitions (at least 1).
    ///
    /// # Errors
    /// An invalid camera config.
    pub fn new(config: DepthCameraConfig, capacity: usize) -> Result<Self, CameraError> {
        let camera = DepthCamera::new(config)?;
        let n = camera.pixel_count();
        Ok(Self {
            camera,
            capacity: capacity.max(1),
            recent: VecDeque::with_capacity(capacity.max(1)),
            sums: vec![0.0; n],
            counts: vec![0; n],
        })
    }

    /// The camera whose grid this is.
    pub fn camera(&self) -> &DepthCamera {
        &self.camera
    }

    /// Image width = height, px.
    pub fn width(&self) -> usize {
        self.camera.width()
    }

    /// Adds the λ ∈ [0, 1] of a transition whose end effector is at `ee` (m, `base_link`).
    /// Returns false (and adds nothing) when `ee` is outside the image or λ is not finite.
    pub fn add(&mut self, ee: Vector3<f64>, lambda: f32) -> bool {
        if !lambda.is_finite() {
            return false;
        }
        let Some((u, v)) = self.camera.pixel_at(ee.x, ee.y, ee.z) else { return false };
        let pixel = (v * self.width() + u) as u32;
        if self.recent.len() == self.capacity {
            let (old, l) = self.recent.pop_front().expect("full, so not empty");
            self.sums[old as usize] -= f64::from(l);
            self.counts[old as usize] -= 1;
        }
        self.recent.push_back((pixel, lambda));
        self.sums[pixel as usize] += f64::from(lambda);
        self.counts[pixel as usize] += 1;
        true
    }

    /// Replaces the λ of the transitions in the window, oldest first, by `lambdas` (e.g. those
    /// of a newer gate), keeping their pixels; a non-finite value keeps the old λ. Returns false
    /// (and changes nothing) when `lambdas.len()` is not [`LambdaMap::len`].
    pub fn rescore(&mut self, lambdas: &[f32]) -> bool {
        if lambdas.len() != self.recent.len() {
            return false;
        }
        self.sums.iter_mut().for_each(|s| *s = 0.0);
        for ((pixel, l), &new) in self.recent.iter_mut().zip(lambdas) {
            if new.is_finite() {
                *l = new;
            }
            self.sums[*pixel as usize] += f64::from(*l);
        }
        true
    }

    /// Most transitions the window holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of transitions in the window.
    pub fn len(&self) -> usize {
        self.recent.len()
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }

    /// Mean λ per pixel, row-major `[width * width]`, NaN where no transition fell.
    pub fn values(&self) -> Vec<f32> {
        self.sums
            .iter()
            .zip(&self.counts)
            .map(|(&s, &c)| if c == 0 { f32::NAN } else { (s / f64::from(c)) as f32 })
            .collect()
    }

    /// The map as sensor_msgs/Image `32FC1` (little endian) in `frame_id` (the depth camera's
    /// optical frame).
    pub fn image_32fc1(&self, stamp: Time, frame_id: &str) -> Image {
        let w = self.width() as u32;
        let data = self.values().iter().flat_map(|v| v.to_le_bytes()).collect();
        image(stamp, frame_id, w, "32FC1", 4, data)
    }

    /// The map as sensor_msgs/Image `rgb8`: viridis over λ ∈ [0, 1], [`NO_DATA_RGB`] for NaN.
    pub fn image_rgb8(&self, stamp: Time, frame_id: &str) -> Image {
        let w = self.width() as u32;
        let data = self.values().iter().flat_map(|&v| lambda_rgb(v)).collect();
        image(stamp, frame_id, w, "rgb8", 3, data)
    }
}

fn image(stamp: Time, frame_id: &str, w: u32, encoding: &str, bytes: u32, data: Vec<u8>) -> Image {
    Image {
        header: Header { stamp, frame_id: frame_id.to_owned() },
        height: w,
        width: w,
        encoding: encoding.to_owned(),
        is_bigendian: 0,
        step: w * bytes,
        data,
    }
}

/// Viridis colour of λ (clamped to [0, 1]); [`NO_DATA_RGB`] for NaN.
pub fn lambda_rgb(lambda: f32) -> [u8; 3] {
    if lambda.is_nan() {
        return NO_DATA_RGB;
    }
    let c: RGBColor = ViridisRGB.get_color(lambda.clamp(0.0, 1.0));
    [c.0, c.1, c.2]
}

/// Grey level of a depth (near = bright) between `near` and `far` m; [`NO_DATA_RGB`] for +Inf.
pub fn depth_rgb(depth: f32, near: f32, far: f32) -> [u8; 3] {
    if !depth.is_finite() {
        return NO_DATA_RGB;
    }
    let t = ((far - depth) / (far - near).max(1e-6)).clamp(0.0, 1.0);
    let g = (40.0 + 215.0 * t) as u8;
    [g, g, g]
}

/// Writes a square row-major image of `width` px as a PNG, each pixel `scale`×`scale`.
///
/// # Errors
/// A wrong length or an unwritable path.
pub fn write_png(
    path: &Path,
    width: usize,
    rgb: impl Fn(usize) -> [u8; 3],
    scale: u32,
) -> anyhow::Result<()> {
    let side = width as u32 * scale;
    let root = BitMapBackend::new(path, (side, side)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        for v in 0..width {
            for u in 0..width {
                let [r, g, b] = rgb(v * width + u);
                let (x, y) = ((u as u32 * scale) as i32, (v as u32 * scale) as i32);
                let rect = Rectangle::new(
                    [(x, y), (x + scale as i32, y + scale as i32)],
                    RGBColor(r, g, b).filled(),
                );
                root.draw(&rect)?;
            }
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(capacity: usize) -> LambdaMap {
        LambdaMap::new(DepthCameraConfig::default(), capacity).unwrap()
    }

    #[test]
    fn pixels_hold_the_mean_of_the_recent_window_and_nan_elsewhere() {
        let mut m = map(3);
        let ee = Vector3::new(0.3, 0.2, 0.4);
        let (u, v) = m.camera().pixel_at(0.3, 0.2, 0.4).unwrap();
        let i = v * m.width() + u;
        assert!(m.add(ee, 1.0) && m.add(ee, 0.0));
        assert_eq!(m.values()[i], 0.5);
        assert!(m.add(ee, 0.0));
        assert!((m.values()[i] - 1.0 / 3.0).abs() < 1e-6);
        // A fourth transition elsewhere pushes the first (λ = 1) out of the window.
        assert!(m.add(Vector3::new(-0.3, -0.2, 0.4), 1.0));
        assert_eq!(m.values()[i], 0.0);
        assert_eq!(m.len(), 3);
        let nan = m.values().iter().filter(|v| v.is_nan()).count();
        assert_eq!(nan, m.width() * m.width() - 2);
        // Outside the view or non-finite: ignored.
        assert!(!m.add(Vector3::new(50.0, 0.0, 0.0), 1.0));
        assert!(!m.add(ee, f32::NAN));
    }

    #[test]
    fn rescoring_replaces_each_windowed_lambda_in_place() {
        let mut m = map(3);
        let (a, b) = (Vector3::new(0.3, 0.2, 0.4), Vector3::new(-0.3, -0.2, 0.4));
        let pixel = |p: Vector3<f64>| {
            let (u, v) = m.camera().pixel_at(p.x, p.y, p.z).unwrap();
            v * m.width() + u
        };
        let (i, j) = (pixel(a), pixel(b));
        assert!(m.add(a, 0.0) && m.add(b, 0.0) && m.add(a, 0.2));
        assert!(!m.rescore(&[1.0, 1.0]), "one λ per windowed transition");
        assert!(m.rescore(&[1.0, 0.5, f32::NAN]));
        assert_eq!((m.values()[i], m.values()[j]), (0.6, 0.5), "a: (1 + 0.2) / 2, b: 0.5");
        // The window keeps sliding with the new values: the oldest (a, now 1) leaves.
        assert!(m.add(b, 0.0));
        assert_eq!((m.values()[i], m.values()[j]), (0.2, 0.25));
        assert_eq!(m.capacity(), 3);
    }

    /// The map's pixel of a point is where the depth camera sees that point: a C_4 turn of the
    /// point about the base axis turns its pixel with the image.
    #[test]
    fn map_pixels_turn_with_the_depth_image() {
        let m = map(10);
        let w = m.width();
        let (u, v) = m.camera().pixel_at(0.31, 0.17, 0.25).unwrap();
        // 90° counter-clockwise: (x, y) -> (-y, x).
        let (u2, v2) = m.camera().pixel_at(-0.17, 0.31, 0.25).unwrap();
        let turned = [(w - 1 - v, u), (v, w - 1 - u)];
        assert!(
            turned.contains(&(u2, v2)),
            "({u}, {v}) -> ({u2}, {v2}), expected one of {turned:?}"
        );
    }

    #[test]
    fn images_have_ros_layouts_and_colours() {
        let mut m = map(10);
        m.add(Vector3::new(0.3, 0.2, 0.4), 1.0);
        let f = m.image_32fc1(Time::default(), "depth_camera_optical_frame");
        let w = m.width() as u32;
        assert_eq!((f.width, f.height, f.step, f.data.len()), (w, w, 4 * w, (4 * w * w) as usize));
        let c = m.image_rgb8(Time::default(), "depth_camera_optical_frame");
        assert_eq!(
            (c.encoding.as_str(), c.step, c.data.len()),
            ("rgb8", 3 * w, (3 * w * w) as usize)
        );
        assert_eq!(lambda_rgb(f32::NAN), NO_DATA_RGB);
        assert_ne!(lambda_rgb(0.0), lambda_rgb(1.0));
        let png = std::env::temp_dir().join(format!("equigate-lambda-{}.png", std::process::id()));
        let values = m.values();
        write_png(&png, m.width(), |i| lambda_rgb(values[i]), 4).unwrap();
        assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
        let _ = std::fs::remove_file(&png);
    }
}
