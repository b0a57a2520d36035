//! Run directories shared by `equigate train` ([`crate::train`]) and policy_node's train mode
//! ([`crate::online`]): creation with the exact config and resolved task, YAML/JSON readers that
//! name the file, and the step arithmetic of periodic work. The layout is
//! [`crate::train::files`].

use std::path::Path;

use anyhow::{bail, Context as _};
use equigate_robot::task::TaskConfig;
use equigate_ros::yaml;

use crate::train::{files, TrainConfig};

/// Prepares `run_dir` for a run: with `resume`, checks that its checkpoint exists; otherwise
/// refuses a directory that already holds a run (`how_to_resume` tells the user what to pass
/// instead), creates it and writes `train.yaml` and `task.yaml` atomically.
///
/// # Errors
/// As described, and I/O errors.
pub fn prepare(
    run_dir: &Path,
    config: &TrainConfig,
    task: &TaskConfig,
    resume: bool,
    how_to_resume: &str,
) -> anyhow::Result<()> {
    if resume {
        let checkpoint = run_dir.join(files::CHECKPOINT).join(files::RUN_STATE);
        if !checkpoint.is_file() {
            bail!("cannot resume: {} does not exist", checkpoint.display());
        }
        return Ok(());
    }
    if run_dir.join(files::METRICS).exists() {
        bail!("{} already holds a run; {how_to_resume}", run_dir.display());
    }
    std::fs::create_dir_all(run_dir)
        .with_context(|| format!("cannot create run directory {}", run_dir.display()))?;
    let write = |name: &str, text: String| {
        equigate_learn::checkpoint::write_atomic(&run_dir.join(name), text.as_bytes())
            .with_context(|| format!("writing {}", run_dir.join(name).display()))
    };
    write(files::TRAIN_CONFIG, yaml::to_string(config)?)?;
    write(files::TASK, yaml::to_string(task)?)?;
    Ok(())
}

/// Reads a YAML file into `T`; errors name the file and the offending key.
pub fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value = yaml::parse(&text).with_context(|| format!("{}: invalid YAML", path.display()))?;
    yaml::from_value(value)
        .map_err(|(key, reason)| anyhow::anyhow!("{}: key `{key}`: {reason}", path.display()))
}

/// Reads a JSON file into `T`; errors name the file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}: invalid", path.display()))
}

/// The smallest multiple of `every` strictly above `n`.
pub fn next_multiple(n: usize, every: usize) -> usize {
    (n / every + 1) * every
}
