//! Reading a 100k-message bag written by BagWriter: 500 Hz UR5e joint states (6 joints, 252-byte
//! CDR) and 250 Hz velocity commands (Float64MultiArray, 6 values) for 133 s, MCAP with zstd
//! chunks of 768 KiB (the defaults). One pass over all raw messages in log-time order, no CDR
//! decoding, as `tests/interop/rosbags_read.py --bench` does in Python.
//!
//! `cargo bench -p equigate-bag --bench bag_read`
//!
//! criterion reports the time per pass and the throughput in messages/s (elem/s). To compare with
//! rosbags on the same bag, keep it and run the Python side:
//!
//! ```text
//! EQUIGATE_BAG_BENCH_KEEP=/tmp/bench_bag cargo bench -p equigate-bag --bench bag_read
//! python3 tests/interop/rosbags_read.py /tmp/bench_bag --bench
//! ```

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use equigate_bag::{BagReader, BagWriter, Qos, TopicFilter, TopicInfo, WriterOptions};
use equigate_ros::msg::{to_cdr, Float64MultiArray, Header, JointState, Time};

const MESSAGES: usize = 100_000;

/// Writes the bag into `dir` (which must not exist yet). Returns the message count.
fn write_bag(dir: &Path) -> usize {
    let mut writer = BagWriter::create(dir, WriterOptions::default()).expect("create bag");
    let js = writer
        .add_topic(TopicInfo::cdr("/joint_states", "sensor_msgs/msg/JointState", Qos::reliable(10)))
        .expect("add topic");
    let cmd = writer
        .add_topic(TopicInfo::cdr(
            "/forward_velocity_controller/commands",
            "std_msgs/msg/Float64MultiArray",
            Qos::reliable(10),
        ))
        .expect("add topic");
    let names: Vec<String> =
        ["shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3"]
            .iter()
            .map(|n| format!("{n}_joint"))
            .collect();
    let mut written = 0;
    let mut step = 0u64;
    while written < MESSAGES {
        let t = 1_700_000_000_000_000_000i64 + step as i64 * 2_000_000;
        let phase = step as f64 * 0.002;
        let state = JointState {
            header: Header::new(Time::from_nanos(t), ""),
            name: names.clone(),
            position: (0..6).map(|j| (phase + j as f64).sin()).collect(),
            velocity: (0..6).map(|j| (phase + j as f64).cos()).collect(),
            effort: vec![0.0; 6],
        };
        writer.write(js, t, &to_cdr(&state).expect("cdr")).expect("write");
        written += 1;
        if step.is_multiple_of(2) && written < MESSAGES {
            let command =
                Float64MultiArray::flat((0..6).map(|j| 0.1 * (phase * j as f64).cos()).collect());
            writer.write(cmd, t + 100_000, &to_cdr(&command).expect("cdr")).expect("write");
            written += 1;
        }
        step += 1;
    }
    writer.finish().expect("finish");
    written
}

fn bag_read(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir: PathBuf = match std::env::var_os("EQUIGATE_BAG_BENCH_KEEP") {
        Some(keep) => {
            let keep = PathBuf::from(keep);
            if keep.exists() {
                std::fs::remove_dir_all(&keep).expect("remove the old kept bench bag");
            }
            keep
        }
        None => tmp.path().join("bench_bag"),
    };
    let n = write_bag(&dir);
    let mut group = c.benchmark_group("bag_read");
    group.sample_size(20);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("all_messages_100k", |b| {
        b.iter(|| {
            let reader = BagReader::open(&dir).expect("open");
            let mut count = 0usize;
            let mut bytes = 0usize;
            for msg in reader.messages(&TopicFilter::All).expect("messages") {
                let msg = msg.expect("message");
                count += 1;
                bytes += msg.data.len();
            }
            assert_eq!(count, n);
            bytes
        })
    });
    group.finish();
}

criterion_group!(benches, bag_read);
criterion_main!(benches);
