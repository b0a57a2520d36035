//! Implicit Q-Learning, offline: Kostrikov et al., "Offline Reinforcement Learning with Implicit
//! Q-Learning", arXiv:2110.06169, in the form of CORL's `iql.py` (Tarasov et al.,
//! arXiv:2210.07105; `reference/algorithms.md` §3.2, hyperparameters §5). With the invariant
//! critic and value and the equivariant actor of [`crate::nets`] it is Equi-IQL (Tangri et al.,
//! §3.2).
//!
//! One update, [`Iql::train_step`], in CORL's order (the networks, their Adam states and the target
//! step are those of the [`Sac`] an [`Iql`] holds, [`Iql::sac`]):
//! 1. V(s') for the Q target is taken before the value step (CORL's `next_v`).
//! 2. [`Iql::update_value`]: u = min_j Q̄_j(s, a) − V(s); L_V = mean |τ − 1\[u < 0\]| u²
//!    ([`expectile_loss`]).
//! 3. [`Iql::update_critics`]: y = r + γ(1 − terminated) V(s'); L_Q = Σ_j mean (Q_j(s, a) − y)² / 2.
//! 4. [`Iql::update_actor`]: w = min(exp(β (min_j Q̄_j(s, a) − V(s))), 100) with the advantage of
//!    step 2 (V before its step); L_π = mean[w · (−log π(a|s))] on the dataset actions; the actor's
//!    learning rate is cosine-annealed from `policy_lr` to 0 over `total_updates`.
//! 5. [`Sac::soft_update_targets`]: θ̄ ← τθ + (1 − τ)θ̄ (the Q targets; V has none).
//!
//! What differs from CORL (and the paper):
//! - The actor is the crate's tanh-Gaussian (state-dependent log σ in [−5, 2]), so that a
//!   checkpoint loads into [`crate::sac::Sac`]; log π(a|s) of a dataset action is that of the
//!   squashed distribution, with a clamped to ±(1 − 1e-6) before atanh ([`tanh_gaussian_log_prob`]).
//!   CORL's IQL actor is a Gaussian with a tanh-bounded mean and a state-independent log σ.
//! - The Q target is stepped after the actor rather than inside the critic step: the same numbers,
//!   since the actor uses the advantage computed before either.
//! - The cosine schedule stops at 0 after `total_updates` (PyTorch's `CosineAnnealingLR` would
//!   rise again).
//! - Observation normalisation is the caller's ([`crate::scaling`]).
//!
//! A checkpoint ([`Iql::save_checkpoint`]) has [`crate::sac::Sac`]'s files (with log α at SAC's
//! initial temperature and a fresh Adam state for it) plus `value.mpk`.

use std::f64::consts::{PI, TAU};
use std::path::Path;

use burn::config::Config;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use equigate_symmetry::Representation;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{self, CheckpointError};
use crate::cql::critic_trunk;
use crate::nets::{
    ActorConfig, EquiActor, EquiConfig, EquiCritic, EquiValue, MlpActor, MlpConfig, MlpCritic,
    MlpValue,
};
use crate::offline::{check_dims, column_means, scalar, OfflineError};
use crate::replay::Batch;
use crate::sac::{ActMode, Critic, Sac, SacConfig, TrainActor, TrainCritic, TrainValue, Value};

/// Checkpoint file of the [`IqlConfig`].
pub const IQL_CONFIG_FILE: &str = "iql_config.json";
/// Checkpoint file of the value network's record.
pub const VALUE_FILE: &str = "value.mpk";
/// Checkpoint file of the value network's Adam state.
pub const VALUE_OPTIM_FILE: &str = "value_optimizer.mpk";

/// Largest advantage weight exp(β A) (CORL's `EXP_ADV_MAX`).
pub const EXP_ADV_MAX: f64 = 100.0;

/// Smallest distance of a dataset action from ±1 before atanh in [`tanh_gaussian_log_prob`].
pub const ACTION_CLAMP_EPS: f64 = 1e-6;

/// IQL hyperparameters, saved beside every checkpoint. Defaults: CORL's `iql.py` `TrainConfig`
/// for D4RL locomotion (algorithms.md §5, verified in CORL), the reference implementation the CORL
/// paper (arXiv:2210.07105) benchmarks; AntMaze uses τ = 0.9, β = 10; Equi-IQL (Tangri et al.)
/// uses τ = 0.8 and lr 1e-4.
#[derive(Config, Debug)]
pub struct IqlConfig {
    /// Observation length (after scaling).
    pub obs_dim: usize,
    /// Action length |A| (tanh outputs in [-1, 1]).
    pub act_dim: usize,
    /// Width of each of the two hidden layers of the MLP networks (default: `256`, CORL's 2×256).
    #[config(default = 256)]
    pub hidden: usize,
    /// Equivariant trunks of Equi-IQL (default: 2 × 256 regular features, exact).
    #[config(default = "EquiConfig::new()")]
    pub equi: EquiConfig,
    /// Critic learning rate, Adam (default: `3e-4`, CORL's `qf_lr`).
    #[config(default = 3e-4)]
    pub q_lr: f64,
    /// Value learning rate, Adam (default: `3e-4`, CORL's `vf_lr`).
    #[config(default = 3e-4)]
    pub value_lr: f64,
    /// Initial actor learning rate, Adam, cosine-annealed to 0 over `total_updates` (default:
    /// `3e-4`, CORL's `actor_lr`).
    #[config(default = 3e-4)]
    pub policy_lr: f64,
    /// Adam ε (default: `1e-8`, PyTorch's).
    #[config(default = 1e-8)]
    pub adam_epsilon: f64,
    /// Global L2 norm the gradients of each network are clipped to, or `None` (default: `None`,
    /// CORL does not clip).
    #[config(default = "None")]
    pub max_grad_norm: Option<f64>,
    /// Minibatch size (default: `256`).
    #[config(default = 256)]
    pub batch_size: usize,
    /// Discount γ (default: `0.99`).
    #[config(default = 0.99)]
    pub gamma: f64,
    /// Polyak coefficient of the target critics (default: `0.005`).
    #[config(default = 0.005)]
    pub tau: f64,
    /// Expectile τ of the value loss (default: `0.7`, CORL's `iql_tau`; 0.9 on AntMaze).
    #[config(default = 0.7)]
    pub expectile: f64,
    /// Inverse temperature β of the advantage weights (default: `3.0`; 10 on AntMaze).
    #[config(default = 3.0)]
    pub beta: f64,
    /// Upper clip of the advantage weights (default: `100.0`, CORL's `EXP_ADV_MAX`).
    #[config(default = 100.0)]
    pub exp_adv_max: f64,
    /// Updates over which the actor's learning rate is cosine-annealed (default: `1000000`,
    /// CORL's `max_timesteps`).
    #[config(default = 1000000)]
    pub total_updates: u64,
    /// Seed of the networks' initialisation and of the learner's noise (default: `0`).
    #[config(default = 0)]
    pub seed: u64,
}

impl IqlConfig {
    /// The [`SacConfig`] with the same dimensions and widths, written as the checkpoint's
    /// `config.json`; SAC's temperature and replay settings keep SAC's defaults.
    pub fn sac_config(&self) -> SacConfig {
        SacConfig::new(self.obs_dim, self.act_dim)
            .with_hidden(self.hidden)
            .with_q_lr(self.q_lr)
            .with_policy_lr(self.policy_lr)
            .with_adam_epsilon(self.adam_epsilon)
            .with_max_grad_norm(self.max_grad_norm)
            .with_batch_size(self.batch_size)
            .with_gamma(self.gamma)
            .with_tau(self.tau)
            .with_seed(self.seed)
    }
}

/// The expectile loss L = mean |τ − 1\[u < 0\]| u²: positive u weighted τ, negative 1 − τ, so for
/// τ > 0.5 its minimiser over V is an upper expectile of Q(s, a) over the dataset's actions.
///
/// # Shapes
/// `u: [batch, 1]` -> `[1]`.
pub fn expectile_loss<B: Backend>(u: Tensor<B, 2>, expectile: f64) -> Tensor<B, 1> {
    let negative = u.clone().lower_elem(0.0).float(); // 1[u < 0], no gradient
    let weight = negative.neg().add_scalar(expectile).abs();
    (weight * u.square()).mean()
}

/// The advantage weights w = min(exp(β A), `max`).
///
/// # Shapes
/// `advantage: [batch, 1]` -> `[batch, 1]`.
pub fn advantage_weights<B: Backend>(advantage: Tensor<B, 2>, beta: f64, max: f64) -> Tensor<B, 2> {
    advantage.mul_scalar(beta).exp().clamp_max(max)
}

/// log π(a|s) of given actions under the tanh-squashed Gaussian with pre-tanh mean μ and log-std
/// log σ: with a clamped to ±(1 − 1e-6) and u = atanh a,
/// log π = Σ_i [log N(u_i; μ_i, σ_i) − log(1 − a_i²)] (the density that
/// [`crate::nets::tanh_gaussian`] samples).
///
/// # Shapes
/// `mean, log_std, actions: [batch, act_dim]` -> `[batch, 1]` (nats).
pub fn tanh_gaussian_log_prob<B: Backend>(
    mean: Tensor<B, 2>,
    log_std: Tensor<B, 2>,
    actions: Tensor<B, 2>,
) -> Tensor<B, 2> {
    let bound = 1.0 - ACTION_CLAMP_EPS;
    let a = actions.clamp(-bound, bound);
    // atanh a = ½ log((1 + a)/(1 − a)).
    let u = (a.clone().add_scalar(1.0) / a.clone().neg().add_scalar(1.0)).log().mul_scalar(0.5);
    let z = (u - mean) * log_std.clone().neg().exp();
    let gauss = (z.square().mul_scalar(-0.5) - log_std).sub_scalar(0.5 * TAU.ln());
    let log_det = a.square().neg().add_scalar(1.0).log();
    (gauss - log_det).sum_dim(1)
}

/// The cosine-annealed learning rate after `step` of `total` updates:
/// lr = base · ½(1 + cos(π · min(step, total)/total)) (PyTorch's `CosineAnnealingLR`, η_min = 0).
pub fn cosine_lr(base: f64, step: u64, total: u64) -> f64 {
    if total == 0 {
        return base;
    }
    let progress = step.min(total) as f64 / total as f64;
    base * 0.5 * (1.0 + (PI * progress).cos())
}

/// Scalars logged after one [`Iql::train_step`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct IqlMetrics {
    /// mean |τ − 1\[u < 0\]| u².
    pub value_loss: f32,
    /// Mean V(s) over the batch (before the value step).
    pub v_mean: f32,
    /// Σ_j mean (Q_j − y)² / 2.
    pub q_loss: f32,
    /// Mean of Q_1(s, a) over the batch.
    pub q1_mean: f32,
    /// Mean of Q_2(s, a) over the batch.
    pub q2_mean: f32,
    /// mean[w · (−log π(a|s))].
    pub actor_loss: f32,
    /// Mean advantage min_j Q̄_j(s, a) − V(s).
    pub advantage_mean: f32,
    /// Mean advantage weight w.
    pub weight_mean: f32,
    /// Fraction of the batch whose weight was clipped at `exp_adv_max`.
    pub weight_clipped: f32,
    /// The actor's learning rate of this update.
    pub policy_lr: f64,
}

/// The IQL learner: the value network `value` and its Adam optimizer beside a [`Sac`] that holds
/// the rest. [`MlpIql`] and [`EquiIql`] name the two network choices; [`build_mlp`] and
/// [`build_equi`] build them.
pub struct Iql<B: AutodiffBackend, C: TrainCritic<B>, V: TrainValue<B>, A: TrainActor<B>> {
    /// Hyperparameters. Those SAC shares were copied into `sac.config` ([`IqlConfig::sac_config`])
    /// at construction, which its steps read.
    pub config: IqlConfig,
    /// Twin critics `q` with no-grad targets `q_target`, the tanh-Gaussian actor, their Adam
    /// optimizers and the noise RNG, with [`IqlConfig::sac_config`]'s hyperparameters; trained
    /// with IQL's losses. Its temperature is never stepped (IQL has none): it stays at SAC's
    /// initial value, which the checkpoint holds so that SAC loads it. The target step, acting
    /// and the checkpoint's SAC files are SAC's.
    pub sac: Sac<B, C, A>,
    /// The value network V.
    pub value: V,
    value_optimizer: OptimizerAdaptor<Adam, V, B>,
}

/// IQL with the plain 2×256 MLP critics, value and actor.
pub type MlpIql<B> = Iql<B, MlpCritic<B>, MlpValue<B>, MlpActor<B>>;
/// Equi-IQL: invariant twin critics and value, an equivariant actor.
pub type EquiIql<B> = Iql<B, EquiCritic<B>, EquiValue<B>, EquiActor<B>>;

/// IQL with MLP networks (critics, then actor, then value, initialised from `config.seed`; the
/// critics and actor are those [`SacConfig::mlp_networks`] builds from the same seed). Errors if
/// a width is 0.
pub fn build_mlp<B: AutodiffBackend>(
    config: IqlConfig,
    device: &B::Device,
) -> Result<MlpIql<B>, OfflineError> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mlp = MlpConfig::new().with_hidden(vec![config.hidden; 2]);
    let (obs_dim, act_dim) = (config.obs_dim, config.act_dim);
    let q = MlpCritic::new(&mlp, obs_dim, act_dim, &mut rng, device)?;
    let actor = MlpActor::new(&mlp, &ActorConfig::new(), obs_dim, act_dim, &mut rng, device)?;
    let value = MlpValue::new(&mlp, obs_dim, &mut rng, device)?;
    Ok(Iql::new(config, q, value, actor, device))
}

/// Equi-IQL for observation representation `obs` and action representation `act`: invariant
/// critics and value (trunks with RPP prior weights 0/0, §2.2) and an equivariant actor, all with
/// `config.equi` trunks. Errors if the dimensions differ from the config's or a network cannot be
/// built.
pub fn build_equi<B: AutodiffBackend>(
    config: IqlConfig,
    obs: &Representation,
    act: &Representation,
    device: &B::Device,
) -> Result<EquiIql<B>, OfflineError> {
    check_dims(config.obs_dim, config.act_dim, obs, act)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let trunk = critic_trunk(&config.equi);
    let q = EquiCritic::new(&trunk, obs, act, &mut rng, device)?;
    let actor = EquiActor::new(&config.equi, &ActorConfig::new(), obs, act, &mut rng, device)?;
    let value = EquiValue::new(&trunk, obs, &mut rng, device)?;
    Ok(Iql::new(config, q, value, actor, device))
}

impl<B: AutodiffBackend, C: TrainCritic<B>, V: TrainValue<B>, A: TrainActor<B>> Iql<B, C, V, A> {
    /// A learner around freshly built networks; the target critics start as copies of `q`.
    pub fn new(config: IqlConfig, q: C, value: V, actor: A, device: &B::Device) -> Self {
        let mut sac = Sac::new(config.sac_config(), q, actor, device);
        sac.rng.set_stream(1); // apart from the initialisation's stream
        let value_optimizer = AdamConfig::new().with_epsilon(config.adam_epsilon as f32).init();
        Self { config, sac, value, value_optimizer }
    }

    /// Number of [`Self::train_step`] calls so far.
    pub fn updates(&self) -> u64 {
        self.sac.updates()
    }

    /// One IQL update on `batch`: value, critics, actor, targets (see the module header).
    pub fn train_step(&mut self, batch: &Batch<B>) -> IqlMetrics {
        let next_v = self.value.valid().v(batch.next_obs.clone().inner()); // [batch, 1]
        let (value_loss, v_mean, advantage) = self.update_value(batch);
        let (q_loss, q1_mean, q2_mean) = self.update_critics(batch, next_v);
        let (actor_loss, weights, policy_lr) = self.update_actor(batch, advantage.clone());
        self.sac.soft_update_targets();
        self.sac.updates += 1;
        let clipped = weights.clone().greater_equal_elem(self.config.exp_adv_max).float();
        IqlMetrics {
            value_loss,
            v_mean,
            q_loss,
            q1_mean,
            q2_mean,
            actor_loss,
            advantage_mean: scalar(advantage.mean()),
            weight_mean: scalar(weights.mean()),
            weight_clipped: scalar(clipped.mean()),
            policy_lr,
        }
    }

    /// Value step on L_V = mean |τ − 1\[u < 0\]| u², u = min_j Q̄_j(s, a) − V(s). Returns
    /// (L_V, mean V(s), the advantage u without graph `[batch, 1]`, V before the step).
    pub fn update_value(&mut self, batch: &Batch<B>) -> (f32, f32, Tensor<B::InnerBackend, 2>) {
        let obs = batch.obs.clone();
        let target_q = self.sac.q_target.q(obs.clone().inner(), batch.actions.clone().inner());
        let target_q = Tensor::<B, 2>::from_inner(target_q.min_dim(1)); // [batch, 1]
        let v = self.value.v(obs); // [batch, 1]
        let u = target_q - v.clone();
        let loss = expectile_loss(u.clone(), self.config.expectile);
        let loss = match self.value.prior() {
            Some(prior) => loss + prior,
            None => loss,
        };
        let grads = GradientsParams::from_grads(loss.backward(), &self.value);
        let grads = self.sac.clip(&self.value, grads);
        self.value = self.value_optimizer.step(self.config.value_lr, self.value.clone(), grads);
        (scalar(loss.inner()), scalar(v.inner().mean()), u.inner())
    }

    /// Critic step on L_Q = Σ_j mean (Q_j(s, a) − y)² / 2, y = r + γ(1 − terminated) V(s'), with
    /// `next_v` = V(s') (`[batch, 1]`, no graph). Returns (L_Q, mean Q_1, mean Q_2).
    pub fn update_critics(
        &mut self,
        batch: &Batch<B>,
        next_v: Tensor<B::InnerBackend, 2>,
    ) -> (f32, f32, f32) {
        let not_done = batch.terminated.clone().inner().neg().add_scalar(1.0);
        let y = batch.rewards.clone().inner() + not_done * next_v.mul_scalar(self.config.gamma);
        let y = Tensor::<B, 2>::from_inner(y); // [batch, 1]
        let sac = &mut self.sac;
        let q = sac.q.q(batch.obs.clone(), batch.actions.clone()); // [batch, 2]
        let q_loss = (q.clone() - y).square().mean_dim(0).sum().mul_scalar(0.5);
        let q_loss = match sac.q.prior() {
            Some(prior) => q_loss + prior,
            None => q_loss,
        };
        let grads = GradientsParams::from_grads(q_loss.backward(), &sac.q);
        let grads = sac.clip(&sac.q, grads);
        sac.q = sac.q_optimizer.step(self.config.q_lr, sac.q.clone(), grads);
        let [q1_mean, q2_mean] = column_means(q.inner());
        (scalar(q_loss.inner()), q1_mean, q2_mean)
    }

    /// Actor step on L_π = mean[w · (−log π(a|s))], w = [`advantage_weights`] of `advantage`
    /// (`[batch, 1]`, no graph), a the dataset actions, at the cosine-annealed learning rate.
    /// Returns (L_π, w `[batch, 1]`, the learning rate used).
    pub fn update_actor(
        &mut self,
        batch: &Batch<B>,
        advantage: Tensor<B::InnerBackend, 2>,
    ) -> (f32, Tensor<B::InnerBackend, 2>, f64) {
        let weights = advantage_weights(advantage, self.config.beta, self.config.exp_adv_max);
        let sac = &mut self.sac;
        let (mean, log_std) = sac.actor.dist(batch.obs.clone());
        let log_prob = tanh_gaussian_log_prob(mean, log_std, batch.actions.clone()); // [batch, 1]
        let actor_loss = (Tensor::<B, 2>::from_inner(weights.clone()) * log_prob.neg()).mean();
        let actor_loss = match sac.actor.prior() {
            Some(prior) => actor_loss + prior,
            None => actor_loss,
        };
        let lr = cosine_lr(self.config.policy_lr, sac.updates, self.config.total_updates);
        let grads = GradientsParams::from_grads(actor_loss.backward(), &sac.actor);
        let grads = sac.clip(&sac.actor, grads);
        sac.actor = sac.actor_optimizer.step(lr, sac.actor.clone(), grads);
        (scalar(actor_loss.inner()), weights, lr)
    }

    /// Actions for a row-major batch of observations `[n · obs_dim]` -> `[n · act_dim]` in
    /// [-1, 1], with a no-grad copy of the actor ([`Sac::act`]).
    ///
    /// # Panics
    /// If `obs.len()` is not a positive multiple of `obs_dim`.
    pub fn act(&mut self, obs: &[f32], mode: ActMode) -> Vec<f32> {
        self.sac.act(obs, mode)
    }

    /// Writes a checkpoint into `dir` (created if missing), each file atomically: [`Sac`]'s
    /// ([`Sac::save_checkpoint`]: `config.json` is [`IqlConfig::sac_config`], `log_alpha.mpk` SAC's
    /// initial temperature with a fresh Adam state, since IQL has none) and `iql_config.json`,
    /// `value.mpk`, `value_optimizer.mpk`.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), CheckpointError> {
        self.sac.save_checkpoint(dir)?;
        checkpoint::save_config(&self.config, &dir.join(IQL_CONFIG_FILE))?;
        checkpoint::save_module(&self.value.valid(), &dir.join(VALUE_FILE))?;
        let value_optim = self.value_optimizer.to_record();
        checkpoint::save_record::<B, _>(value_optim, &dir.join(VALUE_OPTIM_FILE))
    }

    /// Restores everything [`Self::save_checkpoint`] wrote into this learner (built with the same
    /// shapes and seed), so that offline training resumes exactly where it stopped (given the
    /// same batches).
    pub fn load_checkpoint(mut self, dir: &Path) -> Result<Self, CheckpointError> {
        self.sac = self.sac.load_checkpoint(dir)?;
        let device = self.sac.device.clone();
        // Into the autodiff module itself (see `Sac::load_checkpoint`).
        self.value = checkpoint::load_module(self.value, &dir.join(VALUE_FILE), &device)?;
        let value_optim = checkpoint::load_record::<B, _>(&dir.join(VALUE_OPTIM_FILE), &device)?;
        self.value_optimizer = self.value_optimizer.load_record(value_optim);
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::test_util::{ur5e_act, ur5e_obs};
    use crate::nets::tanh_gaussian;
    use crate::sac::act_deterministic;
    use crate::sac::test_util::{filled_buffer, params};
    use burn::backend::{Autodiff, Flex};
    use burn::module::AutodiffModule;
    use burn::tensor::TensorData;
    use equigate_symmetry::Group;

    type B = Autodiff<Flex>;
    type Inner = Flex;

    fn vec<const D: usize>(t: Tensor<Inner, D>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    fn t2(v: &[f32], shape: [usize; 2]) -> Tensor<Inner, 2> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), &Default::default())
    }

    #[test]
    fn expectile_loss_weights_positive_residuals_by_tau() {
        // u = [2, −1, 0.5], τ = 0.7: (0.7·4 + 0.3·1 + 0.7·0.25)/3.
        let u = t2(&[2.0, -1.0, 0.5], [3, 1]);
        let loss = vec(expectile_loss(u.clone(), 0.7))[0];
        let expected = (0.7 * 4.0 + 0.3 * 1.0 + 0.7 * 0.25) / 3.0;
        assert!((loss - expected).abs() < 1e-6, "{loss} vs {expected}");
        // τ = 0.5 is half the mean squared error.
        let loss = vec(expectile_loss(u, 0.5))[0];
        assert!((loss - 0.5 * (4.0 + 1.0 + 0.25) / 3.0).abs() < 1e-6);
    }

    #[test]
    fn advantage_weights_are_exp_beta_a_clipped_at_100() {
        let w = vec(advantage_weights(t2(&[0.0, 1.0, -1.0, 10.0], [4, 1]), 3.0, EXP_ADV_MAX));
        let e3 = 3f32.exp();
        assert!((w[0] - 1.0).abs() < 1e-6);
        assert!((w[1] - e3).abs() < 1e-4 && (w[2] - 1.0 / e3).abs() < 1e-6, "{w:?}");
        assert_eq!(w[3], 100.0, "exp(30) is clipped");
    }

    #[test]
    fn log_prob_of_given_actions_matches_the_sampler() {
        let mean = t2(&[0.3, -1.0, 1.5, 0.0], [2, 2]);
        let log_std = t2(&[-1.0, 0.5, 0.0, -3.0], [2, 2]);
        let eps = t2(&[1.0, -0.5, 0.7, 0.1], [2, 2]);
        let (a, lp) = tanh_gaussian(mean.clone(), log_std.clone(), eps);
        let lp2 = tanh_gaussian_log_prob(mean.clone(), log_std.clone(), a);
        for (x, y) in vec(lp).iter().zip(vec(lp2)) {
            assert!((x - y).abs() < 1e-3, "{x} vs {y}");
        }
        // Actions at the bounds are clamped: finite log-likelihoods.
        let lp = vec(tanh_gaussian_log_prob(mean, log_std, t2(&[1.0, -1.0, 1.0, 1.0], [2, 2])));
        assert!(lp.iter().all(|v| v.is_finite()), "{lp:?}");
    }

    #[test]
    fn cosine_schedule_anneals_to_zero_and_stays() {
        assert_eq!(cosine_lr(3e-4, 0, 100), 3e-4);
        assert!((cosine_lr(3e-4, 50, 100) - 1.5e-4).abs() < 1e-12);
        assert!(cosine_lr(3e-4, 100, 100).abs() < 1e-12);
        assert!(cosine_lr(3e-4, 150, 100).abs() < 1e-12);
    }

    #[test]
    fn train_step_steps_each_network_and_anneals_the_actor_lr() {
        let config = IqlConfig::new(5, 2).with_hidden(32).with_batch_size(16).with_total_updates(4);
        let device = Default::default();
        let mut iql = build_mlp::<B>(config.clone(), &device).unwrap();
        let mut buf = filled_buffer(5, 2, 64, None);
        let batch = buf.sample::<B>(16, &device).unwrap();
        let (q0, v0, a0) = (params(&iql.sac.q), params(&iql.value), params(&iql.sac.actor));

        let (_, _, adv) = iql.update_value(&batch);
        assert_eq!(adv.dims(), [16, 1]);
        assert_eq!((params(&iql.sac.q), params(&iql.sac.actor)), (q0.clone(), a0.clone()));
        assert_ne!(params(&iql.value), v0);

        let mut lrs = Vec::new();
        for _ in 0..5 {
            let m = iql.train_step(&batch);
            for v in [
                m.value_loss,
                m.v_mean,
                m.q_loss,
                m.q1_mean,
                m.q2_mean,
                m.actor_loss,
                m.advantage_mean,
                m.weight_mean,
                m.weight_clipped,
            ] {
                assert!(v.is_finite(), "{m:?}");
            }
            assert!(m.weight_mean > 0.0 && m.weight_mean <= 100.0);
            lrs.push(m.policy_lr);
        }
        assert_eq!(iql.updates(), 5);
        assert_ne!(params(&iql.sac.q), q0);
        assert_ne!(params(&iql.sac.actor), a0);
        assert_eq!(lrs[0], 3e-4);
        assert!((lrs[2] - 1.5e-4).abs() < 1e-12 && lrs[4] == 0.0, "{lrs:?}");
    }

    #[test]
    fn checkpoint_loads_into_sac_with_the_same_networks() {
        let device = Default::default();
        let config = IqlConfig::new(5, 2).with_hidden(32).with_seed(5);
        let mut iql = build_mlp::<B>(config.clone(), &device).unwrap();
        let mut buf = filled_buffer(5, 2, 64, None);
        for _ in 0..3 {
            iql.train_step(&buf.sample::<B>(16, &device).unwrap());
        }
        let dir = std::env::temp_dir().join(format!("equigate-iql-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        iql.save_checkpoint(&dir).unwrap();
        for f in [IQL_CONFIG_FILE, VALUE_FILE, VALUE_OPTIM_FILE] {
            assert!(dir.join(f).is_file(), "{f}");
        }
        let (sac_config, _) = crate::sac::load_mlp_actor::<Inner>(&dir, &device).unwrap();
        assert_eq!(sac_config, config.sac_config());
        let (q, actor) =
            sac_config.mlp_networks::<B>(&mut ChaCha8Rng::seed_from_u64(99), &device).unwrap();
        let mut sac =
            Sac::new(sac_config.clone(), q, actor, &device).load_checkpoint(&dir).unwrap();
        assert_eq!(params(&sac.actor), params(&iql.sac.actor));
        assert_eq!(params(&sac.q), params(&iql.sac.q));
        assert_eq!(params(&sac.q_target), params(&iql.sac.q_target));
        assert!((sac.alpha() - sac_config.init_temperature).abs() < 1e-6);
        let obs: Vec<f32> = (0..10).map(|i| (i as f32 * 0.37).sin()).collect();
        let expected = vec(act_deterministic(&iql.sac.actor.valid(), t2(&obs, [2, 5])));
        assert_eq!(sac.act(&obs, ActMode::Deterministic), expected);
        let m = sac.train_step(&buf.sample::<B>(16, &device).unwrap());
        assert!(m.q_loss.is_finite() && m.alpha.is_finite(), "{m:?}");
        let value = MlpValue::<Inner>::new(
            &MlpConfig::new().with_hidden(vec![32; 2]),
            5,
            &mut ChaCha8Rng::seed_from_u64(1),
            &device,
        )
        .unwrap();
        let value = checkpoint::load_module(value, &dir.join(VALUE_FILE), &device).unwrap();
        assert_eq!(params(&value), params(&iql.value));

        // Resume: a fresh learner restored from the checkpoint keeps training as the original.
        let mut restored = build_mlp::<B>(config, &device).unwrap().load_checkpoint(&dir).unwrap();
        assert_eq!(restored.updates(), 3);
        for _ in 0..2 {
            let batch = buf.sample::<B>(16, &device).unwrap();
            assert_eq!(iql.train_step(&batch), restored.train_step(&batch));
        }
        assert_eq!(params(&restored.sac.actor), params(&iql.sac.actor));
        assert_eq!(params(&restored.value), params(&iql.value));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn equi_iql_trains_and_its_value_is_invariant() {
        let device = Default::default();
        let g = Group::cyclic(4).unwrap();
        let (obs, act) = (ur5e_obs(&g), ur5e_act(&g));
        let config = IqlConfig::new(22, 6).with_equi(EquiConfig::new().with_hidden_dim(16));
        let mut iql = build_equi::<B>(config, &obs, &act, &device).unwrap();
        let mut buf = filled_buffer(22, 6, 32, None);
        let m = iql.train_step(&buf.sample::<B>(8, &device).unwrap());
        assert!(m.value_loss.is_finite() && m.actor_loss.is_finite(), "{m:?}");
        let x: Vec<f32> = (0..22).map(|i| (i as f32 * 0.9).cos()).collect();
        let v = iql.value.valid();
        let v0 = vec(v.v(t2(&x, [1, 22])))[0];
        for e in g.elements() {
            let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
            let gx: Vec<f32> = obs.act(e, &x64).unwrap().iter().map(|&v| v as f32).collect();
            let vg = vec(v.v(t2(&gx, [1, 22])))[0];
            assert!((vg - v0).abs() < 1e-4 * v0.abs().max(1.0), "{vg} vs {v0}");
        }
    }
}
