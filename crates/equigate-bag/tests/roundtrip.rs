//! Bags written by BagWriter read back byte-identical, for every chunk compression and both
//! metadata versions, and follow the rosbag2 MCAP profile on disk.

mod common;

use common::{assert_time_order, read_all};
use equigate_bag::{
    metadata::BagMetadata, BagError, BagReader, BagWriter, Compression, MetadataVersion, Qos,
    Reliability, TopicFilter, TopicInfo, WriterOptions,
};
use equigate_ros::msg::{to_cdr, Float64MultiArray, Header, JointState, Point, PointStamped, Time};

/// (topic, type, log time, CDR) of a small recording: joint states at 500 Hz, commands at
/// 250 Hz, a point at 50 Hz, written slightly out of time order as a recorder would.
fn recording(n: usize) -> Vec<(&'static str, &'static str, i64, Vec<u8>)> {
    let t0 = 1_700_000_000_000_000_000i64;
    let mut out = Vec::new();
    for i in 0..n {
        let t = t0 + i as i64 * 2_000_000;
        let js = JointState {
            header: Header::new(Time::from_nanos(t), "base_link"),
            name: vec!["shoulder_pan_joint".into(), "elbow_joint".into()],
            position: vec![0.1 * i as f64, -0.2],
            velocity: vec![0.5, f64::from(i as u32)],
            effort: vec![],
        };
        out.push(("/joint_states", "sensor_msgs/msg/JointState", t, to_cdr(&js).unwrap()));
        if i % 2 == 0 {
            let cmd = Float64MultiArray::flat(vec![i as f64, -(i as f64), 0.25]);
            // 1 µs before the state that triggered it: out of write order.
            out.push((
                "/forward_velocity_controller/commands",
                "std_msgs/msg/Float64MultiArray",
                t - 1_000,
                to_cdr(&cmd).unwrap(),
            ));
        }
        if i % 10 == 0 {
            let p = PointStamped {
                header: Header::new(Time::from_nanos(t), "world"),
                point: Point { x: 1.0, y: i as f64, z: -3.5 },
            };
            out.push(("/goal", "geometry_msgs/msg/PointStamped", t, to_cdr(&p).unwrap()));
        }
    }
    out
}

fn write_bag(
    dir: &std::path::Path,
    options: WriterOptions,
    n: usize,
) -> Vec<(&'static str, i64, Vec<u8>)> {
    let mut writer = BagWriter::create(dir, options).unwrap();
    let js = writer
        .add_topic(TopicInfo::cdr("/joint_states", "sensor_msgs/msg/JointState", Qos::reliable(10)))
        .unwrap();
    let cmd = writer
        .add_topic(TopicInfo::cdr(
            "/forward_velocity_controller/commands",
            "std_msgs/msg/Float64MultiArray",
            Qos::reliable(10),
        ))
        .unwrap();
    let goal = writer
        .add_topic(TopicInfo::cdr("/goal", "geometry_msgs/msg/PointStamped", Qos::sensor_data(5)))
        .unwrap();
    let mut written = Vec::new();
    for (topic, _, t, data) in recording(n) {
        let id = match topic {
            "/joint_states" => js,
            "/goal" => goal,
            _ => cmd,
        };
        writer.write(id, t, &data).unwrap();
        written.push((topic, t, data));
    }
    let summary = writer.finish().unwrap();
    assert_eq!(summary.metadata.message_count, written.len() as u64);
    // Expected read order: by log time, equal times in write order.
    written.sort_by_key(|w| w.1);
    written
}

#[test]
fn round_trip_every_compression_and_version() {
    for compression in [Compression::Zstd, Compression::Lz4, Compression::None] {
        for version in [MetadataVersion::V9, MetadataVersion::V5] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("rt_bag");
            let options = WriterOptions {
                compression,
                chunk_size: 4096, // many chunks
                metadata_version: version,
                ..WriterOptions::default()
            };
            let written = write_bag(&dir, options, 300);
            assert!(dir.join("rt_bag_0.mcap").is_file());
            let reader = BagReader::open(&dir).unwrap();
            assert!(reader.recovery().is_none());
            let meta = reader.metadata();
            assert_eq!(meta.version, version.number());
            assert_eq!(meta.storage_identifier, "mcap");
            assert_eq!(meta.relative_file_paths, vec!["rt_bag_0.mcap".to_string()]);
            let read = read_all(&reader);
            assert_time_order(&read);
            let got: Vec<(&str, i64, Vec<u8>)> =
                read.iter().map(|m| (&*m.topic, m.log_time_ns, m.data.clone())).collect();
            let want: Vec<(&str, i64, Vec<u8>)> =
                written.iter().map(|(t, ts, d)| (*t, *ts, d.clone())).collect();
            assert_eq!(got, want, "{compression:?} {version:?}");
            // Topics with types and QoS as added.
            let goal = reader.topics().iter().find(|t| t.name == "/goal").unwrap();
            assert_eq!(goal.type_name, "geometry_msgs/msg/PointStamped");
            assert_eq!(goal.offered_qos, vec![Qos::sensor_data(5)]);
            assert_eq!(goal.offered_qos[0].reliability, Reliability::BestEffort);
            assert_eq!(
                meta.topics_with_message_count.iter().map(|t| t.message_count).sum::<u64>(),
                read.len() as u64
            );
            assert_eq!(meta.starting_time.nanoseconds_since_epoch, read[0].log_time_ns);
        }
    }
}

#[test]
fn metadata_yaml_has_the_form_of_its_version() {
    let tmp = tempfile::tempdir().unwrap();
    let v9 = tmp.path().join("v9");
    write_bag(&v9, WriterOptions::default(), 20);
    let text = std::fs::read_to_string(v9.join("metadata.yaml")).unwrap();
    assert!(text.starts_with("rosbag2_bagfile_information:\n"), "{text}");
    assert!(text.contains("version: 9"), "{text}");
    assert!(text.contains("ros_distro: jazzy"), "{text}");
    assert!(text.contains("reliability: reliable"), "QoS as a list with string enums: {text}");
    assert!(!v9.join("metadata.yaml.tmp").exists());

    let v5 = tmp.path().join("v5");
    write_bag(
        &v5,
        WriterOptions { metadata_version: MetadataVersion::V5, ..Default::default() },
        20,
    );
    let text = std::fs::read_to_string(v5.join("metadata.yaml")).unwrap();
    assert!(text.contains("version: 5"), "{text}");
    for absent in ["ros_distro", "custom_data", "type_description_hash", "reliability: reliable"] {
        assert!(!text.contains(absent), "v5 must not contain {absent}: {text}");
    }
    let meta = BagMetadata::from_yaml(&text).unwrap();
    let qos = &meta.topics_with_message_count[0].topic_metadata.offered_qos_profiles;
    assert_eq!(qos, &vec![Qos::reliable(10)], "the QoS string with integer enums reads back");
}

#[test]
fn mcap_follows_the_ros2_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("profile");
    write_bag(&dir, WriterOptions::default(), 20);
    let bytes = std::fs::read(dir.join("profile_0.mcap")).unwrap();
    let summary = mcap::Summary::read(&bytes).unwrap().expect("summary");
    let mut schemas: Vec<_> =
        summary.schemas.values().map(|s| (s.name.clone(), s.encoding.clone())).collect();
    schemas.sort();
    assert_eq!(
        schemas,
        vec![
            ("geometry_msgs/msg/PointStamped".to_string(), "ros2msg".to_string()),
            ("sensor_msgs/msg/JointState".to_string(), "ros2msg".to_string()),
            ("std_msgs/msg/Float64MultiArray".to_string(), "ros2msg".to_string()),
        ]
    );
    for c in summary.channels.values() {
        assert_eq!(c.message_encoding, "cdr");
        assert!(c.metadata["offered_qos_profiles"].starts_with("- history: keep_last\n  depth: "));
    }
    let index =
        summary.metadata_indexes.iter().find(|m| m.name == "rosbag2").expect("rosbag2 record");
    let record = mcap::read::metadata(&bytes, index).unwrap();
    let serialized = &record.metadata["serialized_metadata"];
    assert!(serialized.starts_with("version: 9\nstorage_identifier: mcap\n"), "{serialized}");
    // The header names the ros2 profile.
    let header = mcap::read::LinearReader::new(&bytes).unwrap().next().unwrap().unwrap();
    match header {
        mcap::records::Record::Header(h) => assert_eq!(h.profile, "ros2"),
        other => panic!("first record is {other:?}"),
    }
}

#[test]
fn writer_rejects_what_it_cannot_write() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bad");
    let mut writer = BagWriter::create(&dir, WriterOptions::default()).unwrap();
    assert!(matches!(
        writer.add_topic(TopicInfo::cdr("/s", "std_msgs/msg/String", Qos::reliable(10))),
        Err(BagError::UnknownType { .. })
    ));
    let id = writer
        .add_topic(TopicInfo::cdr("/c", "rosgraph_msgs/msg/Clock", Qos::reliable(10)))
        .unwrap();
    assert!(matches!(
        writer.add_topic(TopicInfo::cdr("/c", "rosgraph_msgs/msg/Clock", Qos::reliable(10))),
        Err(BagError::DuplicateTopic { .. })
    ));
    assert!(matches!(writer.write(id, -1, &[0, 1, 0, 0]), Err(BagError::NegativeTime { .. })));
    writer.finish().unwrap();
    // The directory is no longer empty.
    assert!(matches!(
        BagWriter::create(&dir, WriterOptions::default()),
        Err(BagError::NotEmpty { .. })
    ));
    // An empty bag reads as empty.
    let reader = BagReader::open(&dir).unwrap();
    assert_eq!(reader.messages(&TopicFilter::All).unwrap().count(), 0);
    assert_eq!(reader.metadata().starting_time.nanoseconds_since_epoch, i64::MAX);
}

/// A recorder thread can own the writer; a reader and its iterator can move to a worker.
#[test]
fn writer_reader_and_messages_are_send() {
    fn send<T: Send>() {}
    send::<BagWriter>();
    send::<BagReader>();
    send::<equigate_bag::Messages>();
}
