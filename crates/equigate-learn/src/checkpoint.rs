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
use burn::module::{Module, ModuleVisitor, Param};
use burn::record::{
    FullPrecisionSettings, NamedMpkBytesRecorder, NamedMpkFileRecorder, Record, Recorder,
};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

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
    /// A record decoded, but its parameters do not fit the networks built from the config: a
    /// record of other widths, layers or options (e.g. written with another
    /// `equi_invariant_embedding`).
    #[error("checkpoint record {path} does not fit the network: {mismatch}")]
    Shape {
        /// The record file.
        path: PathBuf,
        /// The first parameter that differs, as `name: network [..], record [..]`, or the
        /// parameter counts when the record has other layers.
        mismatch: String,
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
///
/// # Errors
/// [`CheckpointError::Shape`] when the record's parameters differ from `module`'s in number or
/// shape (burn itself would load them and fail only later, inside a matmul), besides the I/O and
/// decoding errors of [`load_record`].
pub fn load_module<B: Backend, M: Module<B>>(
    module: M,
    path: &Path,
    device: &B::Device,
) -> Result<M, CheckpointError> {
    let record = load_record::<B, M::Record>(path, device)?;
    let expected = ParamShapes::of(&module);
    let shape_error = |mismatch| CheckpointError::Shape { path: path.to_path_buf(), mismatch };
    // burn asserts that a `Vec` of layers has as many entries as its record: a panic, caught
    // here so that a wrong file is an error and not a crash.
    let loaded =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| module.load_record(record)))
            .map_err(|_| shape_error("the record has another number of layers".to_string()))?;
    let found = ParamShapes::of(&loaded);
    match expected.first_difference(&found) {
        None => Ok(loaded),
        Some(mismatch) => Err(shape_error(mismatch)),
    }
}

/// The float parameters of a module in visiting order: dotted name and shape.
#[derive(Debug, Default)]
struct ParamShapes {
    /// The module path being visited.
    stack: Vec<String>,
    /// `(name, shape)` of each float parameter.
    params: Vec<(String, Vec<usize>)>,
}

impl ParamShapes {
    fn of<B: Backend, M: Module<B>>(module: &M) -> Self {
        let mut shapes = Self::default();
        module.visit(&mut shapes);
        shapes
    }

    /// `None` when both list the same shapes; otherwise a description of the first difference.
    fn first_difference(&self, record: &Self) -> Option<String> {
        let mut pairs = self.params.iter().zip(&record.params);
        if let Some(((name, want), (_, got))) = pairs.find(|((_, a), (_, b))| a != b) {
            return Some(format!("{name}: network {want:?}, record {got:?}"));
        }
        (self.params.len() != record.params.len()).then(|| {
            format!(
                "the network has {} parameter tensors, the record {}",
                self.params.len(),
                record.params.len()
            )
        })
    }
}

impl<B: Backend> ModuleVisitor<B> for ParamShapes {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.params.push((self.stack.join("."), param.lazy_shape().to_vec()));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::nn::{Linear, LinearConfig};

    type B = Flex;

    /// Two layers in a `Vec` and an optional third, like the trunks of the networks.
    #[derive(Module, Debug)]
    struct Net<B: Backend> {
        layers: Vec<Linear<B>>,
        extra: Option<Linear<B>>,
    }

    fn net(width: usize, depth: usize, extra: bool) -> Net<B> {
        let device = Default::default();
        Net {
            layers: (0..depth).map(|_| LinearConfig::new(3, width).init(&device)).collect(),
            extra: extra.then(|| LinearConfig::new(width, 2).init(&device)),
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("equigate-ckpt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("net.mpk")
    }

    fn weights(net: &Net<B>) -> Vec<f32> {
        net.layers[0].weight.val().into_data().to_vec::<f32>().unwrap()
    }

    #[test]
    fn a_record_loads_into_a_network_of_its_shape() {
        let path = scratch("same");
        let saved = net(4, 2, true);
        // Read before saving: burn initialises parameters lazily, on first use, and a clone
        // that has not been used yet would draw its own.
        let expected = weights(&saved);
        save_module::<B, _>(&saved, &path).unwrap();
        let loaded = load_module(net(4, 2, true), &path, &Default::default()).unwrap();
        assert_eq!(weights(&loaded), expected);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_record_of_another_width_is_an_error_that_names_the_parameter() {
        let path = scratch("width");
        save_module::<B, _>(&net(4, 2, true), &path).unwrap();
        let err = load_module(net(5, 2, true), &path, &Default::default()).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, CheckpointError::Shape { .. }), "{message}");
        assert!(message.contains("layers.0.weight: network [3, 5], record [3, 4]"), "{message}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_record_with_other_layers_is_an_error_not_a_panic() {
        let path = scratch("layers");
        save_module::<B, _>(&net(4, 2, false), &path).unwrap();
        // An optional layer the record lacks: burn would drop it silently.
        let err = load_module(net(4, 2, true), &path, &Default::default()).unwrap_err();
        assert!(err.to_string().contains("parameter tensors"), "{err}");
        // Another number of layers in a `Vec`: burn asserts.
        let err = load_module(net(4, 3, false), &path, &Default::default()).unwrap_err();
        assert!(err.to_string().contains("number of layers"), "{err}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
