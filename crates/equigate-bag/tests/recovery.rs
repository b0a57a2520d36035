//! Bags that were never finalised: no metadata.yaml, and/or an MCAP file cut off mid-chunk (a
//! recorder killed with SIGKILL). The reader recovers exactly the complete chunks and reports
//! the discarded bytes.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{counts, fixtures_dir, read_all};
use equigate_bag::{BagReader, BagWriter, Compression, Qos, TopicInfo, WriterOptions};
use equigate_ros::msg::{to_cdr, Header, JointState, Time};

fn state_cdr(i: usize) -> Vec<u8> {
    to_cdr(&JointState {
        header: Header::new(Time::from_nanos(i as i64 * 1_000_000), "base_link"),
        name: vec!["a".into(), "b".into(), "c".into()],
        position: vec![i as f64; 3],
        velocity: vec![-(i as f64); 3],
        effort: vec![0.5; 3],
    })
    .unwrap()
}

fn open_writer(
    dir: &Path,
    compression: Compression,
    chunk_size: u64,
) -> (BagWriter, equigate_bag::TopicId) {
    let options = WriterOptions { compression, chunk_size, ..WriterOptions::default() };
    let mut writer = BagWriter::create(dir, options).unwrap();
    let id = writer
        .add_topic(TopicInfo::cdr("/joint_states", "sensor_msgs/msg/JointState", Qos::reliable(10)))
        .unwrap();
    (writer, id)
}

#[test]
fn truncated_mid_chunk_recovers_exactly_the_complete_chunks() {
    for compression in [Compression::Zstd, Compression::None, Compression::Lz4] {
        let tmp = tempfile::tempdir().unwrap();
        let full = tmp.path().join("full");
        let (mut writer, id) = open_writer(&full, compression, 2048);
        let n = 600;
        for i in 0..n {
            writer.write(id, i as i64 * 1_000_000, &state_cdr(i)).unwrap();
        }
        writer.finish().unwrap();
        let bytes = std::fs::read(full.join("full_0.mcap")).unwrap();
        let summary = mcap::Summary::read(&bytes).unwrap().unwrap();
        let mut chunks = summary.chunk_indexes.clone();
        chunks.sort_by_key(|c| c.chunk_start_offset);
        assert!(chunks.len() > 4, "{compression:?}: want several chunks, got {}", chunks.len());

        // Cut in the middle of chunk k: chunks 0..k survive (with their message indexes).
        let k = chunks.len() / 2;
        let cut = chunks[k].chunk_start_offset + chunks[k].chunk_length / 2;
        let survivors =
            (0..n).filter(|&i| (i as u64 * 1_000_000) <= chunks[k - 1].message_end_time).count();
        assert!(survivors > 0 && (survivors as u64 * 1_000_000) <= chunks[k].message_start_time);

        let cut_dir = tmp.path().join("cut");
        std::fs::create_dir(&cut_dir).unwrap();
        std::fs::write(cut_dir.join("full_0.mcap"), &bytes[..cut as usize]).unwrap();
        let reader = BagReader::open(&cut_dir).unwrap();
        let recovery = reader.recovery().expect("an unfinished bag reports a recovery").clone();
        assert!(recovery.metadata_missing);
        assert!(!recovery.files[0].complete);
        assert_eq!(recovery.recovered_messages, survivors as u64, "{compression:?}");
        assert_eq!(recovery.discarded_bytes, cut - chunks[k].chunk_start_offset, "{compression:?}");
        let messages = read_all(&reader);
        assert_eq!(messages.len(), survivors);
        for (i, m) in messages.iter().enumerate() {
            assert_eq!(m.log_time_ns, i as i64 * 1_000_000);
            assert_eq!(m.data, state_cdr(i), "{compression:?} message {i}");
            assert_eq!(&*m.type_name, "sensor_msgs/msg/JointState");
        }
        // Topics rebuilt from the channel and schema records.
        assert_eq!(reader.topics().len(), 1);
        assert_eq!(reader.topics()[0].offered_qos, vec![Qos::reliable(10)]);
        assert_eq!(reader.metadata().message_count, survivors as u64);

        // With metadata.yaml present (finished writer, file damaged later) the same prefix reads,
        // and the recovery says the metadata was there.
        std::fs::copy(full.join("metadata.yaml"), cut_dir.join("metadata.yaml")).unwrap();
        let reader = BagReader::open(&cut_dir).unwrap();
        let recovery = reader.recovery().expect("cut file").clone();
        assert!(!recovery.metadata_missing);
        assert_eq!(read_all(&reader).len(), survivors);
    }
}

#[test]
fn a_snapshot_of_a_running_writer_reads_as_a_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("live");
    let (mut writer, id) = open_writer(&dir, Compression::Zstd, 4096);
    for i in 0..3000 {
        writer.write(id, i as i64 * 1_000_000, &state_cdr(i)).unwrap();
    }
    // What a SIGKILL now would leave: the bytes the writer has handed to the OS.
    let snap = tmp.path().join("snap");
    std::fs::create_dir(&snap).unwrap();
    std::fs::copy(dir.join("live_0.mcap"), snap.join("live_0.mcap")).unwrap();
    writer.finish().unwrap();

    let reader = BagReader::open(&snap).unwrap();
    let recovery = reader.recovery().unwrap().clone();
    let messages = read_all(&reader);
    assert!(messages.len() > 1000, "most chunks were flushed, got {}", messages.len());
    assert!(messages.len() < 3000);
    assert_eq!(recovery.recovered_messages, messages.len() as u64);
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m.data, state_cdr(i));
    }
}

/// Child half of [`killed_recorder_is_recovered`]: writes until killed.
#[test]
fn kill_child_writer() {
    let Ok(dir) = std::env::var("EQUIGATE_BAG_KILL_CHILD") else { return };
    let (mut writer, id) = open_writer(Path::new(&dir), Compression::Zstd, 8192);
    let start = Instant::now();
    for i in 0.. {
        // Never outlive a parent that died without killing us.
        assert!(start.elapsed() < Duration::from_secs(120), "child writer was never killed");
        writer.write(id, i as i64 * 1_000_000, &state_cdr(i)).unwrap();
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Kills the child writer if the parent test panics first.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn killed_recorder_is_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("killed");
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["kill_child_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env("EQUIGATE_BAG_KILL_CHILD", &dir)
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let child = &mut child.0;
    let file = dir.join("killed_0.mcap");
    let start = Instant::now();
    while std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) < 200_000 {
        assert!(start.elapsed() < Duration::from_secs(60), "child wrote too little");
        assert!(child.try_wait().unwrap().is_none(), "child exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    assert!(!dir.join("metadata.yaml").exists());
    let reader = BagReader::open(&dir).unwrap();
    let recovery = reader.recovery().unwrap().clone();
    assert!(recovery.metadata_missing && !recovery.files[0].complete);
    let messages = read_all(&reader);
    assert!(messages.len() > 100, "recovered {}", messages.len());
    assert_eq!(recovery.recovered_messages, messages.len() as u64);
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m.data, state_cdr(i), "message {i}");
    }
    eprintln!(
        "killed recorder: {} messages recovered, {} trailing bytes discarded",
        messages.len(),
        recovery.discarded_bytes
    );
}

#[test]
fn dropped_writer_leaves_a_readable_bag_without_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dropped");
    let (mut writer, id) = open_writer(&dir, Compression::Lz4, 4096);
    for i in 0..500 {
        writer.write(id, i as i64 * 1_000_000, &state_cdr(i)).unwrap();
    }
    drop(writer); // the mcap crate closes the file; no metadata.yaml
    assert!(!dir.join("metadata.yaml").exists());
    let reader = BagReader::open(&dir).unwrap();
    let recovery = reader.recovery().unwrap();
    assert!(recovery.metadata_missing);
    assert!(recovery.files[0].complete);
    assert_eq!(recovery.discarded_bytes, 0);
    assert_eq!(read_all(&reader).len(), 500);
}

#[test]
fn empty_storage_file_is_an_empty_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("b_0.mcap"), b"\x89MC").unwrap();
    let reader = BagReader::open(tmp.path()).unwrap();
    let recovery = reader.recovery().unwrap();
    assert_eq!(recovery.recovered_messages, 0);
    assert_eq!(read_all(&reader).len(), 0);
    // A directory with no storage file at all is an error.
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        BagReader::open(empty.path()),
        Err(equigate_bag::BagError::MissingFile { .. })
    ));
}

#[test]
fn rosbag2_fixtures_without_metadata_or_cut_short() {
    let Some(fixtures) = fixtures_dir() else { return };
    for (bag, file) in [
        ("mcap_rewriter_a", "rewriter_a_0.mcap"),
        ("mcap_cdr_test", "cdr_test_0.mcap"),
        ("mcap_bag_with_topics_and_service_events", "bag_with_topics_and_service_events.mcap"),
        ("sqlite3_convert_a", "rewriter_a_0.db3"),
    ] {
        let original = BagReader::open(&fixtures.join(bag)).unwrap();
        let want = counts(&read_all(&original));
        let tmp = tempfile::tempdir().unwrap();
        std::fs::copy(fixtures.join(bag).join(file), tmp.path().join(file)).unwrap();
        let reader = BagReader::open(tmp.path()).unwrap();
        assert!(reader.recovery().unwrap().metadata_missing, "{bag}");
        assert_eq!(counts(&read_all(&reader)), want, "{bag}: same messages without metadata.yaml");
        for t in original.topics().iter().filter(|t| want.contains_key(&t.name)) {
            let rebuilt = reader.topics().iter().find(|r| r.name == t.name).unwrap();
            assert_eq!(rebuilt.type_name, t.type_name, "{bag}");
            // The *_a bags (converted by tools) store no QoS in the storage file itself (the Go
            // mcap library's channels have no offered_qos_profiles; the db3 column is empty):
            // rebuilt topics then have none. The rosbag2-recorded ones store it.
            if !bag.ends_with("_a") {
                assert_eq!(rebuilt.offered_qos, t.offered_qos, "{bag}");
            }
        }
        if file.ends_with(".mcap") {
            // Cut off the end (footer, summary and part of the data): no error, a prefix.
            let bytes = std::fs::read(fixtures.join(bag).join(file)).unwrap();
            let cut = tempfile::tempdir().unwrap();
            std::fs::write(cut.path().join(file), &bytes[..bytes.len() * 2 / 3]).unwrap();
            let reader = BagReader::open(cut.path()).unwrap();
            let recovery = reader.recovery().unwrap().clone();
            let got = read_all(&reader);
            assert_eq!(recovery.recovered_messages, got.len() as u64, "{bag}");
            assert!(got.len() <= original.metadata().message_count as usize);
            assert!(!recovery.files[0].complete, "{bag}");
        }
    }
}
