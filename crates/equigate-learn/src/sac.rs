//! Soft Actor-Critic with automatic entropy tuning: Haarnoja et al., "Soft Actor-Critic Algorithms
//! and Applications", arXiv:1812.05905. Written to read like CleanRL's `sac_continuous_action.py`,
//! with its names (`q` holds the twin critics q1/q2, `q_target`, `log_alpha`, `target_entropy`).
//!
//! One update, [`Sac::train_step`], in the paper's order:
//! 1. [`Sac::update_critic`]: y = r + γ(1 − terminated)(min_j Q̄_j(s', a') − α log π(a'|s')),
//!    a' ~ π(·|s'); L_Q = Σ_j mean (Q_j(s, a) − y)².
//! 2. [`Sac::update_actor`]: ã ~ π(·|s) reparameterised; L_π = mean[α log π(ã|s) − min_j Q_j(s, ã)].
//! 3. [`Sac::update_alpha`]: L(α) = −mean[log α · (log π(ã|s) + H̄)].
//! 4. [`Sac::soft_update_targets`]: θ̄ ← τθ + (1 − τ)θ̄.
//!
//! What differs from the paper and from CleanRL:
//! - Hyperparameters follow RPP's jax-rl SAC defaults (algorithms.md §1.2), which PE-SAC compares
//!   against: target entropy −|A|/2 (CleanRL and the paper: −|A|), global-norm gradient clipping at
//!   0.5 (neither clips), Adam ε = 1e-8 (PyTorch/optax's; burn's default is 1e-5).
//! - The actor is updated every step (the paper, softlearning and RPP; CleanRL every second step).
//! - The temperature loss is in log α, as in the authors' softlearning code (CleanRL uses α).
//! - Only `terminated` stops the bootstrap; a time-limit truncation does not (see [`crate::replay`]).
//! - The target critics live on the inner (non-autodiff) backend, so they never build a graph.
//!
//! The networks are behind two traits, [`Critic`] (twin Q: `[batch, 2]`) and [`Actor`] (mean and
//! log-std of the pre-tanh Gaussian), so that invariant/equivariant networks drop in; PE-SAC can
//! hold two critics and two actors and reuse [`tanh_gaussian`], [`SoftUpdate`] and
//! [`clip_global_norm`]. The plain 2×256 ReLU networks are [`crate::nets::MlpCritic`] and
//! [`crate::nets::MlpActor`]; [`SacConfig::mlp_networks`] builds them.
//!
//! The offline learners [`crate::cql::Cql`] and [`crate::iql::Iql`] each hold a [`Sac`] and replace
//! its critic step (IQL its actor step too, and its temperature stays untrained), so that the
//! actor and temperature steps, the target step, acting and the checkpoint layout are written
//! once, here.
//!
//! Repeatability: [`Sac`]'s noise comes from its own ChaCha8 RNG seeded by [`SacConfig::seed`];
//! the networks are initialised from the caller's seeded RNG (the constructors of
//! [`crate::nets`]), so a seed makes a whole run repeatable.

use std::collections::HashMap;
use std::path::Path;

use burn::config::Config;
use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{self, CheckpointError};
use crate::layers::LayerError;
use crate::nets::{tanh_gaussian, ActorConfig, MlpActor, MlpConfig, MlpCritic};
use crate::replay::Batch;

// ------------------------------------------------------------------------------------------------
// Hyperparameters
// ------------------------------------------------------------------------------------------------

/// SAC hyperparameters, saved beside every checkpoint. Defaults: algorithms.md §1.2 (RPP's jax-rl
/// SAC defaults, verified in residual-pathway-priors `configs/sac_default.py`).
#[derive(Config, Debug, PartialEq)]
pub struct SacConfig {
    /// Observation length (after scaling).
    pub obs_dim: usize,
    /// Action length |A| (tanh outputs in [-1, 1]).
    pub act_dim: usize,
    /// Width of each of the two hidden layers of the MLP networks built by
    /// [`Self::mlp_networks`] and [`load_mlp_actor`] (default: `256`).
    #[config(default = 256)]
    pub hidden: usize,
    /// Critic learning rate, Adam (default: `3e-4`).
    #[config(default = 3e-4)]
    pub q_lr: f64,
    /// Actor learning rate, Adam (default: `3e-4`).
    #[config(default = 3e-4)]
    pub policy_lr: f64,
    /// Temperature learning rate, Adam on log α (default: `3e-4`).
    #[config(default = 3e-4)]
    pub alpha_lr: f64,
    /// Adam ε (default: `1e-8`, PyTorch's and optax's; burn's own default is 1e-5).
    #[config(default = 1e-8)]
    pub adam_epsilon: f64,
    /// Global L2 norm the gradients of each network are clipped to before each step, or `None`
    /// (default: `Some(0.5)`, RPP's jax-rl).
    #[config(default = "Some(0.5)")]
    pub max_grad_norm: Option<f64>,
    /// Minibatch size (default: `256`).
    #[config(default = 256)]
    pub batch_size: usize,
    /// Discount γ (default: `0.99`).
    #[config(default = 0.99)]
    pub gamma: f64,
    /// Polyak coefficient τ of the target critics (default: `0.005`).
    #[config(default = 0.005)]
    pub tau: f64,
    /// Initial temperature α₀ (default: `1.0`, RPP's jax-rl; CleanRL starts at 1.0 too).
    #[config(default = 1.0)]
    pub init_temperature: f64,
    /// Target entropy per action dimension: H̄ = this · |A| (default: `-0.5`, i.e. −|A|/2 from
    /// RPP's jax-rl, which PE-SAC compares against; the paper and CleanRL use −|A|, which lowers α
    /// sooner and explores less on 6–7 joint-velocity actions).
    #[config(default = -0.5)]
    pub target_entropy_per_dim: f64,
    /// Environment steps with uniform random actions before learning starts (default: `10000`).
    #[config(default = 10000)]
    pub learning_starts: usize,
    /// Replay capacity in transitions (default: `1000000`).
    #[config(default = 1000000)]
    pub buffer_size: usize,
    /// Seed of the agent's noise and of the replay sampling (default: `0`).
    #[config(default = 0)]
    pub seed: u64,
}

impl SacConfig {
    /// H̄ = `target_entropy_per_dim` · |A| (nats).
    pub fn target_entropy(&self) -> f64 {
        self.target_entropy_per_dim * self.act_dim as f64
    }

    /// The MLP widths `[hidden, hidden]`.
    pub fn mlp_config(&self) -> MlpConfig {
        MlpConfig::new().with_hidden(vec![self.hidden; 2])
    }

    /// Plain SAC's networks: twin MLP critics `obs_dim + act_dim → hidden → hidden → 1` and an
    /// MLP actor `obs_dim → hidden → hidden → 2·act_dim` (log-std range [−5, 2]), initialised
    /// from `rng`. Errors if a width is 0.
    pub fn mlp_networks<B: Backend>(
        &self,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<(MlpCritic<B>, MlpActor<B>), LayerError> {
        let mlp = self.mlp_config();
        let q = MlpCritic::new(&mlp, self.obs_dim, self.act_dim, rng, device)?;
        let actor =
            MlpActor::new(&mlp, &ActorConfig::new(), self.obs_dim, self.act_dim, rng, device)?;
        Ok((q, actor))
    }
}

// ------------------------------------------------------------------------------------------------
// Network interfaces and the tanh-squashed Gaussian
// ------------------------------------------------------------------------------------------------

/// Twin soft Q-functions Q_1, Q_2 (one module, so they can share a batched matmul).
pub trait Critic<B: Backend>: Module<B> {
    /// Q_1(s, a) and Q_2(s, a).
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]`, `actions: [batch, act_dim]` -> `[batch, 2]`.
    fn q(&self, obs: Tensor<B, 2>, actions: Tensor<B, 2>) -> Tensor<B, 2>;

    /// A term added to the critic loss, e.g. the residual-pathway prior of RPP layers
    /// (algorithms.md §2.2; shape `[1]`), or `None` (the default) for networks without one.
    fn prior(&self) -> Option<Tensor<B, 1>> {
        None
    }
}

/// A diagonal Gaussian policy before the tanh squashing.
pub trait Actor<B: Backend>: Module<B> {
    /// Mean μ(s) and log-std log σ(s) (bounded, e.g. into [−5, 2] by
    /// [`crate::nets::ActorConfig`]'s squashing).
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]` -> (`[batch, act_dim]`, `[batch, act_dim]`).
    fn dist(&self, obs: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>);

    /// A term added to the actor loss (the RPP prior, §2.2; shape `[1]`), or `None`.
    fn prior(&self) -> Option<Tensor<B, 1>> {
        None
    }
}

/// A [`Critic`] trainable with autodiff whose inner (no-grad) module is a [`Critic`] too.
pub trait TrainCritic<B: AutodiffBackend>:
    Critic<B> + AutodiffModule<B, InnerModule: Critic<B::InnerBackend>>
{
}
impl<B: AutodiffBackend, T> TrainCritic<B> for T
where
    T: Critic<B> + AutodiffModule<B>,
    T::InnerModule: Critic<B::InnerBackend>,
{
}

/// An [`Actor`] trainable with autodiff whose inner (no-grad) module is an [`Actor`] too.
pub trait TrainActor<B: AutodiffBackend>:
    Actor<B> + AutodiffModule<B, InnerModule: Actor<B::InnerBackend>>
{
}
impl<B: AutodiffBackend, T> TrainActor<B> for T
where
    T: Actor<B> + AutodiffModule<B>,
    T::InnerModule: Actor<B::InnerBackend>,
{
}

/// A state-value function V(s) (IQL's value network; arXiv:2110.06169), beside [`Critic`] and
/// [`Actor`] so that invariant networks drop in ([`crate::nets::MlpValue`],
/// [`crate::nets::EquiValue`]).
pub trait Value<B: Backend>: Module<B> {
    /// V(s).
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]` -> `[batch, 1]`.
    fn v(&self, obs: Tensor<B, 2>) -> Tensor<B, 2>;

    /// A term added to the value loss (the RPP prior, §2.2; shape `[1]`), or `None`.
    fn prior(&self) -> Option<Tensor<B, 1>> {
        None
    }
}

/// A [`Value`] trainable with autodiff whose inner (no-grad) module is a [`Value`] too.
pub trait TrainValue<B: AutodiffBackend>:
    Value<B> + AutodiffModule<B, InnerModule: Value<B::InnerBackend>>
{
}
impl<B: AutodiffBackend, T> TrainValue<B> for T
where
    T: Value<B> + AutodiffModule<B>,
    T::InnerModule: Value<B::InnerBackend>,
{
}

/// `n` standard normal samples from `rng` (Box–Muller).
pub fn standard_normal(rng: &mut impl Rng, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
        let (s, c) = (std::f64::consts::TAU * rng.random::<f64>()).sin_cos();
        let r = (-2.0 * u1.ln()).sqrt();
        out.extend([(r * c) as f32, (r * s) as f32]);
    }
    out.truncate(n);
    out
}

/// The temperature's parameter log α (a module so that an optimizer can step it).
#[derive(Module, Debug)]
pub struct LogAlpha<B: Backend> {
    /// log α, `[1]`.
    pub log_alpha: Param<Tensor<B, 1>>,
}

impl<B: Backend> LogAlpha<B> {
    /// log α = ln(`alpha`).
    pub fn new(alpha: f64, device: &B::Device) -> Self {
        let value = Tensor::from_data(TensorData::new(vec![alpha.ln() as f32], [1]), device);
        Self { log_alpha: Param::from_tensor(value) }
    }

    /// α = exp(log α).
    pub fn alpha(&self) -> f64 {
        self.log_alpha.val().exp().into_scalar().elem::<f64>()
    }
}

// ------------------------------------------------------------------------------------------------
// Polyak averaging and gradient clipping
// ------------------------------------------------------------------------------------------------

/// Polyak averaging θ̄ ← τθ + (1 − τ)θ̄: visit the online module's parameters, then map the
/// target's (same parameter ids: the target starts as `online.valid()`).
#[derive(Debug)]
pub struct SoftUpdate<B: Backend> {
    tau: f64,
    /// Online values by parameter id, flattened to 1-D.
    online: HashMap<ParamId, Tensor<B, 1>>,
}

impl<B: Backend> SoftUpdate<B> {
    /// Averages `target` (a no-grad module) towards `online` with coefficient `tau`.
    ///
    /// # Panics
    /// If `target` has a float parameter that `online` lacks.
    pub fn apply<AB, M>(online: &M, target: M::InnerModule, tau: f64) -> M::InnerModule
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        let mut this = Self { tau, online: HashMap::new() };
        online.valid().visit(&mut this);
        target.map(&mut this)
    }
}

impl<B: Backend> ModuleVisitor<B> for SoftUpdate<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.online.insert(param.id, param.val().flatten(0, D - 1));
    }
}

impl<B: Backend> ModuleMapper<B> for SoftUpdate<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, target, mapper) = param.consume();
        let online = self
            .online
            .remove(&id)
            .expect("soft update: the target's parameter ids are the online module's (valid())")
            .reshape(target.shape());
        let averaged = online.mul_scalar(self.tau) + target.mul_scalar(1.0 - self.tau);
        Param::from_mapped_value(id, averaged, mapper)
    }
}

/// Scales all of `module`'s gradients by min(1, max_norm / ‖g‖₂), ‖g‖₂ over all parameters
/// together (optax's `clip_by_global_norm`; burn's `GradientClipping::Norm` clips each tensor on
/// its own).
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: GradientsParams,
    max_norm: f64,
) -> GradientsParams {
    struct SumSquares<'a, B: AutodiffBackend> {
        grads: &'a GradientsParams,
        ids: Vec<ParamId>,
        total: Option<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for SumSquares<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                let s = g.square().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
                self.ids.push(param.id);
            }
        }
    }
    struct Scale<B: AutodiffBackend> {
        grads: GradientsParams,
        factor: Tensor<B::InnerBackend, 1>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                let f: Tensor<B::InnerBackend, D> = self.factor.clone().reshape([1; D]);
                self.grads.register(param.id, g * f);
            }
        }
    }
    let mut sum = SumSquares::<B> { grads: &grads, ids: Vec::new(), total: None };
    module.visit(&mut sum);
    let Some(total) = sum.total else { return grads };
    // factor = max_norm / max(‖g‖, max_norm) = min(1, max_norm / ‖g‖)
    let factor = total.sqrt().clamp_min(max_norm).recip().mul_scalar(max_norm);
    let mut scale = Scale::<B> { grads, factor };
    module.visit(&mut scale);
    scale.grads
}

// ------------------------------------------------------------------------------------------------
// The agent
// ------------------------------------------------------------------------------------------------

/// How [`Sac::act`] picks an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActMode {
    /// a = tanh(μ(s)): evaluation.
    Deterministic,
    /// a = tanh(μ(s) + σ(s)ε), ε ~ N(0, I): exploration.
    Stochastic,
}

/// Scalars logged after one [`Sac::train_step`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SacMetrics {
    /// Σ_j mean (Q_j − y)².
    pub q_loss: f32,
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

/// The SAC learner: twin critics `q` with no-grad targets `q_target`, actor, temperature, their
/// Adam optimizers and the noise RNG.
pub struct Sac<B: AutodiffBackend, C: TrainCritic<B>, A: TrainActor<B>> {
    /// Hyperparameters.
    pub config: SacConfig,
    /// Twin online critics Q_1, Q_2.
    pub q: C,
    /// Twin target critics Q̄_1, Q̄_2 (no autodiff).
    pub q_target: C::InnerModule,
    /// The policy π.
    pub actor: A,
    /// log α.
    pub log_alpha: LogAlpha<B>,
    /// H̄ (nats), [`SacConfig::target_entropy`].
    pub target_entropy: f64,
    // The offline learners (`crate::cql::Cql`, `crate::iql::Iql`) hold a `Sac`; their own steps
    // (CQL's critic step, IQL's critic and actor steps) use these too.
    pub(crate) q_optimizer: OptimizerAdaptor<Adam, C, B>,
    pub(crate) actor_optimizer: OptimizerAdaptor<Adam, A, B>,
    alpha_optimizer: OptimizerAdaptor<Adam, LogAlpha<B>, B>,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) device: B::Device,
    pub(crate) updates: u64,
}

impl<B: AutodiffBackend, C: TrainCritic<B>, A: TrainActor<B>> Sac<B, C, A> {
    /// A learner around freshly built networks; the target critics start as copies of `q`.
    pub fn new(config: SacConfig, q: C, actor: A, device: &B::Device) -> Self {
        let adam = AdamConfig::new().with_epsilon(config.adam_epsilon as f32);
        Self {
            q_target: q.valid(),
            log_alpha: LogAlpha::new(config.init_temperature, device),
            target_entropy: config.target_entropy(),
            q_optimizer: adam.init(),
            actor_optimizer: adam.init(),
            alpha_optimizer: adam.init(),
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            device: device.clone(),
            updates: 0,
            q,
            actor,
            config,
        }
    }

    /// Number of [`Self::train_step`] calls so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// The current temperature α = exp(log α).
    pub fn alpha(&self) -> f64 {
        self.log_alpha.alpha()
    }

    /// One SAC update on `batch`: critic, actor, temperature, targets, in that order.
    pub fn train_step(&mut self, batch: &Batch<B>) -> SacMetrics {
        let alpha = self.alpha();
        let (q_loss, q1_mean, q2_mean) = self.update_critic(batch, alpha);
        let (actor_loss, log_pi) = self.update_actor(batch, alpha);
        let alpha_loss = self.update_alpha(log_pi.clone());
        self.soft_update_targets();
        self.updates += 1;
        SacMetrics {
            q_loss,
            q1_mean,
            q2_mean,
            actor_loss,
            alpha_loss,
            alpha: self.alpha() as f32,
            entropy: -scalar(log_pi.mean()),
        }
    }

    /// Critic step on y = r + γ(1 − terminated)(min_j Q̄_j(s', a') − α log π(a'|s')), a' ~ π(·|s');
    /// L_Q = Σ_j mean (Q_j(s, a) − y)². Returns (L_Q, mean Q_1, mean Q_2).
    pub fn update_critic(&mut self, batch: &Batch<B>, alpha: f64) -> (f32, f32, f32) {
        // The target, with no graph: actor and target critics on the inner backend.
        let next_obs = batch.next_obs.clone().inner();
        let (next_mean, next_log_std) = self.actor.valid().dist(next_obs.clone());
        let eps = self.noise(next_mean.dims());
        let (next_actions, next_log_pi) = tanh_gaussian(next_mean, next_log_std, eps);
        let q_next_target = self.q_target.q(next_obs, next_actions).min_dim(1); // [batch, 1]
        let min_q_next = q_next_target - next_log_pi.mul_scalar(alpha);
        let not_done = batch.terminated.clone().inner().neg().add_scalar(1.0);
        let next_q_value =
            batch.rewards.clone().inner() + not_done * min_q_next.mul_scalar(self.config.gamma);
        let y = Tensor::<B, 2>::from_inner(next_q_value); // [batch, 1]

        let q = self.q.q(batch.obs.clone(), batch.actions.clone()); // [batch, 2]
        let q_loss = (q.clone() - y).square().sum_dim(1).mean(); // mse(q1, y) + mse(q2, y)
                                                                 // RPP-SAC: the prior joins the loss that is minimised (and reported).
        let q_loss = match self.q.prior() {
            Some(prior) => q_loss + prior,
            None => q_loss,
        };
        let grads = GradientsParams::from_grads(q_loss.backward(), &self.q);
        let grads = self.clip(&self.q, grads);
        self.q = self.q_optimizer.step(self.config.q_lr, self.q.clone(), grads);

        let q_means = q.inner().mean_dim(0); // [1, 2]
        let [q1_mean, q2_mean] =
            q_means.into_data().to_vec::<f32>().map_or([f32::NAN; 2], |v| [v[0], v[1]]);
        (scalar(q_loss.inner()), q1_mean, q2_mean)
    }

    /// Actor step on L_π = mean[α log π(ã|s) − min_j Q_j(s, ã)], ã reparameterised, the critics
    /// frozen (a no-grad copy: the gradient reaches ã, not the critics' weights). Returns
    /// (L_π, log π(ã|s) without graph `[batch, 1]`) for the temperature step.
    pub fn update_actor(
        &mut self,
        batch: &Batch<B>,
        alpha: f64,
    ) -> (f32, Tensor<B::InnerBackend, 2>) {
        let (mean, log_std) = self.actor.dist(batch.obs.clone());
        let eps = Tensor::from_inner(self.noise(mean.dims()));
        let (pi, log_pi) = tanh_gaussian(mean, log_std, eps);
        let q_pi = self.q.clone().no_grad().q(batch.obs.clone(), pi).min_dim(1); // [batch, 1]
        let actor_loss = (log_pi.clone().mul_scalar(alpha) - q_pi).mean();
        let actor_loss = match self.actor.prior() {
            Some(prior) => actor_loss + prior,
            None => actor_loss,
        };
        let grads = GradientsParams::from_grads(actor_loss.backward(), &self.actor);
        let grads = self.clip(&self.actor, grads);
        self.actor = self.actor_optimizer.step(self.config.policy_lr, self.actor.clone(), grads);
        (scalar(actor_loss.inner()), log_pi.inner())
    }

    /// Temperature step on L(α) = −mean[log α · (log π(ã|s) + H̄)], with `log_pi` from
    /// [`Self::update_actor`] (`[batch, 1]`, no graph). Returns L(α).
    pub fn update_alpha(&mut self, log_pi: Tensor<B::InnerBackend, 2>) -> f32 {
        let entropy_gap = Tensor::<B, 1>::from_inner(log_pi.mean().add_scalar(self.target_entropy));
        let alpha_loss = (self.log_alpha.log_alpha.val() * entropy_gap).neg(); // [1]
        let grads = GradientsParams::from_grads(alpha_loss.backward(), &self.log_alpha);
        let log_alpha = self.log_alpha.clone();
        self.log_alpha = self.alpha_optimizer.step(self.config.alpha_lr, log_alpha, grads);
        scalar(alpha_loss.inner())
    }

    /// θ̄ ← τθ + (1 − τ)θ̄ for both target critics.
    pub fn soft_update_targets(&mut self) {
        let target = self.q_target.clone();
        self.q_target = SoftUpdate::apply(&self.q, target, self.config.tau);
    }

    /// Actions for a row-major batch of observations `[n · obs_dim]` -> `[n · act_dim]` in
    /// [-1, 1], with a no-grad copy of the actor (no graph is built).
    ///
    /// # Panics
    /// If `obs.len()` is not a positive multiple of `obs_dim`.
    pub fn act(&mut self, obs: &[f32], mode: ActMode) -> Vec<f32> {
        let d = self.config.obs_dim;
        assert!(
            !obs.is_empty() && obs.len().is_multiple_of(d),
            "act: obs length {} must be a positive multiple of obs_dim {d}",
            obs.len()
        );
        let obs =
            Tensor::from_data(TensorData::new(obs.to_vec(), [obs.len() / d, d]), &self.device);
        let (mean, log_std) = self.actor.valid().dist(obs);
        let action = match mode {
            ActMode::Deterministic => mean.tanh(),
            ActMode::Stochastic => {
                let eps = self.noise(mean.dims());
                tanh_gaussian(mean, log_std, eps).0
            }
        };
        action.into_data().to_vec::<f32>().expect("act: the actor outputs f32 actions")
    }

    /// Writes a checkpoint into `dir` (created if missing), each file atomically: `config.json`,
    /// `actor.mpk`, `critic.mpk`, `critic_target.mpk`, `log_alpha.mpk`, the three Adam states
    /// (`*_optimizer.mpk`) and `train_state.json` (update count, noise RNG position). The replay
    /// buffer is not saved.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), CheckpointError> {
        checkpoint::save_config(&self.config, &dir.join(CONFIG_FILE))?;
        checkpoint::save_module(&self.actor.valid(), &dir.join(ACTOR_FILE))?;
        checkpoint::save_module(&self.q.valid(), &dir.join(CRITIC_FILE))?;
        checkpoint::save_module(&self.q_target, &dir.join(CRITIC_TARGET_FILE))?;
        checkpoint::save_module(&self.log_alpha.valid(), &dir.join(LOG_ALPHA_FILE))?;
        checkpoint::save_record::<B, _>(self.q_optimizer.to_record(), &dir.join(Q_OPTIM_FILE))?;
        let actor_optim = self.actor_optimizer.to_record();
        checkpoint::save_record::<B, _>(actor_optim, &dir.join(ACTOR_OPTIM_FILE))?;
        let alpha_optim = self.alpha_optimizer.to_record();
        checkpoint::save_record::<B, _>(alpha_optim, &dir.join(ALPHA_OPTIM_FILE))?;
        let state = TrainState {
            updates: self.updates,
            rng_stream: self.rng.get_stream(),
            rng_word_pos: self.rng.get_word_pos(),
        };
        checkpoint::save_config(&state, &dir.join(TRAIN_STATE_FILE))
    }

    /// Restores everything [`Self::save_checkpoint`] wrote into this learner (built with the same
    /// shapes and seed), so that training resumes exactly where it stopped (given the same
    /// batches).
    pub fn load_checkpoint(mut self, dir: &Path) -> Result<Self, CheckpointError> {
        let device = self.device.clone();
        let load = |file: &str| dir.join(file);
        // Load into the autodiff modules themselves: a record loaded into a `valid()` copy keeps
        // its parameters' `require_grad = false` through `from_inner`, and they would not train.
        self.actor = checkpoint::load_module(self.actor, &load(ACTOR_FILE), &device)?;
        self.q = checkpoint::load_module(self.q, &load(CRITIC_FILE), &device)?;
        self.q_target = checkpoint::load_module(self.q_target, &load(CRITIC_TARGET_FILE), &device)?;
        self.log_alpha = checkpoint::load_module(self.log_alpha, &load(LOG_ALPHA_FILE), &device)?;
        self.q_optimizer = self
            .q_optimizer
            .load_record(checkpoint::load_record::<B, _>(&load(Q_OPTIM_FILE), &device)?);
        self.actor_optimizer = self
            .actor_optimizer
            .load_record(checkpoint::load_record::<B, _>(&load(ACTOR_OPTIM_FILE), &device)?);
        self.alpha_optimizer = self
            .alpha_optimizer
            .load_record(checkpoint::load_record::<B, _>(&load(ALPHA_OPTIM_FILE), &device)?);
        let state: TrainState = checkpoint::load_config(&load(TRAIN_STATE_FILE))?;
        self.updates = state.updates;
        self.rng = ChaCha8Rng::seed_from_u64(self.config.seed);
        self.rng.set_stream(state.rng_stream);
        self.rng.set_word_pos(state.rng_word_pos);
        Ok(self)
    }

    /// Loads only the actor and the critics (with their targets) of a checkpoint in this layout,
    /// e.g. from an offline learner; optimizer moments, temperature and counters stay fresh
    /// (fine-tuning, not a resume).
    ///
    /// # Errors
    /// A missing or unreadable file.
    pub fn init_networks(mut self, dir: &Path) -> Result<Self, CheckpointError> {
        let device = self.device.clone();
        self.actor = checkpoint::load_module(self.actor, &dir.join(ACTOR_FILE), &device)?;
        self.q = checkpoint::load_module(self.q, &dir.join(CRITIC_FILE), &device)?;
        let target = dir.join(CRITIC_TARGET_FILE);
        self.q_target = checkpoint::load_module(self.q_target, &target, &device)?;
        Ok(self)
    }

    /// ε ~ N(0, I) of `shape` from the agent's seeded RNG, on the inner backend.
    pub(crate) fn noise(&mut self, shape: [usize; 2]) -> Tensor<B::InnerBackend, 2> {
        let eps = standard_normal(&mut self.rng, shape[0] * shape[1]);
        Tensor::from_data(TensorData::new(eps, shape), &self.device)
    }

    /// Global-norm clipping of `grads` when [`SacConfig::max_grad_norm`] is set.
    pub(crate) fn clip<M: AutodiffModule<B>>(
        &self,
        module: &M,
        grads: GradientsParams,
    ) -> GradientsParams {
        match self.config.max_grad_norm {
            Some(max_norm) => clip_global_norm(module, grads, max_norm),
            None => grads,
        }
    }
}

/// Checkpoint file of the [`SacConfig`].
pub const CONFIG_FILE: &str = "config.json";
/// Checkpoint file of the actor record.
pub const ACTOR_FILE: &str = "actor.mpk";
/// Checkpoint file of the twin critics' record.
pub const CRITIC_FILE: &str = "critic.mpk";
/// Checkpoint file of the twin target critics' record.
pub const CRITIC_TARGET_FILE: &str = "critic_target.mpk";
/// Checkpoint file of log α.
pub const LOG_ALPHA_FILE: &str = "log_alpha.mpk";
/// Checkpoint file of the critics' Adam state.
pub const Q_OPTIM_FILE: &str = "critic_optimizer.mpk";
/// Checkpoint file of the actor's Adam state.
pub const ACTOR_OPTIM_FILE: &str = "actor_optimizer.mpk";
/// Checkpoint file of the temperature's Adam state.
pub const ALPHA_OPTIM_FILE: &str = "log_alpha_optimizer.mpk";
/// Checkpoint file of the [`TrainState`].
pub const TRAIN_STATE_FILE: &str = "train_state.json";

/// Counters and RNG position saved beside the networks so that a run resumes exactly.
#[derive(Config, Debug, PartialEq)]
pub struct TrainState {
    /// [`Sac::updates`] at the checkpoint.
    pub updates: u64,
    /// Stream of the noise RNG (ChaCha8, seeded by [`SacConfig::seed`]).
    pub rng_stream: u64,
    /// Word position of the noise RNG.
    pub rng_word_pos: u128,
}

/// Loads a checkpoint's config and actor for inference into a non-autodiff MLP actor.
pub fn load_mlp_actor<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(SacConfig, MlpActor<B>), CheckpointError> {
    let config_path = dir.join(CONFIG_FILE);
    let config: SacConfig = checkpoint::load_config(&config_path)?;
    // The initial weights are overwritten by the record; any seed will do.
    let (_, actor) = config
        .mlp_networks::<B>(&mut ChaCha8Rng::seed_from_u64(0), device)
        .map_err(|source| CheckpointError::Network { path: config_path, source })?;
    let actor = checkpoint::load_module(actor, &dir.join(ACTOR_FILE), device)?;
    Ok((config, actor))
}

/// Deterministic action tanh(μ(s)) of any actor (e.g. one loaded for inference).
///
/// # Shapes
/// `obs: [batch, obs_dim]` -> `[batch, act_dim]`.
pub fn act_deterministic<B: Backend, A: Actor<B>>(actor: &A, obs: Tensor<B, 2>) -> Tensor<B, 2> {
    actor.dist(obs).0.tanh()
}

/// The single value of a `[1]` tensor as f32.
fn scalar<B: Backend>(t: Tensor<B, 1>) -> f32 {
    t.into_scalar().elem::<f32>()
}

// ------------------------------------------------------------------------------------------------
// The networks of `crate::nets` behind the same traits
// ------------------------------------------------------------------------------------------------

impl<B: Backend> Critic<B> for crate::nets::EquiCritic<B> {
    fn q(&self, obs: Tensor<B, 2>, actions: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(obs, actions)
    }

    fn prior(&self) -> Option<Tensor<B, 1>> {
        crate::nets::EquiCritic::prior(self)
    }
}

impl<B: Backend> Critic<B> for MlpCritic<B> {
    fn q(&self, obs: Tensor<B, 2>, actions: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(obs, actions)
    }
}

impl<B: Backend> Actor<B> for crate::nets::EquiActor<B> {
    fn dist(&self, obs: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        self.forward(obs)
    }

    fn prior(&self) -> Option<Tensor<B, 1>> {
        self.trunk.prior()
    }
}

impl<B: Backend> Actor<B> for MlpActor<B> {
    fn dist(&self, obs: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        self.forward(obs)
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    //! What the learners' unit tests share (SAC, CQL, IQL, PE-SAC).

    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::backend::Backend;
    use burn::tensor::Tensor;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::standard_normal;
    use crate::replay::{ReplayBuffer, Transition};

    /// All float parameters of a module, flattened in visiting order.
    pub fn params<Bk: Backend, M: Module<Bk>>(m: &M) -> Vec<f32> {
        struct Collect(Vec<f32>);
        impl<Bk: Backend> ModuleVisitor<Bk> for Collect {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<Bk, D>>) {
                self.0.extend(p.val().into_data().convert::<f32>().to_vec::<f32>().unwrap());
            }
        }
        let mut c = Collect(Vec::new());
        m.visit(&mut c);
        c.0
    }

    /// A replay buffer (sampling seed 3) of `n` random transitions drawn from ChaCha8 seed 9:
    /// s ~ N(0, I); s' ~ N(0, I), or s + `next_step` · N(0, I) when given; a = tanh(N(0, I));
    /// r = −|s₀|; every 7th transition (the first included) terminated.
    pub fn filled_buffer(
        obs_dim: usize,
        act_dim: usize,
        n: usize,
        next_step: Option<f32>,
    ) -> ReplayBuffer {
        let mut buf = ReplayBuffer::new(n, obs_dim, act_dim, 3).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for k in 0..n {
            let obs = standard_normal(&mut rng, obs_dim);
            let noise = standard_normal(&mut rng, obs_dim);
            let next: Vec<f32> = match next_step {
                None => noise,
                Some(step) => obs.iter().zip(noise).map(|(o, n)| o + step * n).collect(),
            };
            let act: Vec<f32> =
                standard_normal(&mut rng, act_dim).iter().map(|a| a.tanh()).collect();
            buf.push(Transition {
                obs: &obs,
                action: &act,
                reward: -obs[0].abs(),
                next_obs: &next,
                terminated: k % 7 == 0,
                truncated: false,
            })
            .unwrap();
        }
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{filled_buffer, params};
    use super::*;
    use burn::backend::{Autodiff, Flex};

    type B = Autodiff<Flex>;
    type Inner = Flex;

    fn vec2(t: Tensor<Inner, 2>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    fn small_config() -> SacConfig {
        SacConfig::new(5, 2).with_hidden(32).with_batch_size(16)
    }

    fn agent(config: SacConfig) -> Sac<B, MlpCritic<B>, MlpActor<B>> {
        let device = Default::default();
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let (q, actor) = config.mlp_networks(&mut rng, &device).unwrap();
        Sac::new(config, q, actor, &device)
    }

    #[test]
    fn soft_update_is_polyak_averaging() {
        let device = Default::default();
        let config = small_config();
        let (online, _) =
            config.mlp_networks::<B>(&mut ChaCha8Rng::seed_from_u64(1), &device).unwrap();
        let target = online.valid();
        let before = params(&target);
        // Move the online critic: one optimizer step on a squared Q.
        let obs = Tensor::<B, 2>::ones([4, 5], &device);
        let act = Tensor::<B, 2>::ones([4, 2], &device);
        let loss = online.q(obs, act).square().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &online);
        let mut optim = AdamConfig::new().init::<B, MlpCritic<B>>();
        let online = optim.step(1e-2, online, grads);
        let now = params(&online);
        let tau = 0.25;
        let averaged = params(&SoftUpdate::apply(&online, target.clone(), tau));
        assert_eq!(averaged.len(), before.len());
        let mut moved = 0;
        for ((avg, old), new) in averaged.iter().zip(&before).zip(&now) {
            let expected = tau as f32 * new + (1.0 - tau as f32) * old;
            assert!((avg - expected).abs() < 1e-6);
            moved += usize::from(new != old);
        }
        assert!(moved > 0, "the step moved the online critic");
        assert_eq!(params(&SoftUpdate::apply(&online, target, 1.0)), now);
    }

    #[test]
    fn global_norm_clipping_scales_all_gradients_together() {
        let device = Default::default();
        let config = small_config();
        let (critic, _) =
            config.mlp_networks::<B>(&mut ChaCha8Rng::seed_from_u64(2), &device).unwrap();
        let obs = Tensor::<B, 2>::ones([8, 5], &device).mul_scalar(3.0);
        let act = Tensor::<B, 2>::ones([8, 2], &device);
        let grads_of = || {
            let loss = critic.q(obs.clone(), act.clone()).mul_scalar(100.0).square().mean();
            GradientsParams::from_grads(loss.backward(), &critic)
        };
        let norm = |grads: &GradientsParams| {
            struct Norm<'a>(&'a GradientsParams, f64, Vec<f32>);
            impl ModuleVisitor<B> for Norm<'_> {
                fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
                    // A parameter the loss does not reach (e.g. behind a dead ReLU) has no
                    // gradient entry: count it as zeros so raw and clipped line up.
                    let g = match self.0.get::<Inner, D>(p.id) {
                        Some(g) => g.into_data().to_vec::<f32>().unwrap(),
                        None => vec![0.0; p.val().shape().num_elements()],
                    };
                    self.1 += g.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>();
                    self.2.extend(g);
                }
            }
            let mut n = Norm(grads, 0.0, Vec::new());
            critic.visit(&mut n);
            (n.1.sqrt(), n.2)
        };
        let (raw_norm, raw) = norm(&grads_of());
        assert!(raw_norm > 1.0, "the test needs a large gradient, got {raw_norm}");
        let (clipped_norm, clipped) = norm(&clip_global_norm(&critic, grads_of(), 0.5));
        assert!((clipped_norm - 0.5).abs() < 1e-4, "{clipped_norm}");
        let ratio = 0.5 / raw_norm;
        for (c, r) in clipped.iter().zip(&raw) {
            assert!(
                (f64::from(*c) - ratio * f64::from(*r)).abs() < 1e-6 * (1.0 + f64::from(r.abs()))
            );
        }
        let (same_norm, _) = norm(&clip_global_norm(&critic, grads_of(), 10.0 * raw_norm));
        assert!((same_norm - raw_norm).abs() < 1e-6 * raw_norm);
    }

    #[test]
    fn train_step_updates_in_order_and_the_actor_step_leaves_the_critic_alone() {
        let config = small_config();
        let mut sac = agent(config.clone());
        let mut buf = filled_buffer(config.obs_dim, config.act_dim, 64, None);
        let device = Default::default();
        let batch = buf.sample::<B>(config.batch_size, &device).unwrap();
        let (q0, t0, a0) = (params(&sac.q), params(&sac.q_target), params(&sac.actor));
        assert_eq!(q0, t0, "targets start as copies");

        let (_, log_pi) = sac.update_actor(&batch, 0.2);
        assert_eq!(params(&sac.q), q0, "the actor loss must not step the critics");
        assert_ne!(params(&sac.actor), a0);
        assert_eq!(log_pi.dims(), [16, 1]);

        let alpha0 = sac.alpha();
        let m = sac.train_step(&batch);
        assert_eq!(sac.updates(), 1);
        for v in [m.q_loss, m.q1_mean, m.q2_mean, m.actor_loss, m.alpha_loss, m.alpha, m.entropy] {
            assert!(v.is_finite(), "{m:?}");
        }
        assert_ne!(params(&sac.q), q0);
        // One Adam step of log α moves it by about lr, in the direction that closes the entropy gap.
        let step = (sac.alpha() / alpha0).ln();
        assert!((step.abs() - config.alpha_lr).abs() < 1e-5, "log α step {step}");
        let entropy_above_target = f64::from(m.entropy) > sac.target_entropy;
        assert_eq!(step < 0.0, entropy_above_target, "{m:?}");
        // Targets moved by τ of the way.
        let (q1, t1) = (params(&sac.q), params(&sac.q_target));
        for ((t, q), t_old) in t1.iter().zip(&q1).zip(&t0) {
            let expected = 0.005 * q + 0.995 * t_old;
            assert!((t - expected).abs() < 1e-6);
        }
    }

    #[test]
    fn acting_is_deterministic_or_seeded() {
        let config = small_config();
        let mut sac = agent(config.clone());
        let obs: Vec<f32> = (0..10).map(|i| i as f32 * 0.1).collect();
        let d1 = sac.act(&obs, ActMode::Deterministic);
        assert_eq!(d1.len(), 4);
        assert_eq!(d1, sac.act(&obs, ActMode::Deterministic));
        let s1 = sac.act(&obs, ActMode::Stochastic);
        let s2 = sac.act(&obs, ActMode::Stochastic);
        assert_ne!(s1, s2);
        assert!(s1.iter().chain(&s2).all(|a| a.abs() <= 1.0));
        let mut again = agent(config);
        again.actor = sac.actor.clone();
        again.act(&obs, ActMode::Stochastic);
        // Same seed, same draws: the second stochastic call of `again` equals s2.
        assert_eq!(again.act(&obs, ActMode::Stochastic), s2);
    }

    #[test]
    fn checkpoint_round_trip_gives_identical_inference() {
        let config = small_config().with_seed(11);
        let mut sac = agent(config.clone());
        let mut buf = filled_buffer(config.obs_dim, config.act_dim, 64, None);
        let device = Default::default();
        for _ in 0..3 {
            let batch = buf.sample::<B>(config.batch_size, &device).unwrap();
            sac.train_step(&batch);
        }
        let dir = std::env::temp_dir().join(format!("equigate-sac-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        sac.save_checkpoint(&dir).unwrap();
        for f in [
            CONFIG_FILE,
            ACTOR_FILE,
            CRITIC_FILE,
            CRITIC_TARGET_FILE,
            LOG_ALPHA_FILE,
            Q_OPTIM_FILE,
            ACTOR_OPTIM_FILE,
            ALPHA_OPTIM_FILE,
            TRAIN_STATE_FILE,
        ] {
            assert!(dir.join(f).is_file(), "{f}");
        }
        let leftovers = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0, "no temporary files remain");

        // Inference: a non-autodiff actor loaded from the checkpoint.
        let (loaded_config, actor) = load_mlp_actor::<Inner>(&dir, &device).unwrap();
        assert_eq!(loaded_config, config);
        let obs = Tensor::<Inner, 2>::from_floats(
            [[0.1, -0.2, 0.3, 0.4, -0.5], [1.0, 0.0, -1.0, 0.5, 0.2]],
            &device,
        );
        let (m1, s1) = sac.actor.valid().dist(obs.clone());
        let (m2, s2) = actor.dist(obs.clone());
        assert_eq!(vec2(m1), vec2(m2));
        assert_eq!(vec2(s1), vec2(s2));

        // Resume: a fresh learner restored from the checkpoint matches the saved one.
        let mut restored = agent(config.clone()).load_checkpoint(&dir).unwrap();
        assert_eq!(restored.updates(), 3);
        assert_eq!(params(&restored.q), params(&sac.q));
        assert_eq!(params(&restored.q_target), params(&sac.q_target));
        assert_eq!(restored.alpha(), sac.alpha());
        let q_obs = obs.clone();
        let act = Tensor::<Inner, 2>::from_floats([[0.5, -0.5], [0.0, 0.9]], &device);
        assert_eq!(
            vec2(restored.q.valid().q(q_obs.clone(), act.clone())),
            vec2(sac.q.valid().q(q_obs, act))
        );

        // ... and keeps training exactly as the original (Adam moments and noise restored).
        for _ in 0..2 {
            let batch = buf.sample::<B>(config.batch_size, &device).unwrap();
            let m1 = sac.train_step(&batch);
            let m2 = restored.train_step(&batch);
            assert_eq!(m1, m2);
        }
        assert_eq!(params(&restored.actor), params(&sac.actor));
        assert_eq!(params(&restored.q), params(&sac.q));

        let missing = load_mlp_actor::<Inner>(&dir.join("nope"), &device).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
