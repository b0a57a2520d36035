//! The 2-D point-reach environment of `tests/sac_point_reach.rs` (copied, so that test stays as it
//! is): a point in [-1, 1]² moves towards a goal. Observation (x, y, goal_x, goal_y), action
//! a ∈ [-1, 1]² scaled to a step of 0.1·a, reward −‖p − goal‖ after the step, 50-step episodes
//! ending by truncation only. Plus the greedy oracle, an evaluation loop and a noisy scripted
//! controller that records an offline dataset.

use equigate_learn::replay::{ReplayBuffer, Transition};
use equigate_learn::sac::standard_normal;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Steps per episode.
pub const EPISODE_STEPS: usize = 50;
/// Distance moved by a unit action.
pub const STEP_SIZE: f32 = 0.1;
/// Observation length.
pub const OBS_DIM: usize = 4;
/// Action length.
pub const ACT_DIM: usize = 2;

/// The point-reach environment.
pub struct PointReach {
    pos: [f32; 2],
    goal: [f32; 2],
    t: usize,
    rng: ChaCha8Rng,
}

impl PointReach {
    /// An environment whose starts and goals come from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { pos: [0.0; 2], goal: [0.0; 2], t: 0, rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    fn obs(&self) -> Vec<f32> {
        vec![self.pos[0], self.pos[1], self.goal[0], self.goal[1]]
    }

    /// A new start and goal, uniform in the square.
    pub fn reset(&mut self) -> Vec<f32> {
        for i in 0..2 {
            self.pos[i] = self.rng.random_range(-1.0..1.0);
            self.goal[i] = self.rng.random_range(-1.0..1.0);
        }
        self.t = 0;
        self.obs()
    }

    /// (next obs, reward, truncated).
    pub fn step(&mut self, action: &[f32]) -> (Vec<f32>, f32, bool) {
        for (p, a) in self.pos.iter_mut().zip(action) {
            *p = (*p + STEP_SIZE * a.clamp(-1.0, 1.0)).clamp(-1.0, 1.0);
        }
        self.t += 1;
        let d =
            ((self.pos[0] - self.goal[0]).powi(2) + (self.pos[1] - self.goal[1]).powi(2)).sqrt();
        (self.obs(), -d, self.t >= EPISODE_STEPS)
    }
}

/// The greedy oracle: a step straight at the goal, clipped to the action box.
pub fn oracle(obs: &[f32]) -> Vec<f32> {
    vec![
        ((obs[2] - obs[0]) / STEP_SIZE).clamp(-1.0, 1.0),
        ((obs[3] - obs[1]) / STEP_SIZE).clamp(-1.0, 1.0),
    ]
}

/// Mean return of `policy` over `episodes` evaluation episodes (same starts and goals for every
/// policy: the environment seed is fixed).
pub fn evaluate(episodes: usize, mut policy: impl FnMut(&[f32]) -> Vec<f32>) -> f64 {
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

/// Mean return of uniform random actions on the evaluation episodes.
pub fn random_return(episodes: usize) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    evaluate(episodes, |_| vec![rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)])
}

/// Largest |action| of the scripted part of the behaviour before its noise.
pub const BEHAVIOUR_SCALE: f32 = 0.8;

/// The behaviour policy of the dataset: with probability `p_random` a uniform random action,
/// otherwise tanh(atanh(0.8 · oracle) + N(0, `noise`²)) per coordinate: a tanh-Gaussian around a
/// slowed-down oracle. The noise is squashed rather than clipped, so that actions are not piled
/// at exactly ±1 (where a tanh-Gaussian's likelihood, which IQL's actor maximises, needs
/// atanh(±(1 − 1e-6)) ≈ ±7.3 and the fit goes into σ rather than μ).
pub fn behaviour(rng: &mut ChaCha8Rng, obs: &[f32], noise: f32, p_random: f64) -> Vec<f32> {
    if rng.random_bool(p_random) {
        return (0..ACT_DIM).map(|_| rng.random_range(-1.0..1.0)).collect();
    }
    let eps = standard_normal(rng, ACT_DIM);
    oracle(obs)
        .iter()
        .zip(eps)
        .map(|(a, e)| ((BEHAVIOUR_SCALE * a).atanh() + noise * e).tanh())
        .collect()
}

/// An offline dataset of `episodes` whole episodes of [`behaviour`], as a replay buffer of
/// exactly that many transitions (sampled with `seed`).
pub fn dataset(episodes: usize, noise: f32, p_random: f64, seed: u64) -> ReplayBuffer {
    let n = episodes * EPISODE_STEPS;
    let mut buffer = ReplayBuffer::new(n, OBS_DIM, ACT_DIM, seed).expect("non-zero sizes");
    let mut env = PointReach::new(seed.wrapping_add(1));
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(2));
    for _ in 0..episodes {
        let mut obs = env.reset();
        loop {
            let action = behaviour(&mut rng, &obs, noise, p_random);
            let (next, reward, truncated) = env.step(&action);
            let transition = Transition {
                obs: &obs,
                action: &action,
                reward,
                next_obs: &next,
                terminated: false,
                truncated,
            };
            buffer.push(transition).expect("matching lengths");
            obs = next;
            if truncated {
                break;
            }
        }
    }
    buffer
}
