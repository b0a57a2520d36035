//! Bag reader: metadata.yaml versions 5..=9, storage mcap or sqlite3, split files merged in
//! log-time order, and recovery of bags whose recorder never finished.

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::metadata::{
    BagMetadata, FileInformation, Nanoseconds, StartingTime, TopicMetadata, TopicWithMessageCount,
    MAX_VERSION, MIN_VERSION,
};
use crate::storage_mcap::McapFile;
use crate::{storage_sqlite, BagError, BagMessage, TopicFilter, TopicInfo};

/// Reads a rosbag2 bag directory.
pub struct BagReader {
    dir: PathBuf,
    metadata: BagMetadata,
    topics: Vec<TopicInfo>,
    storage: Storage,
    /// Each message zstd-compressed on its own (`compression_mode: MESSAGE`).
    message_compression: bool,
    recovery: Option<Recovery>,
}

enum Storage {
    Mcap(Vec<McapFile>),
    Sqlite(Vec<PathBuf>),
}

/// How a bag that was not finalised was read (see [`BagReader::recovery`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// metadata.yaml was absent; topics and counts were rebuilt from the storage files.
    pub metadata_missing: bool,
    /// Every storage file, complete or not.
    pub files: Vec<RecoveredFile>,
    /// Messages readable in all files.
    pub recovered_messages: u64,
    /// Bytes after the last complete record, over all files (a chunk cut off by the kill).
    pub discarded_bytes: u64,
}

/// One storage file of a recovered bag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredFile {
    /// The file.
    pub path: PathBuf,
    /// Whether it ends with a footer (MCAP), or is a .db3 file (sqlite3 is transactional).
    pub complete: bool,
    /// Messages readable in it.
    pub recovered_messages: u64,
    /// Bytes after its last complete record.
    pub discarded_bytes: u64,
}

impl BagReader {
    /// Opens the bag directory `dir`.
    ///
    /// With metadata.yaml: its version must be 5..=9, its storage `mcap` or `sqlite3`, and its
    /// `relative_file_paths` must exist (their file names are looked up in `dir`). Without it
    /// (a recorder killed before it wrote it): the `*.mcap` files, else the `*.db3` files, of
    /// `dir` in split order are read, topics come from their channels or `topics` tables, and
    /// [`BagReader::recovery`] says what was found. MCAP files without a footer (cut off) are
    /// walked from the start; every complete chunk is read.
    ///
    /// # Errors
    /// [`BagError::Io`], [`BagError::Yaml`], [`BagError::UnsupportedVersion`],
    /// [`BagError::UnsupportedStorage`], [`BagError::UnsupportedCompression`] (`FILE` mode),
    /// [`BagError::MissingFile`], [`BagError::Mcap`], [`BagError::Sqlite`], [`BagError::Corrupt`].
    pub fn open(dir: &Path) -> Result<Self, BagError> {
        let yaml_path = dir.join("metadata.yaml");
        if yaml_path.exists() {
            Self::open_with_metadata(dir, &yaml_path)
        } else {
            Self::open_without_metadata(dir)
        }
    }

    fn open_with_metadata(dir: &Path, yaml_path: &Path) -> Result<Self, BagError> {
        let text = std::fs::read_to_string(yaml_path).map_err(BagError::io(yaml_path))?;
        let metadata = BagMetadata::from_yaml(&text).map_err(|(field, reason)| BagError::Yaml {
            path: yaml_path.to_path_buf(),
            field,
            reason,
        })?;
        if !(MIN_VERSION..=MAX_VERSION).contains(&metadata.version) {
            return Err(BagError::UnsupportedVersion {
                path: yaml_path.to_path_buf(),
                version: metadata.version,
            });
        }
        let mode = metadata.compression_mode.to_ascii_uppercase();
        let message_compression = match mode.as_str() {
            "" | "NONE" => false,
            "MESSAGE" if metadata.compression_format == "zstd" => true,
            _ => {
                return Err(BagError::UnsupportedCompression {
                    path: dir.to_path_buf(),
                    mode: metadata.compression_mode.clone(),
                    format: metadata.compression_format.clone(),
                })
            }
        };
        let files: Vec<PathBuf> = metadata
            .relative_file_paths
            .iter()
            .map(|p| {
                // Old bags list paths with the bag directory in front; the name is what counts.
                let name = Path::new(p).file_name().map(PathBuf::from).unwrap_or_else(|| p.into());
                dir.join(name)
            })
            .collect();
        if let Some(missing) = files.iter().find(|f| !f.exists()) {
            return Err(BagError::MissingFile { path: missing.clone() });
        }
        let topics = metadata
            .topics_with_message_count
            .iter()
            .map(|t| TopicInfo {
                name: t.topic_metadata.name.clone(),
                type_name: t.topic_metadata.type_name.clone(),
                serialization_format: t.topic_metadata.serialization_format.clone(),
                offered_qos: t.topic_metadata.offered_qos_profiles.clone(),
            })
            .collect();
        let (storage, recovery) = match metadata.storage_identifier.as_str() {
            "mcap" => {
                let opened =
                    files.iter().map(|f| McapFile::open(f)).collect::<Result<Vec<_>, _>>()?;
                let recovery =
                    opened.iter().any(|f| !f.complete).then(|| mcap_recovery(&opened, false));
                (Storage::Mcap(opened), recovery)
            }
            "sqlite3" => (Storage::Sqlite(files), None),
            other => {
                return Err(BagError::UnsupportedStorage {
                    path: dir.to_path_buf(),
                    storage: other.to_string(),
                })
            }
        };
        Ok(BagReader {
            dir: dir.to_path_buf(),
            metadata,
            topics,
            storage,
            message_compression,
            recovery,
        })
    }

    fn open_without_metadata(dir: &Path) -> Result<Self, BagError> {
        let mcaps = storage_files(dir, "mcap")?;
        if !mcaps.is_empty() {
            let opened = mcaps.iter().map(|f| McapFile::open(f)).collect::<Result<Vec<_>, _>>()?;
            // Topics in order of first appearance (file, then channel id).
            let mut topics: Vec<TopicInfo> = Vec::new();
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            let mut file_infos = Vec::new();
            for f in &opened {
                for (id, c) in &f.channels {
                    if !topics.iter().any(|t| t.name == *c.topic) {
                        topics.push(TopicInfo {
                            name: c.topic.to_string(),
                            type_name: c.type_name.to_string(),
                            serialization_format: c.message_encoding.clone(),
                            offered_qos: c.qos.clone(),
                        });
                    }
                    *counts.entry(c.topic.to_string()).or_insert(0) +=
                        f.counts.get(id).copied().unwrap_or(0);
                }
                let n = f.channels.keys().map(|id| f.counts.get(id).copied().unwrap_or(0)).sum();
                file_infos.push((
                    f.path.clone(),
                    n,
                    f.time_range.map(|(a, b)| (a as i64, b as i64)),
                ));
            }
            let metadata = synthesize_metadata("mcap", &topics, &counts, &file_infos);
            let recovery = Some(mcap_recovery(&opened, true));
            return Ok(BagReader {
                dir: dir.to_path_buf(),
                metadata,
                topics,
                storage: Storage::Mcap(opened),
                message_compression: false,
                recovery,
            });
        }
        let dbs = storage_files(dir, "db3")?;
        if dbs.is_empty() {
            return Err(BagError::MissingFile { path: dir.to_path_buf() });
        }
        let mut topics: Vec<TopicInfo> = Vec::new();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut file_infos = Vec::new();
        let mut files = Vec::new();
        for path in &dbs {
            let conn = storage_sqlite::open(path)?;
            let table = storage_sqlite::topics(path, &conn)?;
            let (per_topic, range) = storage_sqlite::counts(path, &conn)?;
            for (id, t) in &table {
                if !topics.iter().any(|x| x.name == t.name) {
                    topics.push(TopicInfo {
                        name: t.name.clone(),
                        type_name: t.type_name.clone(),
                        serialization_format: t.serialization_format.clone(),
                        offered_qos: t.qos.clone(),
                    });
                }
                *counts.entry(t.name.clone()).or_insert(0) +=
                    per_topic.get(id).copied().unwrap_or(0);
            }
            let n: u64 = per_topic.values().sum();
            file_infos.push((path.clone(), n, range));
            files.push(RecoveredFile {
                path: path.clone(),
                complete: true,
                recovered_messages: n,
                discarded_bytes: 0,
            });
        }
        let metadata = synthesize_metadata("sqlite3", &topics, &counts, &file_infos);
        let recovery = Some(Recovery {
            metadata_missing: true,
            recovered_messages: files.iter().map(|f| f.recovered_messages).sum(),
            discarded_bytes: 0,
            files,
        });
        Ok(BagReader {
            dir: dir.to_path_buf(),
            metadata,
            topics,
            storage: Storage::Sqlite(dbs),
            message_compression: false,
            recovery,
        })
    }

    /// The bag's metadata: metadata.yaml as read, or rebuilt from the storage files when it is
    /// missing (then version 9, counts and times of the recovered messages, empty `ros_distro`).
    pub fn metadata(&self) -> &BagMetadata {
        &self.metadata
    }

    /// Every topic of the bag, with or without messages, in metadata.yaml order.
    pub fn topics(&self) -> &[TopicInfo] {
        &self.topics
    }

    /// The bag directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `Some` when the bag was not finalised: metadata.yaml missing and/or an MCAP file without
    /// footer (recorder killed). Says how many messages were recovered and how many trailing
    /// bytes (an incomplete chunk) were discarded.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// The messages of the topics `filter` selects, merged over all storage files in log-time
    /// order (equal times: file order). Each file streams: a finalised MCAP file one chunk at a
    /// time, a .db3 file row by row; a recovered MCAP file is read whole into memory.
    ///
    /// # Errors
    /// [`BagError::UnknownTopic`] if the filter names a topic the bag lacks; then per message
    /// I/O and decoding errors. After an error the iterator may end early.
    pub fn messages(&self, filter: &TopicFilter) -> Result<Messages, BagError> {
        if let TopicFilter::Only(names) = filter {
            if let Some(missing) = names.iter().find(|n| !self.topics.iter().any(|t| &t.name == *n))
            {
                return Err(BagError::UnknownTopic {
                    path: self.dir.clone(),
                    topic: missing.clone(),
                });
            }
        }
        let types: BTreeMap<&str, Arc<str>> = self
            .topics
            .iter()
            .map(|t| (t.name.as_str(), Arc::from(t.type_name.as_str())))
            .collect();
        let mut sources: Vec<Source> = Vec::new();
        match &self.storage {
            Storage::Mcap(files) => {
                for f in files {
                    let iter = f.messages(&|c| filter.accepts(&c.topic), &|c| {
                        types.get(&*c.topic).cloned().unwrap_or_else(|| c.type_name.clone())
                    })?;
                    sources.push(iter);
                }
            }
            Storage::Sqlite(files) => {
                for path in files {
                    let iter =
                        storage_sqlite::messages(path, &|name| filter.accepts(name), &|t| {
                            types
                                .get(t.name.as_str())
                                .cloned()
                                .unwrap_or_else(|| Arc::from(t.type_name.as_str()))
                        })?;
                    sources.push(Box::new(iter));
                }
            }
        }
        if self.message_compression {
            sources = sources
                .into_iter()
                .map(|s| {
                    let dir = self.dir.clone();
                    Box::new(s.map(move |m| decompress_message(&dir, m))) as Source
                })
                .collect();
        }
        Ok(Messages { sources: sources.into_iter().map(Iterator::peekable).collect() })
    }
}

type Source = Box<dyn Iterator<Item = Result<BagMessage, BagError>> + Send>;

/// Undoes `compression_mode: MESSAGE` (each payload a zstd frame).
fn decompress_message(
    dir: &Path,
    msg: Result<BagMessage, BagError>,
) -> Result<BagMessage, BagError> {
    let mut msg = msg?;
    msg.data = zstd::decode_all(msg.data.as_slice()).map_err(|e| BagError::Corrupt {
        path: dir.to_path_buf(),
        reason: format!("zstd message on {} at {} ns: {e}", msg.topic, msg.log_time_ns),
    })?;
    Ok(msg)
}

/// Log-time ordered messages of a bag (see [`BagReader::messages`]).
pub struct Messages {
    sources: Vec<Peekable<Source>>,
}

impl Iterator for Messages {
    type Item = Result<BagMessage, BagError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.sources.len() == 1 {
            return self.sources[0].next();
        }
        // Few files: a linear scan for the earliest head beats a heap. Errors come out first.
        let mut best: Option<(usize, i64)> = None;
        for (i, s) in self.sources.iter_mut().enumerate() {
            match s.peek() {
                None => {}
                Some(Err(_)) => return s.next(),
                Some(Ok(m)) if best.is_none_or(|(_, t)| m.log_time_ns < t) => {
                    best = Some((i, m.log_time_ns));
                }
                Some(Ok(_)) => {}
            }
        }
        best.and_then(|(i, _)| self.sources[i].next())
    }
}

/// Storage files `*.<ext>` of `dir` in split order (the number after the last `_`, then name).
fn storage_files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, BagError> {
    let mut files: Vec<(u64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(BagError::io(dir))? {
        let path = entry.map_err(BagError::io(dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(ext) || !path.is_file() {
            continue;
        }
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let index = stem.rsplit('_').next().and_then(|n| n.parse().ok()).unwrap_or(u64::MAX);
        files.push((index, path));
    }
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

fn mcap_recovery(files: &[McapFile], metadata_missing: bool) -> Recovery {
    let files: Vec<RecoveredFile> = files
        .iter()
        .map(|f| RecoveredFile {
            path: f.path.clone(),
            complete: f.complete,
            recovered_messages: f
                .channels
                .keys()
                .map(|id| f.counts.get(id).copied().unwrap_or(0))
                .sum(),
            discarded_bytes: f.discarded_bytes,
        })
        .collect();
    Recovery {
        metadata_missing,
        recovered_messages: files.iter().map(|f| f.recovered_messages).sum(),
        discarded_bytes: files.iter().map(|f| f.discarded_bytes).sum(),
        files,
    }
}

/// A storage file's path, message count and first and last log time (ns).
type FileSpan = (PathBuf, u64, Option<(i64, i64)>);

/// Metadata for a bag without metadata.yaml.
fn synthesize_metadata(
    storage: &str,
    topics: &[TopicInfo],
    counts: &BTreeMap<String, u64>,
    files: &[FileSpan],
) -> BagMetadata {
    let span = |range: Option<(i64, i64)>| match range {
        Some((lo, hi)) => (lo, (hi - lo) as u64),
        None => (i64::MAX, 0),
    };
    let lo = files.iter().filter_map(|f| f.2).map(|r| r.0).min();
    let hi = files.iter().filter_map(|f| f.2).map(|r| r.1).max();
    let (start, duration) = span(lo.zip(hi));
    let name =
        |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    BagMetadata {
        version: MAX_VERSION,
        storage_identifier: storage.to_string(),
        duration: Nanoseconds { nanoseconds: duration },
        starting_time: StartingTime { nanoseconds_since_epoch: start },
        message_count: files.iter().map(|f| f.1).sum(),
        topics_with_message_count: topics
            .iter()
            .map(|t| TopicWithMessageCount {
                topic_metadata: TopicMetadata {
                    name: t.name.clone(),
                    type_name: t.type_name.clone(),
                    serialization_format: t.serialization_format.clone(),
                    offered_qos_profiles: t.offered_qos.clone(),
                    type_description_hash: String::new(),
                },
                message_count: counts.get(&t.name).copied().unwrap_or(0),
            })
            .collect(),
        compression_format: String::new(),
        compression_mode: String::new(),
        relative_file_paths: files.iter().map(|f| name(&f.0)).collect(),
        files: files
            .iter()
            .map(|f| {
                let (start, duration) = span(f.2);
                FileInformation {
                    path: name(&f.0),
                    starting_time: StartingTime { nanoseconds_since_epoch: start },
                    duration: Nanoseconds { nanoseconds: duration },
                    message_count: f.1,
                }
            })
            .collect(),
        custom_data: None,
        ros_distro: String::new(),
    }
}
