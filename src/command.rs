//! Joint velocity commands as ros2_control's forward_velocity_controller takes them: one value per
//! configured joint, rad/s (m/s for prismatic joints), in the controller's joint order.
//!
//! [`CommandGate`] is the part of a velocity interface that keeps an arm safe: it rejects commands
//! of the wrong length or with NaN/Inf (keeping the last good one), counts what it rejected, and
//! hands out zero velocity once the last good command is older than the timeout, as
//! ros2_control's forward controllers do when their command stream stops.

use std::time::Duration;

/// Why a command was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// The command does not have one value per configured joint.
    #[error("command has {got} values, expected {expected} (one per joint: {joints})")]
    LengthMismatch { expected: usize, got: usize, joints: String },
    /// A value is NaN or infinite.
    #[error("command value {index} ({joint}) is not finite: {value}")]
    NotFinite { index: usize, joint: String, value: f64 },
}

/// Counters of what the gate has seen, for diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommandStats {
    pub accepted: u64,
    pub rejected_length: u64,
    pub rejected_not_finite: u64,
    /// How many times the command stream went stale (each stale period counted once).
    pub timeouts: u64,
}

/// Validates commands and applies the staleness timeout.
///
/// Time is given by the caller (seconds on any monotonic clock), so the gate works with wall
/// time in real-time mode and with simulated time in tests.
#[derive(Debug, Clone)]
pub struct CommandGate {
    joint_names: Vec<String>,
    timeout: Duration,
    last: Vec<f64>,
    last_stamp: Option<f64>,
    stale: bool,
    stats: CommandStats,
}

impl CommandGate {
    /// `timeout`: a command older than this yields zero velocity (ros2_control default: 0.1 s).
    pub fn new(joint_names: Vec<String>, timeout: Duration) -> Self {
        let n = joint_names.len();
        Self {
            joint_names,
            timeout,
            last: vec![0.0; n],
            last_stamp: None,
            stale: true,
            stats: Default::default(),
        }
    }

    /// Checks `values` (rad/s, configured joint order) and, if valid, makes it the current command
    /// received at time `now` (s). An invalid command changes nothing but the counters.
    ///
    /// # Errors
    /// [`CommandError::LengthMismatch`] or [`CommandError::NotFinite`].
    pub fn accept(&mut self, values: &[f64], now: f64) -> Result<(), CommandError> {
        validate(&self.joint_names, values).inspect_err(|e| match e {
            CommandError::LengthMismatch { .. } => self.stats.rejected_length += 1,
            CommandError::NotFinite { .. } => self.stats.rejected_not_finite += 1,
        })?;
        self.last.copy_from_slice(values);
        self.last_stamp = Some(now);
        self.stale = false;
        self.stats.accepted += 1;
        Ok(())
    }

    /// The velocity to apply at time `now` (s): the last valid command, or zeros when none has
    /// arrived within the timeout. Returns `(command, fresh)`.
    pub fn current(&mut self, now: f64) -> (&[f64], bool) {
        let fresh = self.last_stamp.is_some_and(|t| now - t <= self.timeout.as_secs_f64() + 1e-9);
        if !fresh {
            if !self.stale && self.last_stamp.is_some() {
                self.stats.timeouts += 1;
            }
            self.stale = true;
            self.last.iter_mut().for_each(|v| *v = 0.0);
        }
        (&self.last, fresh)
    }

    pub fn stats(&self) -> CommandStats {
        self.stats
    }

    pub fn joint_names(&self) -> &[String] {
        &self.joint_names
    }

    /// Forgets the current command (e.g. on a simulator reset): zero velocity until the next one.
    pub fn clear(&mut self) {
        self.last.iter_mut().for_each(|v| *v = 0.0);
        self.last_stamp = None;
        self.stale = true;
    }
}

/// Checks one command against the joint list.
///
/// # Errors
/// [`CommandError::LengthMismatch`] when `values.len() != joint_names.len()`,
/// [`CommandError::NotFinite`] for the first NaN or infinite value.
pub fn validate(joint_names: &[String], values: &[f64]) -> Result<(), CommandError> {
    if values.len() != joint_names.len() {
        return Err(CommandError::LengthMismatch {
            expected: joint_names.len(),
            got: values.len(),
            joints: joint_names.join(", "),
        });
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(CommandError::NotFinite {
            index,
            joint: joint_names[index].clone(),
            value: values[index],
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> CommandGate {
        CommandGate::new(vec!["a".into(), "b".into()], Duration::from_millis(100))
    }

    #[test]
    fn valid_command_is_applied_until_timeout_then_zero() {
        let mut g = gate();
        assert_eq!(g.current(0.0), (&[0.0, 0.0][..], false));
        g.accept(&[0.5, -0.25], 1.0).unwrap();
        assert_eq!(g.current(1.05), (&[0.5, -0.25][..], true));
        assert_eq!(g.current(1.1), (&[0.5, -0.25][..], true));
        assert_eq!(g.current(1.1001), (&[0.0, 0.0][..], false));
        assert_eq!(g.current(2.0), (&[0.0, 0.0][..], false));
        assert_eq!(g.stats().timeouts, 1, "one stale period counts once");
    }

    #[test]
    fn wrong_length_and_non_finite_are_rejected_and_keep_the_last_good_command() {
        let mut g = gate();
        g.accept(&[0.1, 0.2], 0.0).unwrap();
        let err = g.accept(&[1.0], 0.01).unwrap_err();
        assert_eq!(
            err,
            CommandError::LengthMismatch { expected: 2, got: 1, joints: "a, b".into() }
        );
        assert!(err.to_string().contains("expected 2"));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = g.accept(&[0.0, bad], 0.02).unwrap_err();
            assert!(
                matches!(err, CommandError::NotFinite { index: 1, ref joint, .. } if joint == "b")
            );
        }
        assert_eq!(g.current(0.05).0, &[0.1, 0.2]);
        let s = g.stats();
        assert_eq!((s.accepted, s.rejected_length, s.rejected_not_finite), (1, 1, 3));
    }

    #[test]
    fn clear_zeroes_until_next_command() {
        let mut g = gate();
        g.accept(&[1.0, 1.0], 0.0).unwrap();
        g.clear();
        assert_eq!(g.current(0.01), (&[0.0, 0.0][..], false));
    }
}
