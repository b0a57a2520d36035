//! record_node over DDS: `equigate record` records the real-time sim_node (`equigate node sim`,
//! which publishes without a policy) for about 3 s, and the bag reads back with
//! `equigate_bag::BagReader`, both after SIGINT (finished bag, metadata.yaml) and after SIGKILL
//! (recovered from the complete chunks).
//!
//! Every process that opens a DDS participant runs inside a fresh network namespace with only
//! loopback (tests/interop/in_netns.sh, `unshare -rn`). `EQUIGATE_SKIP_INTEROP=1` skips them.
//! `cargo test --test record_node -- --nocapture` prints the messages per topic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use equigate_bag::{BagReader, Durability, History, Reliability, TopicFilter};
use equigate_ros::msg::{from_cdr, JointState, PointStamped, Time};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn skip() -> bool {
    let skip = std::env::var("EQUIGATE_SKIP_INTEROP").as_deref() == Ok("1");
    if skip {
        eprintln!("skipped: EQUIGATE_SKIP_INTEROP=1");
    }
    skip
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("equigate-rec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `script` with bash inside a loopback-only network namespace, with `EQ` naming the
/// `equigate` executable, `BAG` the bag directory to record into and `DIR` a scratch directory.
fn in_netns(script: &str, dir: &Path, bag: &Path) -> Output {
    Command::new(root().join("tests/interop/in_netns.sh"))
        .args(["bash", "-c", script])
        .current_dir(root())
        .env("EQ", env!("CARGO_BIN_EXE_equigate"))
        .env("DIR", dir)
        .env("BAG", bag)
        .env("RUST_LOG", "info")
        .output()
        .expect("tests/interop/in_netns.sh runs (needs unshare and ip)")
}

/// sim_node in real time, and record_node with 4 KiB chunks (so that chunks complete within
/// the 3 s), stopped with `$SIGNAL`.
const SCRIPT: &str = r#"
    "$EQ" node sim --ros-args --params-file config/ur5e.yaml 2>"$DIR/sim.log" & sim=$!
    trap 'kill -INT $sim 2>/dev/null; wait $sim' EXIT
    "$EQ" record --ros-args --params-file config/record.yaml -p output:="$BAG" \
        -p chunk_size:=4096 & rec=$!
    sleep 3
    kill -$SIGNAL $rec
    wait $rec
"#;

/// Messages per topic, checking that every /joint_states decodes as a 6-joint JointState and
/// every /goal as a finite PointStamped, with log times within `[t0, t1]` (wall clock, ns).
fn check_messages(reader: &BagReader, t0: i64, t1: i64) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for msg in reader.messages(&TopicFilter::All).unwrap() {
        let msg = msg.unwrap();
        *counts.entry(msg.topic.to_string()).or_default() += 1;
        assert!(
            (t0..=t1).contains(&msg.log_time_ns),
            "log time {} outside the run",
            msg.log_time_ns
        );
        match &*msg.topic {
            "/joint_states" => {
                assert_eq!(&*msg.type_name, "sensor_msgs/msg/JointState");
                let js: JointState = from_cdr(&msg.data).unwrap();
                assert_eq!(js.name.len(), 6, "{js:?}");
                assert_eq!(js.position.len(), 6, "{js:?}");
                assert!(js.position.iter().all(|p| p.is_finite()), "{js:?}");
            }
            "/goal" => {
                let goal: PointStamped = from_cdr(&msg.data).unwrap();
                assert!(goal.point.x.is_finite() && goal.point.z.is_finite(), "{goal:?}");
            }
            _ => {}
        }
    }
    counts
}

#[test]
fn sigint_finishes_a_bag_that_reads_back_with_metadata() {
    if skip() {
        return;
    }
    let dir = temp_dir("sigint");
    let bag = dir.join("bag");
    let t0 = Time::now().as_nanos();
    let out = in_netns(&SCRIPT.replace("$SIGNAL", "INT"), &dir, &bag);
    let t1 = Time::now().as_nanos();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "record_node failed ({}):\n{log}", out.status);
    assert!(log.contains("recorded ") && log.contains("/joint_states"), "no summary:\n{log}");
    assert!(bag.join("metadata.yaml").is_file(), "no metadata.yaml:\n{log}");

    let reader = BagReader::open(&bag).unwrap();
    assert!(reader.recovery().is_none(), "a finished bag needs no recovery");
    let topics: Vec<&str> = reader.topics().iter().map(|t| t.name.as_str()).collect();
    for t in ["/joint_states", "/goal", "/forward_velocity_controller/commands", "/clock"] {
        assert!(topics.contains(&t), "{t} missing from {topics:?}");
    }
    // QoS as the publishers offered it (DDS discovery: history and depth are not announced, so
    // `unknown`, as rosbag2 records them); a topic without a publisher keeps the graph's QoS.
    let qos =
        |name: &str| reader.topics().iter().find(|t| t.name == name).unwrap().offered_qos.clone();
    let states = qos("/joint_states");
    assert_eq!(states.len(), 1, "one publisher: {states:?}");
    assert_eq!(
        (states[0].history, states[0].reliability, states[0].durability),
        (History::Unknown, Reliability::Reliable, Durability::Volatile),
        "{states:?}"
    );
    let commands = qos("/forward_velocity_controller/commands");
    assert_eq!((commands[0].history, commands[0].depth), (History::KeepLast, 10), "{commands:?}");
    let counts = check_messages(&reader, t0, t1);
    println!("after SIGINT: {counts:?}");
    // 125 Hz for ~3 s less discovery.
    assert!(counts.get("/joint_states").copied().unwrap_or(0) >= 50, "{counts:?}\n{log}");
    assert!(counts.get("/goal").copied().unwrap_or(0) >= 5, "{counts:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigkill_leaves_a_bag_that_recovers_and_decodes() {
    if skip() {
        return;
    }
    let dir = temp_dir("sigkill");
    let bag = dir.join("bag");
    let t0 = Time::now().as_nanos();
    let out = in_netns(&SCRIPT.replace("$SIGNAL", "KILL"), &dir, &bag);
    let t1 = Time::now().as_nanos();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(137), "record_node should die of SIGKILL:\n{log}");
    assert!(!bag.join("metadata.yaml").exists(), "killed before finish: no metadata.yaml");

    let reader = BagReader::open(&bag).unwrap_or_else(|e| panic!("{e}\n{log}"));
    let recovery = reader.recovery().expect("a killed recording is reported as recovered");
    println!("after SIGKILL: {recovery:?}");
    assert!(recovery.metadata_missing, "{recovery:?}");
    let counts = check_messages(&reader, t0, t1);
    println!("recovered: {counts:?}");
    assert!(counts.get("/joint_states").copied().unwrap_or(0) >= 20, "{counts:?}\n{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Cyclone DDS peer publishes /joint_states and the commands best effort, where the graph
/// expects reliable: record_node adapts its subscriptions to the offers, as `ros2 bag record`
/// does, records both and writes the best-effort offers into the bag.
#[test]
fn best_effort_publishers_are_recorded() {
    if skip() {
        return;
    }
    let cyclone = Command::new("python3").args(["-c", "import cyclonedds"]).status();
    assert!(
        cyclone.is_ok_and(|s| s.success()),
        "PyPI cyclonedds is needed (tests/requirements.txt)"
    );
    let dir = temp_dir("best-effort");
    let bag = dir.join("bag");
    let script = r#"
        PYTHONPATH=tests/interop python3 tests/interop/peer.py talk --best-effort --duration 6 \
            --rate 50 > "$DIR/peer.log" & peer=$!
        "$EQ" record --ros-args -p output:="$BAG" \
            -p topics:="[/joint_states, /forward_velocity_controller/commands]" & rec=$!
        sleep 4
        kill -INT $rec
        wait $rec
        wait $peer
    "#;
    let out = in_netns(script, &dir, &bag);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "record_node failed ({}):\n{log}", out.status);
    assert!(log.contains("subscribed best effort"), "no adaptation logged:\n{log}");
    let reader = BagReader::open(&bag).unwrap();
    let mut counts = BTreeMap::<String, usize>::new();
    for msg in reader.messages(&TopicFilter::All).unwrap() {
        *counts.entry(msg.unwrap().topic.to_string()).or_default() += 1;
    }
    println!("best-effort peer at 50 Hz, about 4 s recorded: {counts:?}");
    for topic in ["/joint_states", "/forward_velocity_controller/commands"] {
        assert!(counts.get(topic).copied().unwrap_or(0) >= 50, "{topic}: {counts:?}\n{log}");
        let t = reader.topics().iter().find(|t| t.name == topic).unwrap();
        assert_eq!(t.offered_qos.len(), 1, "{t:?}");
        assert_eq!(t.offered_qos[0].reliability, Reliability::BestEffort, "{t:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
