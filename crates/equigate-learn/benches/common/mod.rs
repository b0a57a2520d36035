//! What the learning-core benches share: the UR5e's observation and action shapes and their
//! C_4 representations, a replay of random transitions, and the rate benches' command line. Each
//! bench uses a part of it.
#![allow(dead_code)]

use equigate_learn::replay::{ReplayBuffer, Transition};
use equigate_learn::sac::standard_normal;
use equigate_symmetry::{FieldKind, Group, Representation};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Observation length of the UR5e reach (`2 · dof + 10`).
pub const OBS_DIM: usize = 22;
/// Action length: one joint velocity per UR5e joint.
pub const ACT_DIM: usize = 6;

/// The UR5e observation layout (as `equigate_robot::task::observation_layout(6)`: four ρ1 pairs
/// and invariants) and the invariant joint-velocity action, under C_4.
pub fn representations() -> (Representation, Representation) {
    use FieldKind::{Invariant, Rotation2};
    let g = Group::cyclic(4).expect("C_4 exists");
    let layout = [
        (Rotation2, 2),
        (Invariant, 5),
        (Invariant, 6),
        (Rotation2, 2),
        (Invariant, 1),
        (Rotation2, 2),
        (Invariant, 1),
        (Rotation2, 2),
        (Invariant, 1),
    ];
    let obs = Representation::from_layout(&g, &layout).expect("a valid layout");
    let act = Representation::from_layout(&g, &[(Invariant, ACT_DIM)]).expect("a valid layout");
    (obs, act)
}

/// A replay buffer (sampling seed 1) of `n` random transitions with the UR5e shapes, drawn from
/// ChaCha8 seed 2: s ~ N(0, I); s' ~ N(0, I), or s + `next_step` · N(0, I) when given;
/// a = tanh(N(0, I)); r = −|s₀|; never terminated. Returns that RNG too, for further draws.
pub fn random_replay(n: usize, next_step: Option<f32>) -> (ReplayBuffer, ChaCha8Rng) {
    let mut buffer = ReplayBuffer::new(n, OBS_DIM, ACT_DIM, 1).expect("valid sizes");
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for _ in 0..n {
        let obs = standard_normal(&mut rng, OBS_DIM);
        let noise = standard_normal(&mut rng, OBS_DIM);
        let next: Vec<f32> = match next_step {
            None => noise,
            Some(step) => obs.iter().zip(noise).map(|(o, n)| o + step * n).collect(),
        };
        let act: Vec<f32> = standard_normal(&mut rng, ACT_DIM).iter().map(|a| a.tanh()).collect();
        let transition = Transition {
            obs: &obs,
            action: &act,
            reward: -obs[0].abs(),
            next_obs: &next,
            terminated: false,
            truncated: false,
        };
        buffer.push(transition).expect("matching lengths");
    }
    (buffer, rng)
}

/// Command-line options of the rate benches (`--bench`, which `cargo bench` passes, is ignored).
pub struct Options {
    /// Timed seconds per learner (`--seconds S`).
    pub seconds: f64,
    /// Untimed updates before the timing (`--warmup N`).
    pub warmup: u64,
    /// Only this learner (`--only NAME`).
    pub only: Option<String>,
    /// `--breakdown`, where the bench offers it.
    pub breakdown: bool,
}

impl Options {
    /// Parses the command line over the defaults `seconds` and `warmup`; `only` lists the names
    /// `--only` takes (for the message); `--breakdown` is accepted when `breakdown` is set.
    ///
    /// # Panics
    /// On an unknown argument or a missing or unparsable value.
    pub fn parse(seconds: f64, warmup: u64, only: &str, breakdown: bool) -> Self {
        let mut o = Options { seconds, warmup, only: None, breakdown: false };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value =
                |name: &str| args.next().unwrap_or_else(|| panic!("{name} needs a value"));
            match arg.as_str() {
                "--seconds" => o.seconds = value("--seconds").parse().expect("--seconds: a number"),
                "--warmup" => o.warmup = value("--warmup").parse().expect("--warmup: an integer"),
                "--only" => o.only = Some(value("--only")),
                "--breakdown" if breakdown => o.breakdown = true,
                "--bench" => {}
                other => panic!(
                    "unknown argument {other}; use --seconds S, --warmup N, --only {only}{}",
                    if breakdown { ", --breakdown" } else { "" }
                ),
            }
        }
        o
    }
}
