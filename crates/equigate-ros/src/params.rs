//! ROS 2 parameters: typed values, parameter files, `-p` overrides, and conversion of a node's
//! parameters into its own `#[serde(deny_unknown_fields)]` settings struct.
//!
//! File format (rcl_yaml_param_parser; docs.ros.org "Parameters" / "YAML parameter files"):
//!
//! ```yaml
//! /**:                      # any node
//!   ros__parameters:
//!     use_sim_time: true
//! sim:                      # node /sim (a name without a leading '/' is in the root namespace)
//!   ros__parameters:
//!     rate_hz: 50
//!     camera:
//!       width: 64           # flattened to `camera.width`
//! /arm1/sim:                # node sim in namespace /arm1; `arm1: {sim: {ros__parameters: ..}}` too
//!   ros__parameters: {rate_hz: 100}
//! ```
//!
//! Node keys may use `*` (one name token) and `**` (any number of tokens). Precedence, lowest
//! first: within each file the wildcard entries, then the exact entries; later `--params-file`
//! files over earlier ones; `-p` overrides over all files.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::args::{normalize_namespace, RosArgs};
use crate::yaml::{self, Mapping, Value};

/// A typed ROS 2 parameter value (rcl_interfaces/msg/ParameterType, without byte arrays).
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    /// `bool`.
    Bool(bool),
    /// `int64`.
    Integer(i64),
    /// `float64`.
    Double(f64),
    /// `string`.
    String(String),
    /// `bool[]`.
    BoolArray(Vec<bool>),
    /// `int64[]`.
    IntegerArray(Vec<i64>),
    /// `float64[]`.
    DoubleArray(Vec<f64>),
    /// `string[]` (an empty YAML list `[]` also lands here).
    StringArray(Vec<String>),
}

impl ParamValue {
    /// Parses the text of a `-p name:=value` override as YAML (`50` → Integer, `0.5` → Double,
    /// `true` → Bool, `[a, b]` → StringArray, anything else → String; empty → empty String).
    pub fn from_yaml_text(text: &str) -> Result<ParamValue, String> {
        if text.trim().is_empty() {
            return Ok(ParamValue::String(String::new()));
        }
        match yaml::parse(text) {
            Ok(v) => ParamValue::from_yaml(&v),
            // Not valid YAML (e.g. `a: b: c`): rcl would fail too, but a plain string is what
            // the user meant in practice only if it has no structure; keep it strict.
            Err(e) => Err(format!("not a valid YAML value: {e}")),
        }
    }

    /// Converts a YAML scalar or a homogeneous sequence of scalars.
    pub fn from_yaml(value: &Value) -> Result<ParamValue, String> {
        match value {
            Value::Bool(b) => Ok(ParamValue::Bool(*b)),
            Value::Number(n) => number(n),
            Value::String(s) => Ok(ParamValue::String(s.clone())),
            Value::Sequence(items) => sequence(items),
            Value::Null => Err("empty (null) value; write \"\" for an empty string".into()),
            Value::Mapping(_) => Err("a mapping is not a parameter value".into()),
            Value::Tagged(t) => ParamValue::from_yaml(&t.value),
        }
    }

    /// The value as YAML (for building a settings struct).
    pub fn to_yaml(&self) -> Value {
        fn seq<T: Clone + Into<Value>>(v: &[T]) -> Value {
            Value::Sequence(v.iter().cloned().map(Into::into).collect())
        }
        match self {
            ParamValue::Bool(b) => Value::Bool(*b),
            ParamValue::Integer(i) => Value::from(*i),
            ParamValue::Double(f) => Value::from(*f),
            ParamValue::String(s) => Value::String(s.clone()),
            ParamValue::BoolArray(v) => seq(v),
            ParamValue::IntegerArray(v) => seq(v),
            ParamValue::DoubleArray(v) => seq(v),
            ParamValue::StringArray(v) => seq(v),
        }
    }

    /// The ROS type name of the value (`bool`, `integer`, `double`, `string`, `..._array`).
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamValue::Bool(_) => "bool",
            ParamValue::Integer(_) => "integer",
            ParamValue::Double(_) => "double",
            ParamValue::String(_) => "string",
            ParamValue::BoolArray(_) => "bool_array",
            ParamValue::IntegerArray(_) => "integer_array",
            ParamValue::DoubleArray(_) => "double_array",
            ParamValue::StringArray(_) => "string_array",
        }
    }
}

fn number(n: &yaml::Number) -> Result<ParamValue, String> {
    if let Some(i) = n.as_i64() {
        Ok(ParamValue::Integer(i))
    } else if n.is_f64() {
        Ok(ParamValue::Double(n.as_f64().unwrap_or(f64::NAN)))
    } else {
        Err(format!("integer {n} does not fit in int64"))
    }
}

fn sequence(items: &[Value]) -> Result<ParamValue, String> {
    let scalars: Vec<ParamValue> = items
        .iter()
        .map(|v| match v {
            Value::Sequence(_) | Value::Mapping(_) => {
                Err("arrays may hold only scalars".to_owned())
            }
            v => ParamValue::from_yaml(v),
        })
        .collect::<Result<_, _>>()?;
    let Some(first) = scalars.first() else {
        return Ok(ParamValue::StringArray(Vec::new()));
    };
    let mixed = || {
        format!("array mixes types ({} and others); ROS arrays are homogeneous", first.type_name())
    };
    macro_rules! collect {
        ($variant:ident, $array:ident) => {
            scalars
                .iter()
                .map(|s| match s {
                    ParamValue::$variant(x) => Ok(x.clone()),
                    _ => Err(mixed()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(ParamValue::$array)
        };
    }
    match first {
        ParamValue::Bool(_) => collect!(Bool, BoolArray),
        ParamValue::Integer(_) => collect!(Integer, IntegerArray),
        ParamValue::Double(_) => collect!(Double, DoubleArray),
        ParamValue::String(_) => collect!(String, StringArray),
        _ => Err("arrays may hold only scalars".into()),
    }
}

/// Where a parameter value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamSource {
    /// A `--params-file` (or any parameter file loaded by path).
    File(PathBuf),
    /// A `-p` override.
    CommandLine,
    /// Set from code, or parsed from a string with a name of the caller's choosing.
    Other(String),
}

impl fmt::Display for ParamSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamSource::File(p) => write!(f, "{}", p.display()),
            ParamSource::CommandLine => write!(f, "-p on the command line"),
            ParamSource::Other(s) => write!(f, "{s}"),
        }
    }
}

/// Errors from loading parameters or converting them to a settings struct.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    /// A parameter file could not be read.
    #[error("cannot read parameter file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A parameter file is not valid YAML.
    #[error("parameter file {origin}: invalid YAML: {message}")]
    Yaml {
        /// The file (or other source).
        origin: ParamSource,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A parameter file is YAML but not in the ROS parameter file layout, or holds a bad value.
    #[error("parameter file {origin}: {reason}")]
    Format {
        /// The file (or other source).
        origin: ParamSource,
        /// What is wrong, naming the node key or parameter.
        reason: String,
    },
    /// The parameters do not fit the node's settings struct.
    #[error("node {node}: parameter `{param}`{}: {reason}", origin.as_ref().map(|o| format!(" (from {o})")).unwrap_or_default())]
    Invalid {
        /// Fully qualified node name.
        node: String,
        /// Dotted parameter name (or the enclosing group for a missing field).
        param: String,
        /// Where the offending value came from, if it was set.
        origin: Option<ParamSource>,
        /// The reason, e.g. "unknown field `x`, expected one of ...".
        reason: String,
    },
}

/// The parameters of one node, each with its source.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    node_fqn: String,
    values: BTreeMap<String, (ParamValue, ParamSource)>,
}

impl Params {
    /// No parameters yet, for the node with this fully qualified name (e.g. `/arm1/sim`).
    pub fn new(node_fqn: &str) -> Params {
        Params { node_fqn: node_fqn.to_owned(), values: BTreeMap::new() }
    }

    /// Loads what the command line gives the node `node_name` in `namespace` (the effective
    /// ones, after `__node`/`__ns` remaps): every `--params-file` in order, then `-p` overrides.
    pub fn load(args: &RosArgs, node_name: &str, namespace: &str) -> Result<Params, ParamsError> {
        let ns = normalize_namespace(namespace);
        let fqn = if ns == "/" { format!("/{node_name}") } else { format!("{ns}/{node_name}") };
        let mut params = Params::new(&fqn);
        for file in &args.params_files {
            params.merge_file(file)?;
        }
        for p in &args.params {
            let applies = p
                .node
                .as_deref()
                .is_none_or(|n| n == node_name || n == fqn || node_pattern_matches(n, &fqn));
            if applies {
                params.set(&p.name, p.value.clone(), ParamSource::CommandLine);
            }
        }
        Ok(params)
    }

    /// Fully qualified name of the node these parameters are for.
    pub fn node_fqn(&self) -> &str {
        &self.node_fqn
    }

    /// Merges a parameter file: its entries for this node override what is there.
    pub fn merge_file(&mut self, path: &Path) -> Result<(), ParamsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ParamsError::Io { path: path.to_owned(), source })?;
        self.merge_yaml_str(&text, ParamSource::File(path.to_owned()))
    }

    /// Merges parameter-file text; `origin` names it in errors.
    pub fn merge_yaml_str(&mut self, text: &str, origin: ParamSource) -> Result<(), ParamsError> {
        let doc = yaml::parse(text)
            .map_err(|e| ParamsError::Yaml { origin: origin.clone(), message: e.to_string() })?;
        let format_err = |reason: String| ParamsError::Format { origin: origin.clone(), reason };
        let mut entries: Vec<(String, &Mapping)> = Vec::new();
        match &doc {
            Value::Null => {}
            Value::Mapping(m) => collect_nodes(m, "", &mut entries).map_err(format_err)?,
            _ => return Err(format_err("the top level must be a mapping of node names".into())),
        }
        // Wildcard entries first, exact entries after, each group in file order.
        let (wild, exact): (Vec<_>, Vec<_>) =
            entries.into_iter().partition(|(p, _)| p.contains('*'));
        for (pattern, params) in wild.into_iter().chain(exact) {
            if !node_pattern_matches(&pattern, &self.node_fqn) {
                continue;
            }
            let mut flat = Vec::new();
            flatten(params, "", &mut flat)
                .map_err(|r| format_err(format!("node `{pattern}`: {r}")))?;
            for (name, value) in flat {
                let value = ParamValue::from_yaml(value).map_err(|r| {
                    format_err(format!("node `{pattern}`, parameter `{name}`: {r}"))
                })?;
                self.set(&name, value, origin.clone());
            }
        }
        Ok(())
    }

    /// Sets one parameter (dotted name).
    pub fn set(&mut self, name: &str, value: ParamValue, origin: ParamSource) {
        self.values.insert(name.to_owned(), (value, origin));
    }

    /// The value of a parameter.
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.values.get(name).map(|(v, _)| v)
    }

    /// Where a parameter's value came from.
    pub fn origin(&self, name: &str) -> Option<&ParamSource> {
        self.values.get(name).map(|(_, s)| s)
    }

    /// All parameters, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.values.iter().map(|(k, (v, _))| (k.as_str(), v))
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The parameters as a nested YAML mapping (`camera.width` → `camera: {width: ..}`).
    pub fn to_yaml(&self) -> Result<Value, ParamsError> {
        let mut root = Mapping::new();
        for (name, (value, origin)) in &self.values {
            let conflict = |reason: String| ParamsError::Invalid {
                node: self.node_fqn.clone(),
                param: name.clone(),
                origin: Some(origin.clone()),
                reason,
            };
            let mut node = &mut root;
            let parts: Vec<&str> = name.split('.').collect();
            let (last, groups) = parts.split_last().unwrap_or((&"", &[]));
            for group in groups {
                let entry = node
                    .entry(Value::String((*group).to_owned()))
                    .or_insert_with(|| Value::Mapping(Mapping::new()));
                node = match entry {
                    Value::Mapping(m) => m,
                    _ => return Err(conflict(format!("`{group}` is both a value and a group"))),
                };
            }
            let key = Value::String((*last).to_owned());
            if node.contains_key(&key) {
                return Err(conflict(format!("`{last}` is both a value and a group")));
            }
            node.insert(key, value.to_yaml());
        }
        Ok(Value::Mapping(root))
    }

    /// Builds the node's settings struct from its parameters. Use `#[serde(default)]` for the
    /// defaults and `#[serde(deny_unknown_fields)]` so that a misspelt parameter is an error
    /// naming the parameter and the file it came from. Nested structs take dotted names.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ParamsError> {
        let value = self.to_yaml()?;
        yaml::from_value::<T>(value).map_err(|(path, reason)| {
            // For an unknown field the path is the field itself; for a missing field it is the
            // enclosing group. Find the parameter (or the first one under the group).
            let origin = self.origin(&path).cloned().or_else(|| {
                let prefix = format!("{path}.");
                self.values
                    .iter()
                    .find(|(k, _)| path.is_empty() || k.starts_with(&prefix))
                    .filter(|_| !path.is_empty())
                    .map(|(_, (_, o))| o.clone())
            });
            ParamsError::Invalid {
                node: self.node_fqn.clone(),
                param: if path.is_empty() { "(top level)".into() } else { path },
                origin,
                reason,
            }
        })
    }
}

/// Walks the node-name levels of a parameter file down to each `ros__parameters` mapping.
fn collect_nodes<'a>(
    m: &'a Mapping,
    prefix: &str,
    out: &mut Vec<(String, &'a Mapping)>,
) -> Result<(), String> {
    for (k, v) in m {
        let Some(key) = k.as_str() else {
            return Err(format!("node name {k:?} is not a string"));
        };
        if key == "ros__parameters" {
            if prefix.is_empty() {
                return Err("`ros__parameters` must be under a node name".into());
            }
            match v {
                Value::Mapping(params) => out.push((normalize_node_key(prefix), params)),
                Value::Null => {}
                _ => return Err(format!("`{prefix}`: `ros__parameters` must be a mapping")),
            }
            continue;
        }
        let path = format!("{prefix}/{key}");
        match v {
            Value::Mapping(inner) => collect_nodes(inner, &path, out)?,
            _ => {
                return Err(format!(
                    "`{key}` under `{}` is not a mapping; expected `<node>: ros__parameters: ...`",
                    if prefix.is_empty() { "/" } else { prefix }
                ))
            }
        }
    }
    Ok(())
}

fn normalize_node_key(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    format!("/{}", parts.join("/"))
}

/// Flattens nested parameter groups into dotted names.
fn flatten<'a>(
    m: &'a Mapping,
    prefix: &str,
    out: &mut Vec<(String, &'a Value)>,
) -> Result<(), String> {
    for (k, v) in m {
        let key = match k {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => return Err(format!("parameter name {other:?} is not a string")),
        };
        let name = if prefix.is_empty() { key } else { format!("{prefix}.{key}") };
        match v {
            Value::Mapping(inner) => flatten(inner, &name, out)?,
            v => out.push((name, v)),
        }
    }
    Ok(())
}

/// Whether a parameter-file node key (`/**`, `/ns/*`, `/**/sim`, `/arm1/sim`, `sim`) matches
/// the fully qualified node name. `*` matches one token, `**` any number (also none).
pub fn node_pattern_matches(pattern: &str, fqn: &str) -> bool {
    fn rec(p: &[&str], n: &[&str]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((&"**", rest)) => (0..=n.len()).any(|i| rec(rest, &n[i..])),
            Some((tok, rest)) => n
                .split_first()
                .is_some_and(|(first, nrest)| token_matches(tok, first) && rec(rest, nrest)),
        }
    }
    fn token_matches(pat: &str, tok: &str) -> bool {
        // `*` inside a token matches any run of characters.
        let pieces: Vec<&str> = pat.split('*').collect();
        if pieces.len() == 1 {
            return pat == tok;
        }
        let mut rest = tok;
        for (i, piece) in pieces.iter().enumerate() {
            if i == 0 {
                let Some(r) = rest.strip_prefix(piece) else { return false };
                rest = r;
            } else if i == pieces.len() - 1 {
                return rest.ends_with(piece);
            } else if let Some(pos) = rest.find(piece) {
                rest = &rest[pos + piece.len()..];
            } else {
                return false;
            }
        }
        true
    }
    let p: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let n: Vec<&str> = fqn.split('/').filter(|s| !s.is_empty()).collect();
    rec(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("equigate-ros-params-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const FILE_A: &str = "
/**:
  ros__parameters:
    use_sim_time: true
    rate_hz: 10
sim:
  ros__parameters:
    rate_hz: 50
    camera:
      width: 64
      fov_deg: 60.0
    joints: [shoulder_pan_joint, elbow_joint]
/*:
  ros__parameters:
    rate_hz: 20
other:
  ros__parameters:
    rate_hz: 1
";

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Camera {
        #[serde(default = "default_width")]
        width: u32,
        fov_deg: f64,
    }
    fn default_width() -> u32 {
        32
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[serde(default)]
        use_sim_time: bool,
        rate_hz: u32,
        camera: Camera,
        #[serde(default)]
        joints: Vec<String>,
        #[serde(default)]
        gains: Vec<f64>,
    }

    #[test]
    fn exact_name_beats_wildcard_whatever_the_order() {
        let mut p = Params::new("/sim");
        p.merge_yaml_str(FILE_A, ParamSource::Other("a".into())).unwrap();
        assert_eq!(p.get("rate_hz"), Some(&ParamValue::Integer(50)));
        assert_eq!(p.get("use_sim_time"), Some(&ParamValue::Bool(true)));
        assert_eq!(p.get("camera.width"), Some(&ParamValue::Integer(64)));
        let mut q = Params::new("/elsewhere");
        q.merge_yaml_str(FILE_A, ParamSource::Other("a".into())).unwrap();
        assert_eq!(q.get("rate_hz"), Some(&ParamValue::Integer(20)), "later wildcard wins");
        assert_eq!(q.get("camera.width"), None);
    }

    #[test]
    fn namespaces_and_patterns() {
        let text = "
arm1:
  sim:
    ros__parameters: {a: 1}
/arm1/*:
  ros__parameters: {b: 2}
/**/sim:
  ros__parameters: {c: 3}
sim:
  ros__parameters: {d: 4}
";
        let mut p = Params::new("/arm1/sim");
        p.merge_yaml_str(text, ParamSource::CommandLine).unwrap();
        assert_eq!(p.get("a"), Some(&ParamValue::Integer(1)));
        assert_eq!(p.get("b"), Some(&ParamValue::Integer(2)));
        assert_eq!(p.get("c"), Some(&ParamValue::Integer(3)));
        assert_eq!(p.get("d"), None, "`sim:` means /sim, not /arm1/sim");
        assert!(node_pattern_matches("/**", "/x/y/z"));
        assert!(node_pattern_matches("/sim_*", "/sim_ur5e"));
        assert!(!node_pattern_matches("/*", "/a/b"));
    }

    #[test]
    fn files_then_command_line_overrides() {
        let a = temp_file("a.yaml", FILE_A);
        let b = temp_file("b.yaml", "sim:\n  ros__parameters:\n    camera: {fov_deg: 90.0}\n");
        let args = RosArgs::parse([
            "sim_node".to_owned(),
            "--ros-args".into(),
            "--params-file".into(),
            a.display().to_string(),
            "--params-file".into(),
            b.display().to_string(),
            "-p".into(),
            "rate_hz:=100".into(),
            "-p".into(),
            "other:rate_hz:=7".into(),
            "-p".into(),
            "gains:=[1.0, 2.0]".into(),
        ])
        .unwrap();
        let p = Params::load(&args, "sim", "/").unwrap();
        assert_eq!(p.origin("camera.fov_deg"), Some(&ParamSource::File(b.clone())));
        assert_eq!(p.origin("rate_hz"), Some(&ParamSource::CommandLine));
        let s: Settings = p.deserialize().unwrap();
        assert_eq!(
            s,
            Settings {
                use_sim_time: true,
                rate_hz: 100,
                camera: Camera { width: 64, fov_deg: 90.0 },
                joints: vec!["shoulder_pan_joint".into(), "elbow_joint".into()],
                gains: vec![1.0, 2.0],
            }
        );
    }

    #[test]
    fn defaults_fill_in() {
        let mut p = Params::new("/sim");
        p.merge_yaml_str(
            "/**:\n  ros__parameters:\n    rate_hz: 5\n    camera.fov_deg: 45.0\n",
            ParamSource::Other("t".into()),
        )
        .unwrap();
        let s: Settings = p.deserialize().unwrap();
        assert_eq!(s.camera, Camera { width: 32, fov_deg: 45.0 });
        assert!(!s.use_sim_time);
    }

    #[test]
    fn unknown_parameter_is_rejected_naming_it_and_its_file() {
        let f = temp_file("typo.yaml", "sim:\n  ros__parameters:\n    rate_hz: 5\n    camera:\n      fov_deg: 1.0\n      widht: 3\n");
        let mut p = Params::new("/sim");
        p.merge_file(&f).unwrap();
        let e = p.deserialize::<Settings>().unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("camera.widht"), "{msg}");
        assert!(msg.contains("typo.yaml"), "{msg}");
        assert!(msg.contains("unknown field"), "{msg}");
        let ParamsError::Invalid { param, .. } = e else { panic!("{e:?}") };
        assert_eq!(param, "camera.widht");
    }

    #[test]
    fn wrong_type_and_missing_are_clear() {
        let mut p = Params::new("/sim");
        p.set("rate_hz", ParamValue::String("fast".into()), ParamSource::CommandLine);
        p.set("camera.fov_deg", ParamValue::Double(1.0), ParamSource::CommandLine);
        let msg = p.deserialize::<Settings>().unwrap_err().to_string();
        assert!(msg.contains("`rate_hz`") && msg.contains("-p on the command line"), "{msg}");
        let q = Params::new("/sim");
        let msg = q.deserialize::<Settings>().unwrap_err().to_string();
        assert!(msg.contains("missing field"), "{msg}");
    }

    #[test]
    fn malformed_yaml_names_the_file() {
        let f = temp_file("broken.yaml", "sim:\n  ros__parameters:\n    a: [1, 2\n");
        let e = Params::new("/sim").merge_file(&f).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ParamsError::Yaml { .. }));
        assert!(msg.contains("broken.yaml") && msg.contains("line"), "{msg}");

        let f = temp_file("layout.yaml", "sim:\n  rate_hz: 5\n");
        let msg = Params::new("/sim").merge_file(&f).unwrap_err().to_string();
        assert!(msg.contains("layout.yaml") && msg.contains("rate_hz"), "{msg}");

        let f = temp_file("mixed.yaml", "sim:\n  ros__parameters:\n    v: [1, true]\n");
        let msg = Params::new("/sim").merge_file(&f).unwrap_err().to_string();
        assert!(msg.contains("mixed.yaml") && msg.contains("`v`"), "{msg}");

        let missing = Params::new("/sim").merge_file(Path::new("/nonexistent/x.yaml"));
        assert!(matches!(missing, Err(ParamsError::Io { .. })));
    }

    #[test]
    fn value_typing() {
        use ParamValue as P;
        assert_eq!(P::from_yaml_text("3"), Ok(P::Integer(3)));
        assert_eq!(P::from_yaml_text("-3.5e2"), Ok(P::Double(-350.0)));
        assert_eq!(P::from_yaml_text("true"), Ok(P::Bool(true)));
        assert_eq!(P::from_yaml_text("'3'"), Ok(P::String("3".into())));
        assert_eq!(
            P::from_yaml_text("/robot/joint_states"),
            Ok(P::String("/robot/joint_states".into()))
        );
        assert_eq!(P::from_yaml_text("[true, false]"), Ok(P::BoolArray(vec![true, false])));
        assert_eq!(P::from_yaml_text("[]"), Ok(P::StringArray(vec![])));
        assert_eq!(P::from_yaml_text(""), Ok(P::String(String::new())));
        assert!(P::from_yaml_text("[1, 2.0]").is_err());
        assert!(P::from_yaml_text("{a: 1}").is_err());
        assert!(P::from_yaml_text("[[1]]").is_err());
    }

    #[test]
    fn dotted_conflict_is_an_error() {
        let mut p = Params::new("/n");
        p.set("a", ParamValue::Integer(1), ParamSource::CommandLine);
        p.set("a.b", ParamValue::Integer(2), ParamSource::CommandLine);
        assert!(p.to_yaml().is_err());
    }
}
