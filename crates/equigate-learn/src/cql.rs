//! Conservative Q-Learning, offline: Kumar et al., "Conservative Q-Learning for Offline
//! Reinforcement Learning", arXiv:2006.04779, in the form of CORL's `cql.py` (Tarasov et al.,
//! arXiv:2210.07105; `reference/algorithms.md` §3.2, hyperparameters §5). With the invariant
//! critic and equivariant actor of [`crate::nets`] it is Equi-CQL (Tangri et al., §3.2).
//!
//! One update, [`Cql::train_step`]; only the critic step is CQL's own, the rest is the
//! [`Sac`] that a [`Cql`] holds ([`Cql::sac`], built from [`CqlConfig::sac_config`]):
//! 1. [`Cql::update_critics`]: y = r + γ(1 − terminated) min_j Q̄_j(s', a'), a' ~ π(·|s') (no
//!    entropy backup); with 10 actions each of U(−1, 1)^|A|, π(·|s) and π(·|s'), all scored at s,
//!    ood_j = T·logsumexp_k[(Q_j(s, a_k) − log ρ(a_k))/T] (importance sampling: ρ the density that
//!    drew a_k), L_Q = Σ_j mean (Q_j(s, a) − y)² + α_cql Σ_j mean (ood_j − Q_j(s, a)).
//! 2. [`Sac::update_actor`]: L_π = mean[α log π(ã|s) − min_j Q_j(s, ã)], ã reparameterised.
//! 3. [`Sac::update_alpha`]: L(α) = −mean[log α · (log π(ã|s) + H̄)].
//! 4. [`Sac::soft_update_targets`]: θ̄ ← τθ + (1 − τ)θ̄.
//!
//! What differs from CORL (and the paper):
//! - CORL computes the three losses on the same parameters and then steps the three optimizers;
//!   here they step one after the other (CleanRL's order, as [`crate::sac::Sac`]), so the actor
//!   sees the critics after this update's step. The critic step is CORL's exactly.
//! - Networks: the crate's 2×256 ReLU MLPs with uniform fan-in init (CORL: 3×256 Q-networks,
//!   orthogonal init) and its tanh-Gaussian actor with log σ squashed into [−5, 2] (CORL: log σ
//!   clamped to [−20, 2], offset −1), so that a checkpoint loads into [`crate::sac::Sac`].
//! - No Lagrange α_cql, no max-backup, no behaviour-cloning warm-up steps (CORL's defaults too).
//! - Observation normalisation is the caller's (CORL normalises D4RL states by the dataset's mean
//!   and std; equigate scales observations in [`crate::scaling`]).
//!
//! A checkpoint ([`Cql::save_checkpoint`]) has [`crate::sac::Sac`]'s files, so the policy node
//! runs an offline-trained actor and online SAC fine-tuning starts from it.

use std::path::Path;

use burn::config::Config;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use equigate_symmetry::Representation;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{self, CheckpointError};
use crate::nets::{
    tanh_gaussian, ActorConfig, EquiActor, EquiConfig, EquiCritic, MlpActor, MlpConfig, MlpCritic,
};
use crate::offline::{
    check_dims, column_means, logsumexp, repeat_rows, scalar, uniform, OfflineError,
};
use crate::replay::Batch;
use crate::sac::{ActMode, Actor, Critic, Sac, SacConfig, TrainActor, TrainCritic};

/// Checkpoint file of the [`CqlConfig`] (beside `config.json`, which holds the matching
/// [`SacConfig`] so that SAC's loaders read the checkpoint).
pub const CQL_CONFIG_FILE: &str = "cql_config.json";

/// CQL hyperparameters, saved beside every checkpoint. Defaults: CORL's `cql.py` `TrainConfig`
/// (algorithms.md §5, verified in CORL), the reference implementation of CQL on D4RL that the
/// CORL paper (arXiv:2210.07105) benchmarks; Equi-CQL (Tangri et al.) uses α_cql = 1 and lr 1e-4.
#[derive(Config, Debug)]
pub struct CqlConfig {
    /// Observation length (after scaling).
    pub obs_dim: usize,
    /// Action length |A| (tanh outputs in [-1, 1]).
    pub act_dim: usize,
    /// Width of each of the two hidden layers of the MLP networks (default: `256`; CORL's critics
    /// have 3 hidden layers, its actor 3; 2 here so that SAC checkpoints match).
    #[config(default = 256)]
    pub hidden: usize,
    /// Equivariant trunks of Equi-CQL (default: 2 × 256 regular features, exact).
    #[config(default = "EquiConfig::new()")]
    pub equi: EquiConfig,
    /// Critic learning rate, Adam (default: `3e-4`, CORL's `qf_lr`).
    #[config(default = 3e-4)]
    pub q_lr: f64,
    /// Actor learning rate, Adam (default: `3e-5`, CORL's `policy_lr`; 1e-4 on AntMaze).
    #[config(default = 3e-5)]
    pub policy_lr: f64,
    /// Temperature learning rate, Adam on log α (default: `3e-5`: CORL steps α with `policy_lr`).
    #[config(default = 3e-5)]
    pub alpha_lr: f64,
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
    /// Polyak coefficient τ of the target critics, applied every update (default: `0.005`).
    #[config(default = 0.005)]
    pub tau: f64,
    /// Initial temperature α₀ (default: `1.0`, CORL's log α = 0).
    #[config(default = 1.0)]
    pub init_temperature: f64,
    /// Target entropy per action dimension: H̄ = this · |A| (default: `-1.0`, CORL's −|A|).
    #[config(default = -1.0)]
    pub target_entropy_per_dim: f64,
    /// Weight α_cql of the conservative term, fixed (default: `10.0`, CORL's `cql_alpha`; 5 with
    /// a Lagrange multiplier on AntMaze; Equi-CQL 1).
    #[config(default = 10.0)]
    pub cql_alpha: f64,
    /// Actions per state of each of the three proposal distributions (default: `10`).
    #[config(default = 10)]
    pub cql_n_actions: usize,
    /// Temperature T of the logsumexp (default: `1.0`).
    #[config(default = 1.0)]
    pub cql_temp: f64,
    /// Weigh the proposals by their densities ([`cql_ood_values`]; default: `true`, CORL's
    /// `cql_importance_sample`); `false`: the plain logsumexp over the proposals and the
    /// dataset action ([`cql_ood_values_plain`], CORL's other branch; the CQL paper's
    /// CQL(H) without the sampling correction). With importance sampling a near-deterministic
    /// policy's own actions carry a large log π and drop out of the soft maximum, so nothing
    /// holds their values down; the plain form keeps them in. (On the UR5e reach this was not
    /// what held CQL back; its actor learning rate was: BENCHMARKS.md.)
    #[config(default = true)]
    pub importance_sample: bool,
    /// Seed of the networks' initialisation and of the learner's noise (default: `0`).
    #[config(default = 0)]
    pub seed: u64,
}

impl CqlConfig {
    /// H̄ = `target_entropy_per_dim` · |A| (nats).
    pub fn target_entropy(&self) -> f64 {
        self.target_entropy_per_dim * self.act_dim as f64
    }

    /// The [`SacConfig`] with the same dimensions, widths and shared hyperparameters, written as
    /// the checkpoint's `config.json` (what [`crate::sac::load_mlp_actor`] reads). Replay and
    /// warm-up settings keep SAC's defaults.
    pub fn sac_config(&self) -> SacConfig {
        SacConfig::new(self.obs_dim, self.act_dim)
            .with_hidden(self.hidden)
            .with_q_lr(self.q_lr)
            .with_policy_lr(self.policy_lr)
            .with_alpha_lr(self.alpha_lr)
            .with_adam_epsilon(self.adam_epsilon)
            .with_max_grad_norm(self.max_grad_norm)
            .with_batch_size(self.batch_size)
            .with_gamma(self.gamma)
            .with_tau(self.tau)
            .with_init_temperature(self.init_temperature)
            .with_target_entropy_per_dim(self.target_entropy_per_dim)
            .with_seed(self.seed)
    }
}

/// The importance-sampled soft maximum of the conservative term, per critic:
/// ood_j = T·logsumexp over the 3n proposals of (Q_j(s, a_k) − log ρ(a_k))/T, where
/// log ρ = log 0.5^|A| for the uniform actions and log π for the policy's (CORL's
/// `cql_importance_sample`).
///
/// # Shapes
/// `q_rand, q_pi, q_next_pi: [batch, n, 2]`, `log_pi, next_log_pi: [batch, n, 1]` -> `[batch, 2]`.
pub fn cql_ood_values<B: Backend>(
    q_rand: Tensor<B, 3>,
    q_pi: Tensor<B, 3>,
    log_pi: Tensor<B, 3>,
    q_next_pi: Tensor<B, 3>,
    next_log_pi: Tensor<B, 3>,
    act_dim: usize,
    temp: f64,
) -> Tensor<B, 2> {
    let batch = q_rand.dims()[0];
    let random_density = act_dim as f64 * 0.5f64.ln(); // log 0.5^|A|
    let cat = Tensor::cat(
        vec![q_rand.sub_scalar(random_density), q_pi - log_pi, q_next_pi - next_log_pi],
        1,
    ); // [batch, 3n, 2]
    logsumexp(cat.div_scalar(temp), 1).mul_scalar(temp).reshape([batch, 2])
}

/// The conservative soft maximum without importance sampling (CORL's
/// `cql_importance_sample = False`): ood_j = T·logsumexp over the 3n proposals and the dataset
/// action of Q_j/T, no densities.
///
/// # Shapes
/// `q_data: [batch, 2]`, `q_rand, q_pi, q_next_pi: [batch, n, 2]` -> `[batch, 2]`.
pub fn cql_ood_values_plain<B: Backend>(
    q_data: Tensor<B, 2>,
    q_rand: Tensor<B, 3>,
    q_pi: Tensor<B, 3>,
    q_next_pi: Tensor<B, 3>,
    temp: f64,
) -> Tensor<B, 2> {
    let batch = q_rand.dims()[0];
    let cat = Tensor::cat(vec![q_rand, q_data.reshape([batch, 1, 2]), q_next_pi, q_pi], 1);
    logsumexp(cat.div_scalar(temp), 1).mul_scalar(temp).reshape([batch, 2])
}

/// Scalars logged after one [`Cql::train_step`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CqlMetrics {
    /// The critics' whole loss: `td_loss + cql_loss`.
    pub q_loss: f32,
    /// Σ_j mean (Q_j − y)².
    pub td_loss: f32,
    /// α_cql Σ_j mean (ood_j − Q_j(s, a)).
    pub cql_loss: f32,
    /// Mean over j and the batch of ood_j − Q_j(s, a): how far the soft maximum over proposed
    /// actions lies above the dataset actions' values (CQL drives it down).
    pub cql_gap: f32,
    /// Mean of Q_1(s, a) over the batch.
    pub q1_mean: f32,
    /// Mean of Q_2(s, a) over the batch.
    pub q2_mean: f32,
    /// mean[α log π − min_j Q_j].
    pub actor_loss: f32,
    /// −mean[log α (log π + H̄)].
    pub alpha_loss: f32,
    /// α after the update.
    pub alpha: f32,
    /// Policy entropy estimate −mean log π(ã|s), nats.
    pub entropy: f32,
}

/// What [`Cql::update_critics`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CriticStats {
    /// `td_loss + cql_loss` (+ the RPP prior if any).
    pub q_loss: f32,
    /// Σ_j mean (Q_j − y)².
    pub td_loss: f32,
    /// α_cql Σ_j mean (ood_j − Q_j(s, a)).
    pub cql_loss: f32,
    /// mean (ood_j − Q_j(s, a)) over j and the batch.
    pub cql_gap: f32,
    /// Mean Q_1(s, a).
    pub q1_mean: f32,
    /// Mean Q_2(s, a).
    pub q2_mean: f32,
}

/// The CQL learner: a [`Sac`] whose critic step is CQL's. [`MlpCql`] and [`EquiCql`] name the
/// two network choices; [`build_mlp`] and [`build_equi`] build them.
pub struct Cql<B: AutodiffBackend, C: TrainCritic<B>, A: TrainActor<B>> {
    /// Hyperparameters. Those SAC shares were copied into `sac.config` ([`CqlConfig::sac_config`])
    /// at construction, which its steps read.
    pub config: CqlConfig,
    /// Twin critics `q` with no-grad targets `q_target`, tanh-Gaussian actor, temperature, their
    /// Adam optimizers and the noise RNG, with [`CqlConfig::sac_config`]'s hyperparameters: the
    /// actor, temperature and target steps, acting and the checkpoint are SAC's.
    pub sac: Sac<B, C, A>,
}

/// CQL with the plain 2×256 MLP critics and actor.
pub type MlpCql<B> = Cql<B, MlpCritic<B>, MlpActor<B>>;
/// Equi-CQL: invariant twin critics and an equivariant actor.
pub type EquiCql<B> = Cql<B, EquiCritic<B>, EquiActor<B>>;

/// CQL with MLP networks `obs_dim + act_dim → hidden → hidden → 1` (×2) and
/// `obs_dim → hidden → hidden → 2·act_dim`, initialised from `config.seed` (critics first, as
/// [`SacConfig::mlp_networks`]). Errors if a width is 0.
pub fn build_mlp<B: AutodiffBackend>(
    config: CqlConfig,
    device: &B::Device,
) -> Result<MlpCql<B>, OfflineError> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mlp = MlpConfig::new().with_hidden(vec![config.hidden; 2]);
    let q = MlpCritic::new(&mlp, config.obs_dim, config.act_dim, &mut rng, device)?;
    let actor =
        MlpActor::new(&mlp, &ActorConfig::new(), config.obs_dim, config.act_dim, &mut rng, device)?;
    Ok(Cql::new(config, q, actor, device))
}

/// Equi-CQL for observation representation `obs` and action representation `act` (the group is
/// theirs, e.g. C_n of the root crate's `TaskSymmetry`): invariant critics and an equivariant
/// actor with `config.equi` trunks, built as the root crate builds Equi-SAC (critic trunks with
/// RPP prior weights 0/0, §2.2). Errors if the dimensions differ from the config's or a network
/// cannot be built.
pub fn build_equi<B: AutodiffBackend>(
    config: CqlConfig,
    obs: &Representation,
    act: &Representation,
    device: &B::Device,
) -> Result<EquiCql<B>, OfflineError> {
    check_dims(config.obs_dim, config.act_dim, obs, act)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let q = EquiCritic::new(&critic_trunk(&config.equi), obs, act, &mut rng, device)?;
    let actor = EquiActor::new(&config.equi, &ActorConfig::new(), obs, act, &mut rng, device)?;
    Ok(Cql::new(config, q, actor, device))
}

/// A critic (or value) trunk: `actor`'s, with RPP's critic prior weights 0/0 (§2.2).
pub(crate) fn critic_trunk(actor: &EquiConfig) -> EquiConfig {
    let rpp = actor.rpp.clone().with_basic_wd(0.0).with_equiv_wd(0.0);
    actor.clone().with_rpp(rpp)
}

impl<B: AutodiffBackend, C: TrainCritic<B>, A: TrainActor<B>> Cql<B, C, A> {
    /// A learner around freshly built networks; the target critics start as copies of `q`.
    pub fn new(config: CqlConfig, q: C, actor: A, device: &B::Device) -> Self {
        let mut sac = Sac::new(config.sac_config(), q, actor, device);
        // A stream apart from the initialisation's (same seed), so noise and init differ.
        sac.rng.set_stream(1);
        Self { config, sac }
    }

    /// Number of [`Self::train_step`] calls so far.
    pub fn updates(&self) -> u64 {
        self.sac.updates()
    }

    /// The current temperature α = exp(log α).
    pub fn alpha(&self) -> f64 {
        self.sac.alpha()
    }

    /// One CQL update on `batch`: critics, actor, temperature, targets, in that order.
    pub fn train_step(&mut self, batch: &Batch<B>) -> CqlMetrics {
        let alpha = self.alpha();
        let critic = self.update_critics(batch);
        let (actor_loss, log_pi) = self.sac.update_actor(batch, alpha);
        let alpha_loss = self.sac.update_alpha(log_pi.clone());
        self.sac.soft_update_targets();
        self.sac.updates += 1;
        CqlMetrics {
            q_loss: critic.q_loss,
            td_loss: critic.td_loss,
            cql_loss: critic.cql_loss,
            cql_gap: critic.cql_gap,
            q1_mean: critic.q1_mean,
            q2_mean: critic.q2_mean,
            actor_loss,
            alpha_loss,
            alpha: self.alpha() as f32,
            entropy: -scalar(log_pi.mean()),
        }
    }

    /// Critic step on L_Q = Σ_j mean (Q_j(s, a) − y)² + α_cql Σ_j mean (ood_j − Q_j(s, a)), with
    /// y = r + γ(1 − terminated) min_j Q̄_j(s', a'), a' ~ π(·|s') and ood_j from
    /// [`cql_ood_values`] over n uniform, n π(·|s) and n π(·|s') actions scored at s. The
    /// dataset actions and the 3n proposals per state go through the critics in one batch.
    pub fn update_critics(&mut self, batch: &Batch<B>) -> CriticStats {
        let (b, n, act_dim) = (batch.len(), self.config.cql_n_actions, self.config.act_dim);
        let sac = &mut self.sac;
        let actor = sac.actor.valid();

        // The TD target, with no graph and no entropy term (CORL's `backup_entropy = False`).
        let next_obs = batch.next_obs.clone().inner();
        let (next_mean, next_log_std) = actor.dist(next_obs.clone());
        let eps = sac.noise(next_mean.dims());
        let (next_actions, _) = tanh_gaussian(next_mean.clone(), next_log_std.clone(), eps);
        let q_next_target = sac.q_target.q(next_obs, next_actions).min_dim(1); // [b, 1]
        let not_done = batch.terminated.clone().inner().neg().add_scalar(1.0);
        let td_target =
            batch.rewards.clone().inner() + not_done * q_next_target.mul_scalar(self.config.gamma);
        let y = Tensor::<B, 2>::from_inner(td_target); // [b, 1]

        // The proposals (no graph): n per state from U(−1, 1)^|A|, π(·|s) and π(·|s'). The actor
        // runs once per state; its mean and log-std are repeated n times.
        let obs = batch.obs.clone().inner();
        let obs_rep = repeat_rows(obs.clone(), n); // [b·n, obs_dim]
        let rand_actions = uniform::<B::InnerBackend>(&mut sac.rng, [b * n, act_dim], &sac.device);
        let (mean, log_std) = actor.dist(obs.clone());
        let eps = sac.noise([b * n, act_dim]);
        let (pi_actions, log_pi) =
            tanh_gaussian(repeat_rows(mean, n), repeat_rows(log_std, n), eps);
        let eps = sac.noise([b * n, act_dim]);
        let (next_pi_actions, next_log_pi) =
            tanh_gaussian(repeat_rows(next_mean, n), repeat_rows(next_log_std, n), eps);

        // One critic pass: [dataset (b) | uniform (b·n) | π(s) (b·n) | π(s') (b·n)] rows, all at s.
        let all_obs = Tensor::cat(vec![obs, obs_rep.clone(), obs_rep.clone(), obs_rep], 0);
        let all_actions = Tensor::cat(
            vec![batch.actions.clone().inner(), rand_actions, pi_actions, next_pi_actions],
            0,
        );
        let q_all = sac.q.q(Tensor::from_inner(all_obs), Tensor::from_inner(all_actions));
        let q = q_all.clone().narrow(0, 0, b); // [b, 2]
        let proposals = |k: usize| q_all.clone().narrow(0, b + k * b * n, b * n).reshape([b, n, 2]);
        let log_density =
            |lp: Tensor<B::InnerBackend, 2>| Tensor::<B, 3>::from_inner(lp.reshape([b, n, 1]));
        let ood = if self.config.importance_sample {
            cql_ood_values(
                proposals(0),
                proposals(1),
                log_density(log_pi),
                proposals(2),
                log_density(next_log_pi),
                act_dim,
                self.config.cql_temp,
            )
        } else {
            cql_ood_values_plain(
                q.clone(),
                proposals(0),
                proposals(1),
                proposals(2),
                self.config.cql_temp,
            )
        }; // [b, 2]

        let td_loss = (q.clone() - y).square().mean_dim(0).sum(); // mse(q1, y) + mse(q2, y)
        let gap = (ood - q.clone()).mean_dim(0); // [1, 2]
        let cql_loss = gap.clone().sum().mul_scalar(self.config.cql_alpha);
        let q_loss = td_loss.clone() + cql_loss.clone();
        let q_loss = match sac.q.prior() {
            Some(prior) => q_loss + prior,
            None => q_loss,
        };
        let grads = GradientsParams::from_grads(q_loss.backward(), &sac.q);
        let grads = sac.clip(&sac.q, grads);
        sac.q = sac.q_optimizer.step(self.config.q_lr, sac.q.clone(), grads);

        let [q1_mean, q2_mean] = column_means(q.inner());
        CriticStats {
            q_loss: scalar(q_loss.inner()),
            td_loss: scalar(td_loss.inner()),
            cql_loss: scalar(cql_loss.inner()),
            cql_gap: scalar(gap.inner().mean()),
            q1_mean,
            q2_mean,
        }
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
    /// ([`Sac::save_checkpoint`]; its `config.json` is [`CqlConfig::sac_config`]) and
    /// `cql_config.json`. `Sac::load_checkpoint` of a SAC with the same networks then continues
    /// from the offline actor, critics, temperature and Adam moments.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), CheckpointError> {
        self.sac.save_checkpoint(dir)?;
        checkpoint::save_config(&self.config, &dir.join(CQL_CONFIG_FILE))
    }

    /// Restores everything [`Self::save_checkpoint`] wrote into this learner (built with the same
    /// shapes and seed), so that offline training resumes exactly where it stopped (given the
    /// same batches).
    pub fn load_checkpoint(mut self, dir: &Path) -> Result<Self, CheckpointError> {
        self.sac = self.sac.load_checkpoint(dir)?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::test_util::{ur5e_act, ur5e_obs};
    use crate::replay::{ReplayBuffer, Transition};
    use crate::sac::standard_normal;
    use crate::sac::test_util::{filled_buffer, params};
    use burn::backend::{Autodiff, Flex};
    use burn::module::AutodiffModule;
    use burn::tensor::TensorData;
    use equigate_symmetry::Group;

    type B = Autodiff<Flex>;
    type Inner = Flex;

    fn small_config() -> CqlConfig {
        CqlConfig::new(5, 2).with_hidden(32).with_batch_size(16).with_cql_n_actions(4)
    }

    fn t3(v: &[f32], shape: [usize; 3]) -> Tensor<Inner, 3> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), &Default::default())
    }

    #[test]
    fn plain_ood_values_are_the_logsumexp_with_the_dataset_action() {
        // One state, one proposal of each kind, no densities: critic 1 ln(e + e⁰ + e² + e³)
        // (uniform 1, data 0, π(s) 3, π(s') 2 in the order given), critic 2 all 0: ln 4.
        let data = Tensor::<Inner, 2>::from_data(
            TensorData::new(vec![0.0f32, 0.0], [1, 2]),
            &Default::default(),
        );
        let y = cql_ood_values_plain(
            data,
            t3(&[1.0, 0.0], [1, 1, 2]),
            t3(&[3.0, 0.0], [1, 1, 2]),
            t3(&[2.0, 0.0], [1, 1, 2]),
            1.0,
        );
        let y = y.into_data().to_vec::<f32>().unwrap();
        let e = std::f64::consts::E;
        assert!((f64::from(y[0]) - (e + 1.0 + e * e + e * e * e).ln()).abs() < 1e-5, "{y:?}");
        assert!((f64::from(y[1]) - 4f64.ln()).abs() < 1e-5, "{y:?}");
    }

    #[test]
    fn ood_values_are_the_importance_sampled_logsumexp() {
        // One state, one proposal of each kind, |A| = 1: log 0.5^1 = −ln 2.
        // Critic 1: uniform 1 → 1 + ln 2; π(s): 0 − (−1) = 1; π(s'): 3 − 2 = 1.
        //   logsumexp = ln(2e + e + e) = 1 + ln 4.
        // Critic 2: uniform 2 → 2 + ln 2; π(s): 1 − (−1) = 2; π(s'): 0 − 2 = −2.
        //   logsumexp = ln(2e² + e² + e⁻²).
        let q_rand = t3(&[1.0, 2.0], [1, 1, 2]);
        let q_pi = t3(&[0.0, 1.0], [1, 1, 2]);
        let log_pi = t3(&[-1.0], [1, 1, 1]);
        let q_next = t3(&[3.0, 0.0], [1, 1, 2]);
        let next_log_pi = t3(&[2.0], [1, 1, 1]);
        let ood = |temp| {
            cql_ood_values(
                q_rand.clone(),
                q_pi.clone(),
                log_pi.clone(),
                q_next.clone(),
                next_log_pi.clone(),
                1,
                temp,
            )
            .into_data()
            .to_vec::<f32>()
            .unwrap()
        };
        let e = std::f64::consts::E;
        let y = ood(1.0);
        assert!((f64::from(y[0]) - (1.0 + 4f64.ln())).abs() < 1e-5, "{y:?}");
        assert!((f64::from(y[1]) - (3.0 * e * e + (-2f64).exp()).ln()).abs() < 1e-5, "{y:?}");
        // Temperature T = 2: 2·ln(e^{(1 + ln 2)/2} + 2e^{1/2}) = 1 + 2 ln(2 + √2) for critic 1.
        let y = ood(2.0);
        let expected = 1.0 + 2.0 * (2.0 + 2f64.sqrt()).ln();
        assert!((f64::from(y[0]) - expected).abs() < 1e-5, "{y:?}");

        // Several proposals per state and two states: each row its own logsumexp over 3n.
        let q = t3(&[0.0; 8], [2, 2, 2]);
        let lp = t3(&[0.0; 4], [2, 2, 1]);
        let y = cql_ood_values(q.clone(), q.clone(), lp.clone(), q, lp, 3, 1.0);
        let y = y.into_data().to_vec::<f32>().unwrap();
        // Two uniform terms at 3 ln 2 and four at 0: ln(2·8 + 4) = ln 20.
        for v in y {
            assert!((f64::from(v) - 20f64.ln()).abs() < 1e-5, "{v}");
        }
    }

    #[test]
    fn train_step_updates_in_order_and_targets_follow_by_tau() {
        let config = small_config();
        let device = Default::default();
        let mut cql = build_mlp::<B>(config.clone(), &device).unwrap();
        let mut buf = filled_buffer(5, 2, 64, None);
        let batch = buf.sample::<B>(config.batch_size, &device).unwrap();
        let (q0, t0, a0) = (params(&cql.sac.q), params(&cql.sac.q_target), params(&cql.sac.actor));
        assert_eq!(q0, t0, "targets start as copies");

        let stats = cql.update_critics(&batch);
        assert_eq!(params(&cql.sac.actor), a0, "the critic loss must not step the actor");
        assert!(stats.cql_gap > 0.0, "soft max over 3n proposals lies above Q(s, a): {stats:?}");
        let expected = stats.td_loss + config.cql_alpha as f32 * 2.0 * stats.cql_gap;
        assert!((stats.cql_loss + stats.td_loss - expected).abs() < 1e-3 * expected.abs());
        assert!((stats.q_loss - stats.td_loss - stats.cql_loss).abs() < 1e-4);
        let q1 = params(&cql.sac.q);
        assert_ne!(q1, q0);
        let (_, log_pi) = cql.sac.update_actor(&batch, 0.5);
        assert_eq!(params(&cql.sac.q), q1, "the actor loss must not step the critics");
        assert_eq!(log_pi.dims(), [16, 1]);

        let alpha0 = cql.alpha();
        let m = cql.train_step(&batch);
        assert_eq!(cql.updates(), 1);
        for v in [
            m.q_loss,
            m.td_loss,
            m.cql_loss,
            m.cql_gap,
            m.q1_mean,
            m.q2_mean,
            m.actor_loss,
            m.alpha_loss,
            m.alpha,
            m.entropy,
        ] {
            assert!(v.is_finite(), "{m:?}");
        }
        let step = (cql.alpha() / alpha0).ln();
        assert!((step.abs() - config.alpha_lr).abs() < 1e-6, "log α step {step}");
        let (q2, t2) = (params(&cql.sac.q), params(&cql.sac.q_target));
        for ((t, q), t_old) in t2.iter().zip(&q2).zip(&t0) {
            let expected = 0.005 * q + 0.995 * t_old;
            assert!((t - expected).abs() < 1e-6);
        }
    }

    #[test]
    fn the_conservative_term_pushes_unseen_actions_down() {
        // Dataset actions all at +0.5; with α_cql large, after some updates the critic ranks the
        // dataset action above actions far from it, with and without importance sampling.
        for importance_sample in [true, false] {
            let config = CqlConfig::new(2, 1)
                .with_hidden(32)
                .with_batch_size(32)
                .with_q_lr(3e-3)
                .with_cql_n_actions(8)
                .with_importance_sample(importance_sample);
            let device = Default::default();
            let mut cql = build_mlp::<B>(config, &device).unwrap();
            let mut buf = ReplayBuffer::new(64, 2, 1, 1).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(4);
            for _ in 0..64 {
                let obs = standard_normal(&mut rng, 2);
                buf.push(Transition {
                    obs: &obs,
                    action: &[0.5],
                    reward: 0.0,
                    next_obs: &obs,
                    terminated: true,
                    truncated: false,
                })
                .unwrap();
            }
            for _ in 0..60 {
                let batch = buf.sample::<B>(32, &device).unwrap();
                cql.update_critics(&batch);
            }
            let obs = Tensor::<Inner, 2>::from_floats([[0.3, -0.2], [0.3, -0.2]], &device);
            let act = Tensor::<Inner, 2>::from_floats([[0.5], [-0.9]], &device);
            let q = cql.sac.q.valid().q(obs, act).min_dim(1).into_data().to_vec::<f32>().unwrap();
            assert!(
                q[0] > q[1] + 0.1,
                "importance sampling {importance_sample}: Q(s, dataset a) {} vs Q(s, unseen a) {}",
                q[0],
                q[1]
            );
        }
    }

    fn check_sac_loads<C, A>(cql: &Cql<B, C, A>, sac: Sac<B, C, A>, dir: &Path)
    where
        C: TrainCritic<B>,
        A: TrainActor<B>,
    {
        let device = Default::default();
        let mut sac = sac.load_checkpoint(dir).unwrap();
        assert_eq!(sac.updates(), cql.updates());
        assert_eq!(params(&sac.actor), params(&cql.sac.actor));
        assert_eq!(params(&sac.q), params(&cql.sac.q));
        assert_eq!(params(&sac.q_target), params(&cql.sac.q_target));
        assert_eq!(sac.alpha(), cql.alpha());
        let obs: Vec<f32> = (0..2 * cql.config.obs_dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let cql_actor = cql.sac.actor.valid();
        let obs_t = Tensor::<Inner, 2>::from_data(
            TensorData::new(obs.clone(), [2, cql.config.obs_dim]),
            &device,
        );
        let expected = crate::sac::act_deterministic(&cql_actor, obs_t);
        let expected = expected.into_data().to_vec::<f32>().unwrap();
        assert_eq!(sac.act(&obs, ActMode::Deterministic), expected);
        // And SAC keeps training from there.
        let mut buf = filled_buffer(cql.config.obs_dim, cql.config.act_dim, 32, None);
        let m = sac.train_step(&buf.sample::<B>(16, &device).unwrap());
        assert!(m.q_loss.is_finite() && m.actor_loss.is_finite(), "{m:?}");
    }

    #[test]
    fn checkpoint_loads_into_sac_with_the_same_networks() {
        let device = Default::default();
        let config = small_config().with_seed(3);
        let mut cql = build_mlp::<B>(config.clone(), &device).unwrap();
        let mut buf = filled_buffer(5, 2, 64, None);
        for _ in 0..3 {
            cql.train_step(&buf.sample::<B>(16, &device).unwrap());
        }
        let dir = std::env::temp_dir().join(format!("equigate-cql-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        cql.save_checkpoint(&dir).unwrap();
        assert!(dir.join(CQL_CONFIG_FILE).is_file());
        let leftovers = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0, "no temporary files remain");

        // A SAC built from the checkpoint's config.json (different seed: other initial weights).
        let (sac_config, actor) = crate::sac::load_mlp_actor::<Inner>(&dir, &device).unwrap();
        assert_eq!(sac_config, config.sac_config());
        assert_eq!(params(&actor), params(&cql.sac.actor));
        let (q, actor) =
            sac_config.mlp_networks::<B>(&mut ChaCha8Rng::seed_from_u64(99), &device).unwrap();
        check_sac_loads(&cql, Sac::new(sac_config, q, actor, &device), &dir);
        let loaded: CqlConfig = checkpoint::load_config(&dir.join(CQL_CONFIG_FILE)).unwrap();
        assert_eq!(loaded.cql_alpha, config.cql_alpha);

        // Resume: a fresh learner restored from the checkpoint keeps training as the original.
        let mut restored = build_mlp::<B>(config.clone(), &device).unwrap();
        restored = restored.load_checkpoint(&dir).unwrap();
        assert_eq!(restored.updates(), 3);
        for _ in 0..2 {
            let batch = buf.sample::<B>(16, &device).unwrap();
            assert_eq!(cql.train_step(&batch), restored.train_step(&batch));
        }
        assert_eq!(params(&restored.sac.actor), params(&cql.sac.actor));
        assert_eq!(params(&restored.sac.q_target), params(&cql.sac.q_target));
        std::fs::remove_dir_all(&dir).unwrap();

        // Equi-CQL into Equi-SAC.
        let g = Group::cyclic(4).unwrap();
        let (obs, act) = (ur5e_obs(&g), ur5e_act(&g));
        let equi = EquiConfig::new().with_hidden_dim(16);
        let config = CqlConfig::new(22, 6).with_equi(equi.clone()).with_cql_n_actions(2);
        let mut cql = build_equi::<B>(config.clone(), &obs, &act, &device).unwrap();
        let mut buf = filled_buffer(22, 6, 32, None);
        cql.train_step(&buf.sample::<B>(8, &device).unwrap());
        let dir = std::env::temp_dir().join(format!("equigate-ecql-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        cql.save_checkpoint(&dir).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(98);
        let q = EquiCritic::<B>::new(&equi, &obs, &act, &mut rng, &device).unwrap();
        let actor =
            EquiActor::<B>::new(&equi, &ActorConfig::new(), &obs, &act, &mut rng, &device).unwrap();
        check_sac_loads(&cql, Sac::new(config.sac_config(), q, actor, &device), &dir);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn build_equi_checks_the_dimensions() {
        let g = Group::cyclic(4).unwrap();
        let (obs, act) = (ur5e_obs(&g), ur5e_act(&g));
        let err =
            build_equi::<B>(CqlConfig::new(21, 6), &obs, &act, &Default::default()).err().unwrap();
        assert!(matches!(
            err,
            OfflineError::LengthMismatch { what: "obs_dim", config: 21, representation: 22 }
        ));
    }
}
