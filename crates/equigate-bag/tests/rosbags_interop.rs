//! Interop with PyPI `rosbags`, an independent pure-Python rosbag2 reader and writer:
//! equigate-written bags (metadata v9 and v5) open in rosbags and decode, with our schema texts,
//! to the values written; rosbags-written bags (mcap and sqlite3) read here to theirs.
//!
//! Needs `python3` (or `$EQUIGATE_PYTHON`) with `pip install -r tests/requirements.txt`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_time_order, read_all};
use equigate_bag::{
    BagError, BagReader, BagWriter, Compression, MetadataVersion, Qos, Reliability, TopicInfo,
    WriterOptions,
};
use equigate_ros::msg::{
    from_cdr, to_cdr, Float64MultiArray, Header, JointState, Point, PointStamped, Time,
};
use serde_json::{json, Value};

fn python() -> String {
    std::env::var("EQUIGATE_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop").join(name)
}

/// Fails (not skips) without rosbags: CI installs tests/requirements.txt.
fn require_rosbags() {
    let out = Command::new(python()).args(["-c", "import rosbags"]).output().unwrap_or_else(|e| {
        panic!(
            "cannot run {}: {e}; install Python 3 and `pip install -r tests/requirements.txt`",
            python()
        )
    });
    assert!(
        out.status.success(),
        "`import rosbags` failed in {}: {}\nRun `{} -m pip install -r tests/requirements.txt` (or set EQUIGATE_PYTHON)",
        python(),
        String::from_utf8_lossy(&out.stderr),
        python()
    );
}

fn run_python(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(python()).args(args).output().expect("run python");
    assert!(
        out.status.success(),
        "{:?} failed: {}\n{}",
        args,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Log time of step `i`: (100 + i) s + 1000 i ns, as rosbags_write.py uses.
fn t(i: usize) -> (i32, u32, i64) {
    let sec = 100 + i as i32;
    let nanosec = 1000 * i as u32;
    (sec, nanosec, i64::from(sec) * 1_000_000_000 + i64::from(nanosec))
}

fn joint_state(i: usize) -> JointState {
    let (sec, nanosec, _) = t(i);
    JointState {
        header: Header::new(Time { sec, nanosec }, "base_link"),
        name: vec!["shoulder".into(), "elbow".into()],
        position: vec![0.5 * i as f64, -(i as f64)],
        velocity: vec![1.0, 2.0],
        effort: vec![],
    }
}

fn command(i: usize) -> Float64MultiArray {
    Float64MultiArray::flat(vec![i as f64, -0.25 * i as f64])
}

fn goal(i: usize) -> PointStamped {
    let (sec, nanosec, _) = t(i);
    PointStamped {
        header: Header::new(Time { sec, nanosec }, "world"),
        point: Point { x: 1.0, y: i as f64, z: -3.5 },
    }
}

/// The decoded-fields JSON rosbags_read.py prints for step `i` of `topic`.
fn expected_fields(topic: &str, i: usize) -> Value {
    let (sec, nanosec, _) = t(i);
    match topic {
        "/joint_states" => json!({
            "header": {"stamp": {"sec": sec, "nanosec": nanosec}, "frame_id": "base_link"},
            "name": ["shoulder", "elbow"],
            "position": [0.5 * i as f64, -(i as f64)],
            "velocity": [1.0, 2.0],
            "effort": [],
        }),
        "/commands" => json!({
            "layout": {"dim": [], "data_offset": 0},
            "data": [i as f64, -0.25 * i as f64],
        }),
        "/goal" => json!({
            "header": {"stamp": {"sec": sec, "nanosec": nanosec}, "frame_id": "world"},
            "point": {"x": 1.0, "y": i as f64, "z": -3.5},
        }),
        other => panic!("unexpected topic {other}"),
    }
}

const N: usize = 20;

/// (topic, step) in the order both writers write them.
fn schedule() -> Vec<(&'static str, usize)> {
    let mut out = Vec::new();
    for i in 0..N {
        out.push(("/joint_states", i));
        if i % 2 == 0 {
            out.push(("/commands", i));
        }
        if i % 5 == 0 {
            out.push(("/goal", i));
        }
    }
    out
}

/// Every built-in type's RIHS01 hash equals the one PyPI rosbags computes for Jazzy.
#[test]
fn type_description_hashes_match_rosbags() {
    require_rosbags();
    const TYPES: [&str; 8] = [
        "sensor_msgs/msg/JointState",
        "sensor_msgs/msg/Image",
        "sensor_msgs/msg/CameraInfo",
        "std_msgs/msg/Float64MultiArray",
        "std_msgs/msg/Float32",
        "geometry_msgs/msg/PointStamped",
        "rosgraph_msgs/msg/Clock",
        "diagnostic_msgs/msg/DiagnosticArray",
    ];
    let code = format!(
        "import json; from rosbags.typesys import Stores, get_typestore; \
         s = get_typestore(Stores.ROS2_JAZZY); print(json.dumps([s.hash_rihs01(t) for t in {}]))",
        serde_json::to_string(&TYPES).unwrap()
    );
    let out = run_python(&["-c".as_ref(), code.as_ref()]);
    let theirs: Vec<String> = serde_json::from_str(&out).unwrap();
    for (t, expected) in TYPES.iter().zip(theirs) {
        assert_eq!(
            equigate_bag::type_description_hash(t).as_deref(),
            Some(expected.as_str()),
            "{t}"
        );
    }
}

#[test]
fn equigate_bags_open_in_rosbags() {
    require_rosbags();
    for (version, compression) in [
        (MetadataVersion::V9, Compression::Zstd),
        (MetadataVersion::V5, Compression::Lz4),
        (MetadataVersion::V9, Compression::None),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("to_rosbags");
        let options = WriterOptions {
            compression,
            chunk_size: 2048,
            metadata_version: version,
            ..WriterOptions::default()
        };
        let mut writer = BagWriter::create(&dir, options).unwrap();
        let js = writer
            .add_topic(TopicInfo::cdr(
                "/joint_states",
                "sensor_msgs/msg/JointState",
                Qos::reliable(10),
            ))
            .unwrap();
        let cmd = writer
            .add_topic(TopicInfo::cdr(
                "/commands",
                "std_msgs/msg/Float64MultiArray",
                Qos::reliable(10),
            ))
            .unwrap();
        let gl = writer
            .add_topic(TopicInfo::cdr(
                "/goal",
                "geometry_msgs/msg/PointStamped",
                Qos::sensor_data(5),
            ))
            .unwrap();
        for (topic, i) in schedule() {
            let (id, cdr) = match topic {
                "/joint_states" => (js, to_cdr(&joint_state(i)).unwrap()),
                "/commands" => (cmd, to_cdr(&command(i)).unwrap()),
                _ => (gl, to_cdr(&goal(i)).unwrap()),
            };
            writer.write(id, t(i).2, &cdr).unwrap();
        }
        writer.finish().unwrap();

        let out = run_python(&[script("rosbags_read.py").as_os_str(), dir.as_os_str()]);
        let got: Value = serde_json::from_str(&out).unwrap();
        let label = format!("{version:?} {compression:?}");
        assert_eq!(
            got["topics"],
            json!({
                "/joint_states": {"type": "sensor_msgs/msg/JointState", "count": 20},
                "/commands": {"type": "std_msgs/msg/Float64MultiArray", "count": 10},
                "/goal": {"type": "geometry_msgs/msg/PointStamped", "count": 4},
            }),
            "{label}"
        );
        // Decoded with our schema texts, not rosbags' own type store.
        assert_eq!(
            got["msgdef_types"],
            json!([
                "geometry_msgs/msg/PointStamped",
                "sensor_msgs/msg/JointState",
                "std_msgs/msg/Float64MultiArray"
            ]),
            "{label}"
        );
        // Version 9 carries each type's RIHS01 hash, the one rosbags computes; version 5 none.
        for (topic, h) in got["type_hashes"].as_object().unwrap() {
            let expected = if version == MetadataVersion::V9 { &h["rosbags"] } else { &json!("") };
            assert_eq!(&h["bag"], expected, "{label} {topic}");
        }
        let messages = got["messages"].as_array().unwrap();
        let schedule = schedule();
        assert_eq!(messages.len(), schedule.len(), "{label}");
        for (m, (topic, i)) in messages.iter().zip(&schedule) {
            assert_eq!(m["topic"], json!(topic), "{label}");
            assert_eq!(m["timestamp"], json!(t(*i).2), "{label}");
            assert_eq!(m["fields"], expected_fields(topic, *i), "{label} {topic} step {i}");
        }
    }
}

/// Writes a bag with rosbags_write.py into a new directory under `tmp`.
fn rosbags_write(tmp: &Path, storage: &str, compression: &str) -> PathBuf {
    let dir = tmp.join(format!("from_rosbags_{storage}_{compression}"));
    run_python(&[
        script("rosbags_write.py").as_os_str(),
        dir.as_os_str(),
        "--storage".as_ref(),
        storage.as_ref(),
        "--compression".as_ref(),
        compression.as_ref(),
    ]);
    dir
}

/// Reads a rosbags_write.py bag and checks every value.
fn check_rosbags_bag(dir: &Path, storage: &str) {
    let reader = BagReader::open(dir).unwrap();
    assert!(reader.recovery().is_none(), "{storage}");
    assert_eq!(reader.metadata().version, 9);
    assert_eq!(reader.metadata().storage_identifier, storage);
    let goal_topic = reader.topics().iter().find(|t| t.name == "/goal").unwrap();
    assert_eq!(goal_topic.type_name, "geometry_msgs/msg/PointStamped");
    assert_eq!(goal_topic.offered_qos.len(), 1);
    assert_eq!(goal_topic.offered_qos[0].reliability, Reliability::BestEffort);
    assert_eq!(goal_topic.offered_qos[0].depth, 5);

    let messages = read_all(&reader);
    assert_time_order(&messages);
    let schedule = schedule();
    assert_eq!(messages.len(), schedule.len(), "{storage}");
    // Equal log times: rosbags' order within a time is its own; match by (time, topic).
    for (topic, i) in schedule {
        let m = messages
            .iter()
            .find(|m| &*m.topic == topic && m.log_time_ns == t(i).2)
            .unwrap_or_else(|| panic!("{storage}: no {topic} at step {i}"));
        match topic {
            "/joint_states" => {
                assert_eq!(&*m.type_name, "sensor_msgs/msg/JointState");
                assert_eq!(from_cdr::<JointState>(&m.data).unwrap(), joint_state(i), "{storage}");
            }
            "/commands" => {
                assert_eq!(
                    from_cdr::<Float64MultiArray>(&m.data).unwrap(),
                    command(i),
                    "{storage}"
                );
            }
            _ => assert_eq!(from_cdr::<PointStamped>(&m.data).unwrap(), goal(i), "{storage}"),
        }
    }
}

#[test]
fn rosbags_bags_open_in_equigate() {
    require_rosbags();
    let tmp = tempfile::tempdir().unwrap();
    for storage in ["mcap", "sqlite3"] {
        check_rosbags_bag(&rosbags_write(tmp.path(), storage, "none"), storage);
    }
}

#[test]
fn rosbags_compressed_bags() {
    require_rosbags();
    let tmp = tempfile::tempdir().unwrap();
    // Each message zstd-compressed (compression_mode: message).
    for storage in ["mcap", "sqlite3"] {
        check_rosbags_bag(&rosbags_write(tmp.path(), storage, "message"), storage);
    }
    // rosbags' MCAP chunk compression (zstd chunks, metadata says nothing).
    check_rosbags_bag(&rosbags_write(tmp.path(), "mcap", "storage"), "mcap");
    // Whole-file compression is refused with a clear error.
    let dir = rosbags_write(tmp.path(), "mcap", "file");
    match BagReader::open(&dir) {
        Err(e @ BagError::UnsupportedCompression { .. }) => {
            assert!(e.to_string().contains("'file'"), "{e}");
        }
        Err(e) => panic!("wrong error for FILE compression: {e}"),
        Ok(_) => panic!("FILE compression must be refused"),
    }
}

/// One message of each type with a built-in schema: rosbags parses every schema text and
/// decodes the values (constants, fixed arrays, byte arrays and nested sequences included).
#[test]
fn every_builtin_schema_decodes_in_rosbags() {
    use equigate_ros::msg::{
        CameraInfo, Clock, DiagnosticArray, DiagnosticStatus, Float32, Image, KeyValue,
        RegionOfInterest,
    };
    require_rosbags();
    let stamp = Time { sec: 7, nanosec: 8 };
    let stamp_json = json!({"sec": 7, "nanosec": 8});
    let image = Image {
        header: Header::new(stamp, "camera_optical"),
        height: 2,
        width: 3,
        encoding: "mono8".into(),
        is_bigendian: 0,
        step: 3,
        data: vec![1, 2, 3, 4, 5, 255],
    };
    let k = [55.4, 0.0, 31.5, 0.0, 55.4, 31.5, 0.0, 0.0, 1.0];
    let r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    let p = [55.4, 0.0, 31.5, 0.0, 0.0, 55.4, 31.5, 0.0, 0.0, 0.0, 1.0, 0.0];
    let info = CameraInfo {
        header: Header::new(stamp, "camera_optical"),
        height: 64,
        width: 64,
        distortion_model: "plumb_bob".into(),
        d: vec![0.0; 5],
        k,
        r,
        p,
        binning_x: 1,
        binning_y: 2,
        roi: RegionOfInterest { x_offset: 1, y_offset: 2, height: 3, width: 4, do_rectify: true },
    };
    let diag = DiagnosticArray {
        header: Header::new(stamp, ""),
        status: vec![DiagnosticStatus {
            level: DiagnosticStatus::WARN,
            name: "equigate: detector".into(),
            message: "lambda high".into(),
            hardware_id: "ur5e".into(),
            values: vec![KeyValue { key: "lambda".into(), value: "0.9".into() }],
        }],
    };
    let cases: Vec<(&str, &str, Vec<u8>, Value)> = vec![
        (
            "/image",
            "sensor_msgs/msg/Image",
            to_cdr(&image).unwrap(),
            json!({"header": {"stamp": stamp_json, "frame_id": "camera_optical"}, "height": 2,
                   "width": 3, "encoding": "mono8", "is_bigendian": 0, "step": 3,
                   "data": [1, 2, 3, 4, 5, 255]}),
        ),
        (
            "/camera_info",
            "sensor_msgs/msg/CameraInfo",
            to_cdr(&info).unwrap(),
            json!({"header": {"stamp": stamp_json, "frame_id": "camera_optical"}, "height": 64,
                   "width": 64, "distortion_model": "plumb_bob", "d": [0.0, 0.0, 0.0, 0.0, 0.0],
                   "k": k, "r": r, "p": p, "binning_x": 1, "binning_y": 2,
                   "roi": {"x_offset": 1, "y_offset": 2, "height": 3, "width": 4, "do_rectify": true}}),
        ),
        (
            "/diagnostics",
            "diagnostic_msgs/msg/DiagnosticArray",
            to_cdr(&diag).unwrap(),
            json!({"header": {"stamp": stamp_json, "frame_id": ""}, "status": [{
                   // rosbags keeps the constants of the schema text as fields.
                   "OK": 0, "WARN": 1, "ERROR": 2, "STALE": 3, "level": 1,
                   "name": "equigate: detector", "message": "lambda high", "hardware_id": "ur5e",
                   "values": [{"key": "lambda", "value": "0.9"}]}]}),
        ),
        (
            "/clock",
            "rosgraph_msgs/msg/Clock",
            to_cdr(&Clock { clock: stamp }).unwrap(),
            json!({"clock": stamp_json}),
        ),
        (
            "/reward",
            "std_msgs/msg/Float32",
            to_cdr(&Float32 { data: 0.5 }).unwrap(),
            json!({"data": 0.5}),
        ),
        (
            "/joint_states",
            "sensor_msgs/msg/JointState",
            to_cdr(&joint_state(3)).unwrap(),
            expected_fields("/joint_states", 3),
        ),
        (
            "/commands",
            "std_msgs/msg/Float64MultiArray",
            to_cdr(&command(3)).unwrap(),
            expected_fields("/commands", 3),
        ),
        (
            "/goal",
            "geometry_msgs/msg/PointStamped",
            to_cdr(&goal(3)).unwrap(),
            expected_fields("/goal", 3),
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("all_types");
    let mut writer = BagWriter::create(&dir, WriterOptions::default()).unwrap();
    for (k, (topic, type_name, cdr, _)) in cases.iter().enumerate() {
        let id = writer.add_topic(TopicInfo::cdr(*topic, *type_name, Qos::reliable(10))).unwrap();
        writer.write(id, 1_000 + k as i64, cdr).unwrap();
    }
    writer.finish().unwrap();
    let got: Value = serde_json::from_str(&run_python(&[
        script("rosbags_read.py").as_os_str(),
        dir.as_os_str(),
    ]))
    .unwrap();
    let mut types: Vec<&str> = cases.iter().map(|c| c.1).collect();
    types.sort();
    assert_eq!(got["msgdef_types"], json!(types), "every type decoded with our schema text");
    let messages = got["messages"].as_array().unwrap();
    assert_eq!(messages.len(), cases.len());
    for (m, (topic, _, _, fields)) in messages.iter().zip(&cases) {
        assert_eq!(m["topic"], json!(topic));
        assert_eq!(&m["fields"], fields, "{topic}");
    }
}
