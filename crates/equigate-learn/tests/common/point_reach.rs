//! The 2-D point-reach environment of the SAC, PE-SAC and offline tests: a point in [-1, 1]²
//! moves towards a goal. Observation (x, y, goal_x, goal_y), action a ∈ [-1, 1]² scaled to a step
//! of 0.1·a, reward −‖p − goal‖ after the step, 50-step episodes ending by truncation only. Plus
//! a symmetry-breaking variant (mud in one corner), the greedy oracle, an evaluation loop, the
//! online training loop, and a noisy scripted controller that records an offline dataset.

use burn::tensor::backend::AutodiffBackend;
use equigate_learn::replay::{Batch, ReplayBuffer, Transition};
use equigate_learn::sac::{standard_normal, SacConfig};
use equigate_symmetry::{FieldKind, Group, Representation};
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
    /// Symmetry breaking (PE-SAC's gate experiment): inside [`in_mud`] a step moves 30% as far.
    mud: bool,
    pos: [f32; 2],
    goal: [f32; 2],
    t: usize,
    rng: ChaCha8Rng,
}

/// The mud region of the symmetry-breaking variant: one corner, x > 0.2 and y > 0.2 (its
/// 90° turns are mud-free, so C_4 is broken there).
pub fn in_mud(pos: [f32; 2]) -> bool {
    pos[0] > 0.2 && pos[1] > 0.2
}

impl PointReach {
    /// An environment whose starts and goals come from `seed`, without mud.
    pub fn new(seed: u64) -> Self {
        Self {
            mud: false,
            pos: [0.0; 2],
            goal: [0.0; 2],
            t: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The same with mud in one corner ([`in_mud`]) when `mud` is set.
    pub fn with_mud(mut self, mud: bool) -> Self {
        self.mud = mud;
        self
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
        let step = if self.mud && in_mud(self.pos) { 0.3 * STEP_SIZE } else { STEP_SIZE };
        for (p, a) in self.pos.iter_mut().zip(action) {
            *p = (*p + step * a.clamp(-1.0, 1.0)).clamp(-1.0, 1.0);
        }
        self.t += 1;
        let d =
            ((self.pos[0] - self.goal[0]).powi(2) + (self.pos[1] - self.goal[1]).powi(2)).sqrt();
        (self.obs(), -d, self.t >= EPISODE_STEPS)
    }

    /// [`Self::step`] from `obs` with `action`, recording the transition in `buffer` (never
    /// terminated: episodes end by truncation only); returns (next obs, truncated).
    pub fn step_into(
        &mut self,
        buffer: &mut ReplayBuffer,
        obs: &[f32],
        action: &[f32],
    ) -> (Vec<f32>, bool) {
        let (next, reward, truncated) = self.step(action);
        let transition =
            Transition { obs, action, reward, next_obs: &next, terminated: false, truncated };
        buffer.push(transition).expect("matching lengths");
        (next, truncated)
    }
}

/// The task's symmetry: C_4 about the origin, ρ_s = ρ1 ⊕ ρ1 on (position, goal) and ρ_a = ρ1 on
/// the step. The square, the clamp, the per-coordinate action box, the reward and the oracle
/// commute with its quarter turns.
pub fn c4_representations() -> (Representation, Representation) {
    let g = Group::cyclic(4).expect("C_4 exists");
    let obs =
        Representation::from_layout(&g, &[(FieldKind::Rotation2, 2), (FieldKind::Rotation2, 2)]);
    let act = Representation::from_layout(&g, &[(FieldKind::Rotation2, 2)]);
    (obs.expect("a valid layout"), act.expect("a valid layout"))
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

/// The SAC settings of the online point-reach tests (SAC, PE-SAC): a larger batch and learning
/// rates than SAC's defaults so that a few thousand steps suffice on 2 cores, γ 0.95, 500 random
/// steps before learning, `seed`. The network widths are each test's.
pub fn sac_config(seed: u64) -> SacConfig {
    SacConfig::new(OBS_DIM, ACT_DIM)
        .with_batch_size(128)
        .with_q_lr(1e-3)
        .with_policy_lr(1e-3)
        .with_alpha_lr(1e-3)
        .with_gamma(0.95)
        .with_learning_starts(500)
        .with_seed(seed)
}

/// Online training of `agent` for `steps` environment steps (one update per step after the
/// warm-up), with `config`'s `learning_starts`, `buffer_size`, `batch_size` and `seed`: uniform
/// random actions (ChaCha8 seed `seed + 3`) for the first `learning_starts` steps, then
/// `act(agent, obs)`; episodes from environment seed `seed + 2` (with mud when `mud`); every
/// transition into a replay of min(`buffer_size`, `steps`) (sampling seed `seed + 1`); after the
/// warm-up, `update(agent, batch)` once per step on a sampled batch.
pub fn train_online<B: AutodiffBackend, T>(
    agent: &mut T,
    config: &SacConfig,
    steps: usize,
    mud: bool,
    mut act: impl FnMut(&mut T, &[f32]) -> Vec<f32>,
    mut update: impl FnMut(&mut T, &Batch<B>),
) {
    let device = Default::default();
    let mut buffer = ReplayBuffer::new(
        config.buffer_size.min(steps),
        OBS_DIM,
        ACT_DIM,
        config.seed.wrapping_add(1),
    )
    .expect("non-zero sizes");
    let mut env = PointReach::new(config.seed.wrapping_add(2)).with_mud(mud);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(3));
    let mut obs = env.reset();
    for step in 0..steps {
        let action = if step < config.learning_starts {
            vec![rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)]
        } else {
            act(agent, &obs)
        };
        let (next, truncated) = env.step_into(&mut buffer, &obs, &action);
        obs = if truncated { env.reset() } else { next };
        if step >= config.learning_starts {
            let batch = buffer.sample::<B>(config.batch_size, &device).expect("a filled buffer");
            update(agent, &batch);
        }
    }
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
            let (next, truncated) = env.step_into(&mut buffer, &obs, &action);
            obs = next;
            if truncated {
                break;
            }
        }
    }
    buffer
}
