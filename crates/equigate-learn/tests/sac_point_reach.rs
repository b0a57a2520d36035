//! SAC learns a tiny continuous task with no robot: a point in the square [-1, 1]² moves towards
//! a goal. Observation (x, y, goal_x, goal_y), action a ∈ [-1, 1]² scaled to a step of 0.1·a,
//! reward −‖p − goal‖ after the step, 50-step episodes ending by truncation only.
//!
//! `cargo test -p equigate-learn --test sac_point_reach -- --nocapture` prints the returns of a
//! uniform random policy, of the greedy oracle and of the trained policy on the same 10
//! evaluation episodes, and the training time.

use std::sync::Mutex;
use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use equigate_learn::nets::{MlpActor, MlpCritic};
use equigate_learn::replay::{ReplayBuffer, Transition};
use equigate_learn::sac::{ActMode, Sac, SacConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type B = Autodiff<Flex>;

/// One training at a time (2 cores; the timing printed is then the training's own).
static SERIAL: Mutex<()> = Mutex::new(());

const EPISODE_STEPS: usize = 50;
const STEP_SIZE: f32 = 0.1;

/// The point-reach environment.
struct PointReach {
    pos: [f32; 2],
    goal: [f32; 2],
    t: usize,
    rng: ChaCha8Rng,
}

impl PointReach {
    fn new(seed: u64) -> Self {
        Self { pos: [0.0; 2], goal: [0.0; 2], t: 0, rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    fn obs(&self) -> Vec<f32> {
        vec![self.pos[0], self.pos[1], self.goal[0], self.goal[1]]
    }

    fn reset(&mut self) -> Vec<f32> {
        for i in 0..2 {
            self.pos[i] = self.rng.random_range(-1.0..1.0);
            self.goal[i] = self.rng.random_range(-1.0..1.0);
        }
        self.t = 0;
        self.obs()
    }

    /// (next obs, reward, truncated).
    fn step(&mut self, action: &[f32]) -> (Vec<f32>, f32, bool) {
        for i in 0..2 {
            self.pos[i] = (self.pos[i] + STEP_SIZE * action[i].clamp(-1.0, 1.0)).clamp(-1.0, 1.0);
        }
        self.t += 1;
        let d =
            ((self.pos[0] - self.goal[0]).powi(2) + (self.pos[1] - self.goal[1]).powi(2)).sqrt();
        (self.obs(), -d, self.t >= EPISODE_STEPS)
    }
}

/// Mean return of `policy` over `episodes` evaluation episodes (same starts and goals for every
/// policy: the environment seed is fixed).
fn evaluate(episodes: usize, mut policy: impl FnMut(&[f32]) -> Vec<f32>) -> f64 {
    let mut env = PointReach::new(1_000_003);
    let mut total = 0.0;
    for _ in 0..episodes {
        let mut obs = env.reset();
        loop {
            let (next, r, truncated) = env.step(&policy(&obs));
            total += f64::from(r);
            obs = next;
            if truncated {
                break;
            }
        }
    }
    total / episodes as f64
}

fn config(seed: u64) -> SacConfig {
    // Small networks and a larger learning rate so that a few thousand steps suffice on 2 cores.
    SacConfig::new(4, 2)
        .with_hidden(64)
        .with_batch_size(128)
        .with_q_lr(1e-3)
        .with_policy_lr(1e-3)
        .with_alpha_lr(1e-3)
        .with_gamma(0.95)
        .with_learning_starts(500)
        .with_seed(seed)
}

/// Trains for `steps` environment steps (one update per step after the random warm-up) and
/// returns the learner.
fn train(config: SacConfig, steps: usize) -> Sac<B, MlpCritic<B>, MlpActor<B>> {
    let device = Default::default();
    let mut init = ChaCha8Rng::seed_from_u64(config.seed);
    let (q, actor) = config.mlp_networks(&mut init, &device).unwrap();
    let mut sac = Sac::new(config.clone(), q, actor, &device);
    let mut buffer =
        ReplayBuffer::new(config.buffer_size.min(steps), 4, 2, config.seed.wrapping_add(1))
            .unwrap();
    let mut env = PointReach::new(config.seed.wrapping_add(2));
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(3));
    let mut obs = env.reset();
    for step in 0..steps {
        let action = if step < config.learning_starts {
            vec![rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)]
        } else {
            sac.act(&obs, ActMode::Stochastic)
        };
        let (next, reward, truncated) = env.step(&action);
        buffer
            .push(Transition {
                obs: &obs,
                action: &action,
                reward,
                next_obs: &next,
                terminated: false,
                truncated,
            })
            .unwrap();
        obs = if truncated { env.reset() } else { next };
        if step >= config.learning_starts {
            let batch = buffer.sample::<B>(config.batch_size, &device).unwrap();
            sac.train_step(&batch);
        }
    }
    sac
}

#[test]
fn sac_beats_a_random_policy_on_point_reach() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let episodes = 10;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let random =
        evaluate(episodes, |_| vec![rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)]);
    let oracle = evaluate(episodes, |o| {
        vec![
            ((o[2] - o[0]) / STEP_SIZE).clamp(-1.0, 1.0),
            ((o[3] - o[1]) / STEP_SIZE).clamp(-1.0, 1.0),
        ]
    });

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
