//! Split bags (several storage files) merge in log-time order; malformed bags give the
//! structured error that names the problem.

mod common;

use std::path::Path;

use common::{assert_time_order, read_all};
use equigate_bag::metadata::BagMetadata;
use equigate_bag::{BagError, BagReader, BagWriter, Qos, TopicInfo, WriterOptions};
use equigate_ros::msg::{to_cdr, Float32};

/// A one-topic bag of Float32 at the given times (ns); the value is the time in ms.
fn write_part(dir: &Path, times: impl Iterator<Item = i64>) -> BagMetadata {
    let mut writer =
        BagWriter::create(dir, WriterOptions { chunk_size: 512, ..Default::default() }).unwrap();
    let id =
        writer.add_topic(TopicInfo::cdr("/f", "std_msgs/msg/Float32", Qos::reliable(10))).unwrap();
    for t in times {
        writer.write(id, t, &to_cdr(&Float32 { data: (t / 1_000_000) as f32 }).unwrap()).unwrap();
    }
    writer.finish().unwrap().metadata
}

#[test]
fn split_files_merge_in_time_order() {
    let tmp = tempfile::tempdir().unwrap();
    // Two files whose time ranges overlap (interleaved), the harder case for the merge.
    let a = write_part(&tmp.path().join("a"), (0..300).map(|i| i * 2_000_000));
    let b = write_part(&tmp.path().join("b"), (0..200).map(|i| i * 3_000_000 + 1_000_000));
    let split = tmp.path().join("split");
    std::fs::create_dir(&split).unwrap();
    std::fs::copy(tmp.path().join("a/a_0.mcap"), split.join("split_0.mcap")).unwrap();
    std::fs::copy(tmp.path().join("b/b_0.mcap"), split.join("split_1.mcap")).unwrap();

    // Without metadata.yaml: both files found in split order.
    let reader = BagReader::open(&split).unwrap();
    assert_eq!(reader.recovery().unwrap().files.len(), 2);
    let messages = read_all(&reader);
    assert_eq!(messages.len(), 500);
    assert_time_order(&messages);

    // With metadata.yaml listing both (old bags put the directory in front of the name).
    let mut meta = a.clone();
    meta.relative_file_paths = vec!["split/split_0.mcap".into(), "split_1.mcap".into()];
    meta.message_count = a.message_count + b.message_count;
    meta.topics_with_message_count[0].message_count = meta.message_count;
    std::fs::write(split.join("metadata.yaml"), meta.to_yaml().unwrap()).unwrap();
    let reader = BagReader::open(&split).unwrap();
    assert!(reader.recovery().is_none());
    let merged = read_all(&reader);
    assert_eq!(merged, messages);
    let mut times: Vec<i64> = (0..300)
        .map(|i| i * 2_000_000)
        .chain((0..200).map(|i| i * 3_000_000 + 1_000_000))
        .collect();
    times.sort();
    assert_eq!(merged.iter().map(|m| m.log_time_ns).collect::<Vec<_>>(), times);
}

fn bag_with_metadata(tmp: &Path, edit: impl FnOnce(&mut BagMetadata)) -> std::path::PathBuf {
    let dir = tmp.join("bag");
    let mut meta = write_part(&dir, (0..10).map(|i| i * 1_000));
    edit(&mut meta);
    std::fs::write(dir.join("metadata.yaml"), meta.to_yaml().unwrap()).unwrap();
    dir
}

#[test]
fn malformed_bags_give_structured_errors() {
    for version in [4, 10] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = bag_with_metadata(tmp.path(), |m| m.version = version);
        match BagReader::open(&dir) {
            Err(BagError::UnsupportedVersion { version: v, .. }) => assert_eq!(v, version),
            other => panic!("version {version}: {:?}", other.err()),
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = bag_with_metadata(tmp.path(), |m| m.storage_identifier = "rosbag_v1".into());
    assert!(
        matches!(BagReader::open(&dir), Err(BagError::UnsupportedStorage { storage, .. }) if storage == "rosbag_v1")
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = bag_with_metadata(tmp.path(), |m| m.relative_file_paths.push("bag_1.mcap".into()));
    assert!(
        matches!(BagReader::open(&dir), Err(BagError::MissingFile { path }) if path.ends_with("bag_1.mcap"))
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = bag_with_metadata(tmp.path(), |_| {});
    std::fs::write(dir.join("metadata.yaml"), "rosbag2_bagfile_information:\n  version: 9\n")
        .unwrap();
    match BagReader::open(&dir) {
        Err(e @ BagError::Yaml { .. }) => {
            assert!(e.to_string().contains("storage_identifier"), "{e}")
        }
        other => panic!("{:?}", other.err()),
    }
    std::fs::write(dir.join("bag_0.mcap"), b"not an mcap file at all").unwrap();
    std::fs::remove_file(dir.join("metadata.yaml")).unwrap();
    assert!(matches!(BagReader::open(&dir), Err(BagError::Corrupt { .. })));
}

/// Messages written outside chunks (allowed by the MCAP spec; rosbag2 never does it) and out of
/// time order still read, sorted, with and without a summary.
#[test]
fn unchunked_mcap_reads_in_time_order() {
    use std::collections::BTreeMap;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("unchunked");
    std::fs::create_dir(&dir).unwrap();
    let file = std::fs::File::create(dir.join("unchunked_0.mcap")).unwrap();
    let mut writer = mcap::WriteOptions::new()
        .profile("ros2")
        .use_chunks(false)
        .create(std::io::BufWriter::new(file))
        .unwrap();
    let schema = writer
        .add_schema(
            "std_msgs/msg/Float32",
            "ros2msg",
            equigate_bag::message_definition("std_msgs/msg/Float32").unwrap().as_bytes(),
        )
        .unwrap();
    let channel = writer.add_channel(schema, "/f", "cdr", &BTreeMap::new()).unwrap();
    let times = [5i64, 1, 4, 2, 3];
    for (seq, t) in times.iter().enumerate() {
        let header = mcap::records::MessageHeader {
            channel_id: channel,
            sequence: seq as u32,
            log_time: *t as u64,
            publish_time: *t as u64,
        };
        writer
            .write_to_known_channel(&header, &to_cdr(&Float32 { data: *t as f32 }).unwrap())
            .unwrap();
    }
    writer.finish().unwrap();
    drop(writer);
    let reader = BagReader::open(&dir).unwrap();
    assert_eq!(reader.topics()[0].type_name, "std_msgs/msg/Float32");
    let got: Vec<i64> = read_all(&reader).iter().map(|m| m.log_time_ns).collect();
    assert_eq!(got, vec![1, 2, 3, 4, 5]);
}

/// A summary without schema and channel records (a writer option of the mcap libraries): the
/// reader walks the file for them instead of reporting no topics.
#[test]
fn summary_without_channels_still_reads() {
    use std::collections::BTreeMap;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("no_summary_channels");
    std::fs::create_dir(&dir).unwrap();
    let file = std::fs::File::create(dir.join("b_0.mcap")).unwrap();
    let mut writer = mcap::WriteOptions::new()
        .profile("ros2")
        .emit_summary_records(false)
        .create(std::io::BufWriter::new(file))
        .unwrap();
    let def = equigate_bag::message_definition("std_msgs/msg/Float32").unwrap();
    let schema = writer.add_schema("std_msgs/msg/Float32", "ros2msg", def.as_bytes()).unwrap();
    let channel = writer.add_channel(schema, "/f", "cdr", &BTreeMap::new()).unwrap();
    for t in 0..10u64 {
        let header = mcap::records::MessageHeader {
            channel_id: channel,
            sequence: 0,
            log_time: t,
            publish_time: t,
        };
        writer
            .write_to_known_channel(&header, &to_cdr(&Float32 { data: t as f32 }).unwrap())
            .unwrap();
    }
    writer.finish().unwrap();
    drop(writer);
    let reader = BagReader::open(&dir).unwrap();
    assert_eq!(reader.topics().len(), 1);
    assert_eq!(read_all(&reader).len(), 10);
}
