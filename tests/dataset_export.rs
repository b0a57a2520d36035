//! From a bag with depth images to .npy files, through the CLI: `equigate collect --depth-hz`
//! records the scripted controller with the simulator's depth camera, `equigate dataset
//! --depth-topic` exports it, and numpy loads every array with the shape and dtype the sidecar
//! names and exactly the values the library builds from the same bag. `equigate offline
//! --depth-topic` records the depth summary in offline.yaml.
//!
//! The numpy half needs python3 with numpy (tests/requirements.txt; CI installs it) and is
//! skipped with a message where it is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::backend::{Autodiff, Flex};
use equigate::dataset::{DatasetTopics, DEPTH_TOPIC};
use equigate::offline::{self, OfflineAlgo, OfflineConfig};
use equigate::train::{EnvSpec, LearnerConfig, Scaling, TrainConfig};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("equigate-export-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs the equigate binary from the package root; returns its stdout.
fn equigate(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_equigate"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the equigate binary runs");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "equigate {args:?}: {}\n{stdout}\n{stderr}", out.status);
    stdout.into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// Order-sensitive checksum of float32 values by their bits: Σ bits[i] · (i mod 7 + 1). The
/// Python side computes the same on the loaded array.
fn checksum(values: impl IntoIterator<Item = f32>) -> u64 {
    values.into_iter().enumerate().map(|(i, v)| u64::from(v.to_bits()) * (i as u64 % 7 + 1)).sum()
}

const NUMPY_CHECK: &str = r#"
import json, sys
import numpy as np
d = sys.argv[1]
meta = json.load(open(f"{d}/dataset.json"))
out = {"arrays": {}}
a = {}
for name, info in meta["arrays"].items():
    x = np.load(f"{d}/{name}.npy")
    assert list(x.shape) == info["shape"], (name, x.shape, info["shape"])
    assert x.dtype == np.dtype(info["dtype"]), (name, x.dtype, info["dtype"])
    a[name] = x
    out["arrays"][name] = [list(x.shape), str(x.dtype)]
def checksum(x):
    bits = x.astype(np.float32).ravel().view(np.uint32).astype(np.uint64)
    return int(np.sum(bits * (np.arange(bits.size, dtype=np.uint64) % 7 + 1)))
for name in ["observations", "actions", "rewards", "next_observations", "depth_frames"]:
    out[name] = checksum(a[name])
out["terminals"] = int(a["terminals"].sum())
out["timeouts"] = int(a["timeouts"].sum())
out["depth"] = a["depth"].tolist()
out["next_depth"] = a["next_depth"].tolist()
frames = a["depth_frames"]
assert meta["observation"]["dim"] == a["observations"].shape[1]
assert meta["depth"]["frames"] == frames.shape[0] == meta["summary"]["depth_frames"]
# D4RL-style use: the depth of s for every transition, [N, height, width].
out["s_depth_shape"] = list(frames[a["depth"]].shape)
out["no_return"] = int(np.isnan(frames).sum())
print(json.dumps(out))
"#;

/// python3 with numpy, or why not.
fn numpy_python() -> Result<(), String> {
    match Command::new("python3").args(["-c", "import numpy"]).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_owned()),
        Err(e) => Err(format!("python3: {e}")),
    }
}

#[test]
fn collect_with_depth_then_dataset_round_trips_through_numpy() {
    let bag = temp("bag");
    let out = temp("npy");
    let steps = 120;
    let printed = equigate(&[
        "collect",
        "--steps",
        &steps.to_string(),
        "--depth-hz",
        "10",
        "--seed",
        "2",
        "--out",
        path(&bag),
    ]);
    assert!(printed.contains("depth images)"), "{printed}");
    let printed = equigate(&["dataset", "--bag", path(&bag), "--depth-topic", "--out", path(&out)]);
    assert!(printed.contains("depth: "), "the summary reports the frames: {printed}");

    // The library on the same bag.
    let config =
        TrainConfig::load(&equigate::resources::resolve("config/train/ur5e_reach_obstacles.yaml"))
            .unwrap();
    let spec = EnvSpec::load(&config).unwrap();
    let topics = DatasetTopics { depth: Some(DEPTH_TOPIC.into()), ..DatasetTopics::default() };
    let dataset = offline::load_dataset(&spec, std::slice::from_ref(&bag), &topics, &[]).unwrap();
    let frames = dataset.depth.as_ref().unwrap();
    let n = dataset.transitions.len();
    assert_eq!(n, steps, "every step has fresh frames at 10 Hz: {}", dataset.summary);
    assert!(frames.len() < n, "frames are shared");
    for name in ["observations", "actions", "rewards", "next_observations", "terminals"] {
        assert!(out.join(format!("{name}.npy")).is_file(), "{name}.npy");
    }

    if let Err(why) = numpy_python() {
        eprintln!(
            "SKIPPED the numpy half: python3 with numpy is missing ({why}); CI installs \
                   tests/requirements.txt"
        );
        return;
    }
    let run = Command::new("python3").args(["-c", NUMPY_CHECK, path(&out)]).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let got: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();

    let (h, w) = (frames.height as u64, frames.width as u64);
    let want_arrays = serde_json::json!({
        "observations": [[n, 22], "float32"],
        "actions": [[n, 6], "float32"],
        "rewards": [[n], "float32"],
        "next_observations": [[n, 22], "float32"],
        "terminals": [[n], "bool"],
        "timeouts": [[n], "bool"],
        "depth": [[n], "int64"],
        "next_depth": [[n], "int64"],
        "depth_frames": [[frames.len() as u64, h, w], "float32"],
    });
    assert_eq!(got["arrays"], want_arrays);
    let ts = &dataset.transitions;
    let scaling = Scaling::new(&spec.env(0).unwrap()).unwrap();
    let sums = [
        ("observations", checksum(ts.iter().flat_map(|t| t.obs.iter().map(|v| *v as f32)))),
        ("actions", checksum(ts.iter().flat_map(|t| scaling.act.to_action(&t.command)))),
        ("rewards", checksum(ts.iter().map(|t| t.outcome.reward as f32))),
        (
            "next_observations",
            checksum(ts.iter().flat_map(|t| t.next_obs.iter().map(|v| *v as f32))),
        ),
        ("depth_frames", checksum(frames.pixels.iter().copied())),
    ];
    for (name, sum) in sums {
        assert_eq!(got[name].as_u64(), Some(sum), "{name}: numpy loads the library's values");
    }
    let count = |f: fn(&equigate::observe::ObservedTransition) -> bool| {
        ts.iter().filter(|t| f(t)).count() as u64
    };
    assert_eq!(got["terminals"].as_u64(), Some(count(|t| t.outcome.terminated)));
    assert_eq!(got["timeouts"].as_u64(), Some(count(|t| t.outcome.truncated)));
    assert_eq!(got["depth"], serde_json::json!(frames.obs));
    assert_eq!(got["next_depth"], serde_json::json!(frames.next_obs));
    assert_eq!(got["s_depth_shape"], serde_json::json!([n as u64, h, w]));
    assert!(count(|t| t.outcome.terminated) > 0, "the scripted controller reaches goals");

    // A second export into the same directory is refused.
    let again = Command::new(env!("CARGO_BIN_EXE_equigate"))
        .args(["dataset", "--bag", path(&bag), "--out", path(&out)])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(!again.status.success());

    // `offline --depth-topic` trains on the states and records the depth summary.
    let run_dir = temp("offline");
    let offline = OfflineConfig {
        algo: OfflineAlgo::Iql,
        equivariant: false,
        bags: vec![bag.clone()],
        topics,
        joints: Vec::new(),
        updates: 2,
        eval_every: 2,
        cql_alpha: None,
        lr: None,
        init_temperature: None,
        cql_importance_sample: None,
        equi_lr_scale: None,
        train: TrainConfig {
            eval_episodes: 1,
            learner: LearnerConfig {
                batch_size: 16,
                hidden: vec![16, 16],
                equi_hidden_dim: 16,
                ..LearnerConfig::default()
            },
            ..config
        },
    };
    let summary =
        offline::run::<Autodiff<Flex>>(&offline, &run_dir, &Default::default(), |_, _| {}).unwrap();
    assert_eq!(summary.dataset.depth_frames as usize, frames.len());
    let yaml = std::fs::read_to_string(run_dir.join(offline::OFFLINE_CONFIG)).unwrap();
    assert!(yaml.contains(&format!("depth: {DEPTH_TOPIC}")), "{yaml}");
    assert!(yaml.contains(&format!("depth_frames: {}", frames.len())), "{yaml}");
    for dir in [bag, out, run_dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
