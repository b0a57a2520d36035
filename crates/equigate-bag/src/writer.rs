//! MCAP bag writer in the rosbag2 layout (`<dir>/metadata.yaml`, `<dir>/<name>_0.mcap`).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use mcap::records::{MessageHeader, Metadata};

use crate::metadata::{
    qos_profiles_to_string, BagMetadata, FileInformation, Nanoseconds, StartingTime, TopicMetadata,
    TopicWithMessageCount,
};
use crate::{
    message_definition, type_description_hash, BagError, Compression, TopicId, TopicInfo,
    WriterOptions,
};

/// `library` of the MCAP header.
const LIBRARY: &str = concat!("equigate-bag ", env!("CARGO_PKG_VERSION"));

/// Writes one MCAP bag. Messages go into chunks of about [`WriterOptions::chunk_size`] bytes;
/// [`BagWriter::finish`] writes the summary, the footer and then metadata.yaml.
///
/// Dropping the writer without `finish` still closes the MCAP file (the mcap crate writes its
/// summary on drop) but writes no metadata.yaml; a killed process leaves the complete chunks
/// and no summary. [`crate::BagReader`] reads both.
pub struct BagWriter {
    dir: PathBuf,
    file_name: String,
    mcap_path: PathBuf,
    mcap: mcap::Writer<BufWriter<File>>,
    options: WriterOptions,
    topics: Vec<WriterTopic>,
    schemas: HashMap<String, u16>,
    bounds: Option<(i64, i64)>,
}

struct WriterTopic {
    info: TopicInfo,
    channel_id: u16,
    count: u64,
}

/// What [`BagWriter::finish`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BagSummary {
    /// The bag directory.
    pub dir: PathBuf,
    /// The storage file.
    pub mcap_path: PathBuf,
    /// Size of the storage file (bytes).
    pub file_bytes: u64,
    /// The metadata written to metadata.yaml (message counts per topic, time range).
    pub metadata: BagMetadata,
}

impl BagWriter {
    /// Creates the bag directory `dir` (which must not exist or be empty) and its storage file
    /// `<dir>/<name>_0.mcap`, `<name>` being the directory's name, as rosbag2 names them.
    ///
    /// # Errors
    /// [`BagError::NotEmpty`] if `dir` has files; [`BagError::Io`] if it cannot be created;
    /// [`BagError::Mcap`] if the MCAP header cannot be written.
    pub fn create(dir: &Path, options: WriterOptions) -> Result<Self, BagError> {
        if dir.exists() {
            let mut entries = fs::read_dir(dir).map_err(BagError::io(dir))?;
            if entries.next().is_some() {
                return Err(BagError::NotEmpty { path: dir.to_path_buf() });
            }
        } else {
            fs::create_dir_all(dir).map_err(BagError::io(dir))?;
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "bag".to_string());
        let file_name = format!("{name}_0.mcap");
        let mcap_path = dir.join(&file_name);
        let file = File::create_new(&mcap_path).map_err(BagError::io(&mcap_path))?;
        let compression = match options.compression {
            Compression::None => None,
            Compression::Zstd => Some(mcap::Compression::Zstd),
            Compression::Lz4 => Some(mcap::Compression::Lz4),
        };
        let mcap = mcap::WriteOptions::new()
            .profile("ros2")
            .library(LIBRARY)
            .compression(compression)
            .chunk_size(Some(options.chunk_size))
            .create(BufWriter::new(file))
            .map_err(BagError::mcap(&mcap_path))?;
        Ok(BagWriter {
            dir: dir.to_path_buf(),
            file_name,
            mcap_path,
            mcap,
            options,
            topics: Vec::new(),
            schemas: HashMap::new(),
            bounds: None,
        })
    }

    /// Adds a topic: an MCAP schema `pkg/msg/Type` (encoding `ros2msg`, text from
    /// [`message_definition`]) once per type, and a channel with message encoding
    /// `serialization_format` and metadata `offered_qos_profiles` (YAML string, enums in the
    /// form of the chosen metadata version).
    ///
    /// # Errors
    /// [`BagError::UnknownType`] for a type without a built-in definition;
    /// [`BagError::DuplicateTopic`] for a topic name added before.
    pub fn add_topic(&mut self, topic: TopicInfo) -> Result<TopicId, BagError> {
        if self.topics.iter().any(|t| t.info.name == topic.name) {
            return Err(BagError::DuplicateTopic { topic: topic.name });
        }
        let definition = message_definition(&topic.type_name)
            .ok_or_else(|| BagError::UnknownType { type_name: topic.type_name.clone() })?;
        let schema_id = match self.schemas.get(&topic.type_name) {
            Some(&id) => id,
            None => {
                let id = self
                    .mcap
                    .add_schema(&topic.type_name, "ros2msg", definition.as_bytes())
                    .map_err(BagError::mcap(&self.mcap_path))?;
                self.schemas.insert(topic.type_name.clone(), id);
                id
            }
        };
        let version = self.options.metadata_version.number();
        let qos =
            qos_profiles_to_string(&topic.offered_qos, version).map_err(|e| BagError::Yaml {
                path: self.mcap_path.clone(),
                field: "offered_qos_profiles".into(),
                reason: e.to_string(),
            })?;
        let mut metadata = BTreeMap::new();
        metadata.insert("offered_qos_profiles".to_string(), qos);
        if version >= 9 {
            // Jazzy's mcap plugin stores the RIHS01 type hash here; empty, as rosbag2 leaves it,
            // for a type without a built-in description.
            let hash = type_description_hash(&topic.type_name).unwrap_or_default();
            metadata.insert("topic_type_hash".to_string(), hash);
        }
        let channel_id = self
            .mcap
            .add_channel(schema_id, &topic.name, &topic.serialization_format, &metadata)
            .map_err(BagError::mcap(&self.mcap_path))?;
        self.topics.push(WriterTopic { info: topic, channel_id, count: 0 });
        Ok(TopicId(self.topics.len() - 1))
    }

    /// Writes one message. `log_time_ns` is the receive time (ns, also written as publish time);
    /// `cdr` is the serialized message including its 4-byte encapsulation header. Times need
    /// not increase; readers sort by log time.
    ///
    /// # Errors
    /// [`BagError::InvalidTopicId`], [`BagError::NegativeTime`], or [`BagError::Mcap`] when the
    /// file cannot be written.
    pub fn write(&mut self, topic: TopicId, log_time_ns: i64, cdr: &[u8]) -> Result<(), BagError> {
        let t = self.topics.get_mut(topic.0).ok_or(BagError::InvalidTopicId { id: topic.0 })?;
        if log_time_ns < 0 {
            return Err(BagError::NegativeTime { log_time_ns });
        }
        t.count += 1;
        let header = MessageHeader {
            channel_id: t.channel_id,
            sequence: t.count as u32,
            log_time: log_time_ns as u64,
            publish_time: log_time_ns as u64,
        };
        self.mcap.write_to_known_channel(&header, cdr).map_err(BagError::mcap(&self.mcap_path))?;
        self.bounds = Some(match self.bounds {
            None => (log_time_ns, log_time_ns),
            Some((lo, hi)) => (lo.min(log_time_ns), hi.max(log_time_ns)),
        });
        Ok(())
    }

    /// Finishes the bag: the `rosbag2` metadata record, the MCAP summary and footer, an fsync,
    /// and then metadata.yaml (written to a temporary file and renamed, so a reader never sees
    /// half of it).
    ///
    /// # Errors
    /// [`BagError::Mcap`] or [`BagError::Io`] when a file cannot be written.
    pub fn finish(mut self) -> Result<BagSummary, BagError> {
        let metadata = self.metadata();
        let yaml_err = |path: &Path, e: equigate_ros::yaml::Error| BagError::Yaml {
            path: path.to_path_buf(),
            field: String::new(),
            reason: e.to_string(),
        };
        let serialized =
            metadata.to_serialized_metadata().map_err(|e| yaml_err(&self.mcap_path, e))?;
        let record = Metadata {
            name: "rosbag2".to_string(),
            metadata: BTreeMap::from([("serialized_metadata".to_string(), serialized)]),
        };
        self.mcap.write_metadata(&record).map_err(BagError::mcap(&self.mcap_path))?;
        self.mcap.finish().map_err(BagError::mcap(&self.mcap_path))?;
        let file = self
            .mcap
            .into_inner()
            .into_inner()
            .map_err(|e| BagError::Io { path: self.mcap_path.clone(), source: e.into_error() })?;
        file.sync_all().map_err(BagError::io(&self.mcap_path))?;
        let file_bytes = file.metadata().map_err(BagError::io(&self.mcap_path))?.len();
        drop(file);

        let yaml_path = self.dir.join("metadata.yaml");
        let text = metadata.to_yaml().map_err(|e| yaml_err(&yaml_path, e))?;
        let tmp = self.dir.join("metadata.yaml.tmp");
        {
            let mut f = File::create(&tmp).map_err(BagError::io(&tmp))?;
            f.write_all(text.as_bytes()).map_err(BagError::io(&tmp))?;
            f.sync_all().map_err(BagError::io(&tmp))?;
        }
        fs::rename(&tmp, &yaml_path).map_err(BagError::io(&yaml_path))?;
        // Make the rename itself durable (best effort: not every platform can open a directory).
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(BagSummary { dir: self.dir, mcap_path: self.mcap_path, file_bytes, metadata })
    }

    fn metadata(&self) -> BagMetadata {
        let (start, duration) = match self.bounds {
            Some((lo, hi)) => (lo, (hi - lo) as u64),
            None => (i64::MAX, 0),
        };
        let count: u64 = self.topics.iter().map(|t| t.count).sum();
        BagMetadata {
            version: self.options.metadata_version.number(),
            storage_identifier: "mcap".to_string(),
            duration: Nanoseconds { nanoseconds: duration },
            starting_time: StartingTime { nanoseconds_since_epoch: start },
            message_count: count,
            topics_with_message_count: self
                .topics
                .iter()
                .map(|t| TopicWithMessageCount {
                    topic_metadata: TopicMetadata {
                        name: t.info.name.clone(),
                        type_name: t.info.type_name.clone(),
                        serialization_format: t.info.serialization_format.clone(),
                        offered_qos_profiles: t.info.offered_qos.clone(),
                        type_description_hash: type_description_hash(&t.info.type_name)
                            .unwrap_or_default(),
                    },
                    message_count: t.count,
                })
                .collect(),
            compression_format: String::new(),
            compression_mode: String::new(),
            relative_file_paths: vec![self.file_name.clone()],
            files: vec![FileInformation {
                path: self.file_name.clone(),
                starting_time: StartingTime { nanoseconds_since_epoch: start },
                duration: Nanoseconds { nanoseconds: duration },
                message_count: count,
            }],
            custom_data: None,
            ros_distro: self.options.ros_distro.clone(),
        }
    }
}
