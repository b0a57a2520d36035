//! The one place that names the YAML library (serde_yaml_ng 0.10), so that it can be swapped for
//! another fork by editing this file only.

use serde::de::DeserializeOwned;

pub use serde_yaml_ng::{Mapping, Number, Value};

/// A YAML syntax or conversion error, with line/column where the library knows them.
pub type Error = serde_yaml_ng::Error;

/// Parses one YAML document into a [`Value`].
pub fn parse(text: &str) -> Result<Value, Error> {
    serde_yaml_ng::from_str(text)
}

/// Converts a [`Value`] into `T`. On error returns the dotted path of the offending field (empty
/// at the top level) and the reason.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        (path, e.into_inner().to_string())
    })
}

/// Converts any serialisable value into a YAML [`Value`].
pub fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, Error> {
    serde_yaml_ng::to_value(value)
}

/// Writes any serialisable value as a YAML document.
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_yaml_ng::to_string(value)
}
