//! Reading one .mcap storage file: through its summary (chunk indexes, log-time order across
//! overlapping chunks) when it has one, else by walking its records from the start, which also
//! recovers the complete chunks of a file whose writer was killed.
//!
//! Source: MCAP specification <https://mcap.dev/spec> (record framing: opcode `u8`, length
//! `u64` little endian, body; a chunk holds schema, channel and message records).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mcap::records::{ChunkIndex, Record};
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
    /// Chunk indexes and channels, from the file's summary or built by walking its complete
    /// chunks: messages stream through [`IndexedReader`]. `None` when messages stand outside
    /// chunks (then they are read whole and sorted).
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
                // Usable when it indexes the chunks and names the channels (writers may leave
                // either out of the summary); otherwise walk the file.
                let indexed = !summary.chunk_indexes.is_empty() && !summary.channels.is_empty();
                if indexed || stats.message_count == 0 {
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
        let scan = LinearScan::run(path, false)?;
        // Chunks only (every rosbag2 and mcap-crate writer): index the complete chunks found,
        // so that reading streams one chunk at a time as for a finished file.
        let summary = (!scan.has_unchunked).then(|| mcap::Summary {
            channels: scan.raw_channels.clone(),
            chunk_indexes: scan.chunk_indexes.clone(),
            ..mcap::Summary::default()
        });
        Ok(McapFile {
            path: path.to_path_buf(),
            complete: scan.complete,
            summary,
            channels: scan.channels,
            counts: scan.counts,
            time_range: scan.time_range,
            discarded_bytes: scan.file_len - scan.good_end,
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
                // Messages outside chunks: no index to stream by; read them all and sort.
                let scan = LinearScan::run(&self.path, true)?;
                let mut messages: Vec<_> =
                    scan.messages.into_iter().filter(|m| wanted.contains_key(&m.0)).collect();
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
    raw_channels: HashMap<u16, Arc<mcap::Channel<'static>>>,
    counts: BTreeMap<u16, u64>,
    time_range: Option<(u64, u64)>,
    /// An index entry per complete chunk that holds messages.
    chunk_indexes: Vec<ChunkIndex>,
    /// Some message record stands outside a chunk.
    has_unchunked: bool,
    /// (channel id, log time, data) of every message, in file order, when asked for.
    messages: Vec<(u16, u64, Vec<u8>)>,
    complete: bool,
    /// Offset after the last complete record (the whole file when complete).
    good_end: u64,
    file_len: u64,
}

impl LinearScan {
    /// Walks the file record by record, holding one record (at most one chunk) in memory. A
    /// record cut off by the end of the file, or a chunk that does not decompress or fails its
    /// CRC, ends the walk: everything from its start counts as discarded. With `keep_messages`
    /// the data of every message is kept.
    fn run(path: &Path, keep_messages: bool) -> Result<Self, BagError> {
        let file = File::open(path).map_err(BagError::io(path))?;
        let file_len = file.metadata().map_err(BagError::io(path))?.len();
        let mut input = BufReader::with_capacity(1 << 16, file);
        let mut scan = LinearScan {
            channels: BTreeMap::new(),
            raw_channels: HashMap::new(),
            counts: BTreeMap::new(),
            time_range: None,
            chunk_indexes: Vec::new(),
            has_unchunked: false,
            messages: Vec::new(),
            complete: false,
            good_end: 0,
            file_len,
        };
        let mut magic = Vec::with_capacity(8);
        (&mut input).take(8).read_to_end(&mut magic).map_err(BagError::io(path))?;
        if magic.len() < MAGIC.len() {
            if MAGIC.starts_with(&magic) {
                return Ok(scan); // killed before the magic reached the disk
            }
            return Err(BagError::Corrupt { path: path.into(), reason: "not an MCAP file".into() });
        }
        if magic != MAGIC {
            return Err(BagError::Corrupt {
                path: path.into(),
                reason: "not an MCAP file (bad magic)".into(),
            });
        }
        let mut schemas: HashMap<u16, Arc<mcap::Schema<'static>>> = HashMap::new();
        let mut pos = 8u64;
        scan.good_end = 8;
        let mut body = Vec::new();
        loop {
            let mut head = [0u8; 9];
            if pos + 9 > file_len || input.read_exact(&mut head).is_err() {
                break;
            }
            let op = head[0];
            let len = u64::from_le_bytes(head[1..].try_into().expect("8 bytes"));
            let Some(end) = (pos + 9).checked_add(len).filter(|&e| e <= file_len) else {
                break;
            };
            body.resize(len as usize, 0);
            if input.read_exact(&mut body).is_err() {
                break;
            }
            let Ok(record) = mcap::parse_record(op, &body) else {
                break;
            };
            let mut batch = Vec::new();
            match record {
                Record::Chunk { header, data } => {
                    let compression = header.compression.clone();
                    let (compressed_size, uncompressed_size) =
                        (header.compressed_size, header.uncompressed_size);
                    let Ok(reader) = mcap::read::ChunkReader::new(header, &data) else {
                        break;
                    };
                    let Ok(records) = reader.collect::<Result<Vec<_>, _>>() else {
                        break;
                    };
                    for r in records {
                        scan.record(path, r, &mut schemas, &mut batch, keep_messages)?;
                    }
                    let lo = batch.iter().map(|m| m.1).min();
                    let hi = batch.iter().map(|m| m.1).max();
                    if let (Some(lo), Some(hi)) = (lo, hi) {
                        scan.chunk_indexes.push(ChunkIndex {
                            message_start_time: lo,
                            message_end_time: hi,
                            chunk_start_offset: pos,
                            chunk_length: 9 + len,
                            message_index_offsets: BTreeMap::new(),
                            message_index_length: 0,
                            compression,
                            compressed_size,
                            uncompressed_size,
                        });
                    }
                }
                Record::Footer(_) => {
                    let mut end_magic = [0u8; 8];
                    pos = end;
                    if input.read_exact(&mut end_magic).is_ok() && &end_magic == MAGIC {
                        scan.complete = true;
                        pos += 8;
                    }
                    scan.good_end = pos;
                    break;
                }
                Record::Message { .. } => {
                    scan.has_unchunked = true;
                    scan.record(path, record, &mut schemas, &mut batch, keep_messages)?;
                }
                other => scan.record(path, other, &mut schemas, &mut batch, keep_messages)?,
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
            scan.good_end = pos;
        }
        Ok(scan)
    }

    fn record(
        &mut self,
        path: &Path,
        record: Record<'_>,
        schemas: &mut HashMap<u16, Arc<mcap::Schema<'static>>>,
        batch: &mut Vec<(u16, u64, Option<Vec<u8>>)>,
        keep_messages: bool,
    ) -> Result<(), BagError> {
        match record {
            Record::Schema { header, data } => {
                let schema = mcap::Schema {
                    id: header.id,
                    name: header.name,
                    encoding: header.encoding,
                    data: Cow::Owned(data.into_owned()),
                };
                schemas.insert(schema.id, Arc::new(schema));
            }
            Record::Channel(c) => {
                if let std::collections::btree_map::Entry::Vacant(slot) = self.channels.entry(c.id)
                {
                    let schema = schemas.get(&c.schema_id).cloned();
                    let type_name = schema.as_ref().map(|s| s.name.as_str()).unwrap_or("");
                    slot.insert(channel_info(
                        path,
                        &c.topic,
                        type_name,
                        &c.message_encoding,
                        &c.metadata,
                    )?);
                    let channel = mcap::Channel {
                        id: c.id,
                        topic: c.topic,
                        schema,
                        message_encoding: c.message_encoding,
                        metadata: c.metadata,
                    };
                    self.raw_channels.insert(channel.id, Arc::new(channel));
                }
            }
            Record::Message { header, data } => {
                let data = keep_messages.then(|| data.into_owned());
                batch.push((header.channel_id, header.log_time, data));
            }
            _ => {}
        }
        Ok(())
    }
}
