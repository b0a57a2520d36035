//! The policy node's safety layer: what stands between a learned policy and a real arm. Pure
//! logic (no DDS), so every rule is unit-tested here; the node only feeds it messages and times.
//!
//! 1. Observations: a `sensor_msgs/JointState` (arrays `name`, `position`, `velocity`, `effort`;
//!    units rad, rad/s, N m, or m, m/s, N for prismatic joints, REP 103) is matched to the
//!    configured joint order **by name** ([`read_joint_state`]). Joints the node does not control
//!    (grippers, a mobile base) are ignored. A missing configured joint, arrays of the wrong
//!    length, a duplicated configured joint, NaN/Inf, or an empty `velocity` array is a
//!    [`StateError`].
//! 2. Staleness: a state older than `max_state_age_s` (default `0.1 s`) is refused
//!    ([`check_age`]).
//! 3. Command shaping ([`CommandShaper`]): each joint's velocity is clamped to its URDF velocity
//!    limit, and motion *towards* a position limit is scaled down linearly to zero over a slowdown
//!    zone in front of the limit; motion away from it is never slowed.
//! 4. The decision ([`SafetyGuard::decide`]): the shaped command, or zero velocity with a
//!    [`StopReason`] and a throttled warning ([`WarnThrottle`], one per reason per
//!    `warn_period_s`, counting what it held back). Nothing here panics on bad input.
//!
//! Time is seconds on one clock chosen by the caller, as in [`crate::command::CommandGate`]: wall
//! time (`Instant::elapsed().as_secs_f64()` since node start) in real time, or `/clock` seconds
//! (`Time::as_secs_f64`) with `use_sim_time`. Both the receipt time of a state and `now` must come
//! from that same clock.

use equigate_robot::model::{JointLimits, Motion, RobotModel};
use equigate_ros::msg::JointState;
use serde::{Deserialize, Serialize};

use crate::command::{self, CommandError};
use crate::sim_server::Every;

/// Default of [`SafetyConfig::max_state_age_s`], s: ros2_control's command timeout, and eight
/// periods of a 125 Hz `joint_state_broadcaster` (ur_robot_driver's rate).
pub const DEFAULT_MAX_STATE_AGE_S: f64 = 0.1;

/// The most joints a [`ShapeFlags`] can describe (one bit each).
pub const MAX_JOINTS: usize = 64;

/// The safety layer's ROS parameters (a `safety:` mapping in the policy node's parameters, i.e.
/// `safety.max_state_age_s` etc.). Unknown keys are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SafetyConfig {
    /// A joint state received longer ago than this gives zero velocity, s (default: `0.1`).
    /// Also the tolerance for a state that seems to come from the future (clock jumped back).
    pub max_state_age_s: f64,
    /// Slowdown zone in front of a revolute joint's position limit, rad (default: `0.1`, MoveIt
    /// Servo's `joint_limit_margin` in its example configs; 1.6 % of a UR5e joint's ±2π range,
    /// 3 % of the Fetch shoulder pan's ±1.6 rad). Widened per joint as [`CommandShaper`] says.
    pub slowdown_zone_rad: f64,
    /// Slowdown zone in front of a prismatic joint's position limit, m (default: `0.02`, 5 % of
    /// the Fetch torso's 0.386 m stroke: a 0.2 s approach time constant at its 0.1 m/s limit).
    pub slowdown_zone_m: f64,
    /// At most one warning per stop reason per this period, s (default: `1.0`).
    pub warn_period_s: f64,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        Self {
            max_state_age_s: DEFAULT_MAX_STATE_AGE_S,
            slowdown_zone_rad: 0.1,
            slowdown_zone_m: 0.02,
            warn_period_s: 1.0,
        }
    }
}

impl SafetyConfig {
    /// # Errors
    /// [`SetupError::InvalidParameter`] for a non-finite value, a non-positive age or warning
    /// period, or a negative zone.
    pub fn validate(&self) -> Result<(), SetupError> {
        for (name, value, min_exclusive) in [
            ("max_state_age_s", self.max_state_age_s, true),
            ("warn_period_s", self.warn_period_s, true),
            ("slowdown_zone_rad", self.slowdown_zone_rad, false),
            ("slowdown_zone_m", self.slowdown_zone_m, false),
        ] {
            let ok = value.is_finite() && if min_exclusive { value > 0.0 } else { value >= 0.0 };
            if !ok {
                let reason = if min_exclusive { "must be > 0" } else { "must be >= 0" };
                return Err(SetupError::InvalidParameter { name, value, reason });
            }
        }
        Ok(())
    }
}

/// Why the safety layer could not be built (a configuration error: the node should exit).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SetupError {
    /// A configured joint is not an actuated joint of the URDF chain.
    #[error("joint `{joint}` is not an actuated joint of the URDF (it has: {known})")]
    UnknownJoint { joint: String, known: String },
    /// A joint is configured twice.
    #[error("joint `{joint}` is configured twice")]
    DuplicateJoint { joint: String },
    /// An actuated joint of the URDF chain is not configured (the policy needs all of them).
    #[error("joint `{joint}` of the URDF is missing from the configured joints")]
    MissingJoint { joint: String },
    /// More than [`MAX_JOINTS`] joints.
    #[error("{count} joints configured, at most {MAX_JOINTS} supported")]
    TooManyJoints { count: usize },
    /// A parameter out of range.
    #[error("parameter `{name}` {reason}, got {value}")]
    InvalidParameter { name: &'static str, value: f64, reason: &'static str },
}

/// Why a joint state cannot be used. Display texts start with "joint state" so that they read
/// on their own in a log line or a `/diagnostics` message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateError {
    /// `position` or `velocity` is not as long as `name` (`field`: `"position"` or `"velocity"`).
    #[error("joint state has {names} names but {values} {field} values")]
    LengthMismatch { field: &'static str, names: usize, values: usize },
    /// The `velocity` array is empty: the message definition allows it, but the policy observes
    /// joint velocities and a zero guess would be a wrong observation.
    #[error("joint state has no velocities (empty velocity array)")]
    NoVelocity,
    /// A configured joint is not in `name`.
    #[error("joint state lacks joint `{joint}`")]
    MissingJoint { joint: String },
    /// A configured joint appears more than once in `name`.
    #[error("joint state names joint `{joint}` {count} times")]
    DuplicateJoint { joint: String, count: usize },
    /// NaN or ±Inf in a configured joint's `field` (`"position"` or `"velocity"`).
    #[error("joint state {field} of `{joint}` is not finite: {value}")]
    NotFinite { joint: String, field: &'static str, value: f64 },
    /// Received longer ago than the limit (or at a non-finite time).
    #[error("joint state is stale: {age_s:.3} s old (limit {max_age_s} s)")]
    Stale { age_s: f64, max_age_s: f64 },
    /// Received "after now" by more than the limit: the clock jumped back (a restarted
    /// simulator's `/clock`) or, with header stamps, the clocks disagree.
    #[error("joint state time is {ahead_s:.3} s ahead of now (clock jumped back?; tolerance {max_age_s} s)")]
    FromTheFuture { ahead_s: f64, max_age_s: f64 },
}

/// Matches `msg` to the configured joint order by name and writes positions (rad or m) into `q`
/// and velocities (rad/s or m/s) into `qdot` (both cleared first, then `joints.len()` long).
///
/// `sensor_msgs/JointState` says each value array is empty or as long as `name`. Joints of the
/// message that are not configured are ignored (their values are not checked; duplicates among
/// them do not matter). `effort` is not used and not checked. An empty `velocity` array is an
/// error ([`StateError::NoVelocity`]): real drivers (ur_robot_driver, Fetch's, ros2_control's
/// joint_state_broadcaster) and the built-in simulator all publish velocities, and the policy's
/// observation needs them; silently assuming zero would feed it a state it never saw.
///
/// On error `q` and `qdot` hold partial values: read into scratch buffers.
///
/// # Errors
/// The first problem found, in this order: [`StateError::LengthMismatch`],
/// [`StateError::NoVelocity`], then per configured joint [`StateError::MissingJoint`],
/// [`StateError::DuplicateJoint`], [`StateError::NotFinite`] (position before velocity).
pub fn read_joint_state(
    joints: &[String],
    msg: &JointState,
    q: &mut Vec<f64>,
    qdot: &mut Vec<f64>,
) -> Result<(), StateError> {
    let names = msg.name.len();
    if msg.position.len() != names {
        return Err(StateError::LengthMismatch {
            field: "position",
            names,
            values: msg.position.len(),
        });
    }
    if msg.velocity.is_empty() && names > 0 {
        return Err(StateError::NoVelocity);
    }
    if msg.velocity.len() != names {
        return Err(StateError::LengthMismatch {
            field: "velocity",
            names,
            values: msg.velocity.len(),
        });
    }
    q.clear();
    qdot.clear();
    for joint in joints {
        let mut found = msg.name.iter().enumerate().filter(|(_, n)| *n == joint);
        let Some((k, _)) = found.next() else {
            return Err(StateError::MissingJoint { joint: joint.clone() });
        };
        let extra = found.count();
        if extra > 0 {
            return Err(StateError::DuplicateJoint { joint: joint.clone(), count: extra + 1 });
        }
        for (field, value) in [("position", msg.position[k]), ("velocity", msg.velocity[k])] {
            if !value.is_finite() {
                return Err(StateError::NotFinite { joint: joint.clone(), field, value });
            }
        }
        q.push(msg.position[k]);
        qdot.push(msg.velocity[k]);
    }
    Ok(())
}

/// Age of a state received at `received_s` when it is `now_s` (both s, same clock): `Ok(age)` if
/// `-max_age_s <= age <= max_age_s`.
///
/// Receipt time on the node's clock (not `header.stamp`) is the default because it needs no clock
/// synchronisation between the driver's machine and ours; a node that trusts its clocks may pass
/// `header.stamp.as_secs_f64()` instead to also catch messages delayed in transit.
///
/// # Errors
/// [`StateError::Stale`] (also for non-finite times) or [`StateError::FromTheFuture`].
pub fn check_age(received_s: f64, now_s: f64, max_age_s: f64) -> Result<f64, StateError> {
    let age_s = now_s - received_s;
    if age_s < -max_age_s {
        Err(StateError::FromTheFuture { ahead_s: -age_s, max_age_s })
    } else if age_s <= max_age_s {
        Ok(age_s)
    } else {
        Err(StateError::Stale { age_s, max_age_s })
    }
}

/// What [`CommandShaper::shape_into`] changed, one bit per configured joint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShapeFlags {
    velocity_clamped: u64,
    slowed: u64,
}

impl ShapeFlags {
    /// The desired velocity of joint `i` exceeded its URDF velocity limit.
    pub fn velocity_clamped(&self, i: usize) -> bool {
        self.velocity_clamped >> i & 1 == 1
    }

    /// Joint `i` was slowed (or stopped) near a position limit it was moving towards.
    pub fn slowed(&self, i: usize) -> bool {
        self.slowed >> i & 1 == 1
    }

    /// How many joints were velocity-clamped.
    pub fn velocity_clamped_count(&self) -> u32 {
        self.velocity_clamped.count_ones()
    }

    /// How many joints were slowed near a position limit.
    pub fn slowed_count(&self) -> u32 {
        self.slowed.count_ones()
    }

    /// The command went out unchanged.
    pub fn is_unchanged(&self) -> bool {
        self.velocity_clamped == 0 && self.slowed == 0
    }
}

/// Clamps velocity commands to the URDF limits and slows them near position limits.
///
/// For joint `i` with velocity limit `v_max` at position `q`, a desired velocity `v` becomes
/// `c = clamp(v, -v_max, v_max)`, then, for a joint with position limits, if `c` moves towards
/// the upper limit, `c * clamp((upper - q) / ramp, 0, 1)`, and likewise towards the lower limit
/// with `q - lower`. So the speed towards a limit falls linearly to 0 across the zone, is 0 at or
/// beyond the limit, and motion away from a limit is never slowed (the arm can always back out).
/// Continuous joints are only velocity-clamped.
///
/// `ramp = max(zone, v_max * command_period_s)`: with it the joint's approach is at most
/// exponential with time constant `ramp / v_max >= command_period_s`, so a command held for one
/// period cannot carry the joint past its limit (e.g. the UR5e at 25 Hz: π rad/s × 0.04 s =
/// 0.126 rad > 0.1 rad). A command held longer than that (a stalled policy and a controller
/// without a timeout) is not covered.
///
/// Each joint is clamped on its own (as ros2_control's joint limiters do), which can change the
/// direction of the joint-space motion; the policy's actions are scaled to the limits, so this
/// only bites on out-of-range actions.
#[derive(Debug, Clone)]
pub struct CommandShaper {
    joints: Vec<String>,
    limits: Vec<JointLimits>,
    /// Per joint: the distance over which motion towards a limit is scaled to zero (rad or m).
    ramp: Vec<f64>,
}

impl CommandShaper {
    /// A shaper for `joints` of `model` in that order (empty: the model's order).
    /// `command_period_s`: how long the controller holds each command (the node's control
    /// period, e.g. 0.04 s at 25 Hz, 0.002 s at 500 Hz).
    ///
    /// # Errors
    /// [`SetupError`] for unknown, duplicated or missing joints, too many joints, or a bad
    /// parameter.
    pub fn new(
        model: &RobotModel,
        joints: &[String],
        config: &SafetyConfig,
        command_period_s: f64,
    ) -> Result<Self, SetupError> {
        config.validate()?;
        if !(command_period_s.is_finite() && command_period_s >= 0.0) {
            return Err(SetupError::InvalidParameter {
                name: "command_period_s",
                value: command_period_s,
                reason: "must be >= 0",
            });
        }
        let joints = if joints.is_empty() { model.joint_names().to_vec() } else { joints.to_vec() };
        let order = joint_order(model, &joints)?;
        let limits: Vec<JointLimits> = order.iter().map(|&m| model.limits()[m]).collect();
        let ramp = order
            .iter()
            .zip(&limits)
            .map(|(&m, l)| {
                let prismatic = model
                    .segments()
                    .iter()
                    .any(|s| s.dof == Some(m) && matches!(s.motion, Motion::Prismatic { .. }));
                let zone =
                    if prismatic { config.slowdown_zone_m } else { config.slowdown_zone_rad };
                zone.max(l.velocity * command_period_s)
            })
            .collect();
        Ok(Self { joints, limits, ramp })
    }

    /// Joint names in command order.
    pub fn joint_names(&self) -> &[String] {
        &self.joints
    }

    /// URDF limits in command order.
    pub fn limits(&self) -> &[JointLimits] {
        &self.limits
    }

    /// Per joint, the distance in front of a limit over which speed towards it is scaled to
    /// zero: `max(zone, v_max * command_period_s)`, rad or m.
    pub fn ramps(&self) -> &[f64] {
        &self.ramp
    }

    /// Shapes `desired` (rad/s or m/s, command order) at positions `q` (rad or m, command order)
    /// into `out` (same length). Does not allocate. On error `out` is all zeros.
    ///
    /// # Errors
    /// [`StopReason::Command`] when `desired` has the wrong length or a NaN/Inf (the policy's
    /// fault); [`StopReason::State`] with [`StateError::NotFinite`] for a NaN/Inf in `q`.
    ///
    /// # Panics
    /// If `q` or `out` is not one value per joint (the caller's buffers, sized once).
    pub fn shape_into(
        &self,
        desired: &[f64],
        q: &[f64],
        out: &mut [f64],
    ) -> Result<ShapeFlags, StopReason> {
        let n = self.joints.len();
        assert!(q.len() == n && out.len() == n, "q and out hold one value per joint ({n})");
        out.fill(0.0);
        command::validate(&self.joints, desired).map_err(StopReason::Command)?;
        if let Some(i) = q.iter().position(|x| !x.is_finite()) {
            let (joint, field, value) = (self.joints[i].clone(), "position", q[i]);
            return Err(StopReason::State(StateError::NotFinite { joint, field, value }));
        }
        let mut flags = ShapeFlags::default();
        for i in 0..n {
            let l = &self.limits[i];
            let mut v = desired[i].clamp(-l.velocity, l.velocity);
            if v != desired[i] {
                flags.velocity_clamped |= 1 << i;
            }
            if !l.continuous {
                let room = if v > 0.0 {
                    l.upper - q[i]
                } else if v < 0.0 {
                    q[i] - l.lower
                } else {
                    f64::INFINITY
                };
                let scale = (room / self.ramp[i]).clamp(0.0, 1.0);
                if scale < 1.0 {
                    v *= scale;
                    flags.slowed |= 1 << i;
                }
            }
            out[i] = v;
        }
        Ok(flags)
    }
}

/// `order[i]`: model index of configured joint `i`.
fn joint_order(model: &RobotModel, joints: &[String]) -> Result<Vec<usize>, SetupError> {
    if joints.len() > MAX_JOINTS {
        return Err(SetupError::TooManyJoints { count: joints.len() });
    }
    let mut seen = vec![false; model.dof()];
    let mut order = Vec::with_capacity(joints.len());
    for joint in joints {
        let m = model.joint_index(joint).ok_or_else(|| SetupError::UnknownJoint {
            joint: joint.clone(),
            known: model.joint_names().join(", "),
        })?;
        if seen[m] {
            return Err(SetupError::DuplicateJoint { joint: joint.clone() });
        }
        seen[m] = true;
        order.push(m);
    }
    match seen.iter().position(|s| !s) {
        Some(m) => Err(SetupError::MissingJoint { joint: model.joint_names()[m].clone() }),
        None => Ok(order),
    }
}

/// Why zero velocity was sent instead of the policy's command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StopReason {
    /// No joint state has arrived yet.
    #[error("no joint state received yet")]
    NoState,
    /// The latest joint state is unusable or stale.
    #[error("{0}")]
    State(StateError),
    /// The policy's command has the wrong length or a NaN/Inf.
    #[error("policy command rejected: {0}")]
    Command(CommandError),
}

/// Coarse kinds of [`StopReason`]: the key of the warning throttle and of the stop counters
/// (`as_str` gives a `/diagnostics` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopKind {
    NoState,
    /// [`StateError::Stale`] or [`StateError::FromTheFuture`].
    Stale,
    /// [`StateError::MissingJoint`].
    MissingJoint,
    /// NaN/Inf in a configured joint's position or velocity.
    NotFinite,
    /// Wrong array lengths, duplicate names, no velocities.
    Malformed,
    /// The policy's command was invalid.
    BadCommand,
}

impl StopKind {
    /// Every kind, in the order of [`SafetyStats::stopped`].
    pub const ALL: [StopKind; 6] = [
        StopKind::NoState,
        StopKind::Stale,
        StopKind::MissingJoint,
        StopKind::NotFinite,
        StopKind::Malformed,
        StopKind::BadCommand,
    ];

    /// A snake_case name, e.g. `stale_state`.
    pub fn as_str(self) -> &'static str {
        match self {
            StopKind::NoState => "no_state",
            StopKind::Stale => "stale_state",
            StopKind::MissingJoint => "missing_joint",
            StopKind::NotFinite => "non_finite_state",
            StopKind::Malformed => "malformed_state",
            StopKind::BadCommand => "bad_command",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl StopReason {
    pub fn kind(&self) -> StopKind {
        match self {
            StopReason::NoState => StopKind::NoState,
            StopReason::State(e) => match e {
                StateError::Stale { .. } | StateError::FromTheFuture { .. } => StopKind::Stale,
                StateError::MissingJoint { .. } => StopKind::MissingJoint,
                StateError::NotFinite { .. } => StopKind::NotFinite,
                StateError::LengthMismatch { .. }
                | StateError::NoVelocity
                | StateError::DuplicateJoint { .. } => StopKind::Malformed,
            },
            StopReason::Command(_) => StopKind::BadCommand,
        }
    }
}

/// At most one warning per key per period; counts the occurrences it held back.
///
/// Built on [`Every`] (the sim node's 1 Hz warning schedule), one per key.
#[derive(Debug, Clone)]
pub struct WarnThrottle<K> {
    rate_hz: f64,
    /// `(key, schedule, held back since the last warning)`.
    keys: Vec<(K, Every, u64)>,
}

impl<K: PartialEq + Copy> WarnThrottle<K> {
    /// `period_s` > 0: the shortest time between two warnings of one key, s.
    pub fn new(period_s: f64) -> Self {
        Self { rate_hz: 1.0 / period_s, keys: Vec::new() }
    }

    /// An occurrence of `key` at `now_s` (s). `Some(held_back)` when a warning is due now,
    /// with how many occurrences were held back since the last one; `None` to stay quiet.
    pub fn check(&mut self, key: K, now_s: f64) -> Option<u64> {
        let i = match self.keys.iter().position(|(k, _, _)| *k == key) {
            Some(i) => i,
            None => {
                self.keys.push((key, Every::hz(self.rate_hz), 0));
                self.keys.len() - 1
            }
        };
        let (_, due, held_back) = &mut self.keys[i];
        if due.due(now_s) {
            Some(std::mem::take(held_back))
        } else {
            *held_back += 1;
            None
        }
    }
}

/// What [`SafetyGuard::decide`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The policy's command went out, shaped as the flags say.
    Sent(ShapeFlags),
    /// Zero velocity went out. `warn`: `Some(held_back)` when a warning should be logged now
    /// ([`Verdict::warning`] gives its text), with the number of stops of this kind held back
    /// since the last warning; `None` while throttled.
    Stopped { reason: StopReason, warn: Option<u64> },
}

impl Verdict {
    /// The warning to log now, if one is due.
    pub fn warning(&self) -> Option<String> {
        match self {
            Verdict::Stopped { reason, warn: Some(0) } => {
                Some(format!("sending zero velocity: {reason}"))
            }
            Verdict::Stopped { reason, warn: Some(n) } => Some(format!(
                "sending zero velocity: {reason} ({n} more zero commands for this reason since \
                 the last warning)"
            )),
            _ => None,
        }
    }
}

/// Counters for `/diagnostics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SafetyStats {
    /// Commands sent (shaped or not).
    pub sent: u64,
    /// Sent commands in which some joint was velocity-clamped.
    pub velocity_clamped: u64,
    /// Sent commands in which some joint was slowed near a position limit.
    pub slowed: u64,
    /// Zero commands, by [`StopKind`] in the order of [`StopKind::ALL`].
    pub stopped: [u64; StopKind::ALL.len()],
    /// Joint state messages that were unusable ([`SafetyGuard::on_joint_state`] errors).
    pub bad_states: u64,
}

impl SafetyStats {
    /// Zero commands of one kind.
    pub fn stopped_by(&self, kind: StopKind) -> u64 {
        self.stopped[kind.index()]
    }

    /// All zero commands.
    pub fn stopped_total(&self) -> u64 {
        self.stopped.iter().sum()
    }
}

/// The policy node's safe-command decision: keeps the latest joint state (or why it was
/// unusable) and turns each desired command into the command to publish.
///
/// ```text
/// on /joint_states:  guard.on_joint_state(&msg, now)       // q(), qdot() for the observation
/// each control tick: let (cmd, verdict) = guard.decide(&action, now);
///                    publish(cmd); if let Some(w) = verdict.warning() { warn!("{w}") }
/// ```
#[derive(Debug, Clone)]
pub struct SafetyGuard {
    shaper: CommandShaper,
    max_state_age_s: f64,
    /// Latest state: `Ok(receipt time)` with `q`/`qdot` from it, or why it was refused.
    latest: Option<Result<f64, StateError>>,
    q: Vec<f64>,
    qdot: Vec<f64>,
    scratch_q: Vec<f64>,
    scratch_qdot: Vec<f64>,
    out: Vec<f64>,
    throttle: WarnThrottle<StopKind>,
    stats: SafetyStats,
}

impl SafetyGuard {
    /// A guard for `joints` of `model` (empty: the model's order), the order of the published
    /// commands and of [`SafetyGuard::q`]. `command_period_s`: the control period (see
    /// [`CommandShaper`]).
    ///
    /// # Errors
    /// [`SetupError`], as [`CommandShaper::new`].
    pub fn new(
        model: &RobotModel,
        joints: &[String],
        config: &SafetyConfig,
        command_period_s: f64,
    ) -> Result<Self, SetupError> {
        let shaper = CommandShaper::new(model, joints, config, command_period_s)?;
        let n = shaper.joint_names().len();
        Ok(Self {
            shaper,
            max_state_age_s: config.max_state_age_s,
            latest: None,
            q: vec![0.0; n],
            qdot: vec![0.0; n],
            scratch_q: Vec::with_capacity(n),
            scratch_qdot: Vec::with_capacity(n),
            out: vec![0.0; n],
            throttle: WarnThrottle::new(config.warn_period_s),
            stats: SafetyStats::default(),
        })
    }

    /// Joint names in command order.
    pub fn joint_names(&self) -> &[String] {
        self.shaper.joint_names()
    }

    pub fn shaper(&self) -> &CommandShaper {
        &self.shaper
    }

    /// Takes a joint state received at `received_s` (s, the guard's clock). A valid one becomes
    /// the current state ([`SafetyGuard::q`], [`SafetyGuard::qdot`]); an invalid one leaves them
    /// as they were but makes [`SafetyGuard::decide`] stop until the next valid state.
    ///
    /// # Errors
    /// Why the state is unusable (no need to log it: `decide` warns, throttled).
    pub fn on_joint_state(&mut self, msg: &JointState, received_s: f64) -> Result<(), StateError> {
        let (q, qdot) = (&mut self.scratch_q, &mut self.scratch_qdot);
        match read_joint_state(self.shaper.joint_names(), msg, q, qdot) {
            Ok(()) => {
                std::mem::swap(&mut self.q, &mut self.scratch_q);
                std::mem::swap(&mut self.qdot, &mut self.scratch_qdot);
                self.latest = Some(Ok(received_s));
                Ok(())
            }
            Err(e) => {
                self.stats.bad_states += 1;
                self.latest = Some(Err(e.clone()));
                Err(e)
            }
        }
    }

    /// Positions of the last valid state, rad or m, command order (zeros before the first).
    pub fn q(&self) -> &[f64] {
        &self.q
    }

    /// Velocities of the last valid state, rad/s or m/s, command order (zeros before the first).
    pub fn qdot(&self) -> &[f64] {
        &self.qdot
    }

    /// Whether a fresh, valid state is available at `now_s`: the observation can be trusted.
    pub fn state_ok(&self, now_s: f64) -> Result<(), StopReason> {
        match &self.latest {
            None => Err(StopReason::NoState),
            Some(Err(e)) => Err(StopReason::State(e.clone())),
            Some(Ok(received_s)) => check_age(*received_s, now_s, self.max_state_age_s)
                .map(|_| ())
                .map_err(StopReason::State),
        }
    }

    /// The command to publish at `now_s` (s) for the policy's `desired` velocities (rad/s or m/s,
    /// command order): the shaped command if the latest state is valid and fresh and `desired`
    /// is valid, else zeros and the reason (with a throttled warning). Allocates only when it
    /// stops.
    pub fn decide(&mut self, desired: &[f64], now_s: f64) -> (&[f64], Verdict) {
        let result = self
            .state_ok(now_s)
            .and_then(|()| self.shaper.shape_into(desired, &self.q, &mut self.out));
        let verdict = match result {
            Ok(flags) => {
                self.stats.sent += 1;
                self.stats.velocity_clamped += u64::from(flags.velocity_clamped != 0);
                self.stats.slowed += u64::from(flags.slowed != 0);
                Verdict::Sent(flags)
            }
            Err(reason) => {
                self.out.fill(0.0);
                let kind = reason.kind();
                self.stats.stopped[kind.index()] += 1;
                Verdict::Stopped { warn: self.throttle.check(kind, now_s), reason }
            }
        };
        (&self.out, verdict)
    }

    pub fn stats(&self) -> SafetyStats {
        self.stats
    }

    /// Forgets the current state (e.g. after a simulator reset): zeros until the next state.
    pub fn clear_state(&mut self) {
        self.latest = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use equigate_robot::model::RobotKind;
    use equigate_ros::msg::{Header, Time};
    use std::f64::consts::PI;

    fn names(kind: RobotKind) -> Vec<String> {
        kind.joint_names().iter().map(|s| s.to_string()).collect()
    }

    fn msg(name: &[&str], position: &[f64], velocity: &[f64]) -> JointState {
        JointState {
            header: Header::new(Time::default(), ""),
            name: name.iter().map(|s| s.to_string()).collect(),
            position: position.to_vec(),
            velocity: velocity.to_vec(),
            effort: Vec::new(),
        }
    }

    /// A UR5e state in the configured order with a gripper joint in the middle.
    fn ur5e_state(q: &[f64], qdot: &[f64]) -> JointState {
        let mut m = msg(RobotKind::Ur5e.joint_names(), q, qdot);
        m.name.insert(3, "gripper_finger_joint".into());
        m.position.insert(3, 0.04);
        m.velocity.insert(3, 0.0);
        m
    }

    fn guard(kind: RobotKind, period: f64) -> SafetyGuard {
        let model = kind.load().unwrap();
        SafetyGuard::new(&model, &[], &SafetyConfig::default(), period).unwrap()
    }

    fn read(joints: &[String], m: &JointState) -> Result<(Vec<f64>, Vec<f64>), StateError> {
        let (mut q, mut qdot) = (Vec::new(), Vec::new());
        read_joint_state(joints, m, &mut q, &mut qdot).map(|()| (q, qdot))
    }

    #[test]
    fn joint_state_is_matched_by_name_and_extra_joints_are_ignored() {
        let joints = names(RobotKind::Ur5e);
        // Reversed order, a gripper and a base joint mixed in, the gripper NaN (not ours).
        let mut reversed: Vec<&str> = RobotKind::Ur5e.joint_names().to_vec();
        reversed.reverse();
        reversed.insert(2, "gripper_finger_joint");
        reversed.push("base_x");
        let m = msg(
            &reversed,
            &[6.0, 5.0, f64::NAN, 4.0, 3.0, 2.0, 1.0, 9.0],
            &[-6.0, -5.0, 0.0, -4.0, -3.0, -2.0, -1.0, -9.0],
        );
        let (q, qdot) = read(&joints, &m).unwrap();
        assert_eq!(q, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(qdot, [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0]);
        // A duplicated joint we do not control does not matter either.
        let mut dup = m.clone();
        dup.name[7] = "gripper_finger_joint".into();
        assert!(read(&joints, &dup).is_ok());
    }

    #[test]
    fn missing_joint_is_an_error_naming_it() {
        let joints = names(RobotKind::Ur5e);
        let mut m = ur5e_state(&[0.0; 6], &[0.0; 6]);
        m.name[4] = "wrist_1".into(); // typo for wrist_1_joint
        let err = read(&joints, &m).unwrap_err();
        assert_eq!(err, StateError::MissingJoint { joint: "wrist_1_joint".into() });
        assert_eq!(err.to_string(), "joint state lacks joint `wrist_1_joint`");
    }

    #[test]
    fn array_length_mismatches_are_errors_with_the_lengths() {
        let joints = names(RobotKind::Ur5e);
        let mut m = ur5e_state(&[0.0; 6], &[0.0; 6]);
        m.position.pop();
        let err = read(&joints, &m).unwrap_err();
        assert_eq!(err, StateError::LengthMismatch { field: "position", names: 7, values: 6 });
        assert_eq!(err.to_string(), "joint state has 7 names but 6 position values");

        let mut m = ur5e_state(&[0.0; 6], &[0.0; 6]);
        m.velocity.push(0.0);
        let err = read(&joints, &m).unwrap_err();
        assert_eq!(err, StateError::LengthMismatch { field: "velocity", names: 7, values: 8 });

        // Effort is not used, so its length does not matter.
        let mut m = ur5e_state(&[0.0; 6], &[0.0; 6]);
        m.effort = vec![1.0; 2];
        assert!(read(&joints, &m).is_ok());
    }

    #[test]
    fn empty_velocity_array_is_refused() {
        let joints = names(RobotKind::Ur5e);
        let mut m = ur5e_state(&[0.0; 6], &[0.0; 6]);
        m.velocity.clear();
        let err = read(&joints, &m).unwrap_err();
        assert_eq!(err, StateError::NoVelocity);
        assert!(err.to_string().contains("no velocities"));
    }

    #[test]
    fn duplicate_configured_joint_is_an_error() {
        let joints = names(RobotKind::Ur5e);
        let mut m = ur5e_state(&[0.0; 6], &[0.0; 6]);
        m.name[3] = "elbow_joint".into(); // the gripper slot now repeats the elbow
        let err = read(&joints, &m).unwrap_err();
        assert_eq!(err, StateError::DuplicateJoint { joint: "elbow_joint".into(), count: 2 });
    }

    #[test]
    fn non_finite_values_name_the_joint_and_field() {
        let joints = names(RobotKind::Ur5e);
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut q = [0.0; 6];
            q[2] = bad;
            let err = read(&joints, &ur5e_state(&q, &[0.0; 6])).unwrap_err();
            assert!(
                matches!(&err, StateError::NotFinite { joint, field: "position", value }
                    if joint == "elbow_joint" && value.to_bits() == bad.to_bits()),
                "{err:?}"
            );
            let mut qdot = [0.0; 6];
            qdot[5] = bad;
            let err = read(&joints, &ur5e_state(&[0.0; 6], &qdot)).unwrap_err();
            assert!(
                matches!(&err, StateError::NotFinite { joint, field: "velocity", .. }
                    if joint == "wrist_3_joint"),
                "{err:?}"
            );
            assert!(err.to_string().contains("velocity of `wrist_3_joint`"), "{err}");
        }
    }

    #[test]
    fn staleness_just_under_and_over_the_limit() {
        let max = DEFAULT_MAX_STATE_AGE_S;
        // Wall-clock-like seconds since start and /clock-like epoch seconds alike.
        for t0 in [0.0, 12.5, 1.7e9] {
            assert!(check_age(t0, t0 + 0.099, max).is_ok());
            assert!(check_age(t0, t0 + 0.0999, max).is_ok());
            let age = check_age(t0, t0 + 0.1001, max).unwrap_err();
            match age {
                StateError::Stale { age_s, max_age_s } => {
                    assert!((age_s - 0.1001).abs() < 1e-6, "{age_s}");
                    assert_eq!(max_age_s, max);
                }
                other => panic!("expected Stale, got {other:?}"),
            }
        }
        assert!((check_age(1.0, 1.05, max).unwrap() - 0.05).abs() < 1e-12);
        let err = check_age(2.0, 2.5, max).unwrap_err();
        assert_eq!(err.to_string(), "joint state is stale: 0.500 s old (limit 0.1 s)");
        // A clock that jumped back (a restarted simulator's /clock).
        assert!(check_age(0.05, 0.0, max).is_ok());
        let err = check_age(100.0, 0.0, max).unwrap_err();
        assert!(matches!(err, StateError::FromTheFuture { ahead_s, .. } if ahead_s == 100.0));
        // Non-finite times are stale, never fresh.
        assert!(matches!(check_age(f64::NAN, 1.0, max), Err(StateError::Stale { .. })));
        assert!(matches!(check_age(0.0, f64::INFINITY, max), Err(StateError::Stale { .. })));
    }

    #[test]
    fn velocities_are_clamped_to_each_ur5e_joints_limit() {
        let model = RobotModel::ur5e().unwrap();
        // Configured in reverse order: the limits must follow the names.
        let mut joints = names(RobotKind::Ur5e);
        joints.reverse();
        let shaper = CommandShaper::new(&model, &joints, &SafetyConfig::default(), 0.04).unwrap();
        let q = RobotKind::Ur5e.home().into_iter().rev().collect::<Vec<_>>();
        let mut out = [0.0; 6];
        let desired = [10.0, -10.0, 3.0, -3.0, PI, -100.0];
        let flags = shaper.shape_into(&desired, &q, &mut out).unwrap();
        assert_eq!(out, [PI, -PI, 3.0, -3.0, PI, -PI]);
        let clamped: Vec<bool> = (0..6).map(|i| flags.velocity_clamped(i)).collect();
        assert_eq!(clamped, [true, true, false, false, false, true]);
        assert_eq!((flags.velocity_clamped_count(), flags.slowed_count()), (3, 0));
    }

    #[test]
    fn velocities_are_clamped_to_each_fetch_joints_limit() {
        let model = RobotModel::fetch().unwrap();
        let shaper = CommandShaper::new(&model, &[], &SafetyConfig::default(), 0.04).unwrap();
        let q = RobotKind::Fetch.home();
        let mut out = [0.0; 8];
        let flags = shaper.shape_into(&[5.0; 8], &q, &mut out).unwrap();
        // torso (m/s), pan, lift, upperarm roll, elbow, forearm roll, wrist flex, wrist roll.
        assert_eq!(out, [0.1, 1.256, 1.454, 1.571, 1.521, 1.571, 2.268, 2.268]);
        assert_eq!(flags.velocity_clamped_count(), 8);
        assert_eq!(flags.slowed_count(), 0);
        let flags = shaper.shape_into(&[-0.05, 1.0, -1.0, 0.0, 0.5, -0.5, 2.0, -2.0], &q, &mut out);
        assert!(flags.unwrap().is_unchanged());
    }

    #[test]
    fn slowdown_is_linear_monotonic_and_only_towards_the_limit() {
        let model = RobotModel::fetch().unwrap();
        // 500 Hz: the configured zone (0.1 rad) is wider than v_max * period, so it applies.
        let shaper = CommandShaper::new(&model, &[], &SafetyConfig::default(), 0.002).unwrap();
        let pan = 1; // shoulder_pan_joint, limits ±1.6056 rad, 1.256 rad/s
        let (upper, lower) = (1.6056, -1.6056);
        assert_eq!(shaper.ramps()[pan], 0.1);
        let (mut towards_prev, mut out) = (f64::INFINITY, [0.0; 8]);
        let mut q = RobotKind::Fetch.home();
        for k in 0..=120 {
            // From 0.2 rad before the upper limit to 0.04 rad beyond it.
            q[pan] = upper - 0.2 + 0.002 * k as f64;
            let mut cmd = [0.0; 8];
            cmd[pan] = 1.0;
            let flags = shaper.shape_into(&cmd, &q, &mut out).unwrap();
            let towards = out[pan];
            let room = upper - q[pan];
            let expected = (room / 0.1).clamp(0.0, 1.0);
            assert!((towards - expected).abs() < 1e-9, "q={} v={towards}", q[pan]);
            assert!(towards <= towards_prev + 1e-12, "not monotonic at q={}", q[pan]);
            assert_eq!(flags.slowed(pan), room < 0.1);
            towards_prev = towards;
            // Away from the upper limit: never slowed, even beyond the limit.
            cmd[pan] = -1.0;
            let flags = shaper.shape_into(&cmd, &q, &mut out).unwrap();
            assert_eq!(out[pan], -1.0);
            assert!(flags.is_unchanged());
        }
        // The same at the lower limit, mirrored.
        q[pan] = lower + 0.05;
        let mut cmd = [0.0; 8];
        cmd[pan] = -1.0;
        shaper.shape_into(&cmd, &q, &mut out).unwrap();
        assert!((out[pan] + 0.5).abs() < 1e-9, "{}", out[pan]);
        cmd[pan] = 1.0;
        shaper.shape_into(&cmd, &q, &mut out).unwrap();
        assert_eq!(out[pan], 1.0);
        // The prismatic torso uses the metre zone: 0.01 m above its lower limit, half speed.
        q[0] = 0.01;
        cmd = [0.0; 8];
        cmd[0] = -0.1;
        shaper.shape_into(&cmd, &q, &mut out).unwrap();
        assert!((out[0] + 0.05).abs() < 1e-9, "{}", out[0]);
    }

    #[test]
    fn at_or_beyond_a_limit_motion_towards_it_is_zero() {
        let model = RobotModel::ur5e().unwrap();
        let shaper = CommandShaper::new(&model, &[], &SafetyConfig::default(), 0.04).unwrap();
        let mut out = [0.0; 6];
        let elbow = 2; // ±π
        for q_elbow in [PI, PI + 0.3] {
            let mut q = [0.0; 6];
            q[elbow] = q_elbow;
            let flags = shaper.shape_into(&[0.0, 0.0, 2.0, 0.0, 0.0, 0.0], &q, &mut out).unwrap();
            assert_eq!(out[elbow], 0.0);
            assert!(flags.slowed(elbow));
            shaper.shape_into(&[0.0, 0.0, -2.0, 0.0, 0.0, 0.0], &q, &mut out).unwrap();
            assert_eq!(out[elbow], -2.0, "backing out of the limit is allowed");
            q[elbow] = -q_elbow;
            shaper.shape_into(&[0.0, 0.0, -9.0, 0.0, 0.0, 0.0], &q, &mut out).unwrap();
            assert_eq!(out[elbow], 0.0);
        }
    }

    #[test]
    fn continuous_joints_are_only_velocity_clamped() {
        let model = RobotModel::fetch().unwrap();
        let shaper = CommandShaper::new(&model, &[], &SafetyConfig::default(), 0.04).unwrap();
        let mut out = [0.0; 8];
        let mut q = RobotKind::Fetch.home();
        for roll in [3, 5, 7] {
            for x in [0.0, 1.6, 100.0, -1e6] {
                q[roll] = x;
                for v in [1.0, -1.0] {
                    let mut cmd = [0.0; 8];
                    cmd[roll] = v;
                    let flags = shaper.shape_into(&cmd, &q, &mut out).unwrap();
                    assert_eq!(out[roll], v);
                    assert!(flags.is_unchanged());
                }
                let mut cmd = [0.0; 8];
                cmd[roll] = 50.0;
                shaper.shape_into(&cmd, &q, &mut out).unwrap();
                assert_eq!(out[roll], model.limits()[roll].velocity);
            }
        }
    }

    #[test]
    fn a_command_held_for_one_period_never_crosses_a_limit() {
        // At 25 Hz the UR5e's π rad/s covers 0.126 rad per period, more than the 0.1 rad zone,
        // so the ramp is widened; at 10 Hz it is 0.314 rad.
        for (kind, period) in [
            (RobotKind::Ur5e, 0.04),
            (RobotKind::Ur5e, 0.1),
            (RobotKind::Fetch, 0.04),
            (RobotKind::Fetch, 0.002),
        ] {
            let model = kind.load().unwrap();
            let shaper = CommandShaper::new(&model, &[], &SafetyConfig::default(), period).unwrap();
            let n = model.dof();
            let mut out = vec![0.0; n];
            for (i, l) in model.limits().iter().enumerate() {
                assert!(shaper.ramps()[i] >= l.velocity * period - 1e-15);
                if l.continuous {
                    continue;
                }
                for k in 0..=200 {
                    // Up to 0.5 rad (or the whole stroke) in front of the limit.
                    let room = 0.5f64.min(l.upper - l.lower) * k as f64 / 200.0;
                    for (q_i, v) in [(l.upper - room, 1e3), (l.lower + room, -1e3)] {
                        let mut q = kind.home();
                        q[i] = q_i;
                        let mut cmd = vec![0.0; n];
                        cmd[i] = v;
                        shaper.shape_into(&cmd, &q, &mut out).unwrap();
                        let next = q_i + out[i] * period;
                        assert!(
                            l.lower - 1e-12 <= next && next <= l.upper + 1e-12,
                            "{kind:?} joint {i} from {q_i} to {next}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn invalid_commands_and_positions_are_errors_with_zero_output() {
        let model = RobotModel::ur5e().unwrap();
        let shaper = CommandShaper::new(&model, &[], &SafetyConfig::default(), 0.04).unwrap();
        let mut out = [7.0; 6];
        let err = shaper.shape_into(&[0.0; 5], &[0.0; 6], &mut out).unwrap_err();
        assert!(matches!(
            err,
            StopReason::Command(CommandError::LengthMismatch { expected: 6, got: 5, .. })
        ));
        assert_eq!(out, [0.0; 6]);
        let err = shaper.shape_into(&[0.0, f64::NAN, 0.0, 0.0, 0.0, 0.0], &[0.0; 6], &mut out);
        assert_eq!(err.unwrap_err().kind(), StopKind::BadCommand);
        let q = [0.0, 0.0, f64::INFINITY, 0.0, 0.0, 0.0];
        let err = shaper.shape_into(&[0.1; 6], &q, &mut out).unwrap_err();
        assert_eq!(err.kind(), StopKind::NotFinite);
        assert_eq!(out, [0.0; 6]);
    }

    #[test]
    fn guard_sends_zeros_with_a_reason_on_every_unsafe_case() {
        let mut g = guard(RobotKind::Ur5e, 0.04);
        let home = RobotKind::Ur5e.home();
        let good = ur5e_state(&home, &[0.0; 6]);
        let cmd = [0.5; 6];
        let stopped = |g: &mut SafetyGuard, cmd: &[f64], now: f64| {
            let (out, verdict) = g.decide(cmd, now);
            assert_eq!(out, [0.0; 6]);
            match verdict {
                Verdict::Stopped { reason, .. } => reason,
                other => panic!("expected a stop, got {other:?}"),
            }
        };

        assert_eq!(stopped(&mut g, &cmd, 0.0), StopReason::NoState);
        g.on_joint_state(&good, 0.0).unwrap();
        assert_eq!(g.q(), &home[..]);
        let (out, verdict) = g.decide(&cmd, 0.05);
        assert_eq!((out, verdict), (&cmd[..], Verdict::Sent(ShapeFlags::default())));

        // Stale: the stream stalled.
        assert_eq!(stopped(&mut g, &cmd, 0.2).kind(), StopKind::Stale);

        // Each bad message stops until the next good one; q keeps the last good state.
        let mut nan = good.clone();
        nan.position[0] = f64::NAN;
        let mut missing = good.clone();
        missing.name[0] = "nope".into();
        let mut short = good.clone();
        short.position.pop();
        let mut no_vel = good.clone();
        no_vel.velocity.clear();
        let mut dup = good.clone();
        dup.name[3] = "shoulder_pan_joint".into();
        for (bad, kind) in [
            (nan, StopKind::NotFinite),
            (missing, StopKind::MissingJoint),
            (short, StopKind::Malformed),
            (no_vel, StopKind::Malformed),
            (dup, StopKind::Malformed),
        ] {
            g.on_joint_state(&good, 1.0).unwrap();
            assert!(matches!(g.decide(&cmd, 1.0).1, Verdict::Sent(_)));
            assert!(g.on_joint_state(&bad, 1.01).is_err());
            assert_eq!(stopped(&mut g, &cmd, 1.02).kind(), kind);
            assert_eq!(g.q(), &home[..]);
        }

        // A bad command with a good, fresh state.
        g.on_joint_state(&good, 2.0).unwrap();
        assert_eq!(stopped(&mut g, &[0.1; 7], 2.0).kind(), StopKind::BadCommand);
        assert_eq!(stopped(&mut g, &[f64::INFINITY; 6], 2.0).kind(), StopKind::BadCommand);
        // Recovers with the next good command; clear_state stops again.
        assert!(matches!(g.decide(&cmd, 2.01).1, Verdict::Sent(_)));
        g.clear_state();
        assert_eq!(stopped(&mut g, &cmd, 2.02), StopReason::NoState);

        let s = g.stats();
        assert_eq!(s.sent, 7);
        assert_eq!(s.bad_states, 5);
        assert_eq!(s.stopped_by(StopKind::NoState), 2);
        assert_eq!(s.stopped_by(StopKind::Stale), 1);
        assert_eq!(s.stopped_by(StopKind::Malformed), 3);
        assert_eq!(s.stopped_by(StopKind::BadCommand), 2);
        assert_eq!(s.stopped_total(), 10);
    }

    #[test]
    fn guard_shapes_with_the_latest_positions_and_counts_it() {
        let mut g = guard(RobotKind::Ur5e, 0.002);
        let mut q = RobotKind::Ur5e.home();
        q[2] = PI - 0.05; // elbow halfway into its zone
        g.on_joint_state(&ur5e_state(&q, &[0.0; 6]), 0.0).unwrap();
        let (out, verdict) = g.decide(&[0.0, 9.0, 2.0, 0.0, 0.0, 0.0], 0.01);
        assert!((out[2] - 1.0).abs() < 1e-9 && out[1] == PI, "{out:?}");
        let Verdict::Sent(flags) = verdict else { panic!("expected Sent") };
        assert!(flags.velocity_clamped(1) && flags.slowed(2) && !flags.slowed(1));
        let s = g.stats();
        assert_eq!((s.sent, s.velocity_clamped, s.slowed), (1, 1, 1));
    }

    #[test]
    fn warnings_are_throttled_per_reason_and_count_what_they_held_back() {
        let mut g = guard(RobotKind::Ur5e, 0.04);
        let warn = |g: &mut SafetyGuard, now: f64| match g.decide(&[0.0; 6], now).1 {
            Verdict::Stopped { warn, .. } => warn,
            other => panic!("expected a stop, got {other:?}"),
        };
        // No state at 500 Hz for 2.5 s: warnings at 0, 1 and 2 s.
        let warned: Vec<(usize, u64)> = (0..1250)
            .filter_map(|k| warn(&mut g, k as f64 * 0.002).map(|held| (k, held)))
            .collect();
        assert_eq!(warned, [(0, 0), (500, 499), (1000, 499)]);
        // Another reason is not held back by the first one.
        let mut nan = ur5e_state(&[0.0; 6], &[0.0; 6]);
        nan.velocity[0] = f64::NAN;
        let _ = g.on_joint_state(&nan, 2.5);
        let (_, verdict) = g.decide(&[0.0; 6], 2.5);
        assert_eq!(
            verdict.warning().unwrap(),
            "sending zero velocity: joint state velocity of `shoulder_pan_joint` is not finite: NaN"
        );
        let _ = g.decide(&[0.0; 6], 2.6);
        let (_, verdict) = g.decide(&[0.0; 6], 3.5);
        assert!(verdict
            .warning()
            .unwrap()
            .ends_with("(1 more zero commands for this reason since the last warning)"));
        // The throttle on its own, on epoch-like seconds.
        let mut t = WarnThrottle::new(1.0);
        assert_eq!(t.check("a", 1.7e9), Some(0));
        assert_eq!(t.check("a", 1.7e9 + 0.5), None);
        assert_eq!(t.check("b", 1.7e9 + 0.5), Some(0));
        assert_eq!(t.check("a", 1.7e9 + 1.0), Some(1));
    }

    #[test]
    fn setup_rejects_unknown_duplicate_and_missing_joints_and_bad_parameters() {
        let model = RobotModel::ur5e().unwrap();
        let cfg = SafetyConfig::default();
        let mut joints = names(RobotKind::Ur5e);
        joints[0] = "torso_lift_joint".into();
        let err = CommandShaper::new(&model, &joints, &cfg, 0.04).unwrap_err();
        assert!(
            matches!(&err, SetupError::UnknownJoint { joint, .. } if joint == "torso_lift_joint")
        );
        assert!(err.to_string().contains("shoulder_pan_joint, shoulder_lift_joint"), "{err}");
        let mut joints = names(RobotKind::Ur5e);
        joints[1] = "elbow_joint".into();
        let err = CommandShaper::new(&model, &joints, &cfg, 0.04).unwrap_err();
        assert_eq!(err, SetupError::DuplicateJoint { joint: "elbow_joint".into() });
        let joints = &names(RobotKind::Ur5e)[..5];
        let err = CommandShaper::new(&model, joints, &cfg, 0.04).unwrap_err();
        assert_eq!(err, SetupError::MissingJoint { joint: "wrist_3_joint".into() });
        for bad in [
            SafetyConfig { max_state_age_s: 0.0, ..cfg.clone() },
            SafetyConfig { slowdown_zone_rad: -0.1, ..cfg.clone() },
            SafetyConfig { slowdown_zone_m: f64::NAN, ..cfg.clone() },
            SafetyConfig { warn_period_s: f64::INFINITY, ..cfg.clone() },
        ] {
            assert!(matches!(
                SafetyGuard::new(&model, &[], &bad, 0.04),
                Err(SetupError::InvalidParameter { .. })
            ));
        }
        let err = CommandShaper::new(&model, &[], &cfg, -1.0).unwrap_err();
        assert!(matches!(err, SetupError::InvalidParameter { name: "command_period_s", .. }));
    }

    #[test]
    fn config_defaults_and_yaml_keys() {
        let cfg = SafetyConfig::default();
        assert_eq!(cfg.max_state_age_s, 0.1);
        assert_eq!(
            (cfg.slowdown_zone_rad, cfg.slowdown_zone_m, cfg.warn_period_s),
            (0.1, 0.02, 1.0)
        );
        cfg.validate().unwrap();
        let yaml = equigate_ros::yaml::parse("max_state_age_s: 0.05\n").unwrap();
        let parsed: SafetyConfig = equigate_ros::yaml::from_value(yaml).unwrap();
        assert_eq!(parsed, SafetyConfig { max_state_age_s: 0.05, ..cfg });
        let yaml = equigate_ros::yaml::parse("max_age: 0.05\n").unwrap();
        assert!(equigate_ros::yaml::from_value::<SafetyConfig>(yaml).is_err());
    }
}
