//! One depth frame of the top-down camera: a table, two boxes, the floor and 10 link cylinders
//! (an arm reaching over the table), at 64x64 and 128x128. Targets on one core: 64x64 <= 1 ms,
//! 128x128 <= 4 ms.
//!
//! cargo bench -p equigate-robot --bench depth_frame -- --quick

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use equigate_robot::camera::{DepthCamera, DepthCameraConfig};
use equigate_robot::scene::{Primitive, Scene};
use nalgebra::{Vector2, Vector3};

fn scene() -> Scene {
    Scene {
        floor_z: Some(-0.75),
        obstacles: vec![
            Primitive::table(Vector2::new(0.3, 0.0), Vector2::new(0.7, 0.6), 0.0, 0.05),
            Primitive::cuboid(Vector3::new(0.55, -0.35, 0.1), Vector3::new(0.08, 0.06, 0.1), 0.4),
            Primitive::cuboid(Vector3::new(0.3, 0.45, 0.12), Vector3::new(0.1, 0.1, 0.12), -0.7),
        ],
    }
}

/// Ten cylinders along a bent arm (UR5e-like sizes), base to gripper fingers.
fn links() -> Vec<Primitive> {
    let v = Vector3::new;
    let segments = [
        (v(0.0, 0.0, 0.0), v(0.0, 0.0, 0.16), 0.075),
        (v(0.0, -0.07, 0.16), v(0.0, 0.07, 0.16), 0.06),
        (v(0.0, 0.0, 0.16), v(0.2, 0.1, 0.45), 0.055),
        (v(0.2, 0.1, 0.45), v(0.25, 0.0, 0.45), 0.055),
        (v(0.25, 0.0, 0.45), v(0.5, -0.1, 0.3), 0.045),
        (v(0.5, -0.1, 0.3), v(0.55, -0.05, 0.3), 0.045),
        (v(0.55, -0.05, 0.3), v(0.55, -0.05, 0.2), 0.04),
        (v(0.52, -0.09, 0.2), v(0.58, -0.01, 0.2), 0.04),
        (v(0.54, -0.07, 0.2), v(0.54, -0.07, 0.12), 0.01),
        (v(0.56, -0.03, 0.2), v(0.56, -0.03, 0.12), 0.01),
    ];
    segments.iter().map(|&(a, b, r)| Primitive::cylinder_between(a, b, r)).collect()
}

fn depth_frame(c: &mut Criterion) {
    let (scene, links) = (scene(), links());
    for width_px in [64u32, 128] {
        let camera = DepthCamera::new(DepthCameraConfig { width_px, ..Default::default() })
            .expect("width and height are valid");
        let mut out = vec![0.0f32; camera.pixel_count()];
        c.bench_function(&format!("depth_frame_{width_px}x{width_px}"), |b| {
            b.iter(|| {
                camera
                    .render(black_box(&scene), black_box(&links), &mut out)
                    .expect("buffer has width * width values");
                black_box(&out);
            })
        });
    }
}

criterion_group!(benches, depth_frame);
criterion_main!(benches);
