//! sim_node against an independent DDS peer: Cyclone DDS from PyPI `cyclonedds`
//! (tests/interop/sim_peer.py) receives /joint_states, the depth image, camera info and the goal,
//! checks their values, and sends velocity commands (good and bad) that must move the arm as
//! ros2_control's forward_velocity_controller would, in real-time and lockstep modes.
//!
//! Everything runs inside a fresh network namespace with only loopback
//! (tests/interop/in_netns.sh, `unshare -rn`). Without `cyclonedds` (install:
//! `python3 -m pip install -r tests/requirements.txt`) the tests fail, unless
//! `EQUIGATE_SKIP_INTEROP=1`.

use std::path::Path;
use std::process::Command;

fn run_peer(mode: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if std::env::var("EQUIGATE_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!("skipped: EQUIGATE_SKIP_INTEROP=1");
        return;
    }
    let has_peer = Command::new("python3").args(["-c", "import cyclonedds"]).status();
    assert!(
        has_peer.is_ok_and(|s| s.success()),
        "the interop peer needs PyPI cyclonedds: python3 -m pip install -r tests/requirements.txt \
         (or set EQUIGATE_SKIP_INTEROP=1)"
    );
    let out = Command::new(root.join("tests/interop/in_netns.sh"))
        .args(["python3", "tests/interop/sim_peer.py", env!("CARGO_BIN_EXE_sim_node"), mode])
        .current_dir(root)
        .env("PYTHONPATH", root.join("tests/interop"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("tests/interop/in_netns.sh runs (needs unshare and ip)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sim_peer.py {mode} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("all") && stdout.contains("checks passed"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn realtime_sim_node_talks_to_cyclone_dds() {
    run_peer("realtime");
}

#[test]
fn lockstep_sim_node_advances_one_period_per_command() {
    run_peer("lockstep");
}
