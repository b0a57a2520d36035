//! Conversions between core types (simulator state, depth frames, camera intrinsics) and ROS 2
//! messages. The one place where `equigate-robot` meets `equigate-ros`.

use equigate_robot::camera::CameraInfoData;
use equigate_ros::msg::{CameraInfo, Header, Image, JointState, Point, PointStamped, Time};
use nalgebra::Vector3;

/// `sensor_msgs/JointState` with names, positions (rad or m) and velocities (rad/s or m/s) in
/// the given order; effort left empty (a kinematic simulator has none; the message definition
/// allows empty arrays).
pub fn joint_state(stamp: Time, names: &[String], q: &[f64], qdot: &[f64]) -> JointState {
    JointState {
        header: Header::new(stamp, ""),
        name: names.to_vec(),
        position: q.to_vec(),
        velocity: qdot.to_vec(),
        effort: Vec::new(),
    }
}

/// A `sensor_msgs/Image` with encoding `32FC1` (REP 118: metres along the optical axis,
/// little endian, REP 117 non-finite values kept as they are).
///
/// `depth` is row-major, `width * height` values.
pub fn depth_image(stamp: Time, frame_id: &str, width: u32, depth: &[f32]) -> Image {
    let height = depth.len() as u32 / width.max(1);
    let mut data = Vec::with_capacity(depth.len() * 4);
    for d in depth {
        data.extend_from_slice(&d.to_le_bytes());
    }
    Image {
        header: Header::new(stamp, frame_id),
        height,
        width,
        encoding: "32FC1".into(),
        is_bigendian: 0,
        step: width * 4,
        data,
    }
}

/// `sensor_msgs/CameraInfo` for the simulator's pinhole camera.
pub fn camera_info(stamp: Time, frame_id: &str, info: &CameraInfoData) -> CameraInfo {
    CameraInfo {
        header: Header::new(stamp, frame_id),
        height: info.height,
        width: info.width,
        distortion_model: info.distortion_model.into(),
        d: info.d.to_vec(),
        k: info.k,
        r: info.r,
        p: info.p,
        ..Default::default()
    }
}

/// `geometry_msgs/PointStamped` of a point in `frame_id` (m).
pub fn point_stamped(stamp: Time, frame_id: &str, p: &Vector3<f64>) -> PointStamped {
    PointStamped { header: Header::new(stamp, frame_id), point: Point { x: p.x, y: p.y, z: p.z } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_image_is_little_endian_32fc1_with_row_step() {
        let depth = [1.5f32, f32::INFINITY, 0.25, 2.0, 3.0, 4.0];
        let img = depth_image(Time::default(), "cam", 3, &depth);
        assert_eq!((img.width, img.height, img.step), (3, 2, 12));
        assert_eq!(img.encoding, "32FC1");
        assert_eq!(img.data.len(), 24);
        let back: Vec<f32> =
            img.data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        assert_eq!(back, depth);
    }
}
