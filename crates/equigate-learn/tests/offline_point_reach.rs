//! Offline CQL and IQL learn the 2-D point-reach task (tests/common/point_reach.rs) from a fixed
//! dataset of a noisy scripted controller, with no environment interaction during training.
//!
//! `cargo test -p equigate-learn --test offline_point_reach -- --nocapture` prints the returns of
//! a uniform random policy, of the behaviour policy, of the greedy oracle and of the learned
//! policy on the same 10 evaluation episodes, and the training time.
//!
//! The task is symmetric under C_4 about the origin: the square, the oracle, the behaviour policy
//! and the reward commute with quarter turns of (x, y), (goal_x, goal_y) and the action, each a ρ1
//! pair. Equi-CQL and Equi-IQL use that group (invariant critics and value, equivariant actor).

mod common;

use std::sync::Mutex;
use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use common::point_reach::{
    behaviour, c4_representations, dataset, evaluate, oracle, random_return, ACT_DIM, OBS_DIM,
};
use equigate_learn::cql::{self, CqlConfig};
use equigate_learn::iql::{self, IqlConfig};
use equigate_learn::nets::EquiConfig;
use equigate_learn::replay::{Batch, ReplayBuffer};
use equigate_learn::sac::ActMode;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

type B = Autodiff<Flex>;

/// One training at a time (2 cores; the timing printed is then the training's own).
static SERIAL: Mutex<()> = Mutex::new(());

const EPISODES: usize = 10;
/// Dataset: 80 episodes = 4000 transitions; 30% uniform random actions, the rest a tanh-Gaussian
/// around 0.8 × the oracle's (pre-tanh noise N(0, 0.5²)).
const DATA_EPISODES: usize = 80;
const NOISE: f32 = 0.5;
const P_RANDOM: f64 = 0.3;
const BATCH: usize = 128;

/// (random, behaviour, oracle) returns on the evaluation episodes.
fn baselines() -> (f64, f64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let behaviour = evaluate(EPISODES, |o| behaviour(&mut rng, o, NOISE, P_RANDOM));
    (random_return(EPISODES), behaviour, evaluate(EPISODES, oracle))
}

fn data() -> ReplayBuffer {
    dataset(DATA_EPISODES, NOISE, P_RANDOM, 11)
}

/// Runs `step` on `updates` batches sampled from `buffer`; returns the last metrics and the
/// seconds taken.
fn train<M>(
    buffer: &mut ReplayBuffer,
    updates: usize,
    mut step: impl FnMut(&Batch<B>) -> M,
) -> (Option<M>, f64) {
    let device = Default::default();
    let start = Instant::now();
    let mut last = None;
    for _ in 0..updates {
        last = Some(step(&buffer.sample::<B>(BATCH, &device).unwrap()));
    }
    (last, start.elapsed().as_secs_f64())
}

/// CQL's settings for these tests: larger learning rates than CORL's (3e-4 / 3e-5) so that a few
/// hundred updates suffice on 2 cores; γ 0.95 as the SAC point-reach test.
fn cql_config() -> CqlConfig {
    CqlConfig::new(OBS_DIM, ACT_DIM)
        .with_batch_size(BATCH)
        .with_q_lr(1e-3)
        .with_policy_lr(1e-3)
        .with_alpha_lr(1e-3)
        .with_gamma(0.95)
}

/// IQL's settings for these tests (as [`cql_config`]), the actor's learning rate annealed over
/// `updates`.
fn iql_config(updates: usize) -> IqlConfig {
    IqlConfig::new(OBS_DIM, ACT_DIM)
        .with_batch_size(BATCH)
        .with_q_lr(1e-3)
        .with_value_lr(1e-3)
        .with_policy_lr(1e-3)
        .with_gamma(0.95)
        .with_total_updates(updates as u64)
}

/// Prints the returns and asserts the learned policy closed `min_closed` of the gap between the
/// random policy and the oracle.
fn report(name: &str, updates: usize, seconds: f64, trained: f64, min_closed: f64) {
    let (random, behaviour, oracle) = baselines();
    let closed = (trained - random) / (oracle - random);
    println!(
        "offline {name} on point reach, {} transitions, {updates} updates in {seconds:.1} s: \
         random {random:.2}, behaviour {behaviour:.2}, learned {trained:.2}, oracle {oracle:.2}; \
         gap closed {:.0}%",
        DATA_EPISODES * common::point_reach::EPISODE_STEPS,
        100.0 * closed
    );
    assert!(
        closed > min_closed,
        "{name} closed only {:.0}% of the random-oracle gap",
        100.0 * closed
    );
}

#[test]
fn offline_cql_beats_a_random_policy_on_point_reach() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut buffer = data();
    // Small networks (and cql_config's learning rates).
    let config = cql_config().with_hidden(64);
    let mut learner = cql::build_mlp::<B>(config, &Default::default()).unwrap();
    let updates = 600;
    let (last, seconds) = train(&mut buffer, updates, |batch| learner.train_step(batch));
    println!("last CQL metrics: {last:?}");
    let trained = evaluate(EPISODES, |o| learner.act(o, ActMode::Deterministic));
    report("CQL", updates, seconds, trained, 0.3);
}

#[test]
fn offline_iql_beats_a_random_policy_on_point_reach() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut buffer = data();
    let updates = 1000;
    let config = iql_config(updates).with_hidden(64);
    let mut learner = iql::build_mlp::<B>(config, &Default::default()).unwrap();
    let (last, seconds) = train(&mut buffer, updates, |batch| learner.train_step(batch));
    println!("last IQL metrics: {last:?}");
    let trained = evaluate(EPISODES, |o| learner.act(o, ActMode::Deterministic));
    report("IQL", updates, seconds, trained, 0.3);
}

#[test]
fn offline_equi_cql_and_equi_iql_beat_a_random_policy_on_point_reach() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    let mut buffer = data();
    // C_4 about the origin (see the header).
    let (obs, act) = c4_representations();
    // 16 copies of C_4's regular representation per hidden layer: the width of the MLPs above.
    let equi = EquiConfig::new().with_hidden_dim(64);

    let config = cql_config().with_equi(equi.clone());
    let mut learner = cql::build_equi::<B>(config, &obs, &act, &device).unwrap();
    let updates = 400;
    let (_, seconds) = train(&mut buffer, updates, |batch| learner.train_step(batch));
    let trained = evaluate(EPISODES, |o| learner.act(o, ActMode::Deterministic));
    report("Equi-CQL", updates, seconds, trained, 0.3);

    let updates = 1000;
    let config = iql_config(updates).with_equi(equi);
    let mut learner = iql::build_equi::<B>(config, &obs, &act, &device).unwrap();
    let (_, seconds) = train(&mut buffer, updates, |batch| learner.train_step(batch));
    let trained = evaluate(EPISODES, |o| learner.act(o, ActMode::Deterministic));
    report("Equi-IQL", updates, seconds, trained, 0.3);
}
