//! Checkpoint files: burn records (named MessagePack, full precision) and configs (JSON), each
//! written atomically: to a temporary file in the same directory, flushed to disk, then renamed
//! over the final name, so a reader (or a crash) never sees half a file.
//!
//! Records are encoded with [`NamedMpkBytesRecorder`], which writes the same bytes as
//! [`NamedMpkFileRecorder`] (both use `rmp_serde`'s named encoding), so a record written here is
//! read back with [`NamedMpkFileRecorder`] into a module of any backend, e.g. a non-autodiff one
//! for inference.

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::config::Config;
use burn::module::Module;
use burn::record::{
    FullPrecisionSettings, NamedMpkBytesRecorder, NamedMpkFileRecorder, Record, Recorder,
};
use burn::tensor::backend::Backend;

/// Errors of checkpoint I/O, each with the path involved.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading, writing or renaming a file failed.
    #[error("checkpoint I/O on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// burn could not encode or decode a record.
    #[error("checkpoint record {path}: {message}")]
    Record {
        /// The record file.
        path: PathBuf,
        /// burn's error message.
        message: String,
    },
    /// Record files must end in `.mpk` ([`NamedMpkFileRecorder`] replaces any other extension).
    #[error("checkpoint record {path}: the file name must end in .mpk")]
    Extension {
        /// The record file.
        path: PathBuf,
    },
    /// A config describes networks that cannot be built (e.g. a width of 0).
    #[error("checkpoint config {path}: cannot build its networks: {source}")]
    Network {
        /// The config file.
        path: PathBuf,
        /// Why the networks cannot be built.
        source: crate::layers::LayerError,
    },
    /// A config file did not parse.
    #[error("checkpoint config {path}: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

/// Writes `bytes` to `path` atomically: `<path>.tmp`, fsync, rename. Creates the parent directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CheckpointError::Io { path, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Errors unless `path` ends in `.mpk`.
fn check_mpk(path: &Path) -> Result<(), CheckpointError> {
    match path.extension() {
        Some(ext) if ext == "mpk" => Ok(()),
        _ => Err(CheckpointError::Extension { path: path.to_path_buf() }),
    }
}

/// Saves `module`'s record to `path` (ending in `.mpk`) atomically, in full precision.
pub fn save_module<B: Backend, M: Module<B>>(
    module: &M,
    path: &Path,
) -> Result<(), CheckpointError> {
    save_record::<B, _>(module.clone().into_record(), path)
}

/// Loads a record written by [`save_module`] into `module` (built with the same shapes, on any
/// backend) on `device`, with [`NamedMpkFileRecorder`]. `path` ends in `.mpk`.
pub fn load_module<B: Backend, M: Module<B>>(
    module: M,
    path: &Path,
    device: &B::Device,
) -> Result<M, CheckpointError> {
    Ok(module.load_record(load_record::<B, M::Record>(path, device)?))
}

/// Saves any burn record (e.g. an optimizer's `to_record()`) to `path` (ending in `.mpk`)
/// atomically, in full precision.
pub fn save_record<B: Backend, R: Record<B>>(
    record: R,
    path: &Path,
) -> Result<(), CheckpointError> {
    check_mpk(path)?;
    let bytes =
        NamedMpkBytesRecorder::<FullPrecisionSettings>::new().record(record, ()).map_err(|e| {
            CheckpointError::Record { path: path.to_path_buf(), message: e.to_string() }
        })?;
    write_atomic(path, &bytes)
}

/// Loads a record saved by [`save_record`] (or [`NamedMpkFileRecorder`]) on `device`.
pub fn load_record<B: Backend, R: Record<B>>(
    path: &Path,
    device: &B::Device,
) -> Result<R, CheckpointError> {
    check_mpk(path)?;
    if !path.is_file() {
        return Err(CheckpointError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such record file"),
        });
    }
    NamedMpkFileRecorder::<FullPrecisionSettings>::new()
        .load(path.to_path_buf(), device)
        .map_err(|e| CheckpointError::Record { path: path.to_path_buf(), message: e.to_string() })
}

/// Saves a burn config as pretty JSON to `path` atomically.
pub fn save_config<C: Config>(config: &C, path: &Path) -> Result<(), CheckpointError> {
    write_atomic(path, burn::config::config_to_json(config).as_bytes())
}

/// Loads a burn config saved by [`save_config`].
pub fn load_config<C: Config>(path: &Path) -> Result<C, CheckpointError> {
    let bytes = std::fs::read(path)
        .map_err(|source| CheckpointError::Io { path: path.to_path_buf(), source })?;
    C::load_binary(&bytes)
        .map_err(|e| CheckpointError::Config { path: path.to_path_buf(), message: e.to_string() })
}
