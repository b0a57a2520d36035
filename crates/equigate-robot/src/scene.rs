//! Static world geometry (floor, table, box obstacles) and posed link primitives, in the
//! robot's `base_link` frame (REP 103: metres, x forward, y left, z up).

use nalgebra::{Isometry3, Vector3};

/// A primitive solid. Sizes in metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// Axis-aligned in its own frame; `half_extents` along x, y, z.
    Cuboid { half_extents: Vector3<f64> },
    /// Axis along its own z; total length `2 * half_height`.
    Cylinder { radius: f64, half_height: f64 },
    Sphere { radius: f64 },
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
