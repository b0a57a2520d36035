//! Resident memory over a long run of updates: does a training loop stay flat? (burn.md: autodiff
//! graphs that never reach `backward()` leak, so acting uses non-autodiff copies.) Each iteration
//! samples a batch of 256 from a 10,000-transition replay, runs one `train_step` and picks one
//! stochastic action for a single observation with `act` (the acting path of the training loop).
//! Shapes as `update_rate`: observation 22 (the UR5e C_4 layout), action 6, 2×256 networks.
//!
//! ```sh
//! cargo bench -p equigate-learn --bench update_rss --no-run   # prints the binary's path
//! target/release/deps/update_rss-<hash> [--updates 100000] [--only sac|pesac]
//! ```
//!
//! Prints one JSON line with VmRSS (from /proc/self/status, KiB) after building the learner, after
//! every 10% of the updates and at the end, for SAC and then PE-SAC (gate warm-up 1,000 updates,
//! so both the warm-up and the gated path run). 100,000 updates (the default) take about 20 min
//! for SAC and 80 min for PE-SAC on 2 cores (measured: 20,000 SAC updates in 247 s, 5,000 PE-SAC
//! updates in 233 s).

mod common;

use common::{random_replay, representations, ACT_DIM, OBS_DIM};
use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use equigate_learn::pesac::{PeSac, PeSacConfig};
use equigate_learn::replay::ReplayBuffer;
use equigate_learn::sac::{standard_normal, ActMode, Sac, SacConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

type B = Autodiff<Flex>;

const BATCH: usize = 256;
const BUFFER: usize = 10_000;
const PESAC_GATE_WARMUP: u64 = 1_000;

/// VmRSS of this process in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("/proc/self/status has a VmRSS line in kB")
}

/// A replay of random transitions and one observation to act on.
fn buffer() -> (ReplayBuffer, Vec<f32>) {
    let (buffer, mut rng) = random_replay(BUFFER, None);
    (buffer, standard_normal(&mut rng, OBS_DIM))
}

/// Runs `step` `updates` times, printing VmRSS at the start, every 10% and at the end.
fn track(learner: &str, updates: u64, mut step: impl FnMut()) {
    let start = Instant::now();
    let report = |done: u64| {
        println!(
            "{{\"what\": \"rss\", \"learner\": \"{learner}\", \"updates\": {done}, \"rss_kib\": {}, \"seconds\": {:.1}}}",
            rss_kib(),
            start.elapsed().as_secs_f64()
        );
    };
    report(0);
    let tenth = (updates / 10).max(1);
    for done in 1..=updates {
        step();
        if done % tenth == 0 || done == updates {
            report(done);
        }
    }
}

fn main() {
    let mut updates = 100_000u64;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--updates" => {
                updates = args.next().and_then(|v| v.parse().ok()).expect("--updates N");
            }
            "--only" => only = Some(args.next().expect("--only sac|pesac")),
            "--bench" => {}
            other => panic!("unknown argument {other}; use --updates N, --only sac|pesac"),
        }
    }
    let device = Default::default();
    let (mut replay, obs) = buffer();

    if only.as_deref().is_none_or(|w| w == "sac") {
        let config = SacConfig::new(OBS_DIM, ACT_DIM);
        let (q, actor) = config
            .mlp_networks(&mut ChaCha8Rng::seed_from_u64(0), &device)
            .expect("non-zero widths");
        let mut sac = Sac::<B, _, _>::new(config, q, actor, &device);
        track("sac", updates, || {
            let batch = replay.sample::<B>(BATCH, &device).expect("a filled buffer");
            sac.train_step(&batch);
            sac.act(&obs, ActMode::Stochastic);
        });
    }
    if only.as_deref().is_none_or(|w| w == "pesac") {
        let config = PeSacConfig::new(SacConfig::new(OBS_DIM, ACT_DIM))
            .with_gate_warmup_updates(PESAC_GATE_WARMUP);
        let (obs_rep, act_rep) = representations();
        let mut pesac = PeSac::<B>::new(config, &obs_rep, &act_rep, &device).expect("valid sizes");
        track("pesac", updates, || {
            let batch = replay.sample::<B>(BATCH, &device).expect("a filled buffer");
            pesac.train_step(&batch);
            pesac.act(&obs, ActMode::Stochastic);
        });
    }
}
