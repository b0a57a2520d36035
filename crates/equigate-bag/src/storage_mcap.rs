//! Reading one .mcap storage file: through its summary (chunk indexes, log-time order across
//! overlapping chunks) when it has one, else by walking its records from the start, which also
//! recovers the complete chunks of a file whose writer was killed.
//!
//! Source: MCAP specification <https://mcap.dev/spec> (record framing: opcode `u8`, length
//! `u64` little endian, body; a chunk holds schema, channel and message records).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mcap::records::Record;
use mcap::sans_io::indexed_reader::{IndexedReadEvent, IndexedReader, IndexedReaderOptions};
use mcap::sans_io::summary_reader::{SummaryReadEvent, SummaryReader};

use crate::metadata::{qos_profiles_from_str, Qos};
use crate::{BagError, BagMessage};

/// MCAP magic at both ends of a file.
const MAGIC: &[u8; 8] = b"\x89MCAP0\r\n";

/// A channel of one file with the ROS meaning of its fields.
#[derive(Clone, Debug)]
pub(crate) struct ChannelInfo {
    pub topic: Arc<str>,
    /// Schema name (`pkg/msg/Type`), empty without a schema.
    pub type_name: Arc<str>,
    pub message_encoding: String,
    pub qos: Vec<Qos>,
}

/// What opening a file found out.
#[derive(Debug)]
pub(crate) struct McapFile {
    pub path: PathBuf,
    /// Footer and end magic present.
    pub complete: bool,
    /// The summary has chunk indexes and statistics: read through [`IndexedReader`].
    summary: Option<mcap::Summary>,
    pub channels: BTreeMap<u16, ChannelInfo>,
    /// Messages per channel id.
    pub counts: BTreeMap<u16, u64>,
    /// First and last log time (ns), `None` without messages.
    pub time_range: Option<(u64, u64)>,
    /// Bytes after the last complete record (0 for a complete file).
    pub discarded_bytes: u64,
}

impl McapFile {
    /// Opens `path`: reads the summary if there is one, else walks the whole file.
    pub fn open(path: &Path) -> Result<Self, BagError> {
        let summary = read_summary(path);
        if let Some(summary) = summary {
            if let Some(stats) = &summary.stats {
                if !summary.chunk_indexes.is_empty() || stats.message_count == 0 {
                    let channels = summary
                        .channels
                        .iter()
                        .map(|(&id, c)| {
                            let type_name =
                                c.schema.as_ref().map(|s| s.name.as_str()).unwrap_or("");
                            Ok((
                                id,
                                channel_info(
                                    path,
                                    &c.topic,
                                    type_name,
                                    &c.message_encoding,
                                    &c.metadata,
                                )?,
                            ))
                        })
                        .collect::<Result<BTreeMap<_, _>, BagError>>()?;
                    let time_range = (stats.message_count > 0)
                        .then_some((stats.message_start_time, stats.message_end_time));
                    return Ok(McapFile {
                        path: path.to_path_buf(),
                        complete: true,
                        channels,
                        counts: stats.channel_message_counts.clone(),
                        time_range,
                        discarded_bytes: 0,
                        summary: Some(summary),
                    });
                }
            }
        }
        let buf = std::fs::read(path).map_err(BagError::io(path))?;
        let scan = LinearScan::run(path, &buf, |_| false)?;
        Ok(McapFile {
            path: path.to_path_buf(),
            complete: scan.complete,
            summary: None,
            channels: scan.channels,
            counts: scan.counts,
            time_range: scan.time_range,
            discarded_bytes: buf.len() as u64 - scan.good_end,
        })
    }

    /// Messages of the channels `keep` accepts, in log-time order (ties in file order).
    /// `type_of` maps a channel to the type to report (metadata.yaml's when there is one).
    pub fn messages(
        &self,
        keep: &dyn Fn(&ChannelInfo) -> bool,
        type_of: &dyn Fn(&ChannelInfo) -> Arc<str>,
    ) -> Result<Box<dyn Iterator<Item = Result<BagMessage, BagError>> + Send>, BagError> {
        let wanted: HashMap<u16, (Arc<str>, Arc<str>)> = self
            .channels
            .iter()
            .filter(|(_, c)| keep(c))
            .map(|(&id, c)| (id, (c.topic.clone(), type_of(c))))
            .collect();
        if wanted.is_empty() {
            return Ok(Box::new(std::iter::empty()));
        }
        match &self.summary {
            Some(summary) => {
                let options = if wanted.len() == self.channels.len() {
                    IndexedReaderOptions::new()
                } else {
                    IndexedReaderOptions::new()
                        .include_topics(wanted.values().map(|(t, _)| t.to_string()))
                };
                let reader = IndexedReader::new_with_options(summary, options)
                    .map_err(BagError::mcap(&self.path))?;
                let file = File::open(&self.path).map_err(BagError::io(&self.path))?;
                Ok(Box::new(IndexedMessages {
                    path: self.path.clone(),
                    file,
                    reader,
                    wanted,
                    buf: Vec::new(),
                    failed: false,
                }))
            }
            None => {
                let buf = std::fs::read(&self.path).map_err(BagError::io(&self.path))?;
                let scan = LinearScan::run(&self.path, &buf, |id| wanted.contains_key(&id))?;
                let mut messages = scan.messages;
                // Stable: equal log times keep their order in the file.
                messages.sort_by_key(|m| m.1);
                Ok(Box::new(messages.into_iter().map(move |(id, log_time, data)| {
                    let (topic, type_name) = wanted[&id].clone();
                    Ok(BagMessage { topic, type_name, log_time_ns: log_time as i64, data })
                })))
            }
        }
    }
}

fn channel_info(
    path: &Path,
    topic: &str,
    type_name: &str,
    message_encoding: &str,
    metadata: &BTreeMap<String, String>,
) -> Result<ChannelInfo, BagError> {
    let qos = match metadata.get("offered_qos_profiles") {
        Some(text) => qos_profiles_from_str(text).map_err(|reason| BagError::Yaml {
            path: path.to_path_buf(),
            field: format!("channel {topic}: offered_qos_profiles"),
            reason,
        })?,
        None => Vec::new(),
    };
    Ok(ChannelInfo {
        topic: topic.into(),
        type_name: type_name.into(),
        message_encoding: message_encoding.to_string(),
        qos,
    })
}

/// The summary section, or `None` when the file has none or cannot be read from its end (no
/// footer: a truncated file).
fn read_summary(path: &Path) -> Option<mcap::Summary> {
    let mut file = File::open(path).ok()?;
    let mut reader = SummaryReader::new();
    while let Some(event) = reader.next_event() {
        match event.ok()? {
            SummaryReadEvent::ReadRequest(n) => {
                let read = file.read(reader.insert(n)).ok()?;
                reader.notify_read(read);
            }
            SummaryReadEvent::SeekRequest(to) => {
                let pos = file.seek(to).ok()?;
                reader.notify_seeked(pos);
            }
        }
    }
    reader.finish()
}

/// Log-time ordered messages of a file with a summary.
struct IndexedMessages {
    path: PathBuf,
    file: File,
    reader: IndexedReader,
    wanted: HashMap<u16, (Arc<str>, Arc<str>)>,
    buf: Vec<u8>,
    failed: bool,
}

impl Iterator for IndexedMessages {
    type Item = Result<BagMessage, BagError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let event = match self.reader.next_event()? {
                Ok(event) => event,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(BagError::Mcap { path: self.path.clone(), source: e }));
                }
            };
            match event {
                IndexedReadEvent::ReadChunkRequest { offset, length } => {
                    self.buf.resize(length, 0);
                    let read = self
                        .file
                        .seek(SeekFrom::Start(offset))
                        .and_then(|_| self.file.read_exact(&mut self.buf));
                    if let Err(e) = read {
                        self.failed = true;
                        return Some(Err(BagError::Io { path: self.path.clone(), source: e }));
                    }
                    if let Err(e) = self.reader.insert_chunk_record_data(offset, &self.buf) {
                        self.failed = true;
                        return Some(Err(BagError::Mcap { path: self.path.clone(), source: e }));
                    }
                }
                IndexedReadEvent::Message { header, data } => {
                    if let Some((topic, type_name)) = self.wanted.get(&header.channel_id) {
                        return Some(Ok(BagMessage {
                            topic: topic.clone(),
                            type_name: type_name.clone(),
                            log_time_ns: header.log_time as i64,
                            data: data.to_vec(),
                        }));
                    }
                }
            }
        }
    }
}

/// The records of a file from the start, up to the end or the first incomplete record.
struct LinearScan {
    channels: BTreeMap<u16, ChannelInfo>,
    counts: BTreeMap<u16, u64>,
    time_range: Option<(u64, u64)>,
    /// (channel id, log time, data) of the channels asked for, in file order.
    messages: Vec<(u16, u64, Vec<u8>)>,
    complete: bool,
    /// Offset after the last complete record (the whole file when complete).
    good_end: u64,
}

impl LinearScan {
    /// Walks `buf` (the whole file). A record cut off by the end of the file, or a chunk that
    /// does not decompress or fails its CRC, ends the walk: everything from its start counts as
    /// discarded. Messages of channels `collect` accepts are kept.
    fn run(path: &Path, buf: &[u8], collect: impl Fn(u16) -> bool) -> Result<Self, BagError> {
        let mut scan = LinearScan {
            channels: BTreeMap::new(),
            counts: BTreeMap::new(),
            time_range: None,
            messages: Vec::new(),
            complete: false,
            good_end: 0,
        };
        if buf.len() < MAGIC.len() {
            if MAGIC.starts_with(buf) {
                return Ok(scan); // killed before the magic was flushed
            }
            return Err(BagError::Corrupt { path: path.into(), reason: "not an MCAP file".into() });
        }
        if &buf[..8] != MAGIC {
            return Err(BagError::Corrupt {
                path: path.into(),
                reason: "not an MCAP file (bad magic)".into(),
            });
        }
        let mut schemas: HashMap<u16, String> = HashMap::new();
        let mut pos = 8usize;
        scan.good_end = 8;
        while pos + 9 <= buf.len() {
            let op = buf[pos];
            let len = u64::from_le_bytes(buf[pos + 1..pos + 9].try_into().expect("8 bytes"));
            let Some(end) = (pos + 9).checked_add(len as usize).filter(|&e| e <= buf.len()) else {
                break;
            };
            let Ok(record) = mcap::parse_record(op, &buf[pos + 9..end]) else {
                break;
            };
            let mut batch = Vec::new();
            match record {
                Record::Chunk { header, data } => {
                    let Ok(reader) = mcap::read::ChunkReader::new(header, &data) else {
                        break;
                    };
                    let mut records = Vec::new();
                    let mut ok = true;
                    for r in reader {
                        match r {
                            Ok(r) => records.push(r),
                            Err(_) => {
                                ok = false;
                                break;
                            }
                        }
                    }
                    if !ok {
                        break;
                    }
                    for r in records {
                        scan.record(path, r, &mut schemas, &mut batch, &collect)?;
                    }
                }
                Record::Footer(_) => {
                    pos = end;
                    if buf.len() >= pos + 8 && &buf[pos..pos + 8] == MAGIC {
                        scan.complete = true;
                        pos += 8;
                    }
                    scan.good_end = pos as u64;
                    break;
                }
                other => scan.record(path, other, &mut schemas, &mut batch, &collect)?,
            }
            for (id, log_time, data) in batch {
                *scan.counts.entry(id).or_insert(0) += 1;
                scan.time_range = Some(match scan.time_range {
                    None => (log_time, log_time),
                    Some((lo, hi)) => (lo.min(log_time), hi.max(log_time)),
                });
                if let Some(data) = data {
                    scan.messages.push((id, log_time, data));
                }
            }
            pos = end;
            scan.good_end = pos as u64;
        }
        Ok(scan)
    }

    fn record(
        &mut self,
        path: &Path,
        record: Record<'_>,
        schemas: &mut HashMap<u16, String>,
        batch: &mut Vec<(u16, u64, Option<Vec<u8>>)>,
        collect: &impl Fn(u16) -> bool,
    ) -> Result<(), BagError> {
        match record {
            Record::Schema { header, .. } => {
                schemas.insert(header.id, header.name);
            }
            Record::Channel(c) => {
                if let std::collections::btree_map::Entry::Vacant(slot) = self.channels.entry(c.id)
                {
                    let type_name = schemas.get(&c.schema_id).map(String::as_str).unwrap_or("");
                    slot.insert(channel_info(
                        path,
                        &c.topic,
                        type_name,
                        &c.message_encoding,
                        &c.metadata,
                    )?);
                }
            }
            Record::Message { header, data } => {
                let id = header.channel_id;
                let data = collect(id).then(|| data.into_owned());
                batch.push((id, header.log_time, data));
            }
            _ => {}
        }
        Ok(())
    }
}
