//! Every rosbag2-written fixture bag opens and yields exactly the topics and per-topic message
//! counts of its metadata.yaml, in log-time order; the mcap and sqlite3 copies of the same
//! recording hold the same messages.

mod common;

use std::collections::BTreeMap;

use common::{assert_time_order, counts, fixtures_dir, read_all};
use equigate_bag::{BagReader, Durability, History, TopicFilter};

#[test]
fn every_fixture_matches_its_metadata() {
    let Some(dir) = fixtures_dir() else { return };
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for bag in entries.into_iter().filter(|p| p.join("metadata.yaml").exists()) {
        let reader = BagReader::open(&bag).unwrap_or_else(|e| panic!("{}: {e}", bag.display()));
        assert!(
            reader.recovery().is_none(),
            "{}: finalised bag reported as recovered",
            bag.display()
        );
        let meta = reader.metadata();
        let expected: BTreeMap<String, u64> = meta
            .topics_with_message_count
            .iter()
            .filter(|t| t.message_count > 0)
            .map(|t| (t.topic_metadata.name.clone(), t.message_count))
            .collect();
        let messages = read_all(&reader);
        assert_eq!(counts(&messages), expected, "{}", bag.display());
        assert_eq!(messages.len() as u64, meta.message_count, "{}", bag.display());
        assert_time_order(&messages);
        // Topics and types as metadata.yaml lists them, the type on every message.
        let names: Vec<&str> = reader.topics().iter().map(|t| t.name.as_str()).collect();
        let listed: Vec<&str> =
            meta.topics_with_message_count.iter().map(|t| t.topic_metadata.name.as_str()).collect();
        assert_eq!(names, listed);
        for m in &messages {
            let topic = reader.topics().iter().find(|t| *t.name == *m.topic).unwrap();
            assert_eq!(*m.type_name, topic.type_name);
            assert_eq!(&m.data[..2], &[0, 1], "{}: CDR little-endian header", bag.display());
        }
        if let Some(first) = messages.first() {
            assert_eq!(
                first.log_time_ns,
                meta.starting_time.nanoseconds_since_epoch,
                "{}",
                bag.display()
            );
            let last = messages.last().unwrap().log_time_ns;
            assert_eq!(
                (last - first.log_time_ns) as u64,
                meta.duration.nanoseconds,
                "{}",
                bag.display()
            );
        }
        eprintln!(
            "{}: v{} {} {} messages",
            bag.display(),
            meta.version,
            meta.storage_identifier,
            messages.len()
        );
        seen += 1;
    }
    assert!(seen >= 5, "expected the five fixture bags, found {seen}");
}

#[test]
fn mcap_and_sqlite3_copies_hold_the_same_messages() {
    let Some(dir) = fixtures_dir() else { return };
    for (a, b) in [("mcap_cdr_test", "sqlite3_cdr_test"), ("mcap_rewriter_a", "sqlite3_convert_a")]
    {
        let ma = read_all(&BagReader::open(&dir.join(a)).unwrap());
        let mb = read_all(&BagReader::open(&dir.join(b)).unwrap());
        assert_eq!(ma.len(), mb.len(), "{a} vs {b}");
        // Same multiset of (time, topic, data); order within equal times may differ by storage.
        let key =
            |m: &equigate_bag::BagMessage| (m.log_time_ns, m.topic.to_string(), m.data.clone());
        let mut ka: Vec<_> = ma.iter().map(key).collect();
        let mut kb: Vec<_> = mb.iter().map(key).collect();
        ka.sort();
        kb.sort();
        assert_eq!(ka, kb, "{a} vs {b}");
    }
}

#[test]
fn qos_and_filters_of_a_fixture() {
    let Some(dir) = fixtures_dir() else { return };
    let reader = BagReader::open(&dir.join("mcap_rewriter_a")).unwrap();
    let empty = reader.topics().iter().find(|t| t.name == "a_empty").unwrap();
    assert_eq!(empty.type_name, "test_msgs/msg/Empty");
    assert_eq!(empty.offered_qos.len(), 2, "two publishers' profiles");
    assert_eq!(empty.offered_qos[1].depth, 2);
    assert_eq!(empty.offered_qos[0].history, History::KeepLast);
    assert_eq!(empty.offered_qos[0].durability, Durability::TransientLocal);
    let only: Vec<_> = reader
        .messages(&TopicFilter::Only(vec!["b_basictypes".into()]))
        .unwrap()
        .map(|m| m.unwrap())
        .collect();
    assert_eq!(only.len(), 50);
    assert!(only.iter().all(|m| &*m.topic == "b_basictypes"));
    assert!(matches!(
        reader.messages(&TopicFilter::Only(vec!["/nope".into()])),
        Err(equigate_bag::BagError::UnknownTopic { .. })
    ));
    // The sqlite3 copy filters the same way.
    let sqlite = BagReader::open(&dir.join("sqlite3_convert_a")).unwrap();
    let n = sqlite.messages(&TopicFilter::Only(vec!["a_empty".into()])).unwrap().count();
    assert_eq!(n, 100);
}
