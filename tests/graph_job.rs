//! The main job, `equigate graph`: sim_node (lockstep), policy_node (train) and detector_node as
//! three processes over DDS, inside a loopback-only network namespace
//! (tests/interop/in_netns.sh). Skipped with `EQUIGATE_SKIP_INTEROP=1`.

use std::path::PathBuf;
use std::process::Command;

use equigate::metrics::read_metrics;

#[test]
fn graph_leaves_a_checkpoint_curves_and_lambda_map_beside_the_depth_image() {
    if std::env::var("EQUIGATE_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!("skipped: EQUIGATE_SKIP_INTEROP=1");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("equigate-graph-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let result = Command::new(root.join("tests/interop/in_netns.sh"))
        .arg(env!("CARGO_BIN_EXE_equigate"))
        .args(["graph", "--steps", "1000", "--agent", "sac", "--out"])
        .arg(&out)
        .current_dir(&root)
        .output()
        .expect("tests/interop/in_netns.sh runs (needs unshare and ip)");
    let log = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "equigate graph failed:\n{log}");
    for f in ["metrics.csv", "learning_curve.png", "lambda_map.png", "depth.png", "train.yaml"] {
        assert!(out.join(f).is_file(), "{f} missing; log:\n{log}");
    }
    assert!(out.join("checkpoint").join("run_state.json").is_file(), "no checkpoint");
    let rows = read_metrics(&out.join("metrics.csv")).unwrap();
    assert_eq!(rows.last().map(|r| r.env_steps), Some(1000), "{rows:?}");
    // The detector saw the policy's transitions (one per step but resets).
    assert!(log.contains("wrote lambda_map.png"), "{log}");
    for png in ["lambda_map.png", "depth.png", "learning_curve.png"] {
        assert_eq!(&std::fs::read(out.join(png)).unwrap()[..4], b"\x89PNG");
    }
    let _ = std::fs::remove_dir_all(&out);
}
