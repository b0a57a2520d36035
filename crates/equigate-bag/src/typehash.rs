//! Type description hashes (`RIHS01_<sha256>`, REP 2011 "Evolving message types"; Jazzy and
//! later) of the types in [`crate::message_definition`], for `type_description_hash` in
//! metadata.yaml (version ≥ 7) and `topic_type_hash` in MCAP channel metadata.
//!
//! The hashed text is the JSON of the type's `TypeDescription` (type_description_interfaces):
//! its fields and, sorted by type name, every type it references, each field as
//! `{"name", "type": {"type_id", "capacity", "string_capacity", "nested_type_name"}}`. Constants,
//! default values and comments are not part of it. The JSON is written as Python's `json.dumps`
//! writes it by default (`", "` and `": "` separators, no whitespace otherwise), as
//! rosidl_generator_type_description does; the interop test compares every hash with PyPI
//! `rosbags`' `hash_rihs01` for Jazzy.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::msgdefs::message_definition;

/// `FieldType.type_id` of a primitive (type_description_interfaces/msg/FieldType).
fn primitive_type_id(name: &str) -> Option<u8> {
    Some(match name {
        "int8" => 2,
        "uint8" => 3,
        "int16" => 4,
        "uint16" => 5,
        "int32" => 6,
        "uint32" => 7,
        "int64" => 8,
        "uint64" => 9,
        "float32" => 10,
        "float64" => 11,
        "bool" => 15,
        "byte" => 16,
        "string" => 17,
        "wstring" => 18,
        _ => return None,
    })
}

/// One field's `FieldType`.
struct FieldType {
    type_id: u16,
    capacity: u64,
    string_capacity: u64,
    nested_type_name: String,
}

/// `pkg/Type` or `pkg/msg/Type` → `pkg/msg/Type`.
fn full_name(name: &str) -> String {
    match name.split('/').count() {
        2 => name.replacen('/', "/msg/", 1),
        _ => name.to_string(),
    }
}

/// The `FieldType` of a .msg type token such as `float64[9]`, `string<=8`, `std_msgs/Header[]`;
/// `None` for what this module does not handle (`char`, `wstring` bounds, unqualified names).
fn field_type(token: &str) -> Option<FieldType> {
    let (base, increment, capacity) = match token.find('[') {
        None => (token, 0, 0),
        Some(i) => {
            let inner = token[i + 1..].strip_suffix(']')?;
            if inner.is_empty() {
                (&token[..i], 144, 0)
            } else if let Some(n) = inner.strip_prefix("<=") {
                (&token[..i], 96, n.parse().ok()?)
            } else {
                (&token[..i], 48, inner.parse().ok()?)
            }
        }
    };
    let (type_id, string_capacity, nested) = if let Some(n) = base.strip_prefix("string<=") {
        (21, n.parse().ok()?, String::new())
    } else if let Some(id) = primitive_type_id(base) {
        (u16::from(id), 0, String::new())
    } else if base.contains('/') {
        (1, 0, full_name(base))
    } else {
        return None;
    };
    Some(FieldType {
        type_id: type_id + increment,
        capacity,
        string_capacity,
        nested_type_name: nested,
    })
}

/// The fields (name, type) of each type in a ros2msg definition text with dependencies
/// ([`crate::message_definition`]'s format), the first under `type_name`.
fn parse(type_name: &str, text: &str) -> Option<BTreeMap<String, Vec<(String, FieldType)>>> {
    let separator = "=".repeat(80);
    let mut types = BTreeMap::new();
    for (k, part) in text.split(&format!("{separator}\n")).enumerate() {
        let mut lines = part.lines();
        let name = if k == 0 {
            type_name.to_string()
        } else {
            full_name(lines.next()?.strip_prefix("MSG: ")?.trim())
        };
        let mut fields = Vec::new();
        for line in lines {
            let line = line.split('#').next().unwrap_or("").trim();
            let mut tokens = line.split_whitespace();
            let (Some(token), Some(field)) = (tokens.next(), tokens.next()) else { continue };
            if field.contains('=') || tokens.next().is_some_and(|t| t.starts_with('=')) {
                continue; // a constant
            }
            fields.push((field.to_string(), field_type(token)?));
        }
        types.insert(name, fields);
    }
    Some(types)
}

/// One `TypeDescription` struct as JSON.
fn struct_json(out: &mut String, name: &str, fields: &[(String, FieldType)]) {
    let _ = write!(out, "{{\"type_name\": \"{name}\", \"fields\": [");
    // An empty struct has one placeholder field, as rosidl generates.
    let placeholder = [(
        "structure_needs_at_least_one_member".to_string(),
        FieldType { type_id: 3, capacity: 0, string_capacity: 0, nested_type_name: String::new() },
    )];
    let fields = if fields.is_empty() { &placeholder[..] } else { fields };
    for (i, (field, t)) in fields.iter().enumerate() {
        let _ = write!(
            out,
            "{}{{\"name\": \"{field}\", \"type\": {{\"type_id\": {}, \"capacity\": {}, \
             \"string_capacity\": {}, \"nested_type_name\": \"{}\"}}}}",
            if i > 0 { ", " } else { "" },
            t.type_id,
            t.capacity,
            t.string_capacity,
            t.nested_type_name
        );
    }
    out.push_str("]}");
}

/// The type description hash `RIHS01_<64 hex digits>` of `type_name` (`pkg/msg/Type`), or `None`
/// for a type without a built-in definition ([`crate::message_definition`]).
///
/// Source: REP 2011; rosidl_generator_type_description (Jazzy).
pub fn type_description_hash(type_name: &str) -> Option<String> {
    let types = parse(type_name, message_definition(type_name)?)?;
    let mut json = String::from("{\"type_description\": ");
    struct_json(&mut json, type_name, types.get(type_name)?);
    json.push_str(", \"referenced_type_descriptions\": [");
    let referenced = types.iter().filter(|(name, _)| name.as_str() != type_name);
    for (i, (name, fields)) in referenced.enumerate() {
        if i > 0 {
            json.push_str(", ");
        }
        struct_json(&mut json, name, fields);
    }
    json.push_str("]}");
    let digest = Sha256::digest(json.as_bytes());
    let mut hash = String::from("RIHS01_");
    for byte in digest {
        let _ = write!(hash, "{byte:02x}");
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes computed by PyPI rosbags 0.11.9 (`get_typestore(Stores.ROS2_JAZZY).hash_rihs01`);
    /// tests/interop/rosbags_read.py checks every built-in type the same way.
    #[test]
    fn hashes_match_rosbags_for_jazzy() {
        assert_eq!(
            type_description_hash("sensor_msgs/msg/JointState").unwrap(),
            "RIHS01_a13ee3a330e346c9d87b5aa18d24e11690752bd33a0350f11c5882bc9179260e"
        );
        assert_eq!(
            type_description_hash("diagnostic_msgs/msg/DiagnosticArray").unwrap(),
            "RIHS01_5a8a36efb05fb25070fa0fb3810290c0e6cd4862b54a8fb975a1ee8dc55a333e"
        );
        assert!(type_description_hash("std_msgs/msg/String").is_none());
    }

    #[test]
    fn field_types_follow_type_description_interfaces() {
        let t = |s: &str| field_type(s).map(|t| (t.type_id, t.capacity, t.string_capacity));
        assert_eq!(t("float64[9]"), Some((11 + 48, 9, 0)));
        assert_eq!(t("uint8[]"), Some((3 + 144, 0, 0)));
        assert_eq!(t("int32[<=4]"), Some((6 + 96, 4, 0)));
        assert_eq!(t("string<=22"), Some((21, 0, 22)));
        assert_eq!(t("byte"), Some((16, 0, 0)));
        assert_eq!(field_type("std_msgs/Header").unwrap().nested_type_name, "std_msgs/msg/Header");
        assert!(field_type("char").is_none() && field_type("Header").is_none());
    }
}
