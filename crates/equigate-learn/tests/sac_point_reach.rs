//! SAC learns a tiny continuous task with no robot: a point in the square [-1, 1]² moves towards
//! a goal (tests/common/point_reach.rs). Observation (x, y, goal_x, goal_y), action a ∈ [-1, 1]²
//! scaled to a step of 0.1·a, reward −‖p − goal‖ after the step, 50-step episodes ending by
//! truncation only.
//!
//! `cargo test -p equigate-learn --test sac_point_reach -- --nocapture` prints the returns of a
//! uniform random policy, of the greedy oracle and of the trained policy on the same 10
//! evaluation episodes, and the training time.

mod common;

use std::sync::Mutex;
use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use common::point_reach::{evaluate, oracle, random_return, sac_config, train_online};
use equigate_learn::nets::{MlpActor, MlpCritic};
use equigate_learn::sac::{ActMode, Sac, SacConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

type B = Autodiff<Flex>;

/// One training at a time (2 cores; the timing printed is then the training's own).
static SERIAL: Mutex<()> = Mutex::new(());

fn config(seed: u64) -> SacConfig {
    // Small networks (and sac_config's larger learning rates) for a few thousand steps on 2 cores.
    sac_config(seed).with_hidden(64)
}

/// Trains for `steps` environment steps (one update per step after the random warm-up) and
/// returns the learner.
fn train(config: SacConfig, steps: usize) -> Sac<B, MlpCritic<B>, MlpActor<B>> {
    let device = Default::default();
    let mut init = ChaCha8Rng::seed_from_u64(config.seed);
    let (q, actor) = config.mlp_networks(&mut init, &device).unwrap();
    let mut sac = Sac::new(config.clone(), q, actor, &device);
    train_online(
        &mut sac,
        &config,
        steps,
        false,
        |sac, obs| sac.act(obs, ActMode::Stochastic),
        |sac, batch| {
            sac.train_step(batch);
        },
    );
    sac
}

#[test]
fn sac_beats_a_random_policy_on_point_reach() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let episodes = 10;
    let random = random_return(episodes);
    let oracle = evaluate(episodes, oracle);

    let steps = 3000;
    let start = Instant::now();
    let mut sac = train(config(0), steps);
    let seconds = start.elapsed().as_secs_f64();
    let trained = evaluate(episodes, |o| sac.act(o, ActMode::Deterministic));
    let closed = (trained - random) / (oracle - random);
    println!(
        "point reach, {steps} steps ({} updates) in {seconds:.1} s: random {random:.2}, \
         trained {trained:.2}, oracle {oracle:.2}; gap closed {:.0}%",
        sac.updates(),
        100.0 * closed
    );
    assert!(closed > 0.3, "SAC closed only {:.0}% of the gap", 100.0 * closed);
}

#[test]
fn training_is_repeatable_with_a_seed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let eval = |sac: &mut Sac<B, MlpCritic<B>, MlpActor<B>>| {
        evaluate(2, |o| sac.act(o, ActMode::Deterministic))
    };
    let mut a = train(config(7).with_learning_starts(200), 400);
    let mut b = train(config(7).with_learning_starts(200), 400);
    assert_eq!(eval(&mut a), eval(&mut b));
    assert_eq!(a.alpha(), b.alpha());
}
