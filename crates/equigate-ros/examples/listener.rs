//! Subscribes to /joint_states and /forward_velocity_controller/commands, checks every message
//! against the test stream that `talker` (and tests/interop/peer.py talk) publish, and exits 0
//! once `--count` of each arrived (1 on a mismatch or after `--timeout` seconds).
//!
//! ```text
//! cargo run -p equigate-ros --example listener -- --count 3 --timeout 30
//! ```

use std::time::{Duration, Instant};

use equigate_ros::msg::{Float64MultiArray, JointState};
use equigate_ros::{qos_reliable, Ros, RosArgs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = RosArgs::from_env()?;
    let (mut count, mut timeout) = (3usize, 30.0f64);
    let mut it = args.user_args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--count" => count = it.next().ok_or("--count N")?.parse()?,
            "--timeout" => timeout = it.next().ok_or("--timeout S")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let mut ros = Ros::new("listener", "/", &args)?;
    let js_sub = ros.subscription::<JointState>("joint_states", qos_reliable())?;
    let cmd_sub = ros.subscription::<Float64MultiArray>(
        "forward_velocity_controller/commands",
        qos_reliable(),
    )?;

    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    let (mut n_js, mut n_cmd) = (0usize, 0usize);
    while Instant::now() < deadline {
        while let Some((js, _info)) = js_sub.take().map_err(|e| format!("{e:?}"))? {
            let k = f64::from(js.header.stamp.sec);
            let ok = js.name.len() == 6
                && js.name[0] == "shoulder_pan_joint"
                && js.header.frame_id == "base_link"
                && js.header.stamp.nanosec == 500
                && (0..6).all(|i| {
                    let fi = i as f64;
                    js.position[i] == k + fi / 10.0
                        && js.velocity[i] == -0.5 * k + fi
                        && js.effort[i] == 0.25 * fi
                });
            if !ok {
                println!("MISMATCH joint_states {js:?}");
                std::process::exit(1);
            }
            n_js += 1;
            println!("ok joint_states k={k} position={:?}", js.position);
        }
        while let Some((cmd, _info)) = cmd_sub.take().map_err(|e| format!("{e:?}"))? {
            let k = (cmd.data.first().copied().unwrap_or(0.0) / 0.01).round();
            let ok = cmd.data.len() == 6
                && cmd.layout.dim.len() == 1
                && cmd.layout.dim[0].label == "joints"
                && (0..6).all(|i| cmd.data[i] == k * 0.01 + i as f64);
            if !ok {
                println!("MISMATCH commands {cmd:?}");
                std::process::exit(1);
            }
            n_cmd += 1;
            println!("ok commands k={k} data={:?}", cmd.data);
        }
        if n_js >= count && n_cmd >= count {
            println!("RECEIVED joint_states={n_js} commands={n_cmd}");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("TIMEOUT after {timeout}s: joint_states={n_js} commands={n_cmd}");
    std::process::exit(1);
}
