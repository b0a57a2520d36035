//! From recorded messages to offline transitions (s, a, r, s', terminated, truncated), with depth
//! images when asked.
//!
//! A bag holds what the graph said, not transitions: `/joint_states`
//! (sensor_msgs/msg/JointState), `/goal` (geometry_msgs/msg/PointStamped) and the velocity
//! commands (std_msgs/msg/Float64MultiArray on `/forward_velocity_controller/commands`). The
//! [`DatasetBuilder`] replays them in log-time order through the same pieces the detector node
//! uses live:
//! - joint states are matched by name ([`crate::safety::read_joint_state`]); a bad one (NaN,
//!   missing joint, wrong lengths) is skipped and counted, never guessed;
//! - a state is paired with the command that drove the arm since the previous state
//!   ([`TransitionAssembler`]: a lockstep command, or a held one at most `hold_s` old);
//! - observation, reward, success and truncation come from the task's model
//!   ([`ObservationModel::transition`]): the reward is recomputed from forward kinematics and a
//!   replay of the command in the kinematic simulator, so a bag from a real arm gets the same
//!   reward rule as the simulator;
//! - episodes are delimited by goal changes: the simulator's reset service (and a real arm's
//!   homing) always publishes a new goal, and the state pair across a goal change is dropped;
//! - depth images (sensor_msgs/msg/Image on [`DatasetTopics::depth`], when set) are decoded to
//!   metres ([`decode_depth`]) and attached to s and s' by header stamp: the latest image
//!   stamped at or before the state and at most [`DatasetTopics::depth_max_age_s`] older. A
//!   transition without such an image for s or s' is dropped. Matching waits for the end of the
//!   bag ([`DatasetBuilder::finish_dataset`]), so an image that a camera's latency logs after
//!   the states it belongs to still matches. Frames are stored once ([`DepthFrames`]).
//!
//! [`DatasetSummary`] says what was aligned, what was dropped and why.

use std::collections::BTreeMap;

use anyhow::Context as _;
use equigate_ros::msg::{from_cdr, Float64MultiArray, Image, JointState, PointStamped};
use nalgebra::Vector3;
use serde::{Deserialize, Serialize};

use crate::monitor::TransitionAssembler;
use crate::observe::{ObservationModel, ObservedTransition};

/// The simulator's depth image topic (sensor_msgs/msg/Image, `32FC1`), the usual value of
/// [`DatasetTopics::depth`].
pub const DEPTH_TOPIC: &str = "/camera/depth/image_raw";

/// Default of [`DatasetTopics::depth_max_age_s`], s.
pub const DEFAULT_DEPTH_MAX_AGE_S: f64 = 0.1;

/// Topic names a dataset is built from (defaults: the ros2_control and equigate names, no depth).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetTopics {
    /// sensor_msgs/msg/JointState (default: `/joint_states`).
    pub joint_states: String,
    /// geometry_msgs/msg/PointStamped, the goal in the base frame (default: `/goal`).
    pub goal: String,
    /// std_msgs/msg/Float64MultiArray, rad/s per configured joint (default:
    /// `/forward_velocity_controller/commands`).
    pub command: String,
    /// sensor_msgs/msg/Image depth images (`32FC1` metres or `16UC1` millimetres, REP 118) to
    /// attach to every transition's s and s' (default: none; the simulator publishes
    /// [`DEPTH_TOPIC`]).
    pub depth: Option<String>,
    /// Oldest depth image attached to a state: its header stamp at most this much before the
    /// state's, s (default: `0.1`). A camera at 15–30 Hz leaves 33–67 ms between frames, so
    /// 0.1 s covers every state with room for jitter, while a state whose camera stalled for a
    /// frame or more loses its transition instead of getting a picture of where the arm was
    /// (at the UR5e's 3.14 rad/s a joint turns up to 0.3 rad in 0.1 s).
    pub depth_max_age_s: f64,
}

impl Default for DatasetTopics {
    fn default() -> Self {
        Self {
            joint_states: "/joint_states".to_owned(),
            goal: "/goal".to_owned(),
            command: "/forward_velocity_controller/commands".to_owned(),
            depth: None,
            depth_max_age_s: DEFAULT_DEPTH_MAX_AGE_S,
        }
    }
}

impl DatasetTopics {
    /// The topic names (three, four with depth), for a bag reader's topic filter.
    pub fn names(&self) -> Vec<String> {
        let mut names = vec![self.joint_states.clone(), self.goal.clone(), self.command.clone()];
        names.extend(self.depth.clone());
        names
    }

    /// Checks `depth_max_age_s`.
    ///
    /// # Errors
    /// A maximum age that is negative or not finite.
    pub fn validate(&self) -> anyhow::Result<()> {
        let age = self.depth_max_age_s;
        anyhow::ensure!(age.is_finite() && age >= 0.0, "depth_max_age_s must be >= 0 s, got {age}");
        Ok(())
    }
}

/// What building a dataset read, kept and dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DatasetSummary {
    /// Joint states read (valid ones).
    pub states: u64,
    /// Goal messages read.
    pub goals: u64,
    /// Valid commands read.
    pub commands: u64,
    /// Transitions produced.
    pub transitions: u64,
    /// Episodes seen (goal changes after the first goal, plus the first).
    pub episodes: u64,
    /// Transitions that ended in success.
    pub terminated: u64,
    /// Transitions that reached the task's episode length.
    pub truncated: u64,
    /// Transitions whose command was blocked by a collision in the replay.
    pub collided: u64,
    /// Depth images read that decoded with the size of the bag's first one.
    pub depth_images: u64,
    /// Distinct depth frames attached to the transitions ([`DepthFrames`]).
    pub depth_frames: u64,
    /// Dropped or skipped messages by reason (e.g. `"state before the first goal"`,
    /// `"state pair without a command"`, `"joint state has no velocities"`).
    pub dropped: BTreeMap<String, u64>,
    /// Log time of the first and last message used, ns.
    pub span_ns: Option<(i64, i64)>,
}

impl DatasetSummary {
    fn drop_one(&mut self, reason: impl Into<String>) {
        *self.dropped.entry(reason.into()).or_default() += 1;
    }

    /// Messages dropped, all reasons.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// Adds the summary of another bag: counts summed, spans joined.
    pub fn add(&mut self, other: DatasetSummary) {
        self.states += other.states;
        self.goals += other.goals;
        self.commands += other.commands;
        self.transitions += other.transitions;
        self.episodes += other.episodes;
        self.terminated += other.terminated;
        self.truncated += other.truncated;
        self.collided += other.collided;
        self.depth_images += other.depth_images;
        self.depth_frames += other.depth_frames;
        for (reason, n) in other.dropped {
            *self.dropped.entry(reason).or_default() += n;
        }
        self.span_ns = match (self.span_ns, other.span_ns) {
            (None, x) | (x, None) => x,
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
        };
    }
}

impl std::fmt::Display for DatasetSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} transitions in {} episodes ({} successes, {} truncations, {} collisions) from {} \
             joint states, {} commands, {} goals",
            self.transitions,
            self.episodes,
            self.terminated,
            self.truncated,
            self.collided,
            self.states,
            self.commands,
            self.goals
        )?;
        if self.depth_images > 0 || self.depth_frames > 0 {
            writeln!(
                f,
                "depth: {} frames attached from {} images read",
                self.depth_frames, self.depth_images
            )?;
        }
        if let Some((a, b)) = self.span_ns {
            writeln!(f, "span {:.3} s", (b - a) as f64 * 1e-9)?;
        }
        if self.dropped.is_empty() {
            write!(f, "nothing dropped")
        } else {
            write!(f, "dropped:")?;
            for (reason, n) in &self.dropped {
                write!(f, "\n  {n:>8}  {reason}")?;
            }
            Ok(())
        }
    }
}

/// Why a depth image was not used ([`decode_depth`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepthError {
    /// Neither `32FC1` nor `16UC1` (REP 118's depth encodings).
    #[error("depth image encoding `{encoding}` is neither 32FC1 nor 16UC1")]
    Encoding {
        /// The image's encoding.
        encoding: String,
    },
    /// `height` or `width` is 0, or `step` is shorter than `width` pixels.
    #[error("depth image is empty or its step is shorter than a row")]
    Step,
    /// `data` is not `step · height` bytes long.
    #[error("depth image data length is not step · height")]
    Length,
}

/// The depth of a `32FC1` (metres) or `16UC1` (millimetres) image in metres (REP 118).
///
/// Rows are read `step` bytes apart (padding skipped) and `is_bigendian` is honoured, as the
/// sensor_msgs/msg/Image definition says. A `16UC1` pixel of 0 (no return) becomes NaN;
/// `32FC1` values are kept as they are (REP 117: NaN no return, +Inf beyond range, -Inf too
/// close).
///
/// # Shapes
/// `image` of `height` × `width` -> `[height · width]`, row-major (row 0 at the top).
///
/// # Errors
/// [`DepthError`]: another encoding, an empty image, a short step, or data that is not
/// `step · height` bytes.
pub fn decode_depth(image: &Image) -> Result<Vec<f32>, DepthError> {
    let bytes = match image.encoding.as_str() {
        "32FC1" => 4,
        "16UC1" => 2,
        other => return Err(DepthError::Encoding { encoding: other.to_owned() }),
    };
    let (height, width, step) = (image.height as usize, image.width as usize, image.step as usize);
    if height == 0 || width == 0 || step < width * bytes {
        return Err(DepthError::Step);
    }
    if image.data.len() != step * height {
        return Err(DepthError::Length);
    }
    let big = image.is_bigendian != 0;
    let mut out = Vec::with_capacity(height * width);
    for row in image.data.chunks_exact(step) {
        for px in row[..width * bytes].chunks_exact(bytes) {
            out.push(if bytes == 4 {
                let b = [px[0], px[1], px[2], px[3]];
                if big {
                    f32::from_be_bytes(b)
                } else {
                    f32::from_le_bytes(b)
                }
            } else {
                let b = [px[0], px[1]];
                let mm = if big { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) };
                if mm == 0 {
                    f32::NAN
                } else {
                    f32::from(mm) / 1000.0
                }
            });
        }
    }
    Ok(out)
}

/// Depth frames of a dataset's transitions, each stored once: at 500 Hz joint states and a
/// 15–30 Hz camera many states share a frame, so transitions hold indices.
///
/// # Shapes
/// - `pixels`: `[frames · height · width]`, one frame after another, each row-major (row 0 at
///   the top, as sensor_msgs/msg/Image), metres along the optical axis (REP 118); NaN = no
///   return, ±Inf as a `32FC1` image had them (REP 117). See [`decode_depth`].
/// - `stamps_ns`: `[frames]`, each frame's header stamp, ns.
/// - `obs`, `next_obs`: `[transitions]`, the frame of s and of s' (indices into the frames).
#[derive(Debug, Clone, Default)]
pub struct DepthFrames {
    /// Image rows, px (0 while no image was read).
    pub height: usize,
    /// Image columns, px.
    pub width: usize,
    /// The frames' depths, m.
    pub pixels: Vec<f32>,
    /// Header stamp of each frame, ns.
    pub stamps_ns: Vec<i64>,
    /// Frame of each transition's s.
    pub obs: Vec<u32>,
    /// Frame of each transition's s'.
    pub next_obs: Vec<u32>,
}

impl DepthFrames {
    /// Number of frames.
    pub fn len(&self) -> usize {
        self.stamps_ns.len()
    }

    /// No frames.
    pub fn is_empty(&self) -> bool {
        self.stamps_ns.is_empty()
    }

    /// Frame `i`, `[height · width]` row-major, m.
    pub fn frame(&self, i: usize) -> &[f32] {
        let n = self.height * self.width;
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Appends the frames of another bag, shifting its indices.
    ///
    /// # Errors
    /// Frames of another size.
    fn append(&mut self, other: DepthFrames) -> anyhow::Result<()> {
        if self.is_empty() {
            (self.height, self.width) = (other.height, other.width);
        } else if !other.is_empty() {
            anyhow::ensure!(
                (other.height, other.width) == (self.height, self.width),
                "depth images of {}x{} px after {}x{} px in an earlier bag",
                other.height,
                other.width,
                self.height,
                self.width
            );
        }
        let offset = u32::try_from(self.len()).context("more than 2^32 depth frames")?;
        self.pixels.extend(other.pixels);
        self.stamps_ns.extend(other.stamps_ns);
        self.obs.extend(other.obs.iter().map(|i| i + offset));
        self.next_obs.extend(other.next_obs.iter().map(|i| i + offset));
        Ok(())
    }
}

/// A built dataset ([`DatasetBuilder::finish_dataset`]).
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// The transitions, in log-time order.
    pub transitions: Vec<ObservedTransition>,
    /// Header stamps of each transition's s and s', ns; `[transitions]`.
    pub stamps_ns: Vec<(i64, i64)>,
    /// The depth frames of s and s', when [`DatasetTopics::depth`] named a topic.
    pub depth: Option<DepthFrames>,
    /// What was read, kept and dropped.
    pub summary: DatasetSummary,
}

impl Dataset {
    /// Appends the dataset of the next bag: transitions and frames concatenated, summaries added.
    ///
    /// # Errors
    /// Depth frames in one and not the other, or frames of another size.
    pub fn append(&mut self, other: Dataset) -> anyhow::Result<()> {
        match (&mut self.depth, other.depth) {
            (None, None) => {}
            (Some(a), Some(b)) => a.append(b)?,
            _ => anyhow::bail!("depth frames in one dataset and not in the other"),
        }
        self.transitions.extend(other.transitions);
        self.stamps_ns.extend(other.stamps_ns);
        self.summary.add(other.summary);
        Ok(())
    }
}

/// Replays messages into transitions (module docs).
pub struct DatasetBuilder {
    model: ObservationModel,
    topics: DatasetTopics,
    assembler: TransitionAssembler,
    goal: Option<Vector3<f64>>,
    goal_version: u64,
    episode_steps: usize,
    transitions: Vec<ObservedTransition>,
    /// Header stamps of s and s' per transition, ns.
    stamps_ns: Vec<(i64, i64)>,
    /// Header stamp of the assembler's previous state, ns.
    previous_stamp_ns: Option<i64>,
    /// Decoded depth images (header stamp in ns, `[height · width]` m), in arrival order.
    images: Vec<(i64, Vec<f32>)>,
    /// (height, width) of the first depth image; later ones must match.
    image_size: Option<(usize, usize)>,
    summary: DatasetSummary,
    q: Vec<f64>,
    qdot: Vec<f64>,
}

impl DatasetBuilder {
    /// A builder reading `topics` with the task and joint order of `model`.
    pub fn new(model: ObservationModel, topics: DatasetTopics) -> Self {
        Self {
            model,
            topics,
            assembler: TransitionAssembler::default(),
            goal: None,
            goal_version: 0,
            episode_steps: 0,
            transitions: Vec::new(),
            stamps_ns: Vec::new(),
            previous_stamp_ns: None,
            images: Vec::new(),
            image_size: None,
            summary: DatasetSummary::default(),
            q: Vec::new(),
            qdot: Vec::new(),
        }
    }

    /// The observation model (task, joint order).
    pub fn model(&self) -> &ObservationModel {
        &self.model
    }

    /// One message, in log-time order: `data` is its CDR payload (with the 4-byte encapsulation
    /// header), `log_time_ns` the time the recorder received it. Messages on other topics are
    /// ignored. A message that does not decode, or a state, command or depth image that fails
    /// its checks, is skipped and counted in the summary by reason.
    ///
    /// # Errors
    /// Only failures of the task model on a state that passed the checks (a bug, or a goal that
    /// is not finite).
    pub fn push(&mut self, topic: &str, log_time_ns: i64, data: &[u8]) -> anyhow::Result<()> {
        let now_s = log_time_ns as f64 * 1e-9;
        if topic == self.topics.goal {
            let Ok(msg) = from_cdr::<PointStamped>(data) else {
                self.summary.drop_one(format!("{topic}: does not decode as PointStamped"));
                return Ok(());
            };
            let p = Vector3::new(msg.point.x, msg.point.y, msg.point.z);
            if !p.iter().all(|v| v.is_finite()) {
                self.summary.drop_one("goal is not finite");
                return Ok(());
            }
            self.summary.goals += 1;
            if self.goal.is_none_or(|g| (g - p).norm() > 1e-9) {
                self.goal = Some(p);
                self.goal_version += 1;
                self.episode_steps = 0;
                self.summary.episodes += 1;
            }
            self.touch(log_time_ns);
        } else if topic == self.topics.command {
            let Ok(msg) = from_cdr::<Float64MultiArray>(data) else {
                self.summary.drop_one(format!("{topic}: does not decode as Float64MultiArray"));
                return Ok(());
            };
            if let Err(e) = crate::command::validate(self.model.joint_names(), &msg.data) {
                self.summary.drop_one(strip_values(&e.to_string()));
                return Ok(());
            }
            self.summary.commands += 1;
            let command = self.model.to_model_order(&msg.data);
            self.assembler.on_command(&command, now_s);
            self.touch(log_time_ns);
        } else if topic == self.topics.joint_states {
            let Ok(msg) = from_cdr::<JointState>(data) else {
                self.summary.drop_one(format!("{topic}: does not decode as JointState"));
                return Ok(());
            };
            let joints = self.model.joint_names().to_vec();
            if let Err(e) =
                crate::safety::read_joint_state(&joints, &msg, &mut self.q, &mut self.qdot)
            {
                self.summary.drop_one(strip_values(&e.to_string()));
                return Ok(());
            }
            self.summary.states += 1;
            let Some(goal) = self.goal else {
                self.summary.drop_one("state before the first goal");
                return Ok(());
            };
            let state = self.model.state(&self.q, &self.qdot, goal);
            let stamp_ns = msg.header.stamp.as_nanos();
            // None without a drop: the first state, or a repeated stamp (a lockstep heartbeat).
            let dropped = self.assembler.dropped;
            let pair = self.assembler.on_state(
                &state,
                msg.header.stamp.as_secs_f64(),
                now_s,
                self.goal_version,
            );
            let pair_dropped = self.assembler.dropped > dropped;
            if pair_dropped {
                self.summary.drop_one("state pair without a fresh command or across a goal change");
            }
            // The assembler keeps this state as its previous one unless it ignored a repeat.
            let before_stamp_ns = self.previous_stamp_ns;
            if pair.is_some() || pair_dropped || before_stamp_ns.is_none() {
                self.previous_stamp_ns = Some(stamp_ns);
            }
            if let Some((before, command, after)) = pair {
                self.episode_steps += 1;
                let t = self
                    .model
                    .transition(&before, &command, &after, self.episode_steps)
                    .context("task model on a checked state")?;
                self.transitions.push(t);
                let before_stamp_ns = before_stamp_ns.expect("a pair follows a previous state");
                self.stamps_ns.push((before_stamp_ns, stamp_ns));
            }
            self.touch(log_time_ns);
        } else if self.topics.depth.as_deref() == Some(topic) {
            let Ok(msg) = from_cdr::<Image>(data) else {
                self.summary.drop_one(format!("{topic}: does not decode as Image"));
                return Ok(());
            };
            let pixels = match decode_depth(&msg) {
                Ok(pixels) => pixels,
                Err(e) => {
                    self.summary.drop_one(e.to_string());
                    return Ok(());
                }
            };
            let size = (msg.height as usize, msg.width as usize);
            if *self.image_size.get_or_insert(size) != size {
                self.summary.drop_one("depth image size differs from the bag's first depth image");
                return Ok(());
            }
            self.summary.depth_images += 1;
            self.images.push((msg.header.stamp.as_nanos(), pixels));
            self.touch(log_time_ns);
        }
        Ok(())
    }

    fn touch(&mut self, t: i64) {
        self.summary.span_ns = Some(match self.summary.span_ns {
            None => (t, t),
            Some((a, b)) => (a.min(t), b.max(t)),
        });
    }

    /// The transitions and the summary, without depth frames (see
    /// [`DatasetBuilder::finish_dataset`]; with a depth topic, transitions without a fresh
    /// image are dropped here too).
    pub fn finish(self) -> (Vec<ObservedTransition>, DatasetSummary) {
        let dataset = self.finish_dataset();
        (dataset.transitions, dataset.summary)
    }

    /// The dataset: with a depth topic, the transitions whose s and s' both have a depth image
    /// (module docs) and their frames; the others are dropped and counted.
    pub fn finish_dataset(self) -> Dataset {
        let Self {
            topics, mut transitions, mut stamps_ns, images, image_size, mut summary, ..
        } = self;
        let depth = if topics.depth.is_some() {
            let max_age_ns = (topics.depth_max_age_s * 1e9).round() as i64;
            let (kept, kept_stamps, frames) =
                attach_depth(transitions, stamps_ns, images, image_size, max_age_ns, &mut summary);
            (transitions, stamps_ns) = (kept, kept_stamps);
            Some(frames)
        } else {
            None
        };
        summary.transitions = transitions.len() as u64;
        for t in &transitions {
            summary.terminated += u64::from(t.outcome.terminated);
            summary.truncated += u64::from(t.outcome.truncated);
            summary.collided += u64::from(t.outcome.collided);
        }
        Dataset { transitions, stamps_ns, depth, summary }
    }
}

/// Keeps the transitions whose s and s' both have a depth image stamped at or before them and
/// at most `max_age_ns` older (the latest such), drops and counts the others, and stores the
/// frames they use once, in the order first used.
fn attach_depth(
    transitions: Vec<ObservedTransition>,
    stamps_ns: Vec<(i64, i64)>,
    mut images: Vec<(i64, Vec<f32>)>,
    size: Option<(usize, usize)>,
    max_age_ns: i64,
    summary: &mut DatasetSummary,
) -> (Vec<ObservedTransition>, Vec<(i64, i64)>, DepthFrames) {
    // Stable: of two images with one stamp, the one received later wins.
    images.sort_by_key(|(stamp, _)| *stamp);
    let latest = |stamp: i64| -> Result<usize, &'static str> {
        let at_or_before = images.partition_point(|(s, _)| *s <= stamp);
        let i = at_or_before.checked_sub(1).ok_or("no depth image at or before s or s'")?;
        if stamp - images[i].0 > max_age_ns {
            return Err("latest depth image before s or s' older than depth_max_age_s");
        }
        Ok(i)
    };
    let (height, width) = size.unwrap_or((0, 0));
    let mut frames = DepthFrames { height, width, ..DepthFrames::default() };
    let mut frame_of_image: Vec<Option<u32>> = vec![None; images.len()];
    let mut kept = Vec::with_capacity(transitions.len());
    let mut kept_stamps = Vec::with_capacity(transitions.len());
    for (t, (before, after)) in transitions.into_iter().zip(stamps_ns) {
        let (b, a) = match latest(before).and_then(|b| Ok((b, latest(after)?))) {
            Ok(pair) => pair,
            Err(reason) => {
                summary.drop_one(reason);
                continue;
            }
        };
        let mut frame = |i: usize| {
            *frame_of_image[i].get_or_insert_with(|| {
                frames.stamps_ns.push(images[i].0);
                frames.pixels.extend_from_slice(&images[i].1);
                (frames.stamps_ns.len() - 1) as u32
            })
        };
        let (fb, fa) = (frame(b), frame(a));
        frames.obs.push(fb);
        frames.next_obs.push(fa);
        kept.push(t);
        kept_stamps.push((before, after));
    }
    summary.depth_frames = frames.len() as u64;
    (kept, kept_stamps, frames)
}

/// An error text without its numbers, so that drops group by kind (`"... is not finite: NaN"` →
/// `"... is not finite"`).
fn strip_values(text: &str) -> String {
    match text.rfind(": ") {
        Some(i) if text[i + 2..].parse::<f64>().is_ok() => text[..i].to_owned(),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{drive, DepthStream, ScriptedReach};
    use crate::train::EnvSpec;
    use equigate_robot::model::RobotKind;
    use equigate_ros::msg::{to_cdr, Header, JointState, Time};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    type Message = (String, i64, Vec<u8>);

    fn obstacle_spec() -> EnvSpec {
        let path = crate::resources::resolve("config/tasks/ur5e_reach_obstacles.yaml");
        let task = crate::resources::load_task(RobotKind::Ur5e, Some(&path)).unwrap();
        EnvSpec::with_task(RobotKind::Ur5e, task).unwrap()
    }

    fn messages(spec: &EnvSpec, steps: usize) -> (Vec<Message>, crate::collect::CollectSummary) {
        messages_with_depth(spec, steps, None)
    }

    /// `steps` driven steps, with depth images at `depth_hz` of simulated time when given.
    fn messages_with_depth(
        spec: &EnvSpec,
        steps: usize,
        depth_hz: Option<f64>,
    ) -> (Vec<Message>, crate::collect::CollectSummary) {
        let controller = ScriptedReach::default();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut out = Vec::new();
        let depth = depth_hz.map(DepthStream::at);
        let summary = drive(
            spec,
            3,
            steps,
            depth.as_ref(),
            |env| controller.command(env, &mut rng),
            |topic, _, t, cdr| {
                out.push((topic.to_owned(), t, cdr));
                Ok(())
            },
        )
        .unwrap();
        (out, summary)
    }

    fn builder(spec: &EnvSpec) -> DatasetBuilder {
        builder_with(spec, DatasetTopics::default())
    }

    fn builder_with(spec: &EnvSpec, topics: DatasetTopics) -> DatasetBuilder {
        let model = ObservationModel::new(spec.model.clone(), spec.task.clone(), &[]).unwrap();
        DatasetBuilder::new(model, topics)
    }

    fn depth_topics() -> DatasetTopics {
        DatasetTopics { depth: Some(DEPTH_TOPIC.into()), ..DatasetTopics::default() }
    }

    fn build(spec: &EnvSpec, topics: DatasetTopics, msgs: &[Message]) -> Dataset {
        let mut b = builder_with(spec, topics);
        for (topic, t, data) in msgs {
            b.push(topic, *t, data).unwrap();
        }
        b.finish_dataset()
    }

    /// (header stamp ns, decoded depth) of every image in the stream.
    fn images_of(msgs: &[Message]) -> Vec<(i64, Vec<f32>)> {
        msgs.iter()
            .filter(|(topic, _, _)| topic == DEPTH_TOPIC)
            .map(|(_, _, data)| {
                let img = from_cdr::<Image>(data).unwrap();
                (img.header.stamp.as_nanos(), decode_depth(&img).unwrap())
            })
            .collect()
    }

    /// The latest of `image_stamps` at or before `stamp` and at most 0.1 s older, by a linear
    /// scan.
    fn expected_frame(image_stamps: &[i64], stamp: i64) -> Option<i64> {
        image_stamps.iter().copied().filter(|s| *s <= stamp && stamp - s <= 100_000_000).max()
    }

    fn same_pixels(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    /// Every driven step becomes one transition; the only pairs dropped are those across a
    /// reset; successes and collisions agree with the simulator; each reward follows the task's
    /// rule from the recomputed distance.
    #[test]
    fn a_driven_stream_gives_one_transition_per_step() {
        let spec = obstacle_spec();
        let (msgs, driven) = messages(&spec, 600);
        let mut b = builder(&spec);
        for (topic, t, data) in &msgs {
            b.push(topic, *t, data).unwrap();
        }
        let (transitions, summary) = b.finish();
        assert_eq!(transitions.len(), driven.steps, "{summary}");
        assert_eq!(summary.episodes as usize, driven.episodes);
        assert_eq!(summary.terminated as usize, driven.successes);
        assert_eq!(summary.collided as usize, driven.collisions);
        assert!(driven.successes > 5 && driven.collisions > 0, "{driven:?}");
        assert_eq!(summary.dropped_total() as usize, driven.episodes - 1, "{summary}");
        let task = &spec.task;
        for t in &transitions {
            let o = &t.outcome;
            let expected = -o.distance + if o.terminated { task.success_bonus } else { 0.0 }
                - if o.collided { task.collision_penalty } else { 0.0 };
            assert!((o.reward - expected).abs() < 1e-12);
            assert_eq!(t.obs.len(), 22);
            assert_eq!(t.command.len(), 6);
        }
    }

    /// Bad messages are skipped and counted by reason; the good ones around them still pair up.
    #[test]
    fn bad_messages_are_counted_and_lose_nothing_else() {
        let spec = obstacle_spec();
        let (msgs, driven) = messages(&spec, 50);
        let mut b = builder(&spec);
        let names = spec.model.joint_names().to_vec();
        let nan_state = JointState {
            header: Header::new(Time::from_nanos(5), "base_link"),
            name: names.clone(),
            position: vec![f64::NAN; 6],
            velocity: vec![0.0; 6],
            effort: vec![],
        };
        let missing = JointState {
            name: names[..5].to_vec(),
            position: vec![0.0; 5],
            velocity: vec![0.0; 5],
            ..nan_state.clone()
        };
        b.push("/joint_states", 0, &to_cdr(&nan_state).unwrap()).unwrap();
        b.push("/joint_states", 0, &to_cdr(&missing).unwrap()).unwrap();
        b.push("/joint_states", 0, &[0, 1, 0, 0, 7]).unwrap();
        let short = equigate_ros::msg::Float64MultiArray::flat(vec![0.0; 5]);
        b.push("/forward_velocity_controller/commands", 0, &to_cdr(&short).unwrap()).unwrap();
        b.push("/unrelated", 0, &[1, 2, 3]).unwrap();
        for (topic, t, data) in &msgs {
            b.push(topic, *t, data).unwrap();
        }
        let (transitions, summary) = b.finish();
        assert_eq!(transitions.len(), driven.steps, "{summary}");
        let reasons: Vec<&String> = summary.dropped.keys().collect();
        assert!(reasons.iter().any(|r| r.contains("not finite")), "{summary}");
        assert!(reasons.iter().any(|r| r.contains("lacks joint")), "{summary}");
        assert!(reasons.iter().any(|r| r.contains("does not decode")), "{summary}");
        assert!(reasons.iter().any(|r| r.contains("command has 5 values")), "{summary}");
    }

    /// With the camera at `depth_hz` every transition keeps its frames; the frame of s (and of
    /// s') is the latest image at or before its stamp, pixel for pixel; each frame is stored
    /// once, in time order.
    fn check_depth_stream(depth_hz: f64) -> Dataset {
        let spec = obstacle_spec();
        let (msgs, driven) = messages_with_depth(&spec, 300, Some(depth_hz));
        let images = images_of(&msgs);
        assert_eq!(images.len(), driven.depth_images);
        let stamps: Vec<i64> = images.iter().map(|(s, _)| *s).collect();
        let plain = build(&spec, DatasetTopics::default(), &msgs);
        let d = build(&spec, depth_topics(), &msgs);
        let summary = &d.summary;
        assert_eq!(d.transitions, plain.transitions, "nothing lost: {summary}");
        assert_eq!(d.transitions.len(), driven.steps, "{summary}");
        assert_eq!(summary.dropped_total() as usize, driven.episodes - 1, "{summary}");
        assert_eq!(summary.depth_images as usize, images.len());
        let frames = d.depth.as_ref().expect("depth was asked for");
        assert_eq!((frames.height, frames.width), (64, 64));
        assert_eq!(frames.obs.len(), d.transitions.len());
        assert_eq!(frames.next_obs.len(), d.transitions.len());
        assert_eq!(frames.pixels.len(), frames.len() * 64 * 64);
        assert_eq!(summary.depth_frames as usize, frames.len());
        for (k, &(before, after)) in d.stamps_ns.iter().enumerate() {
            for (stamp, frame) in [(before, frames.obs[k]), (after, frames.next_obs[k])] {
                let frame = frame as usize;
                let want = expected_frame(&stamps, stamp).expect("a fresh image for every state");
                assert_eq!(frames.stamps_ns[frame], want, "transition {k}");
                let image = &images.iter().rfind(|(s, _)| *s == want).unwrap().1;
                assert!(same_pixels(frames.frame(frame), image), "transition {k}: pixels");
            }
        }
        // Stored once: every frame is used, and no two frames share a stamp.
        let mut used: Vec<u32> = frames.obs.iter().chain(&frames.next_obs).copied().collect();
        used.sort_unstable();
        used.dedup();
        assert_eq!(used.len(), frames.len());
        assert!(frames.stamps_ns.windows(2).all(|w| w[0] < w[1]), "in time order, each once");
        assert!(frames.pixels.iter().any(|p| *p < 1.9), "the arm is in the pictures");
        d
    }

    /// The camera at the control rate (25 Hz): one frame per state, s' of one step is s of the
    /// next.
    #[test]
    fn depth_at_the_control_rate_gives_each_state_its_frame() {
        let d = check_depth_stream(25.0);
        let mut states: Vec<i64> = d.stamps_ns.iter().flat_map(|&(b, a)| [b, a]).collect();
        states.sort_unstable();
        states.dedup();
        assert_eq!(d.depth.unwrap().len(), states.len());
    }

    /// The camera at 10 Hz: states share frames.
    #[test]
    fn depth_slower_than_the_states_shares_frames() {
        let d = check_depth_stream(10.0);
        let (transitions, frames) = (d.transitions.len(), d.depth.unwrap().len());
        assert!(frames * 2 < transitions, "{frames} frames for {transitions} transitions");
    }

    /// An image logged after the states it belongs to (camera latency) still matches them.
    #[test]
    fn late_images_still_match() {
        let spec = obstacle_spec();
        let (msgs, _) = messages_with_depth(&spec, 200, Some(10.0));
        let on_time = build(&spec, depth_topics(), &msgs);
        let mut late: Vec<Message> = Vec::new();
        let mut held: Vec<(usize, Message)> = Vec::new();
        for (i, m) in msgs.into_iter().enumerate() {
            if m.0 == DEPTH_TOPIC {
                held.push((i + 7, m)); // seven messages (two or three control steps) late
            } else {
                late.push(m);
            }
            while held.first().is_some_and(|(due, _)| *due <= i) {
                late.push(held.remove(0).1);
            }
        }
        late.extend(held.into_iter().map(|(_, m)| m));
        let delayed = build(&spec, depth_topics(), &late);
        assert_eq!(delayed.transitions, on_time.transitions);
        let (a, b) = (delayed.depth.unwrap(), on_time.depth.unwrap());
        assert_eq!((&a.obs, &a.next_obs, &a.stamps_ns), (&b.obs, &b.next_obs, &b.stamps_ns));
        assert!(same_pixels(&a.pixels, &b.pixels));
    }

    /// Missing and stale images drop exactly the transitions without a fresh frame, counted by
    /// reason; images of a bad size or encoding are counted and skipped; nothing else is lost.
    #[test]
    fn stale_missing_and_bad_images_are_counted_and_lose_nothing_else() {
        let spec = obstacle_spec();
        let (msgs, _) = messages_with_depth(&spec, 300, Some(10.0));
        let plain = build(&spec, DatasetTopics::default(), &msgs);
        let t0 = msgs[0].1;
        // No images in the first 0.25 s nor in [2.0, 2.6) s: the first states have none at or
        // before them, those after the gap only old ones.
        let gone = |stamp: i64| {
            stamp < t0 + 250_000_000 || (t0 + 2_000_000_000..t0 + 2_600_000_000).contains(&stamp)
        };
        let mut kept: Vec<Message> = Vec::new();
        let mut good_image = None;
        for m in msgs {
            if m.0 == DEPTH_TOPIC {
                let img = from_cdr::<Image>(&m.2).unwrap();
                if gone(img.header.stamp.as_nanos()) {
                    continue;
                }
                good_image.get_or_insert(img);
            }
            kept.push(m);
        }
        let stamps: Vec<i64> = images_of(&kept).iter().map(|(s, _)| *s).collect();
        let good = good_image.unwrap();
        let bad = |f: &dyn Fn(&mut Image)| {
            let mut img = good.clone();
            f(&mut img);
            (DEPTH_TOPIC.to_owned(), 0, to_cdr(&img).unwrap())
        };
        let at = kept.len() / 2;
        kept.insert(at, bad(&|img| img.data.truncate(100)));
        kept.insert(at, bad(&|img| img.encoding = "rgb8".into()));
        kept.insert(at, bad(&|img| img.step = 8));
        kept.insert(
            at,
            bad(&|img| {
                // 32x32: a size change mid-bag.
                (img.width, img.height, img.step) = (32, 32, 128);
                img.data.truncate(32 * 128);
            }),
        );
        kept.insert(at, (DEPTH_TOPIC.to_owned(), 0, vec![0, 1, 0, 0, 9]));
        let d = build(&spec, depth_topics(), &kept);
        let s = &d.summary;

        let fresh = |&(b, a): &(i64, i64)| {
            expected_frame(&stamps, b).is_some() && expected_frame(&stamps, a).is_some()
        };
        let expected: Vec<_> = plain
            .transitions
            .iter()
            .zip(&plain.stamps_ns)
            .filter(|(_, st)| fresh(st))
            .map(|(t, _)| t.clone())
            .collect();
        assert_eq!(d.transitions, expected, "exactly the transitions with fresh frames: {s}");
        let lost = plain.transitions.len() - d.transitions.len();
        assert!(lost > 10, "{s}");
        let missing = s.dropped["no depth image at or before s or s'"];
        let stale = s.dropped["latest depth image before s or s' older than depth_max_age_s"];
        assert!(missing > 0 && stale > 0, "{s}");
        assert_eq!((missing + stale) as usize, lost, "{s}");
        for reason in [
            "depth image data length is not step · height",
            "depth image encoding `rgb8` is neither 32FC1 nor 16UC1",
            "depth image is empty or its step is shorter than a row",
            "depth image size differs from the bag's first depth image",
            "/camera/depth/image_raw: does not decode as Image",
        ] {
            assert_eq!(s.dropped.get(reason), Some(&1), "{reason}: {s}");
        }
        assert_eq!(s.dropped_total() - plain.summary.dropped_total(), missing + stale + 5, "{s}");
        assert_eq!(s.depth_images as usize, stamps.len());
        assert_eq!(s.states, plain.summary.states);
        assert_eq!(s.commands, plain.summary.commands);
        assert_eq!(d.depth.unwrap().obs.len(), d.transitions.len());
    }

    fn image(encoding: &str, big_endian: bool, width: u32, step: u32, data: Vec<u8>) -> Image {
        Image {
            header: Header::new(Time::from_nanos(1), "cam"),
            height: data.len() as u32 / step,
            width,
            encoding: encoding.into(),
            is_bigendian: u8::from(big_endian),
            step,
            data,
        }
    }

    /// 16UC1 is millimetres with 0 = no return (NaN); rows are `step` bytes apart (padding
    /// skipped); both byte orders decode; 32FC1 keeps its values, non-finite ones included.
    #[test]
    fn sixteen_bit_depth_is_millimetres_and_zero_is_no_return() {
        let mm: [u16; 6] = [0, 1500, 65535, 1, 0, 250];
        for big in [false, true] {
            let mut data = Vec::new();
            for row in mm.chunks(3) {
                for v in row {
                    data.extend(if big { v.to_be_bytes() } else { v.to_le_bytes() });
                }
                data.extend([0xff, 0xff]); // padding: step 8 for 3 pixels of 2 bytes
            }
            let depth = decode_depth(&image("16UC1", big, 3, 8, data)).unwrap();
            let want = [f32::NAN, 1.5, 65.535, 0.001, f32::NAN, 0.25];
            assert!(same_pixels(&depth, &want), "big endian {big}: {depth:?}");
        }
        let metres = [1.25f32, f32::NAN, f32::INFINITY, 0.5];
        let be: Vec<u8> = metres.iter().flat_map(|v| v.to_be_bytes()).collect();
        assert!(same_pixels(&decode_depth(&image("32FC1", true, 2, 8, be)).unwrap(), &metres));
        let le = crate::convert::depth_image(Time::default(), "cam", 2, &metres);
        assert!(same_pixels(&decode_depth(&le).unwrap(), &metres));
        let short = image("32FC1", false, 2, 8, vec![0; 12]);
        assert_eq!(decode_depth(&short), Err(DepthError::Length));
        let rgb = image("rgb8", false, 1, 3, vec![0; 3]);
        assert!(matches!(decode_depth(&rgb), Err(DepthError::Encoding { .. })));
    }

    /// Datasets of two bags concatenate; the second one's frame indices are shifted.
    #[test]
    fn datasets_append_with_shifted_frame_indices() {
        let spec = obstacle_spec();
        let (msgs, _) = messages_with_depth(&spec, 60, Some(10.0));
        let one = build(&spec, depth_topics(), &msgs);
        let mut two = one.clone();
        two.append(one.clone()).unwrap();
        let (f1, f2) = (one.depth.as_ref().unwrap(), two.depth.as_ref().unwrap());
        let n = one.transitions.len();
        assert_eq!(two.transitions.len(), 2 * n);
        assert_eq!(f2.len(), 2 * f1.len());
        assert_eq!(f2.obs[n], f1.obs[0] + f1.len() as u32);
        assert!(same_pixels(f2.frame(f2.obs[n] as usize), f1.frame(f1.obs[0] as usize)));
        assert_eq!(two.summary.transitions, 2 * one.summary.transitions);
        assert!(two.clone().append(build(&spec, DatasetTopics::default(), &msgs)).is_err());
    }
}
