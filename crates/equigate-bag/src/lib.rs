//! rosbag2 bags on disk, without ROS installed: [`BagWriter`] writes MCAP bags in the rosbag2
//! layout and [`BagReader`] reads MCAP and sqlite3 bags, including bags whose recorder was killed.
//!
//! A bag is a directory holding `metadata.yaml` and one or more storage files
//! (`<name>_0.mcap`, `<name>_1.mcap`, ... or `<name>_0.db3`). Sources:
//! - rosbag2 `rosbag2_storage/bag_metadata.hpp` and `yaml.hpp`: metadata.yaml versions 5 (Humble)
//!   to 9 (Jazzy: QoS profiles as a list with string enums);
//! - the MCAP specification (<https://mcap.dev/spec>) and its ros2 profile
//!   (<https://mcap.dev/spec/registry#ros2>): schema name `pkg/msg/Type`, schema encoding
//!   `ros2msg`, channel message encoding `cdr`, channel metadata `offered_qos_profiles`, and a
//!   metadata record `rosbag2` holding `serialized_metadata`;
//! - rosbag2_storage_sqlite3: tables `topics(id, name, type, serialization_format,
//!   offered_qos_profiles[, type_description_hash])` and `messages(id, topic_id, timestamp, data)`.
//!
//! For the built-in types ([`message_definition`]) the writer also writes the REP 2011 type hash
//! ([`type_description_hash`]) into metadata.yaml (`type_description_hash`, version ≥ 7) and the
//! MCAP channel metadata (`topic_type_hash`, version 9), as Jazzy's rosbag2 does.
//!
//! Like rosbag2, the writer writes metadata.yaml only in [`BagWriter::finish`]; a recording cut
//! short (kill -9) leaves storage files without it, and [`BagReader::open`] then rebuilds the
//! topics from the channels and schemas it finds and reports a [`Recovery`].
//!
//! ```no_run
//! use equigate_bag::{BagReader, BagWriter, Qos, TopicFilter, TopicInfo, WriterOptions};
//! # fn main() -> Result<(), equigate_bag::BagError> {
//! let dir = std::path::Path::new("/tmp/my_bag");
//! let mut writer = BagWriter::create(dir, WriterOptions::default())?;
//! let topic = writer.add_topic(TopicInfo::cdr("/clock", "rosgraph_msgs/msg/Clock", Qos::reliable(10)))?;
//! writer.write(topic, 1_000, &[0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])?;
//! writer.finish()?;
//! let reader = BagReader::open(dir)?;
//! for msg in reader.messages(&TopicFilter::All)? {
//!     let msg = msg?;
//!     println!("{} {} {} bytes", msg.log_time_ns, msg.topic, msg.data.len());
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod metadata;
mod msgdefs;
mod reader;
mod storage_mcap;
mod storage_sqlite;
mod typehash;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;

pub use metadata::{BagMetadata, Durability, History, Liveliness, Qos, QosDuration, Reliability};
pub use msgdefs::message_definition;
pub use reader::{BagReader, Messages, RecoveredFile, Recovery};
pub use typehash::type_description_hash;
pub use writer::{BagSummary, BagWriter};

/// metadata.yaml version the writer produces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetadataVersion {
    /// Version 5, which Humble's rosbag2 reads (QoS profiles as a YAML string with integer
    /// enums; no `custom_data`, `type_description_hash` or `ros_distro`).
    V5,
    /// Version 9, as Jazzy writes it (QoS profiles as a YAML list with string enums). Humble
    /// cannot read it. (default)
    #[default]
    V9,
}

impl MetadataVersion {
    /// The number written as `version:` in metadata.yaml.
    pub fn number(self) -> u32 {
        match self {
            MetadataVersion::V5 => 5,
            MetadataVersion::V9 => 9,
        }
    }
}

/// Compression of MCAP chunks (the MCAP `compression` field of each chunk; metadata.yaml keeps
/// `compression_mode: ""`, as rosbag2's mcap plugin does with its storage presets).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed chunks.
    None,
    /// Zstandard chunks. (default)
    #[default]
    Zstd,
    /// LZ4 frame chunks.
    Lz4,
}

/// Options of [`BagWriter::create`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// Chunk compression. (default: [`Compression::Zstd`])
    pub compression: Compression,
    /// Target uncompressed chunk size in bytes; a chunk is closed once it grows past this, so a
    /// killed recorder loses at most about one chunk. (default: `786432`, rosbag2's mcap default)
    pub chunk_size: u64,
    /// metadata.yaml version to write. (default: [`MetadataVersion::V9`])
    pub metadata_version: MetadataVersion,
    /// `ros_distro` written into version 9 metadata. (default: `"jazzy"`)
    pub ros_distro: String,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            compression: Compression::Zstd,
            chunk_size: 768 * 1024,
            metadata_version: MetadataVersion::V9,
            ros_distro: "jazzy".to_string(),
        }
    }
}

/// One topic of a bag: a `topic_metadata` entry of metadata.yaml, an MCAP channel or a row of
/// the sqlite3 `topics` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name, e.g. `/joint_states`.
    pub name: String,
    /// ROS type, e.g. `sensor_msgs/msg/JointState`.
    pub type_name: String,
    /// Serialization format of the payloads, `cdr` for every ROS 2 middleware.
    pub serialization_format: String,
    /// QoS profiles the publishers offered (one per publisher when recorded from a live graph).
    pub offered_qos: Vec<Qos>,
}

impl TopicInfo {
    /// A `cdr` topic offered with one QoS profile.
    pub fn cdr(name: impl Into<String>, type_name: impl Into<String>, qos: Qos) -> Self {
        TopicInfo {
            name: name.into(),
            type_name: type_name.into(),
            serialization_format: "cdr".to_string(),
            offered_qos: vec![qos],
        }
    }
}

/// Handle of a topic added with [`BagWriter::add_topic`] (index in the order of adding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TopicId(pub(crate) usize);

/// One message read from a bag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BagMessage {
    /// Topic name.
    pub topic: Arc<str>,
    /// ROS type of the topic, e.g. `sensor_msgs/msg/JointState`.
    pub type_name: Arc<str>,
    /// Receive time (ns since the Unix epoch, or since the start of simulation).
    pub log_time_ns: i64,
    /// The serialized message: CDR including the 4-byte encapsulation header.
    pub data: Vec<u8>,
}

/// Which topics [`BagReader::messages`] yields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TopicFilter {
    /// Every topic. (default)
    #[default]
    All,
    /// Only these topic names (each must be a topic of the bag).
    Only(Vec<String>),
}

impl TopicFilter {
    pub(crate) fn accepts(&self, topic: &str) -> bool {
        match self {
            TopicFilter::All => true,
            TopicFilter::Only(names) => names.iter().any(|n| n == topic),
        }
    }
}

/// Errors of reading and writing bags. Every variant that touches a file names it.
#[derive(Debug, thiserror::Error)]
pub enum BagError {
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// metadata.yaml (or a QoS string inside it) is not valid YAML or misses a field.
    #[error("{path}: bad YAML at '{field}': {reason}")]
    Yaml {
        /// metadata.yaml or the storage file whose QoS string failed.
        path: PathBuf,
        /// Dotted path of the field (empty at the top level).
        field: String,
        /// What went wrong.
        reason: String,
    },
    /// The mcap crate failed to read or write a file.
    #[error("{path}: MCAP: {source}")]
    Mcap {
        /// The .mcap file.
        path: PathBuf,
        /// The mcap crate's error.
        source: mcap::McapError,
    },
    /// SQLite failed on a .db3 file.
    #[error("{path}: sqlite3: {source}")]
    Sqlite {
        /// The .db3 file.
        path: PathBuf,
        /// rusqlite's error.
        source: rusqlite::Error,
    },
    /// metadata.yaml has a version outside 5..=9.
    #[error("{path}: metadata.yaml version {version} is not supported (5..=9 are)")]
    UnsupportedVersion {
        /// metadata.yaml.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// The storage plugin is neither `mcap` nor `sqlite3`.
    #[error("{path}: storage '{storage}' is not supported (mcap and sqlite3 are)")]
    UnsupportedStorage {
        /// The bag directory.
        path: PathBuf,
        /// `storage_identifier` from metadata.yaml.
        storage: String,
    },
    /// Compression the reader does not handle: file-level compression (`compression_mode: FILE`,
    /// each storage file zstd-compressed as a whole) or a format other than zstd.
    #[error(
        "{path}: compression_mode '{mode}' with format '{format}' is not supported \
         (MCAP chunk compression and per-message zstd are; decompress FILE-mode bags with \
         `ros2 bag convert` first)"
    )]
    UnsupportedCompression {
        /// The bag directory.
        path: PathBuf,
        /// `compression_mode` from metadata.yaml.
        mode: String,
        /// `compression_format` from metadata.yaml.
        format: String,
    },
    /// The type has no built-in message definition (see [`message_definition`]).
    #[error("no message definition for type '{type_name}'")]
    UnknownType {
        /// The ROS type asked for.
        type_name: String,
    },
    /// A topic filter names a topic the bag does not have.
    #[error("{path}: the bag has no topic '{topic}'")]
    UnknownTopic {
        /// The bag directory.
        path: PathBuf,
        /// The missing topic.
        topic: String,
    },
    /// [`BagWriter::add_topic`] was called twice with the same topic name.
    #[error("topic '{topic}' was already added")]
    DuplicateTopic {
        /// Topic name.
        topic: String,
    },
    /// A [`TopicId`] from another writer.
    #[error("topic id {id} was not returned by this writer's add_topic")]
    InvalidTopicId {
        /// The index inside the id.
        id: usize,
    },
    /// A log time before the epoch, which MCAP (unsigned nanoseconds) cannot store.
    #[error("log time {log_time_ns} ns is negative")]
    NegativeTime {
        /// The rejected time.
        log_time_ns: i64,
    },
    /// [`BagWriter::create`] was given a directory that already has files in it.
    #[error("{path}: bag directory exists and is not empty")]
    NotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// A storage file listed in metadata.yaml, or any storage file at all, is missing.
    #[error("{path}: storage file missing")]
    MissingFile {
        /// The expected file (or the bag directory when none was found).
        path: PathBuf,
    },
    /// A storage file is damaged in a way the reader cannot skip.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The storage file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl BagError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BagError {
        let path = path.into();
        move |source| BagError::Io { path, source }
    }

    pub(crate) fn mcap(path: impl Into<PathBuf>) -> impl FnOnce(mcap::McapError) -> BagError {
        let path = path.into();
        move |source| BagError::Mcap { path, source }
    }

    pub(crate) fn sqlite(path: impl Into<PathBuf>) -> impl FnOnce(rusqlite::Error) -> BagError {
        let path = path.into();
        move |source| BagError::Sqlite { path, source }
    }
}
