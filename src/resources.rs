//! Finding the package's shipped files (urdf/, config/) and loading task files.
//!
//! Installed by colcon, executables live in `<prefix>/lib/equigate/` and data in
//! `<prefix>/share/equigate/`; run from a source checkout (`cargo run`), data is in the
//! repository root.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use equigate_robot::{model::RobotKind, task::TaskConfig};
use equigate_ros::yaml::{self, Value};

/// The directory holding `urdf/` and `config/`: `$EQUIGATE_SHARE_DIR` if set, else
/// `<prefix>/share/equigate` next to an installed executable, else the source tree.
pub fn share_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EQUIGATE_SHARE_DIR") {
        return dir.into();
    }
    let installed = std::env::current_exe().ok().and_then(|exe| {
        let prefix = exe.parent()?.parent()?.parent()?; // <prefix>/lib/equigate/<exe>
        let share = prefix.join("share").join("equigate");
        share.join("urdf").is_dir().then_some(share)
    });
    installed.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Resolves a data file path: absolute or existing relative to the working directory as given,
/// else relative to [`share_dir`].
pub fn resolve(path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() || p.exists() {
        p.to_owned()
    } else {
        share_dir().join(p)
    }
}

/// The task for `robot`: [`TaskConfig::for_robot`] with the keys of the YAML file at `path`
/// (if any) laid over it, nested mappings merged key by key. Unknown keys are errors.
///
/// # Errors
/// The file cannot be read, is not YAML, or does not fit [`TaskConfig`] (naming the key and the
/// file), or the resulting task is invalid.
pub fn load_task(robot: RobotKind, path: Option<&Path>) -> anyhow::Result<TaskConfig> {
    let mut base = yaml::to_value(&TaskConfig::for_robot(robot))
        .context("serialising the default task config")?;
    if let Some(path) = path {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read task file {}", path.display()))?;
        let overlay = yaml::parse(&text)
            .with_context(|| format!("task file {}: invalid YAML", path.display()))?;
        match overlay {
            Value::Null => {}
            Value::Mapping(_) => merge(&mut base, overlay),
            _ => anyhow::bail!("task file {}: the top level must be a mapping", path.display()),
        }
    }
    let origin = path.map_or_else(|| "defaults".to_owned(), |p| p.display().to_string());
    let task: TaskConfig = yaml::from_value(base)
        .map_err(|(key, reason)| anyhow::anyhow!("task file {origin}: key `{key}`: {reason}"))?;
    task.validate().with_context(|| format!("task file {origin}"))?;
    Ok(task)
}

/// Lays `overlay` over `base`: mappings merge key by key, anything else replaces.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile_path::TempFile {
        tempfile_path::TempFile::new(text)
    }

    /// A tiny self-deleting temporary file (keeps the dependency list short).
    mod tempfile_path {
        pub struct TempFile(pub std::path::PathBuf);
        impl TempFile {
            pub fn new(text: &str) -> Self {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static N: AtomicUsize = AtomicUsize::new(0);
                let n = N.fetch_add(1, Ordering::Relaxed);
                let p = std::env::temp_dir()
                    .join(format!("equigate-test-{}-{n}.yaml", std::process::id()));
                std::fs::write(&p, text).expect("temp dir is writable");
                TempFile(p)
            }
        }
        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn overlay_keeps_robot_defaults_for_keys_it_does_not_set() {
        let f = write("max_episode_steps: 50\ngoal:\n  z_min_m: 0.6\n");
        let task = load_task(RobotKind::Fetch, Some(&f.0)).unwrap();
        let fetch = TaskConfig::for_robot(RobotKind::Fetch);
        assert_eq!(task.max_episode_steps, 50);
        assert_eq!(task.goal.z_min_m, 0.6);
        assert_eq!(task.goal.radius_max_m, fetch.goal.radius_max_m);
        assert_eq!(
            load_task(RobotKind::Ur5e, None).unwrap(),
            TaskConfig::for_robot(RobotKind::Ur5e)
        );
    }

    #[test]
    fn unknown_key_and_bad_yaml_name_the_file() {
        let f = write("goal:\n  radius_maxx: 1.0\n");
        let err = format!("{:#}", load_task(RobotKind::Ur5e, Some(&f.0)).unwrap_err());
        assert!(err.contains("radius_maxx") && err.contains(&f.0.display().to_string()), "{err}");
        let f = write("goal: [1, 2\n");
        let err = format!("{:#}", load_task(RobotKind::Ur5e, Some(&f.0)).unwrap_err());
        assert!(err.contains("invalid YAML"), "{err}");
    }
}
