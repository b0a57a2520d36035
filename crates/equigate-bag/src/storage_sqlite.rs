//! Reading one .db3 storage file (rosbag2_storage_sqlite3): tables
//! `topics(id, name, type, serialization_format, offered_qos_profiles[, type_description_hash])`
//! and `messages(id, topic_id, timestamp, data)`.
//!
//! The file is opened read-only and `immutable` (no journal or WAL files are created, so bags in
//! read-only directories open). Messages stream from a thread that owns the connection, in
//! `ORDER BY timestamp, id`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};

use crate::metadata::{qos_profiles_from_str, Qos};
use crate::{BagError, BagMessage};

/// A row of the `topics` table.
#[derive(Clone, Debug)]
pub(crate) struct SqliteTopic {
    pub name: String,
    pub type_name: String,
    pub serialization_format: String,
    pub qos: Vec<Qos>,
}

/// Messages buffered between the reading thread and the iterator.
const QUEUE: usize = 1024;

pub(crate) fn open(path: &Path) -> Result<Connection, BagError> {
    // URI form for `immutable=1`; escape the characters a URI path gives meaning to.
    let mut uri = String::from("file:");
    for ch in path.to_string_lossy().chars() {
        match ch {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(&uri, flags).map_err(BagError::sqlite(path))
}

/// Topics by id, in id order.
pub(crate) fn topics(
    path: &Path,
    conn: &Connection,
) -> Result<BTreeMap<i64, SqliteTopic>, BagError> {
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('topics')")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(BagError::sqlite(path))?;
    let qos_column = if columns.iter().any(|c| c == "offered_qos_profiles") {
        "offered_qos_profiles"
    } else {
        "''"
    };
    let sql = format!("SELECT id, name, type, serialization_format, {qos_column} FROM topics");
    let rows: Vec<(i64, String, String, String, String)> = conn
        .prepare(&sql)
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                .collect()
        })
        .map_err(BagError::sqlite(path))?;
    rows.into_iter()
        .map(|(id, name, type_name, serialization_format, qos)| {
            let qos = qos_profiles_from_str(&qos).map_err(|reason| BagError::Yaml {
                path: path.to_path_buf(),
                field: format!("topics[{name}].offered_qos_profiles"),
                reason,
            })?;
            Ok((id, SqliteTopic { name, type_name, serialization_format, qos }))
        })
        .collect()
}

/// Messages per topic id.
type TopicCounts = BTreeMap<i64, u64>;

/// Messages per topic id, and the first and last timestamp (ns).
pub(crate) fn counts(
    path: &Path,
    conn: &Connection,
) -> Result<(TopicCounts, Option<(i64, i64)>), BagError> {
    let counts: BTreeMap<i64, u64> = conn
        .prepare("SELECT topic_id, COUNT(*) FROM messages GROUP BY topic_id")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?.collect()
        })
        .map_err(BagError::sqlite(path))?;
    let range: (Option<i64>, Option<i64>) = conn
        .query_row("SELECT MIN(timestamp), MAX(timestamp) FROM messages", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(BagError::sqlite(path))?;
    Ok((counts, range.0.zip(range.1)))
}

/// Streams the messages of topics `keep` accepts in timestamp order. `type_of` gives the type
/// to report per topic name.
pub(crate) fn messages(
    path: &Path,
    keep: &dyn Fn(&str) -> bool,
    type_of: &dyn Fn(&SqliteTopic) -> Arc<str>,
) -> Result<SqliteMessages, BagError> {
    let conn = open(path)?;
    let wanted: HashMap<i64, (Arc<str>, Arc<str>)> = topics(path, &conn)?
        .into_iter()
        .filter(|(_, t)| keep(&t.name))
        .map(|(id, t)| (id, (Arc::from(t.name.as_str()), type_of(&t))))
        .collect();
    let (tx, rx) = sync_channel(QUEUE);
    let thread_path = path.to_path_buf();
    std::thread::Builder::new()
        .name("equigate-bag-sqlite".into())
        .spawn(move || {
            let path = thread_path;
            let result = (|| -> Result<(), rusqlite::Error> {
                let mut stmt = conn.prepare(
                    "SELECT topic_id, timestamp, data FROM messages ORDER BY timestamp, id",
                )?;
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    let topic_id: i64 = row.get(0)?;
                    let Some((topic, type_name)) = wanted.get(&topic_id) else { continue };
                    let msg = BagMessage {
                        topic: topic.clone(),
                        type_name: type_name.clone(),
                        log_time_ns: row.get(1)?,
                        data: row.get(2)?,
                    };
                    if tx.send(Ok(msg)).is_err() {
                        return Ok(()); // the iterator was dropped
                    }
                }
                Ok(())
            })();
            if let Err(source) = result {
                let _ = tx.send(Err(BagError::Sqlite { path, source }));
            }
        })
        .map_err(BagError::io(path))?;
    Ok(SqliteMessages { rx })
}

/// Iterator over a .db3 file's messages (see [`messages`]).
pub(crate) struct SqliteMessages {
    rx: Receiver<Result<BagMessage, BagError>>,
}

impl Iterator for SqliteMessages {
    type Item = Result<BagMessage, BagError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}
