//! `equigate dataset`: a [`Dataset`] as .npy files for training in Python, named as D4RL's
//! datasets (`d4rl.qlearning_dataset`), with a `dataset.json` sidecar.
//!
//! | file | shape | dtype | what |
//! |---|---|---|---|
//! | `observations.npy` | `[N, obs_dim]` | float32 | s, unscaled (layout and units in the sidecar) |
//! | `actions.npy` | `[N, dof]` | float32 | the command as q̇ / q̇_max, clamped to [-1, 1] (the learners' tanh actions) |
//! | `rewards.npy` | `[N]` | float32 | the task's reward |
//! | `next_observations.npy` | `[N, obs_dim]` | float32 | s' |
//! | `terminals.npy` | `[N]` | bool | success: the episode ends, no bootstrap |
//! | `timeouts.npy` | `[N]` | bool | the time limit: the episode is cut, bootstrap |
//! | `depth.npy`, `next_depth.npy` | `[N]` | int64 | with a depth topic: the frame of s and of s' |
//! | `depth_frames.npy` | `[F, height, width]` | float32 | the frames ([`DepthFrames`]), m |
//!
//! ```python
//! import json, numpy as np
//! d = {k: np.load(f"{out}/{k}.npy") for k in ["observations", "actions", "rewards",
//!      "next_observations", "terminals", "timeouts", "depth", "next_depth"]}
//! frames = np.load(f"{out}/depth_frames.npy")   # frames[d["depth"]]: [N, height, width]
//! meta = json.load(open(f"{out}/dataset.json"))  # layout, units, summary
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use equigate_robot::model::RobotKind;
use equigate_robot::task::{Field, TaskConfig};
use npyz::WriterBuilder as _;
use serde::Serialize;

use crate::dataset::{Dataset, DatasetSummary, DatasetTopics, DepthFrames};
use crate::train::{EnvSpec, Scaling};

/// The sidecar's file name.
pub const SIDECAR: &str = "dataset.json";

/// One array of the export.
#[derive(Debug, Serialize)]
struct ArrayInfo {
    shape: Vec<u64>,
    dtype: &'static str,
    what: &'static str,
}

/// `dataset.json`.
#[derive(Serialize)]
struct Sidecar<'a> {
    format: &'static str,
    transitions: usize,
    bags: Vec<String>,
    topics: &'a DatasetTopics,
    robot: RobotKind,
    task: &'a TaskConfig,
    arrays: BTreeMap<&'static str, ArrayInfo>,
    observation: ObservationInfo,
    action: ActionInfo,
    reward: &'static str,
    depth: Option<DepthInfo>,
    summary: &'a DatasetSummary,
}

#[derive(Serialize)]
struct ObservationInfo {
    dim: usize,
    /// name, kind (how C_n acts), offset, len.
    fields: Vec<Field>,
    units: BTreeMap<String, &'static str>,
}

#[derive(Serialize)]
struct ActionInfo {
    dim: usize,
    joints: Vec<String>,
    velocity_limits: Vec<f64>,
    units: &'static str,
}

#[derive(Serialize)]
struct DepthInfo {
    frames: usize,
    height: usize,
    width: usize,
    units: &'static str,
    sources: [&'static str; 3],
}

/// The unit of an observation field of [`equigate_robot::task::observation_layout`].
fn field_units(name: &str) -> &'static str {
    match name {
        "pan_cos_sin" => "cos, sin of the first (pan) joint angle",
        "q_other" => "rad (m for a prismatic joint), joints after the pan in URDF order",
        "qdot" => "rad/s (m/s for a prismatic joint), URDF order",
        _ => "m, in base_link, xy turned into the pan joint's frame (see observation_layout)",
    }
}

/// Writes `dataset` (built from `bags` with `topics` for the task in `spec`) into `out` as .npy
/// files and `dataset.json` (module docs). `out` is created; one that already holds a
/// `dataset.json` is refused.
///
/// # Errors
/// An existing export in `out`, I/O errors.
pub fn write_npy(
    dataset: &Dataset,
    spec: &EnvSpec,
    bags: &[PathBuf],
    topics: &DatasetTopics,
    out: &Path,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !out.join(SIDECAR).exists(),
        "{} already holds a dataset; choose another --out",
        out.display()
    );
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let transitions = &dataset.transitions;
    let n = transitions.len() as u64;
    let env = spec.env(0)?;
    let layout = env.layout().to_vec();
    let obs_dim = env.obs_dim() as u64;
    let scaling = Scaling::new(&env)?;
    let dof = scaling.act.dim() as u64;
    let mut arrays = BTreeMap::new();
    let mut write = |name: &'static str, shape: Vec<u64>, what: &'static str, data: Column| {
        let dtype = data.write(&out.join(format!("{name}.npy")), &shape)?;
        arrays.insert(name, ArrayInfo { shape, dtype, what });
        anyhow::Ok(())
    };
    let f32s = |f: &dyn Fn(&crate::observe::ObservedTransition) -> Vec<f32>| {
        Column::F32(transitions.iter().flat_map(f).collect())
    };
    write(
        "observations",
        vec![n, obs_dim],
        "s, unscaled; layout and units in `observation`",
        f32s(&|t| t.obs.iter().map(|v| *v as f32).collect()),
    )?;
    write(
        "actions",
        vec![n, dof],
        "commanded joint velocity / velocity limit, clamped to [-1, 1]",
        f32s(&|t| scaling.act.to_action(&t.command)),
    )?;
    write(
        "rewards",
        vec![n],
        "the task's reward (see `reward`)",
        f32s(&|t| vec![t.outcome.reward as f32]),
    )?;
    write(
        "next_observations",
        vec![n, obs_dim],
        "s' (as observations)",
        f32s(&|t| t.next_obs.iter().map(|v| *v as f32).collect()),
    )?;
    write(
        "terminals",
        vec![n],
        "success: the episode ends at s' (no bootstrap)",
        Column::Bool(transitions.iter().map(|t| t.outcome.terminated).collect()),
    )?;
    write(
        "timeouts",
        vec![n],
        "the episode was cut at s' by the time limit (bootstrap)",
        Column::Bool(transitions.iter().map(|t| t.outcome.truncated).collect()),
    )?;
    let depth = match &dataset.depth {
        None => None,
        Some(frames) => Some(write_depth(frames, n, &mut write)?),
    };
    let layout_units = layout.iter().map(|f| (f.name.clone(), field_units(&f.name))).collect();
    let sidecar = Sidecar {
        format: "D4RL qlearning_dataset names, one .npy file per key",
        transitions: transitions.len(),
        bags: bags.iter().map(|b| b.display().to_string()).collect(),
        topics,
        robot: spec.robot,
        task: &spec.task,
        arrays,
        observation: ObservationInfo { dim: obs_dim as usize, fields: layout, units: layout_units },
        action: ActionInfo {
            dim: dof as usize,
            joints: spec.model.joint_names().to_vec(),
            velocity_limits: scaling.act.limits().to_vec(),
            units: "action × velocity_limits = rad/s (m/s for a prismatic joint), URDF order",
        },
        reward: "-‖ee − goal‖ (m) + task.success_bonus on success − task.collision_penalty when \
                 the step was blocked by a collision",
        depth,
        summary: &dataset.summary,
    };
    let path = out.join(SIDECAR);
    let text = serde_json::to_string_pretty(&sidecar)?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// `depth.npy`, `next_depth.npy` and `depth_frames.npy` through `write`.
fn write_depth(
    frames: &DepthFrames,
    n: u64,
    write: &mut impl FnMut(&'static str, Vec<u64>, &'static str, Column) -> anyhow::Result<()>,
) -> anyhow::Result<DepthInfo> {
    let indices = |v: &[u32]| Column::I64(v.iter().map(|&i| i64::from(i)).collect());
    write("depth", vec![n], "index of s's frame in depth_frames", indices(&frames.obs))?;
    write("next_depth", vec![n], "index of s''s frame in depth_frames", indices(&frames.next_obs))?;
    let shape = vec![frames.len() as u64, frames.height as u64, frames.width as u64];
    let what = "depth frames, each once, row-major (row 0 at the top)";
    write("depth_frames", shape, what, Column::F32(frames.pixels.clone()))?;
    Ok(DepthInfo {
        frames: frames.len(),
        height: frames.height,
        width: frames.width,
        units: "m along the optical axis; NaN = no return (16UC1's 0, or NaN in 32FC1); \
                ±Inf as a 32FC1 image had them (REP 117)",
        sources: [
            "REP 118 (depth images: 32FC1 metres, 16UC1 millimetres)",
            "REP 117 (non-finite values)",
            "sensor_msgs/msg/Image (height, width, step, is_bigendian, data)",
        ],
    })
}

/// The values of one array, in C order.
enum Column {
    F32(Vec<f32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

impl Column {
    /// Writes the values as an .npy file of `shape` at `path`; returns numpy's dtype name.
    fn write(self, path: &Path, shape: &[u64]) -> anyhow::Result<&'static str> {
        fn npy<T: npyz::AutoSerialize>(
            path: &Path,
            shape: &[u64],
            v: Vec<T>,
        ) -> anyhow::Result<()> {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut writer = npyz::WriteOptions::<T>::new()
                .default_dtype()
                .shape(shape)
                .writer(std::io::BufWriter::new(file))
                .begin_nd()?;
            writer.extend(v)?;
            writer.finish().with_context(|| format!("writing {}", path.display()))?;
            Ok(())
        }
        match self {
            Column::F32(v) => npy(path, shape, v).map(|()| "float32"),
            Column::I64(v) => npy(path, shape, v).map(|()| "int64"),
            Column::Bool(v) => npy(path, shape, v).map(|()| "bool"),
        }
    }
}
