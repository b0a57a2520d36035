//! Publishes a test stream of /joint_states (sensor_msgs/JointState),
//! /forward_velocity_controller/commands (std_msgs/Float64MultiArray) and
//! /camera/depth/image_raw (sensor_msgs/Image 32FC1, best effort), and serves ~/reset
//! (std_srvs/Trigger). The interop test checks all of it from a Cyclone DDS peer.
//!
//! ```text
//! cargo run -p equigate-ros --example talker -- --count 100 --rate 20 --image 64 --ros-args -r __node:=talker
//! ```
//!
//! Message k: stamp (k s, 500 ns), frame base_link, position[i] = k + i/10,
//! velocity[i] = -k/2 + i, effort[i] = i/4; command data[i] = k/100 + i; image N x N (`--image N`,
//! 0 = none) with pixel p (row major) = p/2 + k as little-endian f32.
//! DDS starts with localhost-only discovery unless the environment asks for more
//! (see `equigate_ros::transport`).

use std::time::{Duration, Instant};

use equigate_ros::msg::{
    Float64MultiArray, Header, Image, JointState, MultiArrayDimension, MultiArrayLayout, Time,
    TriggerResponse, TriggerSrv,
};
use equigate_ros::{qos_reliable, qos_sensor_data, Ros, RosArgs};

const JOINTS: [&str; 6] = [
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
];

fn joint_state(k: u32) -> JointState {
    let kf = f64::from(k);
    JointState {
        header: Header::new(Time { sec: k as i32, nanosec: 500 }, "base_link"),
        name: JOINTS.iter().map(|s| (*s).to_owned()).collect(),
        position: (0..6).map(|i| kf + f64::from(i) / 10.0).collect(),
        velocity: (0..6).map(|i| -0.5 * kf + f64::from(i)).collect(),
        effort: (0..6).map(|i| 0.25 * f64::from(i)).collect(),
    }
}

fn command(k: u32) -> Float64MultiArray {
    Float64MultiArray {
        layout: MultiArrayLayout {
            dim: vec![MultiArrayDimension { label: "joints".into(), size: 6, stride: 6 }],
            data_offset: 0,
        },
        data: (0..6).map(|i| f64::from(k) * 0.01 + f64::from(i)).collect(),
    }
}

fn depth_image(k: u32, n: u32) -> Image {
    let data = (0..n * n).flat_map(|p| (p as f32 * 0.5 + k as f32).to_le_bytes()).collect();
    Image {
        header: Header::new(Time { sec: k as i32, nanosec: 500 }, "camera_depth_optical_frame"),
        height: n,
        width: n,
        encoding: "32FC1".into(),
        is_bigendian: 0,
        step: 4 * n,
        data,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = RosArgs::from_env()?;
    let (mut count, mut rate, mut image) = (100u32, 20.0f64, 0u32);
    let mut it = args.user_args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--count" => count = it.next().ok_or("--count N")?.parse()?,
            "--rate" => rate = it.next().ok_or("--rate HZ")?.parse()?,
            "--image" => image = it.next().ok_or("--image N")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let mut ros = Ros::new("talker", "/", &args)?;
    let js_pub = ros.publisher::<JointState>("joint_states", qos_reliable())?;
    let cmd_pub =
        ros.publisher::<Float64MultiArray>("forward_velocity_controller/commands", qos_reliable())?;
    let img_pub = ros.publisher::<Image>("camera/depth/image_raw", qos_sensor_data())?;
    let reset = ros.service_server::<TriggerSrv>("~/reset")?;
    eprintln!("talker: {} publishing {count} messages at {rate} Hz", ros.fully_qualified_name());

    let period = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let mut next = Instant::now();
    for k in 0..count {
        js_pub.publish(joint_state(k)).map_err(|e| format!("publish joint_states: {e:?}"))?;
        cmd_pub.publish(command(k)).map_err(|e| format!("publish commands: {e:?}"))?;
        if image > 0 {
            img_pub.publish(depth_image(k, image)).map_err(|e| format!("publish image: {e:?}"))?;
        }
        while let Ok(Some((id, _req))) = reset.receive_request() {
            let resp = TriggerResponse { success: true, message: format!("reset at k={k}") };
            if let Err(e) = reset.send_response(id, resp) {
                eprintln!("talker: reset response failed: {e:?}");
            }
        }
        next += period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    eprintln!("talker: done");
    Ok(())
}
