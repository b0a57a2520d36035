//! record_node: records topics of the equigate graph into a rosbag2 bag (MCAP storage, as
//! `ros2 bag record` writes it since Iron), without ROS installed.
//!
//! ```text
//! equigate record --ros-args --params-file config/record.yaml -p output:=bags/run1
//! equigate record --ros-args -p use_sim_time:=true -p metadata_version:=5   # lockstep, Humble
//! ```
//!
//! Subscribes to each topic of `topics` with the type it has in the graph ([`GRAPH_TOPICS`]) once
//! DDS discovery knows a publisher of it, with a QoS adapted to what the publishers offer, as
//! `ros2 bag record` does: reliable only if every publisher is reliable, transient local only if
//! every publisher is, keep last 10 (5 for the depth image). A topic enters the bag at its first
//! message, with the QoS profiles its publishers offer as discovery announces them (as
//! `ros2 bag record` writes `offered_qos_profiles`). A topic without a known publisher is listed
//! with the graph's QoS: reliable keep last 10, or best effort keep last 5 for the depth image.
//! Every message is re-serialized as CDR and written with its receive time as log time: the wall
//! clock (ns since the Unix epoch), or with `use_sim_time` the latest `/clock`
//! (ns since the start of simulation, 0 before the first). On SIGINT/SIGTERM it finishes the bag
//! (MCAP summary and footer, then `metadata.yaml`) and logs the messages per topic. A recorder
//! killed with SIGKILL leaves the complete chunks and no metadata.yaml; `equigate_bag::BagReader`
//! recovers them. Messages that fail to deserialize or to write are counted and logged
//! (throttled), never fatal. Parameters: [`RecordConfig`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::sim_server::Every;
use anyhow::{bail, Context as _, Result};
use equigate_bag::{
    BagWriter, Compression, Durability, History, Liveliness, MetadataVersion, Qos, QosDuration,
    Reliability, TopicId, TopicInfo, WriterOptions,
};
use equigate_ros::msg::{
    to_cdr, CameraInfo, Clock, DiagnosticArray, Float32, Float64MultiArray, Image, JointState,
    PointStamped, RosMsg, Time,
};
use equigate_ros::ros2_client::{QosProfile, Subscription};
use equigate_ros::{Params, Ros, RosArgs};
use serde::{Deserialize, Serialize};

/// Chunk compression of the bag's MCAP file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BagCompression {
    /// Uncompressed chunks.
    None,
    /// Zstandard chunks (default).
    #[default]
    Zstd,
    /// LZ4 frame chunks.
    Lz4,
}

/// Parameters of record_node (`record_node: ros__parameters:` in config/record.yaml). Unknown
/// parameters are rejected, naming the file they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordConfig {
    /// Bag directory to create; it must not exist or be empty. Empty (default):
    /// `bags/equigate_<UTC YYYY_MM_DD-HH_MM_SS>`, as rosbag2 names its bags.
    pub output: String,
    /// Topics to record, resolved against the node's namespace and remappable with `-r`. Each
    /// must be one of [`GRAPH_TOPICS`] (default: `/joint_states`, `/goal`,
    /// `/forward_velocity_controller/commands`, `/clock`, `/diagnostics`, `/equigate/lambda`;
    /// add `/camera/depth/image_raw` for the depth images, about 16 KiB each at 15 Hz).
    pub topics: Vec<String>,
    /// `none`, `zstd` or `lz4` chunk compression (default: `zstd`).
    pub compression: BagCompression,
    /// metadata.yaml version: `9` (Jazzy, default) or `5` (readable by Humble's rosbag2).
    pub metadata_version: u32,
    /// Uncompressed MCAP chunk size, bytes (default: `786432`, rosbag2's). A recorder killed
    /// with SIGKILL loses at most about the last chunk.
    pub chunk_size: u64,
    /// Log times from `/clock` (ns of simulated time) instead of the wall clock (default:
    /// `false`; set it with a lockstep simulator).
    pub use_sim_time: bool,
}

impl Default for RecordConfig {
    fn default() -> Self {
        Self {
            output: String::new(),
            topics: [
                "/joint_states",
                "/goal",
                "/forward_velocity_controller/commands",
                "/clock",
                "/diagnostics",
                "/equigate/lambda",
            ]
            .map(String::from)
            .to_vec(),
            compression: BagCompression::Zstd,
            metadata_version: 9,
            chunk_size: WriterOptions::default().chunk_size,
            use_sim_time: false,
        }
    }
}

impl RecordConfig {
    /// Checks the values serde cannot: the metadata version, a positive chunk size, at least
    /// one topic, and that every topic is one of [`GRAPH_TOPICS`].
    ///
    /// # Errors
    /// The first bad parameter, named.
    pub fn validate(&self) -> Result<()> {
        if !matches!(self.metadata_version, 5 | 9) {
            bail!(
                "parameter `metadata_version` = {} must be 9 (Jazzy) or 5 (Humble)",
                self.metadata_version
            );
        }
        if self.chunk_size == 0 {
            bail!("parameter `chunk_size` must be positive (bytes)");
        }
        if self.topics.is_empty() {
            bail!("parameter `topics` is empty: nothing to record");
        }
        for topic in &self.topics {
            graph_topic(topic)?;
        }
        Ok(())
    }

    /// The bag writer's options.
    pub fn writer_options(&self) -> WriterOptions {
        let defaults = WriterOptions::default();
        WriterOptions {
            compression: match self.compression {
                BagCompression::None => Compression::None,
                BagCompression::Zstd => Compression::Zstd,
                BagCompression::Lz4 => Compression::Lz4,
            },
            chunk_size: self.chunk_size,
            metadata_version: match self.metadata_version {
                5 => MetadataVersion::V5,
                _ => MetadataVersion::V9,
            },
            ros_distro: std::env::var("ROS_DISTRO").unwrap_or(defaults.ros_distro),
        }
    }

    /// `output`, or `bags/equigate_<UTC now>` when it is empty.
    pub fn output_dir(&self) -> PathBuf {
        if self.output.is_empty() {
            PathBuf::from("bags").join(format!("equigate_{}", utc_stamp(Time::now())))
        } else {
            PathBuf::from(&self.output)
        }
    }
}

/// The message types of the equigate graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphType {
    /// sensor_msgs/msg/JointState
    JointState,
    /// geometry_msgs/msg/PointStamped
    PointStamped,
    /// std_msgs/msg/Float64MultiArray
    Float64MultiArray,
    /// rosgraph_msgs/msg/Clock
    Clock,
    /// diagnostic_msgs/msg/DiagnosticArray
    DiagnosticArray,
    /// std_msgs/msg/Float32
    Float32,
    /// sensor_msgs/msg/Image
    Image,
    /// sensor_msgs/msg/CameraInfo
    CameraInfo,
}

/// A topic of the graph: its name without the leading `/`, type, and whether it is sensor data
/// (best effort) rather than reliable.
#[derive(Debug, Clone, Copy)]
pub struct GraphTopic {
    /// Name relative to the graph's namespace, e.g. `joint_states`.
    pub name: &'static str,
    /// Message type.
    pub msg: GraphType,
    /// Best effort keep last 5 (images) instead of reliable keep last 10.
    pub sensor_data: bool,
}

/// Every topic that the sim, policy and detector nodes publish, with its type and QoS.
pub const GRAPH_TOPICS: &[GraphTopic] = &[
    GraphTopic { name: "joint_states", msg: GraphType::JointState, sensor_data: false },
    GraphTopic { name: "goal", msg: GraphType::PointStamped, sensor_data: false },
    GraphTopic {
        name: "forward_velocity_controller/commands",
        msg: GraphType::Float64MultiArray,
        sensor_data: false,
    },
    GraphTopic { name: "clock", msg: GraphType::Clock, sensor_data: false },
    GraphTopic { name: "diagnostics", msg: GraphType::DiagnosticArray, sensor_data: false },
    GraphTopic { name: "equigate/lambda", msg: GraphType::Float32, sensor_data: false },
    GraphTopic { name: "equigate/lambda_map", msg: GraphType::Image, sensor_data: false },
    GraphTopic { name: "equigate/lambda_map/rgb", msg: GraphType::Image, sensor_data: false },
    GraphTopic { name: "camera/depth/image_raw", msg: GraphType::Image, sensor_data: true },
    GraphTopic { name: "camera/depth/camera_info", msg: GraphType::CameraInfo, sensor_data: false },
];

/// The graph topic `topic` names: the same name, with or without a leading `/` or a namespace
/// in front (`/arm1/joint_states` is `joint_states`).
///
/// # Errors
/// A topic the graph does not have, listing those it has.
pub fn graph_topic(topic: &str) -> Result<GraphTopic> {
    let name = topic.trim_start_matches('/');
    GRAPH_TOPICS
        .iter()
        .find(|t| name == t.name || name.ends_with(&format!("/{}", t.name)))
        .copied()
        .with_context(|| {
            let known: Vec<&str> = GRAPH_TOPICS.iter().map(|t| t.name).collect();
            format!(
                "parameter `topics`: `{topic}` is not a topic of the equigate graph, so its type is \
                 unknown; known (under any namespace): {}",
                known.join(", ")
            )
        })
}

/// One received message, serialized again.
struct Taken {
    /// CDR with the encapsulation header.
    cdr: Vec<u8>,
    /// DDS receive time, ns since the Unix epoch.
    received_ns: Option<i64>,
    /// The simulated time a `/clock` message carries, ns.
    clock_ns: Option<i64>,
}

/// A subscription of any graph type, giving CDR.
trait CdrSource {
    /// The next pending message; `Ok(None)` when none is pending. An error consumes the bad
    /// sample (RustDDS advances its read pointer either way).
    fn take_cdr(&self) -> Result<Option<Taken>, String>;
}

struct Typed<M: RosMsg> {
    sub: Subscription<M>,
    clock: fn(&M) -> Option<i64>,
}

impl<M: RosMsg> CdrSource for Typed<M> {
    fn take_cdr(&self) -> Result<Option<Taken>, String> {
        let Some((msg, info)) = self.sub.take().map_err(|e| format!("{e:?}"))? else {
            return Ok(None);
        };
        let cdr = to_cdr(&msg).map_err(|e| e.to_string())?;
        let received_ns = info.received_timestamp().map(|t| t.to_nanos());
        Ok(Some(Taken { cdr, received_ns, clock_ns: (self.clock)(&msg) }))
    }
}

fn no_clock<M>(_: &M) -> Option<i64> {
    None
}

/// A subscription to `topic` of type `M`.
fn typed<M: RosMsg>(
    ros: &mut Ros,
    topic: &str,
    qos: QosProfile,
    clock: fn(&M) -> Option<i64>,
) -> Result<Box<dyn CdrSource>> {
    let sub = ros.subscription::<M>(topic, qos)?;
    Ok(Box::new(Typed { sub, clock }))
}

/// `pkg/msg/Type` of a graph type.
fn type_name(t: GraphType) -> String {
    fn of<M: RosMsg>() -> String {
        format!("{}/msg/{}", M::PACKAGE, M::NAME)
    }
    match t {
        GraphType::JointState => of::<JointState>(),
        GraphType::PointStamped => of::<PointStamped>(),
        GraphType::Float64MultiArray => of::<Float64MultiArray>(),
        GraphType::Clock => of::<Clock>(),
        GraphType::DiagnosticArray => of::<DiagnosticArray>(),
        GraphType::Float32 => of::<Float32>(),
        GraphType::Image => of::<Image>(),
        GraphType::CameraInfo => of::<CameraInfo>(),
    }
}

/// A subscription to `topic` with its graph type `t`.
fn subscribe(
    ros: &mut Ros,
    topic: &str,
    t: GraphTopic,
    qos: QosProfile,
) -> Result<Box<dyn CdrSource>> {
    match t.msg {
        GraphType::JointState => typed::<JointState>(ros, topic, qos, no_clock),
        GraphType::PointStamped => typed::<PointStamped>(ros, topic, qos, no_clock),
        GraphType::Float64MultiArray => typed::<Float64MultiArray>(ros, topic, qos, no_clock),
        GraphType::Clock => typed::<Clock>(ros, topic, qos, |c| Some(c.clock.as_nanos())),
        GraphType::DiagnosticArray => typed::<DiagnosticArray>(ros, topic, qos, no_clock),
        GraphType::Float32 => typed::<Float32>(ros, topic, qos, no_clock),
        GraphType::Image => typed::<Image>(ros, topic, qos, no_clock),
        GraphType::CameraInfo => typed::<CameraInfo>(ros, topic, qos, no_clock),
    }
}

/// The subscription QoS that receives from every publisher in `offered` (non-empty), as
/// `ros2 bag record` adapts its request to the offers (rosbag2_transport's
/// `Rosbag2QoS::adapt_request_to_offers`): reliable when every publisher offers reliable, else
/// best effort (a reliable reader never matches a best-effort writer); transient local when
/// every publisher offers it, else volatile; keep last `depth`.
fn adapted_qos(offered: &[Qos], depth: usize) -> QosProfile {
    use equigate_ros::ros2_client::qos;
    let reliability = if offered.iter().all(|q| q.reliability == Reliability::Reliable) {
        qos::Reliability::Reliable { when_full: qos::WhenFull::DEFAULT }
    } else {
        qos::Reliability::BestEffort
    };
    let durability = if offered.iter().all(|q| q.durability == Durability::TransientLocal) {
        qos::Durability::TransientLocal
    } else {
        qos::Durability::Volatile
    };
    QosProfile::subscription_default()
        .reliability(reliability)
        .durability(durability)
        .history(qos::History::KeepLast { depth })
}

/// A recorded topic (or, with `record: false`, `/clock` read only for the time).
struct Source {
    topic: String,
    /// Its place in the graph (type, QoS class).
    graph: GraphTopic,
    /// Added to the bag at the first message (or at the end), with the QoS its publishers offer.
    id: Option<TopicId>,
    record: bool,
    type_name: String,
    /// The graph's QoS for the topic, recorded when discovery has announced no publisher.
    graph_qos: Qos,
    /// The subscription, made once discovery knows a publisher ([`Recorder::connect`]).
    reader: Option<Box<dyn CdrSource>>,
    written: u64,
    bad: u64,
}

/// The QoS profile each publisher discovered on `topic` (a resolved ROS name) offers, from DDS
/// discovery (SEDP), in the form rosbag2 records: DDS does not announce history and depth
/// (`unknown`, 0, as rosbag2 writes them); a policy an announcement leaves out has its DDS
/// default for writers (reliable, volatile, infinite deadline and lifespan, automatic
/// liveliness with an infinite lease; DDS 1.4 §2.2.3).
fn offered_qos(ros: &Ros, topic: &str) -> Vec<Qos> {
    use equigate_ros::ros2_client::dds::rustdds::policy;
    let duration = |d: equigate_ros::ros2_client::dds::rustdds::Duration| {
        if d == equigate_ros::ros2_client::dds::rustdds::Duration::INFINITE {
            QosDuration::INFINITE
        } else {
            let ns = d.to_nanoseconds().max(0) as u64;
            QosDuration { sec: ns / 1_000_000_000, nsec: ns % 1_000_000_000 }
        }
    };
    let dds_name = format!("rt{topic}");
    let writers = ros.context().domain_participant().discovered_writers();
    writers
        .iter()
        .map(|w| &w.publication_topic_data)
        .filter(|p| p.topic_name == dds_name)
        .map(|p| {
            let (liveliness, lease) = match p.liveliness {
                None => (Liveliness::Automatic, QosDuration::INFINITE),
                Some(policy::Liveliness::Automatic { lease_duration }) => {
                    (Liveliness::Automatic, duration(lease_duration))
                }
                Some(policy::Liveliness::ManualByParticipant { lease_duration }) => {
                    (Liveliness::ManualByNode, duration(lease_duration))
                }
                Some(policy::Liveliness::ManualByTopic { lease_duration }) => {
                    (Liveliness::ManualByTopic, duration(lease_duration))
                }
            };
            Qos {
                history: History::Unknown,
                depth: 0,
                reliability: match p.reliability {
                    Some(policy::Reliability::BestEffort) => Reliability::BestEffort,
                    Some(policy::Reliability::Reliable { .. }) | None => Reliability::Reliable,
                },
                durability: match p.durability {
                    Some(policy::Durability::Volatile) | None => Durability::Volatile,
                    Some(policy::Durability::TransientLocal) => Durability::TransientLocal,
                    Some(policy::Durability::Transient | policy::Durability::Persistent) => {
                        Durability::Unknown
                    }
                },
                deadline: p.deadline.map_or(QosDuration::INFINITE, |d| duration(d.0)),
                lifespan: p.lifespan.map_or(QosDuration::INFINITE, |l| duration(l.duration)),
                liveliness,
                liveliness_lease_duration: lease,
                avoid_ros_namespace_conventions: false,
            }
        })
        .collect()
}

/// At most this many messages per topic per loop turn, so that one busy topic cannot starve
/// the others or the stop flag.
const MAX_TAKE_PER_TURN: usize = 256;

/// The bag being written and the subscriptions that feed it.
struct Recorder {
    writer: BagWriter,
    sources: Vec<Source>,
    use_sim_time: bool,
    /// Latest `/clock`, ns (with `use_sim_time`; 0 before the first).
    sim_now: i64,
    write_errors: u64,
    warn_due: Every,
}

impl Recorder {
    /// Prepares every configured topic (and with `use_sim_time` `/clock`, recorded or not,
    /// polled first so that each turn's messages get the latest simulated time). Each is
    /// subscribed once a publisher is discovered ([`Recorder::connect`]) and enters the bag at its
    /// first message ([`Recorder::add_topic`]).
    fn new(ros: &mut Ros, config: &RecordConfig, writer: BagWriter) -> Result<Recorder> {
        let mut sources = Vec::new();
        let source = |ros: &mut Ros, topic: &str, record: bool| -> Result<Source> {
            let graph = graph_topic(topic)?;
            let type_name = type_name(graph.msg);
            let graph_qos = if graph.sensor_data { Qos::sensor_data(5) } else { Qos::reliable(10) };
            let topic = ros.resolve(topic)?;
            Ok(Source {
                topic,
                graph,
                id: None,
                record,
                type_name,
                graph_qos,
                reader: None,
                written: 0,
                bad: 0,
            })
        };
        for topic in &config.topics {
            sources.push(source(ros, topic, true)?);
        }
        if config.use_sim_time {
            let clock = ros.resolve("/clock")?;
            if !sources.iter().any(|s| s.topic == clock) {
                sources.push(source(ros, "/clock", false)?);
            }
            sources.sort_by_key(|s| s.topic != clock);
        }
        let use_sim_time = config.use_sim_time;
        let warn_due = Every::hz(1.0);
        Ok(Recorder { writer, sources, use_sim_time, sim_now: 0, write_errors: 0, warn_due })
    }

    /// Subscribes to each topic that has none yet and whose publishers discovery now knows,
    /// with the QoS adapted to their offers ([`adapted_qos`]; the graph's depth), as
    /// `ros2 bag record` does, so that a best-effort publisher is recorded even where the graph
    /// expects reliable. Messages sent before the subscription matched are not recorded.
    ///
    /// # Errors
    /// DDS failures creating a subscription.
    fn connect(&mut self, ros: &mut Ros) -> Result<()> {
        for s in self.sources.iter_mut().filter(|s| s.reader.is_none()) {
            let offered = offered_qos(ros, &s.topic);
            if offered.is_empty() {
                continue;
            }
            let qos = adapted_qos(&offered, s.graph_qos.depth as usize);
            let reliable = matches!(
                qos.reliability,
                equigate_ros::ros2_client::qos::Reliability::Reliable { .. }
            );
            s.reader = Some(subscribe(ros, &s.topic, s.graph, qos)?);
            let graph_reliable = s.graph_qos.reliability == Reliability::Reliable;
            let how = if reliable { "reliable" } else { "best effort" };
            if reliable != graph_reliable {
                tracing::warn!(
                    "{}: subscribed {how}, adapted to its {} publisher(s); the graph expects {}",
                    s.topic,
                    offered.len(),
                    if graph_reliable { "reliable" } else { "best effort" }
                );
            } else {
                tracing::info!("{}: subscribed {how} ({} publisher(s))", s.topic, offered.len());
            }
        }
        Ok(())
    }

    /// Adds `source`'s topic to the bag with the QoS profiles its discovered publishers offer
    /// ([`offered_qos`]; the graph's QoS when none is known yet), as rosbag2 records them.
    fn add_topic(writer: &mut BagWriter, ros: &Ros, source: &mut Source) -> Result<TopicId> {
        let offered = offered_qos(ros, &source.topic);
        let mut info = TopicInfo::cdr(&source.topic, &source.type_name, source.graph_qos);
        if !offered.is_empty() {
            info.offered_qos = offered;
        }
        let id = writer.add_topic(info).with_context(|| format!("recording {}", source.topic))?;
        source.id = Some(id);
        Ok(id)
    }

    /// Writes everything received since the last call; `now` (s since start) throttles the
    /// warnings. Returns whether anything arrived.
    fn poll(&mut self, ros: &Ros, now: f64) -> bool {
        let mut arrived = false;
        for s in &mut self.sources {
            for _ in 0..MAX_TAKE_PER_TURN {
                let Some(reader) = &s.reader else { break };
                let taken = match reader.take_cdr() {
                    Ok(Some(taken)) => taken,
                    Ok(None) => break,
                    Err(e) => {
                        s.bad += 1;
                        if self.warn_due.due(now) {
                            tracing::warn!(
                                "dropped a bad message on {}: {e} ({} so far)",
                                s.topic,
                                s.bad
                            );
                        }
                        continue;
                    }
                };
                arrived = true;
                if let Some(clock) = taken.clock_ns {
                    self.sim_now = clock;
                }
                if !s.record {
                    continue;
                }
                let id = match s.id {
                    Some(id) => id,
                    None => match Self::add_topic(&mut self.writer, ros, s) {
                        Ok(id) => id,
                        Err(e) => {
                            self.write_errors += 1;
                            if self.warn_due.due(now) {
                                tracing::warn!("not recorded: {e:#}");
                            }
                            continue;
                        }
                    },
                };
                let log_time = match self.use_sim_time {
                    true => self.sim_now,
                    false => taken.received_ns.unwrap_or_else(|| Time::now().as_nanos()),
                };
                match self.writer.write(id, log_time, &taken.cdr) {
                    Ok(()) => s.written += 1,
                    Err(e) => {
                        self.write_errors += 1;
                        if self.warn_due.due(now) {
                            tracing::warn!(
                                "not recorded on {}: {e} ({} so far)",
                                s.topic,
                                self.write_errors
                            );
                        }
                    }
                }
            }
        }
        arrived
    }

    /// Messages per topic: `/joint_states 375, /goal 30, ...`, with the bad ones where there
    /// were any.
    fn counts(&self) -> String {
        let counts: BTreeMap<&str, (u64, u64)> = self
            .sources
            .iter()
            .filter(|s| s.record)
            .map(|s| (s.topic.as_str(), (s.written, s.bad)))
            .collect();
        let parts: Vec<String> = counts
            .into_iter()
            .map(|(topic, (n, bad))| match bad {
                0 => format!("{topic} {n}"),
                _ => format!("{topic} {n} ({bad} bad)"),
            })
            .collect();
        parts.join(", ")
    }
}

/// Runs the node with its ROS arguments until SIGINT/SIGTERM, then finishes the bag.
///
/// # Errors
/// Bad arguments or parameters, an unknown topic, a bag directory that exists and is not empty,
/// DDS failures, a bag that cannot be finished; the node has stopped then.
pub fn run(args: RosArgs) -> Result<()> {
    crate::logging::init(args.log_filter().as_deref());
    let node_name = args.node_name("record_node");
    let namespace = args.namespace("record_node", "/");
    let config: RecordConfig = Params::load(&args, &node_name, &namespace)?.deserialize()?;
    config.validate()?;
    let dir = config.output_dir();

    let mut ros = Ros::new("record_node", "/", &args)?;
    let writer = BagWriter::create(&dir, config.writer_options())
        .with_context(|| format!("creating the bag (parameter `output` = {:?})", config.output))?;
    let mut recorder = Recorder::new(&mut ros, &config, writer)?;
    let stop = crate::logging::stop_flag().context("installing the SIGINT/SIGTERM handler")?;
    tracing::info!(
        node = %ros.fully_qualified_name(), bag = %dir.display(), sim_time = config.use_sim_time,
        topics = %config.topics.join(" "), "record_node recording"
    );

    let start = Instant::now();
    let (mut status_due, mut connect_due) = (Every::hz(0.2), Every::hz(20.0));
    while !stop.load(Ordering::Relaxed) {
        let now = start.elapsed().as_secs_f64();
        if connect_due.due(now) {
            recorder.connect(&mut ros)?;
        }
        let arrived = recorder.poll(&ros, now);
        if status_due.due(now) {
            tracing::info!("{}", recorder.counts());
        }
        if !arrived {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let counts = recorder.counts();
    let total: u64 = recorder.sources.iter().map(|s| s.written).sum();
    if recorder.write_errors > 0 {
        tracing::warn!("{} messages could not be written", recorder.write_errors);
    }
    // Topics that never had a message are listed too (with no messages), as rosbag2 does for
    // the topics it was asked to record.
    for s in recorder.sources.iter_mut().filter(|s| s.record && s.id.is_none()) {
        Recorder::add_topic(&mut recorder.writer, &ros, s)?;
    }
    let summary =
        recorder.writer.finish().with_context(|| format!("finishing the bag {}", dir.display()))?;
    tracing::info!(
        "recorded {total} messages in {:.1} s into {} ({} bytes): {counts}",
        start.elapsed().as_secs_f64(),
        summary.dir.display(),
        summary.file_bytes,
    );
    Ok(())
}

/// `YYYY_MM_DD-HH_MM_SS` in UTC (rosbag2's bag name format).
fn utc_stamp(t: Time) -> String {
    let secs = t.as_nanos().div_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}_{month:02}_{day:02}-{:02}_{:02}_{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_adapt_to_every_offer() {
        use equigate_ros::ros2_client::qos;
        let reliable = Qos::reliable(10);
        let best_effort = Qos::sensor_data(5);
        let latched = Qos { durability: Durability::TransientLocal, ..Qos::reliable(1) };
        let q = adapted_qos(&[reliable, reliable], 10);
        assert!(matches!(q.reliability, qos::Reliability::Reliable { .. }));
        assert_eq!(
            (q.durability, q.history),
            (qos::Durability::Volatile, qos::History::KeepLast { depth: 10 })
        );
        // One best-effort writer among reliable ones: a reliable reader would miss it.
        let q = adapted_qos(&[reliable, best_effort], 10);
        assert_eq!(q.reliability, qos::Reliability::BestEffort);
        // Transient local only if every writer keeps its samples for late joiners.
        assert_eq!(adapted_qos(&[latched, latched], 5).durability, qos::Durability::TransientLocal);
        assert_eq!(adapted_qos(&[latched, reliable], 5).durability, qos::Durability::Volatile);
        assert_eq!(adapted_qos(&[latched], 5).history, qos::History::KeepLast { depth: 5 });
    }

    #[test]
    fn utc_stamp_matches_known_dates() {
        assert_eq!(utc_stamp(Time::from_nanos(0)), "1970_01_01-00_00_00");
        // 2024-02-29T23:59:59Z, a leap day.
        assert_eq!(utc_stamp(Time { sec: 1_709_251_199, nanosec: 5 }), "2024_02_29-23_59_59");
        assert_eq!(utc_stamp(Time { sec: 1_798_761_600, nanosec: 0 }), "2027_01_01-00_00_00");
    }

    #[test]
    fn topics_resolve_to_their_graph_types_and_unknown_ones_are_named() {
        assert_eq!(graph_topic("/joint_states").unwrap().msg, GraphType::JointState);
        assert_eq!(graph_topic("/arm1/joint_states").unwrap().msg, GraphType::JointState);
        assert_eq!(graph_topic("clock").unwrap().msg, GraphType::Clock);
        let depth = graph_topic("/camera/depth/image_raw").unwrap();
        assert!(depth.sensor_data && depth.msg == GraphType::Image);
        assert_eq!(graph_topic("/equigate/lambda_map/rgb").unwrap().msg, GraphType::Image);
        let e = graph_topic("/tf").unwrap_err().to_string();
        assert!(e.contains("`/tf`") && e.contains("joint_states"), "{e}");
        assert!(graph_topic("/not_joint_states").is_err());
    }

    #[test]
    fn defaults_validate_and_bad_values_are_rejected() {
        let config = RecordConfig::default();
        config.validate().unwrap();
        assert_eq!(config.writer_options().metadata_version, MetadataVersion::V9);
        let bad = RecordConfig { metadata_version: 7, ..RecordConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("metadata_version"));
        let bad = RecordConfig { topics: vec!["/tf".into()], ..RecordConfig::default() };
        assert!(bad.validate().is_err());
        assert!(config.output_dir().starts_with("bags"));
    }
}
