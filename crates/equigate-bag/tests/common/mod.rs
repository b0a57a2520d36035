//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use equigate_bag::{BagMessage, BagReader, TopicFilter};

/// Real rosbag2-written bags (test_msgs types), outside the repository; `None` with a note
/// when this checkout has no ../shared/fixtures beside it.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/rosbag2"));
    if dir.is_dir() {
        Some(dir.to_path_buf())
    } else {
        eprintln!(
            "SKIP: no rosbag2 fixtures at {} (they live beside the repository)",
            dir.display()
        );
        None
    }
}

/// Every message of a bag, panicking on errors.
pub fn read_all(reader: &BagReader) -> Vec<BagMessage> {
    reader.messages(&TopicFilter::All).expect("messages").map(|m| m.expect("message")).collect()
}

/// Messages per topic.
pub fn counts(messages: &[BagMessage]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for m in messages {
        *counts.entry(m.topic.to_string()).or_insert(0) += 1;
    }
    counts
}

/// Asserts non-decreasing log times.
pub fn assert_time_order(messages: &[BagMessage]) {
    for w in messages.windows(2) {
        assert!(
            w[0].log_time_ns <= w[1].log_time_ns,
            "out of order: {} then {}",
            w[0].log_time_ns,
            w[1].log_time_ns
        );
    }
}
