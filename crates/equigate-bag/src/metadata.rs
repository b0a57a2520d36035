//! metadata.yaml (`rosbag2_bagfile_information`) and the QoS profiles stored in it.
//!
//! Source: rosbag2 `rosbag2_storage/bag_metadata.hpp` and `rosbag2_storage/yaml.hpp`, and
//! `rmw/types.h` for the QoS enums. Versions this crate reads: 5 (Humble: `files`,
//! `relative_file_paths`), 6 (`custom_data`), 7 (`type_description_hash`), 8 (`ros_distro`) and
//! 9 (Jazzy: `offered_qos_profiles` as a YAML list with string enums instead of a YAML string
//! with integer enums). Fields a version lacks read as their defaults.

use std::collections::BTreeMap;

use equigate_ros::yaml::{self, Mapping, Value};
use serde::{Deserialize, Deserializer};

/// Oldest metadata.yaml version [`crate::BagReader`] reads.
pub const MIN_VERSION: u32 = 5;
/// Newest metadata.yaml version [`crate::BagReader`] reads.
pub const MAX_VERSION: u32 = 9;

/// The contents of metadata.yaml under `rosbag2_bagfile_information` (field names as on disk).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct BagMetadata {
    /// Format version, 5..=9.
    pub version: u32,
    /// Storage plugin: `mcap` or `sqlite3`.
    pub storage_identifier: String,
    /// Last minus first message log time.
    pub duration: Nanoseconds,
    /// First message log time (`i64::MAX` in an empty bag, as rosbag2 writes it).
    pub starting_time: StartingTime,
    /// Number of messages in all files.
    pub message_count: u64,
    /// Every topic with its number of messages (topics without messages included).
    #[serde(default)]
    pub topics_with_message_count: Vec<TopicWithMessageCount>,
    /// `""`, or `zstd` for file or message compression.
    #[serde(default)]
    pub compression_format: String,
    /// `""`/`NONE`, `FILE` or `MESSAGE`. MCAP chunk compression is not recorded here.
    #[serde(default)]
    pub compression_mode: String,
    /// Storage files in order of splitting, relative to the bag directory.
    #[serde(default)]
    pub relative_file_paths: Vec<String>,
    /// Per-file time range and message count (version 5+).
    #[serde(default)]
    pub files: Vec<FileInformation>,
    /// User key/value pairs (version 6+; `~` when none).
    #[serde(default)]
    pub custom_data: Option<BTreeMap<String, String>>,
    /// ROS distribution of the recorder (version 8+), e.g. `jazzy`.
    #[serde(default)]
    pub ros_distro: String,
}

/// A duration in nanoseconds (`duration: {nanoseconds: ...}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Nanoseconds {
    /// Nanoseconds.
    pub nanoseconds: u64,
}

/// A time stamp (`starting_time: {nanoseconds_since_epoch: ...}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct StartingTime {
    /// Nanoseconds since the Unix epoch.
    pub nanoseconds_since_epoch: i64,
}

/// One entry of `topics_with_message_count`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TopicWithMessageCount {
    /// The topic.
    pub topic_metadata: TopicMetadata,
    /// Messages on it in the whole bag.
    pub message_count: u64,
}

/// `topic_metadata` of metadata.yaml.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// ROS type, e.g. `sensor_msgs/msg/JointState`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// `cdr`.
    pub serialization_format: String,
    /// Offered QoS profiles (a YAML string before version 9, a list from version 9).
    #[serde(default, deserialize_with = "deserialize_qos_profiles")]
    pub offered_qos_profiles: Vec<Qos>,
    /// `RIHS01_<sha256>` type hash (version 7+; empty when unknown, as this writer leaves it).
    #[serde(default)]
    pub type_description_hash: String,
}

/// One entry of `files` (version 5+).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct FileInformation {
    /// File name relative to the bag directory.
    pub path: String,
    /// First message log time in this file.
    pub starting_time: StartingTime,
    /// Last minus first message log time in this file.
    pub duration: Nanoseconds,
    /// Messages in this file.
    pub message_count: u64,
}

impl BagMetadata {
    /// Parses metadata.yaml text. Errors give the dotted field path and the reason.
    pub fn from_yaml(text: &str) -> Result<Self, (String, String)> {
        let value = yaml::parse(text).map_err(|e| (String::new(), e.to_string()))?;
        let Value::Mapping(mut top) = value else {
            return Err((String::new(), "metadata.yaml is not a mapping".to_string()));
        };
        let inner = top.remove("rosbag2_bagfile_information").ok_or_else(|| {
            (String::new(), "missing key rosbag2_bagfile_information".to_string())
        })?;
        yaml::from_value(inner)
            .map_err(|(path, reason)| (format!("rosbag2_bagfile_information.{path}"), reason))
    }

    /// Writes metadata.yaml text (with the `rosbag2_bagfile_information` wrapper), in the form
    /// of `self.version`: version 5 leaves out the fields of later versions and writes QoS as a
    /// YAML string with integer enums; version 9 writes QoS as a list with string enums.
    pub fn to_yaml(&self) -> Result<String, yaml::Error> {
        let mut top = Mapping::new();
        top.insert("rosbag2_bagfile_information".into(), self.to_value()?);
        yaml::to_string(&Value::Mapping(top))
    }

    /// The inner mapping (without the wrapper) as a YAML document, as rosbag2's MCAP plugin
    /// stores it in the `rosbag2` metadata record under `serialized_metadata`.
    pub fn to_serialized_metadata(&self) -> Result<String, yaml::Error> {
        yaml::to_string(&self.to_value()?)
    }

    fn to_value(&self) -> Result<Value, yaml::Error> {
        let v = self.version;
        let mut m = Mapping::new();
        m.insert("version".into(), v.into());
        m.insert("storage_identifier".into(), self.storage_identifier.clone().into());
        m.insert("duration".into(), nanoseconds(self.duration.nanoseconds));
        m.insert("starting_time".into(), starting_time(self.starting_time.nanoseconds_since_epoch));
        m.insert("message_count".into(), self.message_count.into());
        let mut topics = Vec::new();
        for t in &self.topics_with_message_count {
            let tm = &t.topic_metadata;
            let mut meta = Mapping::new();
            meta.insert("name".into(), tm.name.clone().into());
            meta.insert("type".into(), tm.type_name.clone().into());
            meta.insert("serialization_format".into(), tm.serialization_format.clone().into());
            let qos = if v >= 9 {
                Value::Sequence(tm.offered_qos_profiles.iter().map(|q| q.to_value(v)).collect())
            } else {
                Value::String(qos_profiles_to_string(&tm.offered_qos_profiles, v)?)
            };
            meta.insert("offered_qos_profiles".into(), qos);
            if v >= 7 {
                meta.insert(
                    "type_description_hash".into(),
                    tm.type_description_hash.clone().into(),
                );
            }
            let mut entry = Mapping::new();
            entry.insert("topic_metadata".into(), Value::Mapping(meta));
            entry.insert("message_count".into(), t.message_count.into());
            topics.push(Value::Mapping(entry));
        }
        m.insert("topics_with_message_count".into(), Value::Sequence(topics));
        m.insert("compression_format".into(), self.compression_format.clone().into());
        m.insert("compression_mode".into(), self.compression_mode.clone().into());
        m.insert(
            "relative_file_paths".into(),
            Value::Sequence(self.relative_file_paths.iter().map(|p| p.clone().into()).collect()),
        );
        let files = self
            .files
            .iter()
            .map(|f| {
                let mut e = Mapping::new();
                e.insert("path".into(), f.path.clone().into());
                e.insert(
                    "starting_time".into(),
                    starting_time(f.starting_time.nanoseconds_since_epoch),
                );
                e.insert("duration".into(), nanoseconds(f.duration.nanoseconds));
                e.insert("message_count".into(), f.message_count.into());
                Value::Mapping(e)
            })
            .collect();
        m.insert("files".into(), Value::Sequence(files));
        if v >= 6 {
            let custom = match &self.custom_data {
                Some(map) if !map.is_empty() => yaml::to_value(map)?,
                _ => Value::Null,
            };
            m.insert("custom_data".into(), custom);
        }
        if v >= 8 {
            m.insert("ros_distro".into(), self.ros_distro.clone().into());
        }
        Ok(Value::Mapping(m))
    }
}

fn nanoseconds(ns: u64) -> Value {
    let mut m = Mapping::new();
    m.insert("nanoseconds".into(), ns.into());
    Value::Mapping(m)
}

fn starting_time(ns: i64) -> Value {
    let mut m = Mapping::new();
    m.insert("nanoseconds_since_epoch".into(), ns.into());
    Value::Mapping(m)
}

// ---------------------------------------------------------------------------------------------
// QoS
// ---------------------------------------------------------------------------------------------

/// A QoS profile as rosbag2 stores it for each publisher it recorded (`rmw_qos_profile_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Qos {
    /// History kind.
    pub history: History,
    /// Queue depth for [`History::KeepLast`] (messages).
    pub depth: u32,
    /// Reliability.
    pub reliability: Reliability,
    /// Durability.
    pub durability: Durability,
    /// Deadline between messages.
    pub deadline: QosDuration,
    /// Age after which a message is dropped.
    pub lifespan: QosDuration,
    /// Liveliness kind.
    pub liveliness: Liveliness,
    /// Liveliness lease.
    pub liveliness_lease_duration: QosDuration,
    /// Whether the topic name skips ROS namespace conventions (`rt/` prefix).
    pub avoid_ros_namespace_conventions: bool,
}

impl Qos {
    /// Reliable, volatile, keep last `depth` (ROS default for states and commands; depth 10
    /// matches `rclcpp::QoS(10)`). Durations unspecified (`0 s 0 ns`, the middleware default).
    pub fn reliable(depth: u32) -> Self {
        Qos {
            history: History::KeepLast,
            depth,
            reliability: Reliability::Reliable,
            durability: Durability::Volatile,
            deadline: QosDuration::UNSPECIFIED,
            lifespan: QosDuration::UNSPECIFIED,
            liveliness: Liveliness::Automatic,
            liveliness_lease_duration: QosDuration::UNSPECIFIED,
            avoid_ros_namespace_conventions: false,
        }
    }

    /// Best effort, volatile, keep last `depth` (`rclcpp::SensorDataQoS` has depth 5).
    pub fn sensor_data(depth: u32) -> Self {
        Qos { reliability: Reliability::BestEffort, ..Qos::reliable(depth) }
    }

    /// The profile as a YAML mapping in the form of metadata `version` (integer enums before 9,
    /// lower-case string enums from 9).
    pub fn to_value(&self, version: u32) -> Value {
        let e = |int: u32, s: &str| -> Value {
            if version >= 9 {
                s.into()
            } else {
                int.into()
            }
        };
        let mut m = Mapping::new();
        m.insert("history".into(), e(self.history as u32, self.history.as_str()));
        m.insert("depth".into(), self.depth.into());
        m.insert("reliability".into(), e(self.reliability as u32, self.reliability.as_str()));
        m.insert("durability".into(), e(self.durability as u32, self.durability.as_str()));
        m.insert("deadline".into(), self.deadline.to_value());
        m.insert("lifespan".into(), self.lifespan.to_value());
        m.insert("liveliness".into(), e(self.liveliness as u32, self.liveliness.as_str()));
        m.insert("liveliness_lease_duration".into(), self.liveliness_lease_duration.to_value());
        m.insert(
            "avoid_ros_namespace_conventions".into(),
            self.avoid_ros_namespace_conventions.into(),
        );
        Value::Mapping(m)
    }

    /// Reads one profile from a YAML mapping of any version (integer or string enums). A missing
    /// enum reads as its `Unknown` variant, a missing duration as unspecified, a missing depth
    /// as 0.
    pub fn from_value(value: &Value) -> Result<Self, String> {
        let Value::Mapping(m) = value else {
            return Err("a QoS profile is not a mapping".to_string());
        };
        let get = |k: &str| m.get(k);
        let int = |k: &str| -> Result<Option<u64>, String> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| format!("{k}: {n} is not a non-negative integer")),
                Some(other) => Err(format!("{k}: expected an integer, got {other:?}")),
            }
        };
        let enum_field = |k: &str| -> Result<EnumValue, String> {
            match get(k) {
                None | Some(Value::Null) => Ok(EnumValue::Missing),
                Some(Value::Number(n)) => n
                    .as_u64()
                    .map(EnumValue::Int)
                    .ok_or_else(|| format!("{k}: {n} is not a non-negative integer")),
                Some(Value::String(s)) => Ok(EnumValue::Str(s.to_ascii_lowercase())),
                Some(other) => Err(format!("{k}: expected an integer or a string, got {other:?}")),
            }
        };
        let duration = |k: &str| -> Result<QosDuration, String> {
            match get(k) {
                None | Some(Value::Null) => Ok(QosDuration::UNSPECIFIED),
                Some(v) => QosDuration::from_value(v).map_err(|e| format!("{k}.{e}")),
            }
        };
        Ok(Qos {
            history: History::from_enum(enum_field("history")?),
            depth: int("depth")?.unwrap_or(0).min(u64::from(u32::MAX)) as u32,
            reliability: Reliability::from_enum(enum_field("reliability")?),
            durability: Durability::from_enum(enum_field("durability")?),
            deadline: duration("deadline")?,
            lifespan: duration("lifespan")?,
            liveliness: Liveliness::from_enum(enum_field("liveliness")?),
            liveliness_lease_duration: duration("liveliness_lease_duration")?,
            avoid_ros_namespace_conventions: match get("avoid_ros_namespace_conventions") {
                Some(Value::Bool(b)) => *b,
                _ => false,
            },
        })
    }
}

/// A QoS duration (`rmw_time_t`: seconds and nanoseconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QosDuration {
    /// Seconds.
    pub sec: u64,
    /// Nanoseconds.
    pub nsec: u64,
}

impl QosDuration {
    /// `0 s 0 ns`: unspecified, the middleware's default (`RMW_DURATION_UNSPECIFIED`).
    pub const UNSPECIFIED: QosDuration = QosDuration { sec: 0, nsec: 0 };
    /// `9223372036 s 854775807 ns` (`RMW_DURATION_INFINITE`), as recorded from DDS endpoints.
    pub const INFINITE: QosDuration = QosDuration { sec: 9_223_372_036, nsec: 854_775_807 };

    fn to_value(self) -> Value {
        let mut m = Mapping::new();
        m.insert("sec".into(), self.sec.into());
        m.insert("nsec".into(), self.nsec.into());
        Value::Mapping(m)
    }

    fn from_value(value: &Value) -> Result<Self, String> {
        let field = |k: &str| -> Result<u64, String> {
            match value.get(k) {
                Some(Value::Number(n)) => {
                    n.as_u64().ok_or_else(|| format!("{k}: {n} is not a non-negative integer"))
                }
                None => Ok(0),
                Some(other) => Err(format!("{k}: expected an integer, got {other:?}")),
            }
        };
        Ok(QosDuration { sec: field("sec")?, nsec: field("nsec")? })
    }
}

enum EnumValue {
    Missing,
    Int(u64),
    Str(String),
}

macro_rules! qos_enum {
    ($(#[$doc:meta])* $name:ident, unknown = $unknown:ident, $($(#[$vdoc:meta])* $variant:ident = $int:literal, $s:literal;)*) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant = $int,)*
        }

        impl $name {
            /// The lower-case name metadata version 9 writes (rmw's `*_to_str`).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s,)* }
            }

            /// From the integer of `rmw/types.h` (unknown integers read as the `Unknown` variant).
            pub fn from_int(value: u64) -> Self {
                match value { $($int => $name::$variant,)* _ => $name::$unknown }
            }

            /// From the lower-case name (unknown names read as the `Unknown` variant).
            pub fn from_name(name: &str) -> Self {
                match name { $($s => $name::$variant,)* _ => $name::$unknown }
            }

            fn from_enum(value: EnumValue) -> Self {
                match value {
                    EnumValue::Missing => $name::$unknown,
                    EnumValue::Int(i) => Self::from_int(i),
                    EnumValue::Str(s) => Self::from_name(&s),
                }
            }
        }
    };
}

qos_enum!(
    /// History policy (`rmw_qos_history_policy_e`).
    History, unknown = Unknown,
    /// Middleware default.
    SystemDefault = 0, "system_default";
    /// Keep the last `depth` messages.
    KeepLast = 1, "keep_last";
    /// Keep all messages.
    KeepAll = 2, "keep_all";
    /// Not known (DDS does not tell subscribers a publisher's history).
    Unknown = 3, "unknown";
);

qos_enum!(
    /// Reliability policy (`rmw_qos_reliability_policy_e`).
    Reliability, unknown = Unknown,
    /// Middleware default.
    SystemDefault = 0, "system_default";
    /// Retransmit until received.
    Reliable = 1, "reliable";
    /// Send once.
    BestEffort = 2, "best_effort";
    /// Not known.
    Unknown = 3, "unknown";
    /// Match the peers (Iron+).
    BestAvailable = 4, "best_available";
);

qos_enum!(
    /// Durability policy (`rmw_qos_durability_policy_e`).
    Durability, unknown = Unknown,
    /// Middleware default.
    SystemDefault = 0, "system_default";
    /// Late joiners get the last `depth` messages.
    TransientLocal = 1, "transient_local";
    /// Late joiners get nothing old.
    Volatile = 2, "volatile";
    /// Not known.
    Unknown = 3, "unknown";
    /// Match the peers (Iron+).
    BestAvailable = 4, "best_available";
);

qos_enum!(
    /// Liveliness policy (`rmw_qos_liveliness_policy_e`).
    Liveliness, unknown = Unknown,
    /// Middleware default.
    SystemDefault = 0, "system_default";
    /// Asserted by the middleware.
    Automatic = 1, "automatic";
    /// Deprecated manual-by-node.
    ManualByNode = 2, "manual_by_node";
    /// Asserted by the publisher.
    ManualByTopic = 3, "manual_by_topic";
    /// Not known.
    Unknown = 4, "unknown";
    /// Match the peers (Iron+).
    BestAvailable = 5, "best_available";
);

/// Writes QoS profiles as the YAML string of metadata versions before 9 (and of MCAP channel
/// metadata `offered_qos_profiles` in every version, with the enums of `version`): a sequence of
/// mappings, without a trailing newline; empty for no profiles.
pub fn qos_profiles_to_string(profiles: &[Qos], version: u32) -> Result<String, yaml::Error> {
    if profiles.is_empty() {
        return Ok(String::new());
    }
    let seq = Value::Sequence(profiles.iter().map(|q| q.to_value(version)).collect());
    Ok(yaml::to_string(&seq)?.trim_end().to_string())
}

/// Reads QoS profiles from either form: a YAML string (versions before 9, MCAP channel
/// metadata, sqlite3 `topics.offered_qos_profiles`) or a YAML sequence (version 9).
pub fn qos_profiles_from_value(value: &Value) -> Result<Vec<Qos>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => qos_profiles_from_str(s),
        Value::Sequence(items) => items.iter().map(Qos::from_value).collect(),
        other => Err(format!("offered_qos_profiles: expected a string or a list, got {other:?}")),
    }
}

/// Reads QoS profiles from the YAML string form (empty string: no profiles).
pub fn qos_profiles_from_str(text: &str) -> Result<Vec<Qos>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value = yaml::parse(text).map_err(|e| format!("offered_qos_profiles: {e}"))?;
    match value {
        Value::String(_) => Err("offered_qos_profiles: a string inside the string".to_string()),
        v => qos_profiles_from_value(&v),
    }
}

fn deserialize_qos_profiles<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Qos>, D::Error> {
    let value = Value::deserialize(d)?;
    qos_profiles_from_value(&value).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V5_QOS: &str = "- history: 1\n  depth: 1\n  reliability: 1\n  durability: 1\n  deadline:\n    sec: 9223372036\n    nsec: 854775807\n  lifespan:\n    sec: 9223372036\n    nsec: 854775807\n  liveliness: 1\n  liveliness_lease_duration:\n    sec: 9223372036\n    nsec: 854775807\n  avoid_ros_namespace_conventions: false";

    #[test]
    fn qos_string_round_trips_in_rosbag2_form() {
        let q = qos_profiles_from_str(V5_QOS).unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].history, History::KeepLast);
        assert_eq!(q[0].durability, Durability::TransientLocal);
        assert_eq!(q[0].deadline, QosDuration::INFINITE);
        // Byte-identical to what rosbag2 writes for version < 9.
        assert_eq!(qos_profiles_to_string(&q, 5).unwrap(), V5_QOS);
    }

    #[test]
    fn v9_uses_string_enums_and_reads_back() {
        let q = Qos::sensor_data(5);
        let text = qos_profiles_to_string(&[q], 9).unwrap();
        assert!(text.contains("reliability: best_effort"), "{text}");
        assert!(text.contains("history: keep_last"), "{text}");
        assert_eq!(qos_profiles_from_str(&text).unwrap(), vec![q]);
    }

    #[test]
    fn metadata_writes_only_the_fields_of_its_version() {
        let meta = BagMetadata {
            version: 5,
            storage_identifier: "mcap".into(),
            duration: Nanoseconds { nanoseconds: 10 },
            starting_time: StartingTime { nanoseconds_since_epoch: 5 },
            message_count: 2,
            topics_with_message_count: vec![TopicWithMessageCount {
                topic_metadata: TopicMetadata {
                    name: "/a".into(),
                    type_name: "std_msgs/msg/Float32".into(),
                    serialization_format: "cdr".into(),
                    offered_qos_profiles: vec![Qos::reliable(10)],
                    type_description_hash: String::new(),
                },
                message_count: 2,
            }],
            compression_format: String::new(),
            compression_mode: String::new(),
            relative_file_paths: vec!["b_0.mcap".into()],
            files: vec![],
            custom_data: None,
            ros_distro: "jazzy".into(),
        };
        let v5 = meta.to_yaml().unwrap();
        assert!(!v5.contains("ros_distro") && !v5.contains("custom_data"), "{v5}");
        assert!(!v5.contains("type_description_hash"), "{v5}");
        assert_eq!(BagMetadata::from_yaml(&v5).unwrap().ros_distro, "");
        let v9 = BagMetadata { version: 9, ..meta.clone() };
        let text = v9.to_yaml().unwrap();
        assert!(text.contains("ros_distro: jazzy"), "{text}");
        assert_eq!(BagMetadata::from_yaml(&text).unwrap(), v9);
        let back5 = BagMetadata::from_yaml(&v5).unwrap();
        assert_eq!(back5.topics_with_message_count, meta.topics_with_message_count);
    }
}
