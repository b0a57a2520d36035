//! Interop with an independent DDS implementation: Cyclone DDS through PyPI `cyclonedds`
//! (tests/interop/peer.py): JointState + Float64MultiArray both ways, fragmented best-effort
//! depth images Rust -> Cyclone, a std_srvs/Trigger call from a Cyclone client (rmw_cyclonedds
//! request header), a Rust-Rust service call, and a packet capture showing that the default
//! (localhost-only) discovery sends nothing on a non-loopback interface.
//!
//! ```text
//! python3 -m pip install -r tests/interop/requirements.txt   # cyclonedds, once
//! apt-get install -y tcpdump                                 # for no_rtps_outside_loopback
//! cargo test -p equigate-ros                                 # unit + these tests
//! ```
//!
//! Every test re-executes itself under `unshare -rn` (a fresh user + network namespace, so it
//! works as root and as a user with user namespaces; `unshare -n` where only root namespaces
//! work) and brings `lo` up; no DDS participant ever starts outside a namespace that has only
//! loopback (the child checks /proc/net/dev before starting anything). The Rust side is the `talker` and
//! `listener` examples, which `cargo test -p equigate-ros` builds; with a `--test interop`
//! filter build them first with `cargo build -p equigate-ros --examples`.
//!
//! Without `cyclonedds` the tests fail with the install command, unless
//! `EQUIGATE_SKIP_INTEROP=1`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NETNS_ENV: &str = "EQUIGATE_IN_TEST_NETNS";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root exists")
}

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/interop-<hash> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe.parent().and_then(Path::parent).map(|d| d.join("examples").join(name));
    match path {
        Some(p) if p.exists() => p,
        _ => panic!(
            "example `{name}` not built; run `cargo test -p equigate-ros` (which builds the \
             examples) or `cargo build -p equigate-ros --examples` first"
        ),
    }
}

/// Returns true when the caller should go on (inside the namespace); false when the test is
/// skipped or has just been run in a fresh namespace. Outside the namespace, re-runs this one
/// test there and asserts that it passed.
fn enter_netns(test: &str) -> bool {
    enter_netns_with(test, true)
}

fn enter_netns_with(test: &str, needs_python_peer: bool) -> bool {
    if needs_python_peer && !require_cyclonedds(test) {
        return false;
    }
    if std::env::var(NETNS_ENV).as_deref() == Ok("1") {
        let up = Command::new("ip").args(["link", "set", "lo", "up"]).status();
        assert!(up.is_ok_and(|s| s.success()), "`ip link set lo up` failed in the namespace");
        let ifaces = interfaces();
        assert_eq!(ifaces, ["lo"], "refusing to start DDS: namespace has non-loopback interfaces");
        return true;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new("unshare")
        .args(unshare_flags())
        .arg("--")
        .arg(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(NETNS_ENV, "1")
        .output()
        .expect("`unshare` (util-linux) is needed for the interop tests");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("---- {test} inside `unshare {}` ----\n{text}", unshare_flags().join(" "));
    assert!(out.status.success(), "{test} failed inside the network namespace (see above)");
    assert!(text.contains("1 passed"), "{test} did not run inside the namespace");
    false
}

/// `-rn` (user + network namespace: works for root and for users with user namespaces);
/// `-n` where user namespaces are disabled but we are root.
fn unshare_flags() -> Vec<&'static str> {
    let works = |flags: &[&str]| {
        Command::new("unshare")
            .args(flags)
            .arg("true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works(&["-rn"]) || !works(&["-n"]) {
        vec!["-rn"]
    } else {
        vec!["-n"]
    }
}

/// Skip (with EQUIGATE_SKIP_INTEROP=1) or fail with the install command when cyclonedds is
/// missing. Returns false to skip.
fn require_cyclonedds(test: &str) -> bool {
    if python_has_cyclonedds() {
        return true;
    }
    if std::env::var("EQUIGATE_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!("SKIPPED {test}: python3 cannot import cyclonedds (EQUIGATE_SKIP_INTEROP=1)");
        return false;
    }
    panic!(
        "interop test needs the Cyclone DDS Python peer: `python3 -c 'import cyclonedds'` \
         failed. Install it with `python3 -m pip install -r tests/interop/requirements.txt` \
         (pins cyclonedds), or set EQUIGATE_SKIP_INTEROP=1 to skip."
    );
}

fn python_has_cyclonedds() -> bool {
    Command::new("python3")
        .args(["-c", "import cyclonedds"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Interface names of the current network namespace (/proc/net/dev is per namespace; /sys may
/// still show the host's).
fn interfaces() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
    text.lines().skip(2).filter_map(|l| l.split(':').next()).map(|s| s.trim().to_owned()).collect()
}

fn peer(args: &[&str]) -> Command {
    let dir = repo_root().join("tests/interop");
    let mut c = Command::new("python3");
    c.arg(dir.join("peer.py")).args(args).current_dir(dir);
    c.env_remove("ROS_AUTOMATIC_DISCOVERY_RANGE").env_remove("ROS_LOCALHOST_ONLY");
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn rust_example(name: &str, args: &[&str]) -> Command {
    let mut c = Command::new(example(name));
    c.args(args);
    // Default discovery settings: localhost only.
    c.env_remove("ROS_AUTOMATIC_DISCOVERY_RANGE").env_remove("ROS_LOCALHOST_ONLY");
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Waits for `child` up to `limit`; kills it after that. Returns (exited ok, stdout+stderr).
fn finish(mut child: Child, limit: Duration) -> (bool, String) {
    let start = Instant::now();
    let ok = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.success(),
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
        }
    };
    let mut text = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut text);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    (ok, text)
}

fn stop(mut child: Child) -> String {
    let _ = child.kill();
    finish(child, Duration::from_secs(5)).1
}

#[test]
fn rust_talker_to_cyclone_peer() {
    if !enter_netns("rust_talker_to_cyclone_peer") {
        return;
    }
    // 128 x 128 32FC1 = 64 KiB per image: fragmented, best effort.
    let listener = peer(&["listen", "--count", "5", "--image", "5", "--timeout", "45"])
        .spawn()
        .expect("python3");
    std::thread::sleep(Duration::from_millis(500));
    let talker = rust_example("talker", &["--count", "1000", "--rate", "20", "--image", "128"])
        .spawn()
        .unwrap();
    let (ok, out) = finish(listener, Duration::from_secs(50));
    let talker_out = stop(talker);
    println!("peer (cyclonedds):\n{out}\ntalker:\n{talker_out}");
    assert!(ok && out.contains("RECEIVED"), "Cyclone peer did not receive the talker's stream");
}

#[test]
fn cyclone_peer_to_rust_listener() {
    if !enter_netns("cyclone_peer_to_rust_listener") {
        return;
    }
    let listener =
        rust_example("listener", &["--count", "5", "--timeout", "45"]).spawn().expect("listener");
    std::thread::sleep(Duration::from_millis(200));
    let talker = peer(&["talk", "--duration", "50"]).spawn().expect("python3");
    let (ok, out) = finish(listener, Duration::from_secs(50));
    let peer_out = stop(talker);
    println!("listener:\n{out}\npeer (cyclonedds):\n{peer_out}");
    assert!(ok && out.contains("RECEIVED"), "Rust listener did not receive the peer's stream");
}

#[test]
fn cyclone_client_calls_rust_service() {
    if !enter_netns("cyclone_client_calls_rust_service") {
        return;
    }
    // The Cyclone peer speaks rmw_cyclonedds's request/reply header, so the server uses that
    // mapping (chosen from RMW_IMPLEMENTATION, as a node launched under rmw_cyclonedds would).
    let talker = rust_example("talker", &["--count", "1000", "--rate", "20"])
        .env("RMW_IMPLEMENTATION", "rmw_cyclonedds_cpp")
        .spawn()
        .expect("talker");
    let client = peer(&["call-reset", "--service", "/talker/reset", "--timeout", "40"])
        .spawn()
        .expect("python3");
    let (ok, out) = finish(client, Duration::from_secs(45));
    let talker_out = stop(talker);
    println!("client (cyclonedds):\n{out}\ntalker:\n{talker_out}");
    assert!(ok && out.contains("SERVICE OK"), "Trigger call through Cyclone DDS failed");
}

/// Rust client and Rust server in one process (two participants), default (Enhanced, Fast DDS
/// style) service mapping, names resolved through `--ros-args` remaps.
#[test]
fn rust_service_roundtrip_with_remap() {
    if !enter_netns_with("rust_service_roundtrip_with_remap", false) {
        return;
    }
    use equigate_ros::msg::{EmptyStruct, TriggerResponse, TriggerSrv};
    use equigate_ros::{DiscoveryConfig, Ros, RosArgs};
    let server_args =
        RosArgs::parse(["sim", "--ros-args", "-r", "__ns:=/arm1", "-r", "~/reset:=/sim_reset"])
            .unwrap();
    let mut server_node =
        Ros::with_discovery("sim", "/", &server_args, DiscoveryConfig::default()).unwrap();
    assert_eq!(server_node.resolve("~/reset").unwrap(), "/sim_reset");
    let server = server_node.service_server::<TriggerSrv>("~/reset").unwrap();
    let mut client_node =
        Ros::with_discovery("caller", "/", &RosArgs::default(), DiscoveryConfig::default())
            .unwrap();
    let client = client_node.service_client::<TriggerSrv>("/sim_reset").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last_send = Instant::now() - Duration::from_secs(1);
    loop {
        assert!(Instant::now() < deadline, "no reply within 30 s");
        if last_send.elapsed() > Duration::from_millis(500) {
            client.send_request(EmptyStruct::default()).unwrap();
            last_send = Instant::now();
        }
        if let Some((id, _req)) = server.receive_request().unwrap() {
            server
                .send_response(id, TriggerResponse { success: true, message: "done".into() })
                .unwrap();
        }
        if let Some((_id, resp)) = client.receive_response().unwrap() {
            assert_eq!(resp, TriggerResponse { success: true, message: "done".into() });
            println!("service reply: {resp:?}");
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// tests/interop/no_leak_capture.sh: with a non-loopback interface in the namespace, the talker
/// with default settings puts 0 RTPS (0 UDP) packets on it while the Cyclone peer on lo gets
/// the data. The script makes its own namespace.
#[test]
fn no_rtps_outside_loopback() {
    let has_tcpdump = Command::new("tcpdump")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_tcpdump {
        if std::env::var("EQUIGATE_SKIP_INTEROP").as_deref() == Ok("1") {
            eprintln!("SKIPPED no_rtps_outside_loopback: no tcpdump (EQUIGATE_SKIP_INTEROP=1)");
            return;
        }
        panic!("no_rtps_outside_loopback needs tcpdump: `apt-get install -y tcpdump` (Debian)");
    }
    if !require_cyclonedds("no_rtps_outside_loopback") {
        return;
    }
    let script = repo_root().join("tests/interop/no_leak_capture.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(example("talker"))
        .env_remove(NETNS_ENV)
        .output()
        .expect("bash");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "no_leak_capture.sh failed:\n{text}");
    assert!(text.contains("RTPS packets on dummy0: 0"), "{text}");
}
