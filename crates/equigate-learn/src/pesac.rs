//! PE-SAC, partially equivariant SAC: "Partially Equivariant Reinforcement Learning in
//! Symmetry-Breaking Environments" (arXiv:2512.00915; summary in
//! `reference/papers/partially-equivariant-rl-pe-sac.txt`), one update as specified in
//! `reference/algorithms.md` §1.1, hyperparameters §1.2.
//!
//! An invariant critic Q_E and an equivariant actor π_E are used where the task is symmetric, a
//! standard critic Q_N and actor π_N where it is not; a hard gate λ(s, a) ∈ {0, 1} picks between
//! them per sample. [`PeSac::train_step`] runs, in the paper's order:
//! 1. [`PeSac::update_predictors`]: L_P = Σ_{i∈{E,N}} mean[‖P̂_i(s,a) − Δ‖² + c_r(R̂_i(s,a) − r)²],
//!    Δ = (s' − s)/σ_Δ ([`DeltaScale`]).
//! 2. [`PeSac::disagreement`] (no grad): dis = ‖P̂_E − P̂_N‖²/dim_s + c_r(R̂_E − R̂_N)².
//! 3. [`PeSac::pseudo_labels`]: y = 1\[dis > median(W) + k·1.4826·MAD(W)\] over a sliding window W
//!    of recent disagreements ([`DisagreementWindow`]).
//! 4. [`PeSac::update_gates`]: L_ω = BCE(p_ω(s,a), y); a_π ~ π(·|s),
//!    u = sg(p_ω(s,a_π)) − p_ζ(s), L_ζ = mean |τ_e − 1\[u<0\]|·u² ([`expectile_loss`]).
//! 5. [`PeSac::update_critic`]: λ = hard(p_ω(s,a)), λ' = hard(p_ω(s',a')), a' ~ π(·|s');
//!    y_Q = r + γ(1 − terminated)[min_j((1−λ')Q̄_E^j + λ'Q̄_N^j)(s',a') − α log π(a'|s')];
//!    L_Q = Σ_j mean(((1−λ)Q_E^j + λQ_N^j)(s,a) − y_Q)².
//! 6. [`PeSac::update_actor`]: λζ = hard(p_ζ(s)) picks π_E or π_N per sample, ã reparameterised,
//!    λ̃ = hard(p_ω(s,ã)); L_π = mean[α log π(ã|s) − min_j((1−λ̃)Q_E^j + λ̃Q_N^j)(s,ã)].
//! 7. [`PeSac::update_alpha`]: L(α) = −mean[log α · (log π(ã|s) + H̄)].
//! 8. [`PeSac::soft_update_targets`]: Polyak averaging of Q̄_E and Q̄_N (τ_p).
//!
//! hard(p) = 1[p > 0.5]; every λ is a stop-gradient, and the gates get no RL gradient (they are
//! read on no-grad copies in steps 5–6). During the first [`PeSacConfig::gate_warmup_updates`]
//! updates every λ is forced to 0 (the equivariant branch only), §1.2.
//!
//! What differs from the paper (whose anomaly detector, disagreement measure and expectile are not
//! published; algorithms.md §1 "Unknown"), all \[I\] choices of algorithms.md §1.1:
//! - The disagreement, the robust upper-tail pseudo-label rule and the expectile τ_e are §1.1's
//!   proposals, not the paper's verified method.
//! - With the hard gate the product of experts reduces to choosing one expert per sample; log π
//!   is that expert's tanh-corrected log-likelihood (§1.1). The soft-λ PoE is not implemented.
//! - A branch no sample of the batch uses is not stepped at all (its Adam state does not advance
//!   on an all-zero gradient), so during the warm-up Q_N and π_N stay exactly as initialised.
//! - a' in the TD target and a_π in the state-gate loss come from the acting policy
//!   (λζ-selected expert), the policy whose value Q estimates.
//! - The networks use regular-representation hidden features instead of EMLP's mixed ones
//!   ([`crate::nets`]).

use std::collections::VecDeque;
use std::path::Path;

use burn::config::Config;
use burn::module::{AutodiffModule, Module};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use equigate_symmetry::Representation;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{self, CheckpointError};
use crate::layers::LayerError;
use crate::nets::{
    tanh_gaussian, ActionGate, EquiActor, EquiCritic, EquiPredictor, MlpActor, MlpCritic,
    MlpPredictor, NetsConfig, StateGate,
};
use crate::replay::Batch;
use crate::sac::{clip_global_norm, standard_normal, ActMode, LogAlpha, SacConfig, SoftUpdate};

// ------------------------------------------------------------------------------------------------
// Hyperparameters
// ------------------------------------------------------------------------------------------------

/// PE-SAC hyperparameters: the SAC core plus the PE fields (algorithms.md §1.2), saved beside
/// every checkpoint.
#[derive(Config, Debug)]
pub struct PeSacConfig {
    /// The SAC core: dims, learning rates, γ, τ_p, temperature, clipping, seed (§1.2). Its
    /// `hidden` is not read here: PE-SAC's widths are in [`Self::nets`].
    pub sac: SacConfig,
    /// Widths of all networks (default: 2×256 MLPs, 2 × 256 regular features; §1.2).
    #[config(default = "NetsConfig::new()")]
    pub nets: NetsConfig,
    /// Learning rate of both predictors, Adam (default: `3e-4`, §1.2 "gate and predictors").
    #[config(default = 3e-4)]
    pub predictor_lr: f64,
    /// Learning rate of both gates, Adam (default: `3e-4`, §1.2).
    #[config(default = 3e-4)]
    pub gate_lr: f64,
    /// Weight c_r of the reward terms in L_P and in the disagreement (default: `1.0` \[I\]: the
    /// reward and the normalised state change are both O(1), and the reward head is what
    /// detects reward-level symmetry breaking, which the paper's ablation shows is needed).
    #[config(default = 1.0)]
    pub reward_weight: f64,
    /// Size of the sliding window W of recent per-sample disagreements (default: `10000` \[I\]:
    /// about 40 batches of 256, long enough for a stable median/MAD, short enough to follow the
    /// predictors as they improve).
    #[config(default = 10000)]
    pub window_size: usize,
    /// k of the upper-tail rule dis > median(W) + k·1.4826·MAD(W) (default: `3.0` \[I\]: the usual
    /// robust 3σ outlier rule; 1.4826·MAD estimates σ for Gaussian data).
    #[config(default = 3.0)]
    pub outlier_k: f64,
    /// Expectile τ_e of the state gate's loss (default: `0.99` \[I\]: τ→1 makes p_ζ(s) approach
    /// max_a p_ω(s, a), §1.1; the paper's τ is not published).
    #[config(default = 0.99)]
    pub expectile: f64,
    /// Threshold of hard(p) = 1\[p > threshold\] (default: `0.5`, §1.2).
    #[config(default = 0.5)]
    pub gate_threshold: f64,
    /// Updates during which every λ is forced to 0 (default: `5000`, §1.2 "force λ=0 for the
    /// first ~5k updates": the predictors must fit before their disagreement means anything).
    #[config(default = 5000)]
    pub gate_warmup_updates: u64,
    /// Run steps 1–4 (predictors, disagreement, pseudo-labels, gates) on a second thread beside
    /// steps 5–8 (critic, actor, α, targets) (default: `false`, the paper's order \[I\]).
    ///
    /// When `true` the critic and actor steps of update t read the gates as they were after
    /// update t − 1: the λ they use is one update stale, as it is for a policy that reads a
    /// separately running detector. Nothing else changes: during the gate warm-up (λ ≡ 0) the
    /// two schedules give identical networks. On two cores this is about 1.5x faster
    /// (BENCHMARKS.md "Learning core: speed").
    #[config(default = false)]
    pub pipelined: bool,
    /// Train the standard actor π_N on every state of the batch, not only where λζ = 1
    /// (default: `false`, the paper's hard product of experts \[I\]).
    ///
    /// With the hard gate each actor otherwise learns only on the states the state gate sends
    /// to it, so π_N, which takes over near the symmetry breaking, sees few states and none
    /// just outside the gated region. When `true`, π_N also gets the actor loss
    /// α log π_N(ã|s) − min_j((1−λ̃)Q_E^j + λ̃Q_N^j)(s, ã) with ã ~ π_N on the λζ = 0 rows (the
    /// same gated critic as the acting policy's loss), so it is a complete SAC actor of the
    /// gated Q wherever the gate switches to it. π_E, Q_E, Q_N, the gates and the acting
    /// policy are unchanged; α still follows the acting policy's entropy. Costs one more π_N
    /// and gated-critic pass over the λζ = 0 rows.
    #[config(default = false)]
    pub pi_n_all_states: bool,
    /// Factor on the learning rates of the equivariant critic Q_E and actor π_E (default:
    /// `1.0`: the standard networks' rates). The equivariant layers' orthonormal basis spreads
    /// each coefficient over |G| weight entries at 1/√|G| each, so one Adam step of lr moves
    /// their entries by lr/√|G| where an MLP's move by lr (`layers` test
    /// `one_adam_step_moves_each_regular_weight_entry_by_lr_over_sqrt_g`); √|G| gives both
    /// branches the same step per weight. The predictors keep `predictor_lr`.
    #[config(default = 1.0)]
    pub equi_lr_scale: f64,
}

// ------------------------------------------------------------------------------------------------
// Errors, metrics
// ------------------------------------------------------------------------------------------------

/// Errors building a [`PeSac`].
#[derive(Debug, thiserror::Error)]
pub enum PeSacError {
    /// A network could not be built.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// A representation's dimension differs from the config's.
    #[error("{what}: the config says {config} dims, the representation has {representation}")]
    DimMismatch {
        /// `obs_dim` or `act_dim`.
        what: &'static str,
        /// Value in [`SacConfig`].
        config: usize,
        /// Dimension of the representation.
        representation: usize,
    },
    /// A hyperparameter is out of range.
    #[error("{what} = {value} is out of range ({range})")]
    BadValue {
        /// The config field.
        what: &'static str,
        /// The value given.
        value: f64,
        /// The accepted range.
        range: &'static str,
    },
}

/// Scalars logged after one [`PeSac::train_step`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PeSacMetrics {
    /// L_P of P̂_E.
    pub predictor_loss_e: f32,
    /// L_P of P̂_N.
    pub predictor_loss_n: f32,
    /// σ_Δ after this batch ([`DeltaScale`]).
    pub delta_scale: f32,
    /// Mean disagreement over the batch.
    pub disagreement: f32,
    /// The label threshold median(W) + k·1.4826·MAD(W).
    pub label_threshold: f32,
    /// Fraction of the batch with pseudo-label y = 1.
    pub pseudo_label_rate: f32,
    /// L_ω = BCE(p_ω(s, a), y).
    pub gate_bce: f32,
    /// L_ζ, the state gate's expectile loss.
    pub state_gate_loss: f32,
    /// Fraction of the batch with λ = hard(p_ω(s, a)) = 1 in the critic update (0 in warm-up).
    pub lambda_fraction: f32,
    /// Fraction of the batch with λζ = hard(p_ζ(s)) = 1 in the actor update (0 in warm-up).
    pub lambda_zeta_fraction: f32,
    /// L_Q.
    pub q_loss: f32,
    /// Mean of the mixture Q^1 over the batch.
    pub q1_mean: f32,
    /// L_π.
    pub actor_loss: f32,
    /// L(α).
    pub alpha_loss: f32,
    /// α after the update.
    pub alpha: f32,
    /// −mean log π(ã|s), nats.
    pub entropy: f32,
}

// ------------------------------------------------------------------------------------------------
// Normalisation of s' − s, the disagreement window, the losses
// ------------------------------------------------------------------------------------------------

/// The running scale σ_Δ of the predictors' target Δ = (s' − s)/σ_Δ: one scalar, the root mean
/// square of all coordinates of s' − s over every transition the predictors have been trained on
/// (a cumulative mean, so it settles as data accumulates).
///
/// One scalar, not one per coordinate and with no mean shift, so that Δ stays ρ_s-equivariant
/// (a per-coordinate scale would differ between the two coordinates of a ρ1 pair, a mean shift is
/// not equivariant); the observations are already scaled to O(1) by [`crate::scaling`], so one
/// scale is enough to make the disagreement independent of the control period.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaScale {
    sum_squares: f64,
    count: f64,
}

impl DeltaScale {
    /// Smallest σ_Δ (no division by zero while s' = s, e.g. in a frozen simulator).
    pub const MIN: f64 = 1e-6;

    /// No data yet: σ_Δ = 1.
    pub fn new() -> Self {
        Self { sum_squares: 0.0, count: 0.0 }
    }

    /// Adds the squares of `delta`'s coordinates.
    pub fn update(&mut self, sum_squares: f64, count: usize) {
        self.sum_squares += sum_squares;
        self.count += count as f64;
    }

    /// σ_Δ = max(√(mean (s' − s)²), [`Self::MIN`]), or 1 before any data.
    pub fn scale(&self) -> f64 {
        if self.count == 0.0 {
            1.0
        } else {
            (self.sum_squares / self.count).sqrt().max(Self::MIN)
        }
    }
}

impl Default for DeltaScale {
    fn default() -> Self {
        Self::new()
    }
}

/// The sliding window W of recent per-sample disagreements and the robust upper-tail rule
/// y = 1\[dis > median(W) + k·1.4826·MAD(W)\] (algorithms.md §1.1 step 3, \[I\]).
#[derive(Debug, Clone, PartialEq)]
pub struct DisagreementWindow {
    values: VecDeque<f32>,
    capacity: usize,
}

impl DisagreementWindow {
    /// An empty window holding at most `capacity` values (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self { values: VecDeque::with_capacity(capacity), capacity }
    }

    /// Number of values held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Appends `dis` (dropping the oldest values beyond the capacity), then labels each of `dis`
    /// against the window that includes them. Returns (y ∈ {0, 1} per value, threshold). A window
    /// with MAD = 0 (e.g. constant) has threshold = median: values equal to it are labelled 0.
    pub fn push_and_label(&mut self, dis: &[f32], k: f64) -> (Vec<f32>, f32) {
        for &d in dis {
            if self.values.len() == self.capacity {
                self.values.pop_front();
            }
            self.values.push_back(d);
        }
        let threshold = self.threshold(k);
        (dis.iter().map(|&d| f32::from(u8::from(d > threshold))).collect(), threshold)
    }

    /// median(W) + k·1.4826·MAD(W), MAD(W) = median |w − median(W)|; +∞ for an empty window.
    pub fn threshold(&self, k: f64) -> f32 {
        let values: Vec<f32> = self.values.iter().copied().collect();
        let Some(med) = median(values.clone()) else { return f32::INFINITY };
        let mad = median(values.iter().map(|v| (v - med).abs()).collect())
            .expect("the deviations have as many values as the non-empty window");
        (f64::from(med) + k * 1.4826 * f64::from(mad)) as f32
    }
}

/// The median (mean of the two middle values for an even count), `None` if empty.
fn median(mut values: Vec<f32>) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f32::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 { values[n / 2] } else { 0.5 * (values[n / 2 - 1] + values[n / 2]) })
}

/// The expectile loss mean |τ − 1\[u < 0\]|·u²: asymmetric least squares whose minimiser over a
/// constant is the τ-expectile of the targets (τ = 0.5: the mean; τ → 1: the maximum).
///
/// # Shapes
/// `u: [batch, 1]` -> `[1]`.
pub fn expectile_loss<B: Backend>(u: Tensor<B, 2>, tau: f64) -> Tensor<B, 1> {
    // |τ − 1[u<0]| = τ where u ≥ 0, 1 − τ where u < 0.
    let below = u.clone().lower_elem(0.0).float(); // [batch, 1]
    let weight = below.mul_scalar(1.0 - 2.0 * tau).add_scalar(tau);
    (weight * u.square()).mean()
}

/// Binary cross-entropy from logits z and labels y ∈ [0, 1], in the stable form
/// max(z, 0) − z·y + log(1 + e^{−|z|}).
///
/// # Shapes
/// `logits, labels: [batch, 1]` -> `[1]`.
pub fn bce_with_logits<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 2>) -> Tensor<B, 1> {
    let softplus = logits.clone().clamp_min(0.0) + logits.clone().abs().neg().exp().log1p();
    (softplus - logits * labels).mean()
}

/// A hard gate over a batch: λ ∈ {0, 1} per row, and which rows take which branch.
#[derive(Debug, Clone)]
pub struct HardGate<B: Backend> {
    /// λ, `[batch, 1]`, 0.0 or 1.0.
    pub lambda: Tensor<B, 2>,
    /// Rows with λ = 1.
    pub ones: usize,
    /// Rows.
    pub rows: usize,
    /// Row indices with λ = 0, then those with λ = 1 (each ascending).
    order: Vec<usize>,
}

impl<B: Backend> HardGate<B> {
    /// λ = 1\[p > threshold\] (`p: [batch, 1]`).
    pub fn from_probability(p: Tensor<B, 2>, threshold: f64) -> Self {
        let rows = p.dims()[0];
        let lambda = p.greater_elem(threshold).float();
        let values =
            lambda.clone().into_data().convert::<f32>().to_vec::<f32>().unwrap_or_default();
        let mut order: Vec<usize> = (0..rows).filter(|&r| values[r] < 0.5).collect();
        let zeros = order.len();
        order.extend((0..rows).filter(|&r| values[r] >= 0.5));
        Self { lambda, ones: rows - zeros, rows, order }
    }

    /// λ ≡ 0 (`rows` rows): the equivariant branch everywhere.
    pub fn zeros(rows: usize, device: &B::Device) -> Self {
        Self { lambda: Tensor::zeros([rows, 1], device), ones: 0, rows, order: (0..rows).collect() }
    }

    /// Row indices with λ = 0, ascending.
    pub fn rows_e(&self) -> &[usize] {
        &self.order[..self.rows - self.ones]
    }

    /// Whether some row uses the equivariant branch (λ = 0).
    pub fn uses_e(&self) -> bool {
        self.ones < self.rows
    }

    /// Whether some row uses the standard branch (λ = 1).
    pub fn uses_n(&self) -> bool {
        self.ones > 0
    }

    /// Fraction of rows with λ = 1.
    pub fn fraction(&self) -> f32 {
        self.ones as f32 / self.rows.max(1) as f32
    }

    /// (1 − λ)·x_E + λ·x_N per row, each branch evaluated only on its own rows: `x_e` gets the
    /// rows of `inputs` with λ = 0, `x_n` those with λ = 1, and the results are put back in row
    /// order (a gather, so gradients flow to each branch from its rows only). A branch no row
    /// uses is not called.
    ///
    /// # Shapes
    /// `inputs: [batch, *]` each; `x_e(rows), x_n(rows): [rows, d]` -> `[batch, d]`.
    pub fn mix(
        &self,
        inputs: &[Tensor<B, 2>],
        x_e: impl FnOnce(&[Tensor<B, 2>]) -> Tensor<B, 2>,
        x_n: impl FnOnce(&[Tensor<B, 2>]) -> Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        match (self.uses_e(), self.uses_n()) {
            (true, false) => x_e(inputs),
            (false, true) => x_n(inputs),
            _ => {
                let device = self.lambda.device();
                let index = |rows: &[usize]| row_index::<B>(rows, &device);
                let zeros = self.rows - self.ones;
                let pick = |rows: &[usize]| -> Vec<Tensor<B, 2>> {
                    let idx = index(rows);
                    inputs.iter().map(|x| x.clone().select(0, idx.clone())).collect()
                };
                let e = x_e(&pick(&self.order[..zeros]));
                let n = x_n(&pick(&self.order[zeros..]));
                // Row r of the result is row position[r] of [e; n].
                let mut position = vec![0usize; self.rows];
                for (k, &r) in self.order.iter().enumerate() {
                    position[r] = k;
                }
                Tensor::cat(vec![e, n], 0).select(0, index(&position))
            }
        }
    }

    /// The same gate as a constant of the autodiff backend `A` (no graph).
    pub fn lift<A: AutodiffBackend<InnerBackend = B>>(&self) -> HardGate<A> {
        HardGate {
            lambda: Tensor::from_inner(self.lambda.clone()),
            ones: self.ones,
            rows: self.rows,
            order: self.order.clone(),
        }
    }
}

/// The row indices `rows` as an index tensor for `select(0, ·)` (`[rows.len()]`).
fn row_index<B: Backend>(rows: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let rows: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    let n = rows.len();
    Tensor::from_data(TensorData::new(rows, [n]), device)
}

// ------------------------------------------------------------------------------------------------
// The agent
// ------------------------------------------------------------------------------------------------

/// One Adam optimizer per network.
struct Optimizers<B: AutodiffBackend> {
    q_e: OptimizerAdaptor<Adam, EquiCritic<B>, B>,
    q_n: OptimizerAdaptor<Adam, MlpCritic<B>, B>,
    pi_e: OptimizerAdaptor<Adam, EquiActor<B>, B>,
    pi_n: OptimizerAdaptor<Adam, MlpActor<B>, B>,
    p_e: OptimizerAdaptor<Adam, EquiPredictor<B>, B>,
    p_n: OptimizerAdaptor<Adam, MlpPredictor<B>, B>,
    gate_omega: OptimizerAdaptor<Adam, ActionGate<B>, B>,
    gate_zeta: OptimizerAdaptor<Adam, StateGate<B>, B>,
    log_alpha: OptimizerAdaptor<Adam, LogAlpha<B>, B>,
}

/// What [`PeSac::update_critic`] reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CriticStep {
    /// L_Q.
    pub q_loss: f32,
    /// Mean of the mixture Q^1.
    pub q1_mean: f32,
    /// Fraction of the batch with λ = 1.
    pub lambda_fraction: f32,
}

/// The two halves of PE-SAC that a SAC-layout checkpoint can start ([`PeSac::init_branch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Branch {
    /// π_E and Q_E (invariant critic, equivariant actor).
    Equivariant,
    /// π_N and Q_N (MLPs).
    Standard,
}

/// The PE-SAC learner: the E and N critics (with no-grad targets), actors and predictors, the two
/// gates, the temperature, their Adam optimizers, the disagreement window and the noise RNG.
pub struct PeSac<B: AutodiffBackend> {
    /// Hyperparameters.
    pub config: PeSacConfig,
    /// Invariant twin critic Q_E^{1,2} (ρ_s ⊕ ρ_a → trivial).
    pub q_e: EquiCritic<B>,
    /// Target Q̄_E (no autodiff).
    pub q_e_target: EquiCritic<B::InnerBackend>,
    /// Standard twin critic Q_N^{1,2}.
    pub q_n: MlpCritic<B>,
    /// Target Q̄_N (no autodiff).
    pub q_n_target: MlpCritic<B::InnerBackend>,
    /// Equivariant actor π_E.
    pub pi_e: EquiActor<B>,
    /// Standard actor π_N.
    pub pi_n: MlpActor<B>,
    /// Equivariant predictor P̂_E (Δ and R̂).
    pub p_e: EquiPredictor<B>,
    /// Standard predictor P̂_N.
    pub p_n: MlpPredictor<B>,
    /// Action gate p_ω(s, a) = Pr(λ = 1 | s, a).
    pub gate_omega: ActionGate<B>,
    /// State gate p_ζ(s) ≈ max_a p_ω(s, a).
    pub gate_zeta: StateGate<B>,
    /// log α.
    pub log_alpha: LogAlpha<B>,
    /// H̄ (nats).
    pub target_entropy: f64,
    /// The window W of recent disagreements.
    pub window: DisagreementWindow,
    /// σ_Δ of the predictors' target.
    pub delta_scale: DeltaScale,
    optimizers: Optimizers<B>,
    /// Dense no-grad copy of π_E for acting, rebuilt after each actor step.
    acting_pi_e: Option<EquiActor<B::InnerBackend>>,
    rng: ChaCha8Rng,
    device: B::Device,
    updates: u64,
}

impl<B: AutodiffBackend> PeSac<B> {
    /// A learner for observations with representation `obs` and actions with representation
    /// `act` (their group is the symmetry; the task declares both). All networks are initialised
    /// from a ChaCha8 RNG seeded by `config.sac.seed`; the targets start as copies.
    pub fn new(
        config: PeSacConfig,
        obs: &Representation,
        act: &Representation,
        device: &B::Device,
    ) -> Result<Self, PeSacError> {
        let sac = &config.sac;
        for (what, config, representation) in
            [("obs_dim", sac.obs_dim, obs.dim()), ("act_dim", sac.act_dim, act.dim())]
        {
            if config != representation {
                return Err(PeSacError::DimMismatch { what, config, representation });
            }
        }
        if !(0.0..1.0).contains(&config.expectile) {
            let value = config.expectile;
            return Err(PeSacError::BadValue { what: "expectile", value, range: "[0, 1)" });
        }
        let (obs_dim, act_dim) = (sac.obs_dim, sac.act_dim);
        let nets = &config.nets;
        let mut rng = ChaCha8Rng::seed_from_u64(sac.seed);
        let q_e = EquiCritic::new(&nets.equi, obs, act, &mut rng, device)?;
        let q_n = MlpCritic::new(&nets.mlp, obs_dim, act_dim, &mut rng, device)?;
        let pi_e = EquiActor::new(&nets.equi, &nets.actor, obs, act, &mut rng, device)?;
        let pi_n = MlpActor::new(&nets.mlp, &nets.actor, obs_dim, act_dim, &mut rng, device)?;
        let p_e = EquiPredictor::new(&nets.equi, obs, act, &mut rng, device)?;
        let p_n = MlpPredictor::new(&nets.mlp, obs_dim, act_dim, &mut rng, device)?;
        let gate_omega = ActionGate::new(&nets.mlp, obs_dim, act_dim, &mut rng, device)?;
        let gate_zeta = StateGate::new(&nets.mlp, obs_dim, &mut rng, device)?;
        let adam = AdamConfig::new().with_epsilon(sac.adam_epsilon as f32);
        let optimizers = Optimizers {
            q_e: adam.init(),
            q_n: adam.init(),
            pi_e: adam.init(),
            pi_n: adam.init(),
            p_e: adam.init(),
            p_n: adam.init(),
            gate_omega: adam.init(),
            gate_zeta: adam.init(),
            log_alpha: adam.init(),
        };
        Ok(Self {
            q_e_target: q_e.valid(),
            q_n_target: q_n.valid(),
            log_alpha: LogAlpha::new(sac.init_temperature, device),
            target_entropy: sac.target_entropy(),
            window: DisagreementWindow::new(config.window_size),
            delta_scale: DeltaScale::new(),
            // The noise stream is distinct from the initialisation stream.
            rng: ChaCha8Rng::seed_from_u64(sac.seed.wrapping_add(1)),
            device: device.clone(),
            updates: 0,
            acting_pi_e: None,
            optimizers,
            q_e,
            q_n,
            pi_e,
            pi_n,
            p_e,
            p_n,
            gate_omega,
            gate_zeta,
            config,
        })
    }

    /// Number of [`Self::train_step`] calls so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Whether every λ is still forced to 0 ([`PeSacConfig::gate_warmup_updates`]).
    pub fn in_gate_warmup(&self) -> bool {
        self.updates < self.config.gate_warmup_updates
    }

    /// The current temperature α.
    pub fn alpha(&self) -> f64 {
        self.log_alpha.alpha()
    }

    /// One PE-SAC update on `batch`, in the paper's order (module header), or with steps 1–4 on
    /// a second thread when [`PeSacConfig::pipelined`] is set.
    pub fn train_step(&mut self, batch: &Batch<B>) -> PeSacMetrics {
        let alpha = self.alpha();
        // Step 4's a_π ~ π(·|s) reads only the actors and p_ζ, which steps 1–3 do not change:
        // drawing it first keeps the noise stream's order (a_π, a', ã) and frees steps 1–4 from
        // the actors.
        let (a_pi, _) = self.sample_policy(batch.obs.clone().inner());
        let part = self.take_detector();
        let config = self.config.clone();
        let (d, critic, (actor_loss, log_pi, lambda_zeta_fraction)) = if self.config.pipelined {
            std::thread::scope(|scope| {
                let detector = scope.spawn(|| part.step(&config, batch, a_pi));
                let critic = self.update_critic(batch, alpha);
                let actor = self.update_actor(batch, alpha);
                let (part, d) =
                    detector.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                self.put_detector(part);
                (d, critic, actor)
            })
        } else {
            let (part, d) = part.step(&config, batch, a_pi);
            self.put_detector(part);
            let critic = self.update_critic(batch, alpha);
            (d, critic, self.update_actor(batch, alpha))
        };
        let entropy = -scalar(log_pi.clone().mean());
        let alpha_loss = self.update_alpha(log_pi);
        self.soft_update_targets();
        self.updates += 1;
        PeSacMetrics {
            predictor_loss_e: d.predictor_loss_e,
            predictor_loss_n: d.predictor_loss_n,
            delta_scale: self.delta_scale.scale() as f32,
            disagreement: d.disagreement,
            label_threshold: d.label_threshold,
            pseudo_label_rate: d.pseudo_label_rate,
            gate_bce: d.gate_bce,
            state_gate_loss: d.state_gate_loss,
            lambda_fraction: critic.lambda_fraction,
            lambda_zeta_fraction,
            q_loss: critic.q_loss,
            q1_mean: critic.q1_mean,
            actor_loss,
            alpha_loss,
            alpha: self.alpha() as f32,
            entropy,
        }
    }

    /// Moves out what steps 1–4 change: the networks as cheap clones (steps 5–6 keep reading the
    /// ones left here), their Adam states, σ_Δ and the window.
    fn take_detector(&mut self) -> DetectorPart<B> {
        let adam = AdamConfig::new();
        let o = &mut self.optimizers;
        DetectorPart {
            p_e: self.p_e.clone(),
            p_n: self.p_n.clone(),
            gate_omega: self.gate_omega.clone(),
            gate_zeta: self.gate_zeta.clone(),
            opt_p_e: std::mem::replace(&mut o.p_e, adam.init()),
            opt_p_n: std::mem::replace(&mut o.p_n, adam.init()),
            opt_gate_omega: std::mem::replace(&mut o.gate_omega, adam.init()),
            opt_gate_zeta: std::mem::replace(&mut o.gate_zeta, adam.init()),
            delta_scale: std::mem::take(&mut self.delta_scale),
            window: std::mem::replace(&mut self.window, DisagreementWindow::new(1)),
        }
    }

    /// Puts back what [`Self::take_detector`] moved out, stepped.
    fn put_detector(&mut self, part: DetectorPart<B>) {
        let o = &mut self.optimizers;
        (self.p_e, self.p_n) = (part.p_e, part.p_n);
        (self.gate_omega, self.gate_zeta) = (part.gate_omega, part.gate_zeta);
        (o.p_e, o.p_n) = (part.opt_p_e, part.opt_p_n);
        (o.gate_omega, o.gate_zeta) = (part.opt_gate_omega, part.opt_gate_zeta);
        (self.delta_scale, self.window) = (part.delta_scale, part.window);
    }

    /// Step 1. Updates σ_Δ with this batch, then one step of each predictor on
    /// L_P,i = mean[‖P̂_i(s,a) − (s' − s)/σ_Δ‖² + c_r(R̂_i(s,a) − r)²]. Returns (L_P,E, L_P,N).
    pub fn update_predictors(&mut self, batch: &Batch<B>) -> (f32, f32) {
        let (lr, clip) = (self.config.predictor_lr, self.config.sac.max_grad_norm);
        let o = &mut self.optimizers;
        let step = PredictorStep { reward_weight: self.config.reward_weight, lr, clip };
        let (p_e, p_n, losses) = step.apply(
            batch,
            &mut self.delta_scale,
            (self.p_e.clone(), &mut o.p_e),
            (self.p_n.clone(), &mut o.p_n),
        );
        (self.p_e, self.p_n) = (p_e, p_n);
        losses
    }

    /// Step 2 (no grad): dis = ‖P̂_E − P̂_N‖²/dim_s + c_r(R̂_E − R̂_N)² per sample, `[batch]`.
    pub fn disagreement(&self, batch: &Batch<B>) -> Vec<f32> {
        let (obs, actions) = (batch.obs.clone().inner(), batch.actions.clone().inner());
        let (p_e, p_n) = (self.p_e.valid(), self.p_n.valid());
        to_vec(disagreement(&p_e, &p_n, obs, actions, self.config.reward_weight))
    }

    /// Step 3: y = 1\[dis > median(W) + k·1.4826·MAD(W)\] after appending `dis` to W. Returns
    /// (y per sample, threshold).
    pub fn pseudo_labels(&mut self, dis: &[f32]) -> (Vec<f32>, f32) {
        self.window.push_and_label(dis, self.config.outlier_k)
    }

    /// Step 4: one step of p_ω on L_ω = BCE(p_ω(s, a), y), then one step of p_ζ on
    /// L_ζ = mean |τ_e − 1\[u<0\]|·u², u = sg(p_ω(s, a_π)) − p_ζ(s), a_π ~ π(·|s) (the acting
    /// policy, no grad). No RL loss reaches either gate. Returns (L_ω, L_ζ).
    pub fn update_gates(&mut self, batch: &Batch<B>, y: &[f32]) -> (f32, f32) {
        let (a_pi, _) = self.sample_policy(batch.obs.clone().inner());
        let o = &mut self.optimizers;
        let (gate_omega, gate_zeta, losses) = gate_step(
            &self.config,
            batch,
            y,
            a_pi,
            (self.gate_omega.clone(), &mut o.gate_omega),
            (self.gate_zeta.clone(), &mut o.gate_zeta),
        );
        (self.gate_omega, self.gate_zeta) = (gate_omega, gate_zeta);
        losses
    }

    /// Step 5: critic step with the hard-gated mixture; λ = hard(p_ω(s, a)), λ' = hard(p_ω(s',
    /// a')), both stop-gradient and 0 during the warm-up:
    /// y_Q = r + γ(1 − terminated)[min_j((1−λ')Q̄_E^j + λ'Q̄_N^j)(s',a') − α log π(a'|s')],
    /// L_Q = Σ_j mean(((1−λ)Q_E^j + λQ_N^j)(s,a) − y_Q)². Each sample trains one branch; a branch
    /// no sample uses is not stepped.
    pub fn update_critic(&mut self, batch: &Batch<B>, alpha: f64) -> CriticStep {
        // The target, with no graph.
        let next_obs = batch.next_obs.clone().inner();
        let (next_actions, next_log_pi) = self.sample_policy(next_obs.clone());
        let lambda_next = self.action_gate(next_obs.clone(), next_actions.clone());
        let q_next_target = lambda_next
            .mix(
                &[next_obs.clone(), next_actions.clone()],
                |x| self.q_e_target.forward(x[0].clone(), x[1].clone()),
                |x| self.q_n_target.forward(x[0].clone(), x[1].clone()),
            )
            .min_dim(1); // [batch, 1]
        let min_q_next = q_next_target - next_log_pi.mul_scalar(alpha);
        let not_done = batch.terminated.clone().inner().neg().add_scalar(1.0);
        let y =
            batch.rewards.clone().inner() + not_done * min_q_next.mul_scalar(self.config.sac.gamma);
        let y = Tensor::<B, 2>::from_inner(y); // [batch, 1]

        let lambda = self.action_gate(batch.obs.clone().inner(), batch.actions.clone().inner());
        let (obs, actions) = (batch.obs.clone(), batch.actions.clone());
        let q = lambda.lift::<B>().mix(
            &[obs, actions],
            |x| self.q_e.forward(x[0].clone(), x[1].clone()),
            |x| self.q_n.forward(x[0].clone(), x[1].clone()),
        ); // [batch, 2]
        let q_loss = (q.clone() - y).square().sum_dim(1).mean();
        let mut grads = q_loss.backward();
        let (lr, clip) = (self.config.sac.q_lr, self.config.sac.max_grad_norm);
        if lambda.uses_e() {
            let g = GradientsParams::from_module(&mut grads, &self.q_e);
            let lr_e = lr * self.config.equi_lr_scale;
            self.q_e = adam_step(&mut self.optimizers.q_e, lr_e, clip, self.q_e.clone(), g);
        }
        if lambda.uses_n() {
            let g = GradientsParams::from_module(&mut grads, &self.q_n);
            self.q_n = adam_step(&mut self.optimizers.q_n, lr, clip, self.q_n.clone(), g);
        }
        CriticStep {
            q_loss: scalar(q_loss.inner()),
            q1_mean: scalar(q.inner().narrow(1, 0, 1).mean()),
            lambda_fraction: lambda.fraction(),
        }
    }

    /// Step 6: actor step. λζ = hard(p_ζ(s)) (0 during the warm-up) picks π_E or π_N per sample;
    /// ã is that expert's reparameterised tanh-Gaussian sample and log π its log-likelihood;
    /// λ̃ = hard(p_ω(s, ã)) (stop-gradient); L_π = mean[α log π(ã|s) −
    /// min_j((1−λ̃)Q_E^j + λ̃Q_N^j)(s,ã)] with the critics frozen (no-grad copies: the gradient
    /// reaches ã only). With [`PeSacConfig::pi_n_all_states`] π_N also gets this loss for its
    /// own samples on the λζ = 0 rows (added to L_π, divided by the batch). Returns (L_π,
    /// log π(ã|s) of the acting policy `[batch, 1]` without graph, λζ fraction).
    pub fn update_actor(
        &mut self,
        batch: &Batch<B>,
        alpha: f64,
    ) -> (f32, Tensor<B::InnerBackend, 2>, f32) {
        let obs = batch.obs.clone();
        let lambda_zeta = self.state_gate(obs.clone().inner());
        let rows = lambda_zeta.rows;
        let act_dim = self.config.sac.act_dim;
        let eps = Tensor::<B, 2>::from_inner(self.noise([rows, act_dim]));
        let sample = |(mean, log_std), eps: &Tensor<B, 2>| {
            let (a, log_pi) = tanh_gaussian(mean, log_std, eps.clone());
            Tensor::cat(vec![a, log_pi], 1) // [rows, act_dim + 1]
        };
        let rows_e = lambda_zeta.rows_e().to_vec();
        let pi_n_everywhere = self.config.pi_n_all_states && !rows_e.is_empty();
        // (states, [ã | log π] the loss is summed over, the acting policy's log π [batch, 1]).
        let (states, a_and_log_pi, acting_log_pi) = if pi_n_everywhere {
            // π_N on all `rows` rows, then π_E on the λζ = 0 rows: [rows + |rows_e|, *].
            let device = obs.device();
            let e_index = row_index::<B>(&rows_e, &device);
            let obs_e = obs.clone().select(0, e_index.clone());
            // The same noise as the paper's order, so π_E's samples and the RNG stream do not
            // change: π_N's extra samples share ε with π_E's on the λζ = 0 rows.
            let eps_e = eps.clone().select(0, e_index);
            let n = sample(self.pi_n.forward(obs.clone()), &eps);
            let e = sample(self.pi_e.forward(obs_e.clone()), &eps_e);
            let both = Tensor::cat(vec![n, e], 0);
            // The acting policy's row r: π_E's sample where λζ = 0, π_N's where λζ = 1.
            let mut acting: Vec<usize> = (0..rows).collect();
            for (k, &r) in rows_e.iter().enumerate() {
                acting[r] = rows + k;
            }
            let acting_log_pi =
                both.clone().narrow(1, act_dim, 1).select(0, row_index::<B>(&acting, &device));
            (Tensor::cat(vec![obs, obs_e], 0), both, acting_log_pi)
        } else {
            let both = lambda_zeta.lift::<B>().mix(
                &[obs.clone(), eps],
                |x| sample(self.pi_e.forward(x[0].clone()), &x[1]),
                |x| sample(self.pi_n.forward(x[0].clone()), &x[1]),
            );
            let log_pi = both.clone().narrow(1, act_dim, 1);
            (obs, both, log_pi)
        };
        let pi = a_and_log_pi.clone().narrow(1, 0, act_dim); // ã, [states, act_dim]
        let log_pi = a_and_log_pi.narrow(1, act_dim, 1); // [states, 1]

        let lambda_tilde = self.action_gate(states.clone().inner(), pi.clone().inner());
        let q_pi = lambda_tilde
            .lift::<B>()
            .mix(
                &[states, pi],
                |x| self.q_e.clone().no_grad().forward(x[0].clone(), x[1].clone()),
                |x| self.q_n.clone().no_grad().forward(x[0].clone(), x[1].clone()),
            )
            .min_dim(1); // [states, 1]

        // With π_N everywhere: the acting policy's mean over the batch plus π_N's mean over its
        // extra λζ = 0 rows, i.e. the sum over all states divided by the batch.
        let per_state = log_pi.mul_scalar(alpha) - q_pi; // [states, 1]
        let actor_loss = if pi_n_everywhere {
            per_state.sum().div_scalar(rows as f64)
        } else {
            per_state.mean()
        };
        let mut grads = actor_loss.backward();
        let (lr, clip) = (self.config.sac.policy_lr, self.config.sac.max_grad_norm);
        if lambda_zeta.uses_e() {
            let g = GradientsParams::from_module(&mut grads, &self.pi_e);
            let lr_e = lr * self.config.equi_lr_scale;
            self.pi_e = adam_step(&mut self.optimizers.pi_e, lr_e, clip, self.pi_e.clone(), g);
            self.acting_pi_e = None;
        }
        if lambda_zeta.uses_n() || pi_n_everywhere {
            let g = GradientsParams::from_module(&mut grads, &self.pi_n);
            self.pi_n = adam_step(&mut self.optimizers.pi_n, lr, clip, self.pi_n.clone(), g);
        }
        (scalar(actor_loss.inner()), acting_log_pi.inner(), lambda_zeta.fraction())
    }

    /// Step 7: temperature step on L(α) = −mean[log α · (log π(ã|s) + H̄)] (`log_pi: [batch, 1]`
    /// from [`Self::update_actor`]). Returns L(α).
    pub fn update_alpha(&mut self, log_pi: Tensor<B::InnerBackend, 2>) -> f32 {
        let entropy_gap = Tensor::<B, 1>::from_inner(log_pi.mean().add_scalar(self.target_entropy));
        let alpha_loss = (self.log_alpha.log_alpha.val() * entropy_gap).neg(); // [1]
        let grads = GradientsParams::from_grads(alpha_loss.backward(), &self.log_alpha);
        let (lr, log_alpha) = (self.config.sac.alpha_lr, self.log_alpha.clone());
        self.log_alpha = adam_step(&mut self.optimizers.log_alpha, lr, None, log_alpha, grads);
        scalar(alpha_loss.inner())
    }

    /// Step 8: Q̄ ← τ_p Q + (1 − τ_p) Q̄ for both critic pairs.
    pub fn soft_update_targets(&mut self) {
        let tau = self.config.sac.tau;
        self.q_e_target = SoftUpdate::apply(&self.q_e, self.q_e_target.clone(), tau);
        self.q_n_target = SoftUpdate::apply(&self.q_n, self.q_n_target.clone(), tau);
    }

    /// Actions for a row-major batch of observations `[n · obs_dim]` -> `[n · act_dim]` in
    /// [-1, 1]: λζ = hard(p_ζ(s)) (0 during the warm-up) picks π_N or π_E per row, on no-grad
    /// copies (π_E as a dense [`EquiActor::frozen`] copy, rebuilt after each actor step).
    ///
    /// # Panics
    /// If `obs.len()` is not a positive multiple of `obs_dim`.
    pub fn act(&mut self, obs: &[f32], mode: ActMode) -> Vec<f32> {
        let obs = self.obs_tensor(obs);
        let lambda_zeta = self.state_gate(obs.clone());
        let pi_e = self.acting_pi_e.get_or_insert_with(|| self.pi_e.valid().frozen()).clone();
        let mean_log_std = gated_policy(&pi_e, &self.pi_n.valid(), &lambda_zeta, obs);
        let act_dim = self.config.sac.act_dim;
        let mean = mean_log_std.clone().narrow(1, 0, act_dim);
        let action = match mode {
            ActMode::Deterministic => mean.tanh(),
            ActMode::Stochastic => {
                let log_std = mean_log_std.narrow(1, act_dim, act_dim);
                let eps = self.noise(mean.dims());
                tanh_gaussian(mean, log_std, eps).0
            }
        };
        to_vec(action)
    }

    /// λζ = hard(p_ζ(s)) for a row-major batch of observations (`[n · obs_dim]` -> `[n]`, 0 or 1;
    /// all 0 during the warm-up): 1 where [`Self::act`] uses π_N.
    ///
    /// # Panics
    /// If `obs.len()` is not a positive multiple of `obs_dim`.
    pub fn lambda_zeta(&self, obs: &[f32]) -> Vec<f32> {
        to_vec(self.state_gate(self.obs_tensor(obs)).lambda)
    }

    /// Writes a checkpoint into `dir` (created if missing), each file atomically: `config.json`
    /// ([`PeSacConfig`]), one record per network (`q_e.mpk`, `q_n.mpk`, `pi_e.mpk`, `pi_n.mpk`,
    /// `p_e.mpk`, `p_n.mpk`, `gate_omega.mpk`, `gate_zeta.mpk`, `log_alpha.mpk`) with its Adam
    /// state (`<name>_optimizer.mpk`), the targets (`q_e_target.mpk`, `q_n_target.mpk`) and
    /// [`PeSacTrainState`] (`train_state.json`: update count, noise RNG position, σ_Δ, the
    /// window W). The replay buffer is not saved.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), CheckpointError> {
        let o = &self.optimizers;
        checkpoint::save_config(&self.config, &dir.join(CONFIG_FILE))?;
        save_trained(dir, "q_e", &self.q_e, &o.q_e)?;
        save_trained(dir, "q_n", &self.q_n, &o.q_n)?;
        save_trained(dir, "pi_e", &self.pi_e, &o.pi_e)?;
        save_trained(dir, "pi_n", &self.pi_n, &o.pi_n)?;
        save_trained(dir, "p_e", &self.p_e, &o.p_e)?;
        save_trained(dir, "p_n", &self.p_n, &o.p_n)?;
        save_trained(dir, "gate_omega", &self.gate_omega, &o.gate_omega)?;
        save_trained(dir, "gate_zeta", &self.gate_zeta, &o.gate_zeta)?;
        save_trained(dir, "log_alpha", &self.log_alpha, &o.log_alpha)?;
        checkpoint::save_module(&self.q_e_target, &dir.join("q_e_target.mpk"))?;
        checkpoint::save_module(&self.q_n_target, &dir.join("q_n_target.mpk"))?;
        let state = PeSacTrainState {
            updates: self.updates,
            rng_stream: self.rng.get_stream(),
            rng_word_pos: self.rng.get_word_pos(),
            delta_sum_squares: self.delta_scale.sum_squares,
            delta_count: self.delta_scale.count,
            window: self.window.values.iter().copied().collect(),
        };
        checkpoint::save_config(&state, &dir.join(TRAIN_STATE_FILE))
    }

    /// Starts one branch from an offline or SAC checkpoint in [`crate::sac::Sac`]'s layout
    /// (`actor.mpk`, `critic.mpk`, `critic_target.mpk`): [`Branch::Standard`] loads π_N, Q_N and
    /// Q̄_N (from SAC, CQL or IQL), [`Branch::Equivariant`] π_E, Q_E and Q̄_E (from Equi-SAC,
    /// Equi-CQL or Equi-IQL). The networks must have been built with the same widths (the caller
    /// checks; burn does not). Optimizer moments, predictors, gates, temperature and counters stay
    /// fresh: online fine-tuning after offline pre-training (issue 5), not a resume.
    ///
    /// # Errors
    /// A missing or unreadable file.
    pub fn init_branch(mut self, branch: Branch, dir: &Path) -> Result<Self, CheckpointError> {
        use crate::sac::{ACTOR_FILE, CRITIC_FILE, CRITIC_TARGET_FILE};
        let d = self.device.clone();
        match branch {
            Branch::Standard => {
                self.pi_n = checkpoint::load_module(self.pi_n, &dir.join(ACTOR_FILE), &d)?;
                self.q_n = checkpoint::load_module(self.q_n, &dir.join(CRITIC_FILE), &d)?;
                let target = dir.join(CRITIC_TARGET_FILE);
                self.q_n_target = checkpoint::load_module(self.q_n_target, &target, &d)?;
            }
            Branch::Equivariant => {
                self.pi_e = checkpoint::load_module(self.pi_e, &dir.join(ACTOR_FILE), &d)?;
                self.q_e = checkpoint::load_module(self.q_e, &dir.join(CRITIC_FILE), &d)?;
                let target = dir.join(CRITIC_TARGET_FILE);
                self.q_e_target = checkpoint::load_module(self.q_e_target, &target, &d)?;
                self.acting_pi_e = None;
            }
        }
        Ok(self)
    }

    /// Restores everything [`Self::save_checkpoint`] wrote into this learner (built with the
    /// same config and representations), so that training resumes exactly where it stopped
    /// (given the same batches).
    pub fn load_checkpoint(mut self, dir: &Path) -> Result<Self, CheckpointError> {
        let d = self.device.clone();
        let o = self.optimizers;
        // Into the autodiff modules themselves, so that their parameters keep require_grad.
        let (q_e, q_e_o) = load_trained(dir, "q_e", self.q_e, o.q_e, &d)?;
        let (q_n, q_n_o) = load_trained(dir, "q_n", self.q_n, o.q_n, &d)?;
        let (pi_e, pi_e_o) = load_trained(dir, "pi_e", self.pi_e, o.pi_e, &d)?;
        let (pi_n, pi_n_o) = load_trained(dir, "pi_n", self.pi_n, o.pi_n, &d)?;
        let (p_e, p_e_o) = load_trained(dir, "p_e", self.p_e, o.p_e, &d)?;
        let (p_n, p_n_o) = load_trained(dir, "p_n", self.p_n, o.p_n, &d)?;
        let (omega, omega_o) = load_trained(dir, "gate_omega", self.gate_omega, o.gate_omega, &d)?;
        let (zeta, zeta_o) = load_trained(dir, "gate_zeta", self.gate_zeta, o.gate_zeta, &d)?;
        let (log_alpha, alpha_o) = load_trained(dir, "log_alpha", self.log_alpha, o.log_alpha, &d)?;
        self.q_e_target =
            checkpoint::load_module(self.q_e_target, &dir.join("q_e_target.mpk"), &d)?;
        self.q_n_target =
            checkpoint::load_module(self.q_n_target, &dir.join("q_n_target.mpk"), &d)?;
        (self.q_e, self.q_n, self.pi_e, self.pi_n, self.p_e, self.p_n) =
            (q_e, q_n, pi_e, pi_n, p_e, p_n);
        (self.gate_omega, self.gate_zeta, self.log_alpha) = (omega, zeta, log_alpha);
        self.optimizers = Optimizers {
            q_e: q_e_o,
            q_n: q_n_o,
            pi_e: pi_e_o,
            pi_n: pi_n_o,
            p_e: p_e_o,
            p_n: p_n_o,
            gate_omega: omega_o,
            gate_zeta: zeta_o,
            log_alpha: alpha_o,
        };
        self.acting_pi_e = None;
        let state: PeSacTrainState = checkpoint::load_config(&dir.join(TRAIN_STATE_FILE))?;
        self.updates = state.updates;
        self.rng.set_stream(state.rng_stream);
        self.rng.set_word_pos(state.rng_word_pos);
        self.delta_scale =
            DeltaScale { sum_squares: state.delta_sum_squares, count: state.delta_count };
        self.window = DisagreementWindow::new(self.config.window_size);
        self.window.values.extend(state.window);
        Ok(self)
    }

    /// λζ = hard(p_ζ(s)) on the inner backend, ≡ 0 during the warm-up.
    fn state_gate(&self, obs: Tensor<B::InnerBackend, 2>) -> HardGate<B::InnerBackend> {
        if self.in_gate_warmup() {
            return HardGate::zeros(obs.dims()[0], &obs.device());
        }
        let p_zeta = self.gate_zeta.valid().forward(obs);
        HardGate::from_probability(p_zeta, self.config.gate_threshold)
    }

    /// λ = hard(p_ω(s, a)) on the inner backend, ≡ 0 during the warm-up.
    fn action_gate(
        &self,
        obs: Tensor<B::InnerBackend, 2>,
        actions: Tensor<B::InnerBackend, 2>,
    ) -> HardGate<B::InnerBackend> {
        if self.in_gate_warmup() {
            return HardGate::zeros(obs.dims()[0], &obs.device());
        }
        let p_omega = self.gate_omega.valid().forward(obs, actions);
        HardGate::from_probability(p_omega, self.config.gate_threshold)
    }

    /// a ~ π(·|s) of the acting policy (λζ-selected expert) with its log π, no graph.
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]` -> (`[batch, act_dim]`, `[batch, 1]`).
    fn sample_policy(
        &mut self,
        obs: Tensor<B::InnerBackend, 2>,
    ) -> (Tensor<B::InnerBackend, 2>, Tensor<B::InnerBackend, 2>) {
        let lambda_zeta = self.state_gate(obs.clone());
        let act_dim = self.config.sac.act_dim;
        let eps = self.noise([lambda_zeta.rows, act_dim]);
        let sample = |(mean, log_std), eps: &Tensor<B::InnerBackend, 2>| {
            let (a, log_pi) = tanh_gaussian(mean, log_std, eps.clone());
            Tensor::cat(vec![a, log_pi], 1) // [rows, act_dim + 1]
        };
        let a_and_log_pi = lambda_zeta.mix(
            &[obs, eps],
            |x| sample(self.pi_e.valid().forward(x[0].clone()), &x[1]),
            |x| sample(self.pi_n.valid().forward(x[0].clone()), &x[1]),
        );
        (a_and_log_pi.clone().narrow(1, 0, act_dim), a_and_log_pi.narrow(1, act_dim, 1))
    }

    /// Row-major observations as a `[n, obs_dim]` tensor.
    fn obs_tensor(&self, obs: &[f32]) -> Tensor<B::InnerBackend, 2> {
        let d = self.config.sac.obs_dim;
        assert!(
            !obs.is_empty() && obs.len().is_multiple_of(d),
            "act: obs length {} must be a positive multiple of obs_dim {d}",
            obs.len()
        );
        Tensor::from_data(TensorData::new(obs.to_vec(), [obs.len() / d, d]), &self.device)
    }

    /// ε ~ N(0, I) of `shape` from the agent's seeded RNG, on the inner backend.
    fn noise(&mut self, shape: [usize; 2]) -> Tensor<B::InnerBackend, 2> {
        let eps = standard_normal(&mut self.rng, shape[0] * shape[1]);
        Tensor::from_data(TensorData::new(eps, shape), &self.device)
    }
}

/// Checkpoint file of the [`PeSacConfig`].
pub const CONFIG_FILE: &str = "config.json";
/// Checkpoint file of the [`PeSacTrainState`].
pub const TRAIN_STATE_FILE: &str = "train_state.json";

/// Counters, RNG position and pseudo-label state saved beside the networks so that a run
/// resumes exactly.
#[derive(Config, Debug, PartialEq)]
pub struct PeSacTrainState {
    /// [`PeSac::updates`] at the checkpoint.
    pub updates: u64,
    /// Stream of the noise RNG.
    pub rng_stream: u64,
    /// Word position of the noise RNG.
    pub rng_word_pos: u128,
    /// Σ (s' − s)² of [`DeltaScale`].
    pub delta_sum_squares: f64,
    /// Number of coordinates summed in [`DeltaScale`].
    pub delta_count: f64,
    /// The disagreement window W, oldest first.
    pub window: Vec<f32>,
}

/// Saves `module` (a no-grad copy) as `<name>.mpk` and its Adam state as `<name>_optimizer.mpk`.
pub(crate) fn save_trained<B: AutodiffBackend, M: AutodiffModule<B>>(
    dir: &Path,
    name: &str,
    module: &M,
    optimizer: &OptimizerAdaptor<Adam, M, B>,
) -> Result<(), CheckpointError> {
    checkpoint::save_module(&module.valid(), &dir.join(format!("{name}.mpk")))?;
    let path = dir.join(format!("{name}_optimizer.mpk"));
    checkpoint::save_record::<B, _>(optimizer.to_record(), &path)
}

/// Loads what [`save_trained`] wrote into `module` and `optimizer`.
pub(crate) fn load_trained<B: AutodiffBackend, M: AutodiffModule<B>>(
    dir: &Path,
    name: &str,
    module: M,
    optimizer: OptimizerAdaptor<Adam, M, B>,
    device: &B::Device,
) -> Result<(M, OptimizerAdaptor<Adam, M, B>), CheckpointError> {
    let module = checkpoint::load_module(module, &dir.join(format!("{name}.mpk")), device)?;
    let path = dir.join(format!("{name}_optimizer.mpk"));
    let optimizer = optimizer.load_record(checkpoint::load_record::<B, _>(&path, device)?);
    Ok((module, optimizer))
}

/// A PE-SAC policy loaded from a checkpoint for inference, on any backend: π_E (dense, see
/// [`EquiActor::frozen`]), π_N and the state gate p_ζ.
#[derive(Debug)]
pub struct PeSacPolicy<B: Backend> {
    /// The config of the run.
    pub config: PeSacConfig,
    /// π_E, dense copy.
    pub pi_e: EquiActor<B>,
    /// π_N.
    pub pi_n: MlpActor<B>,
    /// p_ζ.
    pub gate_zeta: StateGate<B>,
    /// Whether the checkpoint was past the gate warm-up (before it, λζ ≡ 0).
    pub gate_active: bool,
}

impl<B: Backend> PeSacPolicy<B> {
    /// Loads the actors and the state gate of a [`PeSac::save_checkpoint`] directory; `obs` and
    /// `act` are the representations the run was built with.
    pub fn load(
        dir: &Path,
        obs: &Representation,
        act: &Representation,
        device: &B::Device,
    ) -> Result<Self, CheckpointError> {
        let config_path = dir.join(CONFIG_FILE);
        let config: PeSacConfig = checkpoint::load_config(&config_path)?;
        let state: PeSacTrainState = checkpoint::load_config(&dir.join(TRAIN_STATE_FILE))?;
        let network = |source| CheckpointError::Network { path: config_path.clone(), source };
        let (nets, sac) = (&config.nets, &config.sac);
        // The initial weights are overwritten by the records; any seed will do.
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let pi_e =
            EquiActor::new(&nets.equi, &nets.actor, obs, act, &mut rng, device).map_err(network)?;
        let pi_n =
            MlpActor::new(&nets.mlp, &nets.actor, sac.obs_dim, sac.act_dim, &mut rng, device)
                .map_err(network)?;
        let gate_zeta =
            StateGate::new(&nets.mlp, sac.obs_dim, &mut rng, device).map_err(network)?;
        let pi_e = checkpoint::load_module(pi_e, &dir.join("pi_e.mpk"), device)?.frozen();
        let pi_n = checkpoint::load_module(pi_n, &dir.join("pi_n.mpk"), device)?;
        let gate_zeta = checkpoint::load_module(gate_zeta, &dir.join("gate_zeta.mpk"), device)?;
        let gate_active = state.updates >= config.gate_warmup_updates;
        Ok(Self { config, pi_e, pi_n, gate_zeta, gate_active })
    }

    /// Deterministic action tanh(μ(s)) of the expert λζ = hard(p_ζ(s)) picks per row.
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]` -> `[batch, act_dim]`.
    pub fn act_deterministic(&self, obs: Tensor<B, 2>) -> Tensor<B, 2> {
        let lambda_zeta = if self.gate_active {
            let p_zeta = self.gate_zeta.forward(obs.clone());
            HardGate::from_probability(p_zeta, self.config.gate_threshold)
        } else {
            HardGate::zeros(obs.dims()[0], &obs.device())
        };
        let act_dim = self.config.sac.act_dim;
        gated_policy(&self.pi_e, &self.pi_n, &lambda_zeta, obs).narrow(1, 0, act_dim).tanh()
    }
}

/// The gated policy's pre-tanh Gaussian: per row, π_E's (λζ = 0) or π_N's (λζ = 1) mean and
/// log-std, evaluating only the experts some row uses.
///
/// # Shapes
/// `obs: [n, obs_dim]`, λζ `[n, 1]` -> `[n, 2·act_dim]` (mean, then log-std).
fn gated_policy<Bk: Backend>(
    pi_e: &EquiActor<Bk>,
    pi_n: &MlpActor<Bk>,
    lambda_zeta: &HardGate<Bk>,
    obs: Tensor<Bk, 2>,
) -> Tensor<Bk, 2> {
    let cat = |(mean, log_std)| Tensor::cat(vec![mean, log_std], 1);
    lambda_zeta.mix(
        &[obs],
        |x| cat(pi_e.forward(x[0].clone())),
        |x| cat(pi_n.forward(x[0].clone())),
    )
}

/// What steps 1–4 of a PE-SAC update change (the predictors, the gates, their Adam states,
/// σ_Δ and the disagreement window), moved out of [`PeSac`] for those steps so that they can run
/// on a second thread ([`PeSacConfig::pipelined`]).
struct DetectorPart<B: AutodiffBackend> {
    p_e: EquiPredictor<B>,
    p_n: MlpPredictor<B>,
    gate_omega: ActionGate<B>,
    gate_zeta: StateGate<B>,
    opt_p_e: OptimizerAdaptor<Adam, EquiPredictor<B>, B>,
    opt_p_n: OptimizerAdaptor<Adam, MlpPredictor<B>, B>,
    opt_gate_omega: OptimizerAdaptor<Adam, ActionGate<B>, B>,
    opt_gate_zeta: OptimizerAdaptor<Adam, StateGate<B>, B>,
    delta_scale: DeltaScale,
    window: DisagreementWindow,
}

/// What [`DetectorPart::step`] reports (the [`PeSacMetrics`] fields of steps 1–4).
struct DetectorStep {
    predictor_loss_e: f32,
    predictor_loss_n: f32,
    disagreement: f32,
    label_threshold: f32,
    pseudo_label_rate: f32,
    gate_bce: f32,
    state_gate_loss: f32,
}

impl<B: AutodiffBackend> DetectorPart<B> {
    /// Steps 1–4 on `batch`; `a_pi` (`[batch, act_dim]`) is step 4's a_π ~ π(·|s).
    fn step(
        mut self,
        config: &PeSacConfig,
        batch: &Batch<B>,
        a_pi: Tensor<B::InnerBackend, 2>,
    ) -> (Self, DetectorStep) {
        let lr = config.predictor_lr;
        let step = PredictorStep {
            reward_weight: config.reward_weight,
            lr,
            clip: config.sac.max_grad_norm,
        };
        let (p_e, p_n, (predictor_loss_e, predictor_loss_n)) = step.apply(
            batch,
            &mut self.delta_scale,
            (self.p_e, &mut self.opt_p_e),
            (self.p_n, &mut self.opt_p_n),
        );
        (self.p_e, self.p_n) = (p_e, p_n);
        let (obs, actions) = (batch.obs.clone().inner(), batch.actions.clone().inner());
        let dis =
            disagreement(&self.p_e.valid(), &self.p_n.valid(), obs, actions, config.reward_weight);
        let dis = to_vec(dis);
        let (y, label_threshold) = self.window.push_and_label(&dis, config.outlier_k);
        let (gate_omega, gate_zeta, (gate_bce, state_gate_loss)) = gate_step(
            config,
            batch,
            &y,
            a_pi,
            (self.gate_omega, &mut self.opt_gate_omega),
            (self.gate_zeta, &mut self.opt_gate_zeta),
        );
        (self.gate_omega, self.gate_zeta) = (gate_omega, gate_zeta);
        let n = dis.len().max(1) as f32;
        let metrics = DetectorStep {
            predictor_loss_e,
            predictor_loss_n,
            disagreement: dis.iter().sum::<f32>() / n,
            label_threshold,
            pseudo_label_rate: y.iter().sum::<f32>() / n,
            gate_bce,
            state_gate_loss,
        };
        (self, metrics)
    }
}

/// PE-SAC step 4 ([`PeSac::update_gates`]): one step of p_ω on BCE(p_ω(s, a), y) (`y`:
/// `[batch]` in {0, 1}), then one step of p_ζ on the expectile loss of
/// u = sg(p_ω(s, a_π)) − p_ζ(s) with the stepped p_ω (`a_pi`: `[batch, act_dim]`). Returns the
/// stepped gates and (L_ω, L_ζ).
#[allow(clippy::type_complexity)]
fn gate_step<B: AutodiffBackend>(
    config: &PeSacConfig,
    batch: &Batch<B>,
    y: &[f32],
    a_pi: Tensor<B::InnerBackend, 2>,
    (gate_omega, opt_omega): (ActionGate<B>, &mut OptimizerAdaptor<Adam, ActionGate<B>, B>),
    (gate_zeta, opt_zeta): (StateGate<B>, &mut OptimizerAdaptor<Adam, StateGate<B>, B>),
) -> (ActionGate<B>, StateGate<B>, (f32, f32)) {
    let (lr, clip) = (config.gate_lr, config.sac.max_grad_norm);
    let rows = y.len();
    let y = Tensor::<B, 2>::from_data(TensorData::new(y.to_vec(), [rows, 1]), &batch.obs.device());
    let logits = gate_omega.logits(batch.obs.clone(), batch.actions.clone());
    let gate_bce = bce_with_logits(logits, y);
    let grads = GradientsParams::from_grads(gate_bce.backward(), &gate_omega);
    let gate_omega = adam_step(opt_omega, lr, clip, gate_omega, grads);

    let p_omega = gate_omega.valid().forward(batch.obs.clone().inner(), a_pi); // [batch, 1]
    let u = Tensor::<B, 2>::from_inner(p_omega) - gate_zeta.forward(batch.obs.clone());
    let state_gate_loss = expectile_loss(u, config.expectile);
    let grads = GradientsParams::from_grads(state_gate_loss.backward(), &gate_zeta);
    let gate_zeta = adam_step(opt_zeta, lr, clip, gate_zeta, grads);
    (gate_omega, gate_zeta, (scalar(gate_bce.inner()), scalar(state_gate_loss.inner())))
}

/// One step of both predictors (PE-SAC step 1, shared with [`crate::detector::Detector`]).
pub(crate) struct PredictorStep {
    /// c_r.
    pub reward_weight: f64,
    /// Adam learning rate.
    pub lr: f64,
    /// Global-norm clipping.
    pub clip: Option<f64>,
}

impl PredictorStep {
    /// Updates σ_Δ with the batch, then one Adam step of each predictor on
    /// L_P,i = mean[‖P̂_i(s,a) − (s' − s)/σ_Δ‖² + c_r(R̂_i(s,a) − r)²]. Returns the stepped
    /// predictors and (L_P,E, L_P,N).
    #[allow(clippy::type_complexity)]
    pub fn apply<B: AutodiffBackend>(
        &self,
        batch: &Batch<B>,
        delta_scale: &mut DeltaScale,
        (p_e, opt_e): (EquiPredictor<B>, &mut OptimizerAdaptor<Adam, EquiPredictor<B>, B>),
        (p_n, opt_n): (MlpPredictor<B>, &mut OptimizerAdaptor<Adam, MlpPredictor<B>, B>),
    ) -> (EquiPredictor<B>, MlpPredictor<B>, (f32, f32)) {
        let delta = (batch.next_obs.clone() - batch.obs.clone()).inner(); // [batch, obs_dim]
        let [rows, cols] = delta.dims();
        delta_scale.update(f64::from(scalar(delta.clone().square().sum())), rows * cols);
        let delta = Tensor::<B, 2>::from_inner(delta.div_scalar(delta_scale.scale()));
        let c_r = self.reward_weight;
        let predictor_loss = |(delta_hat, r_hat): (Tensor<B, 2>, Tensor<B, 2>)| {
            let state = (delta_hat - delta.clone()).square().sum_dim(1); // [batch, 1]
            let reward = (r_hat - batch.rewards.clone()).square().mul_scalar(c_r);
            (state + reward).mean()
        };
        let loss_e = predictor_loss(p_e.forward(batch.obs.clone(), batch.actions.clone()));
        let grads = GradientsParams::from_grads(loss_e.backward(), &p_e);
        let p_e = adam_step(opt_e, self.lr, self.clip, p_e, grads);

        let loss_n = predictor_loss(p_n.forward(batch.obs.clone(), batch.actions.clone()));
        let grads = GradientsParams::from_grads(loss_n.backward(), &p_n);
        let p_n = adam_step(opt_n, self.lr, self.clip, p_n, grads);
        (p_e, p_n, (scalar(loss_e.inner()), scalar(loss_n.inner())))
    }
}

/// dis = ‖P̂_E − P̂_N‖²/dim_s + c_r(R̂_E − R̂_N)² per sample (PE-SAC step 2, no grad).
///
/// # Shapes
/// `obs: [batch, obs_dim]`, `actions: [batch, act_dim]` -> `[batch, 1]`.
pub(crate) fn disagreement<B: Backend>(
    p_e: &EquiPredictor<B>,
    p_n: &MlpPredictor<B>,
    obs: Tensor<B, 2>,
    actions: Tensor<B, 2>,
    reward_weight: f64,
) -> Tensor<B, 2> {
    let (delta_e, r_e) = p_e.forward(obs.clone(), actions.clone());
    let (delta_n, r_n) = p_n.forward(obs, actions);
    let dim_s = delta_e.dims()[1] as f64;
    let state = (delta_e - delta_n).square().sum_dim(1).div_scalar(dim_s); // [batch, 1]
    let reward = (r_e - r_n).square().mul_scalar(reward_weight);
    state + reward
}

/// One Adam step of `module` with learning rate `lr`, after global-norm clipping when
/// `max_norm` is set.
pub(crate) fn adam_step<B: AutodiffBackend, M: AutodiffModule<B>>(
    optimizer: &mut OptimizerAdaptor<Adam, M, B>,
    lr: f64,
    max_norm: Option<f64>,
    module: M,
    grads: GradientsParams,
) -> M {
    let grads = match max_norm {
        Some(max_norm) => clip_global_norm(&module, grads, max_norm),
        None => grads,
    };
    optimizer.step(lr, module, grads)
}

/// The single value of a `[1]` tensor as f32.
pub(crate) fn scalar<B: Backend>(t: Tensor<B, 1>) -> f32 {
    t.into_scalar().elem::<f32>()
}

/// All values of a float tensor, row-major.
pub(crate) fn to_vec<B: Backend>(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().expect("converted to f32 just before")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sac::test_util::{filled_buffer, params};
    use burn::backend::{Autodiff, Flex};
    use burn::module::Param;
    use equigate_symmetry::{FieldKind, Group};

    type B = Autodiff<Flex>;

    /// C_4 acting on (p_xy, g_xy, z): two ρ1 pairs and an invariant; action: two invariants.
    fn reps() -> (Representation, Representation) {
        let g = Group::cyclic(4).unwrap();
        let obs = Representation::from_layout(
            &g,
            &[(FieldKind::Rotation2, 2), (FieldKind::Rotation2, 2), (FieldKind::Invariant, 1)],
        )
        .unwrap();
        let act = Representation::from_layout(&g, &[(FieldKind::Invariant, 2)]).unwrap();
        (obs, act)
    }

    fn small_config(warmup: u64) -> PeSacConfig {
        let sac = SacConfig::new(5, 2).with_batch_size(16);
        let nets = NetsConfig::new()
            .with_mlp(crate::nets::MlpConfig::new().with_hidden(vec![16, 16]))
            .with_equi(crate::nets::EquiConfig::new().with_hidden_dim(16));
        PeSacConfig::new(sac).with_nets(nets).with_gate_warmup_updates(warmup).with_window_size(64)
    }

    fn agent(config: PeSacConfig) -> PeSac<B> {
        let (obs, act) = reps();
        PeSac::new(config, &obs, &act, &Default::default()).unwrap()
    }

    /// A batch from 64 random transitions with s' = s + 0.1 · N(0, I).
    fn batch(config: &PeSacConfig) -> Batch<B> {
        let (obs_dim, act_dim) = (config.sac.obs_dim, config.sac.act_dim);
        let mut buf = filled_buffer(obs_dim, act_dim, 64, Some(0.1));
        buf.sample::<B>(config.sac.batch_size, &Default::default()).unwrap()
    }

    #[test]
    fn one_train_step_gives_finite_metrics() {
        let config = small_config(0);
        let mut agent = agent(config.clone());
        let batch = batch(&config);
        let m = agent.train_step(&batch);
        assert_eq!(agent.updates(), 1);
        for v in [
            m.predictor_loss_e,
            m.predictor_loss_n,
            m.delta_scale,
            m.disagreement,
            m.label_threshold,
            m.pseudo_label_rate,
            m.gate_bce,
            m.state_gate_loss,
            m.lambda_fraction,
            m.lambda_zeta_fraction,
            m.q_loss,
            m.q1_mean,
            m.actor_loss,
            m.alpha_loss,
            m.alpha,
            m.entropy,
        ] {
            assert!(v.is_finite(), "{m:?}");
        }
        assert!((0.0..=1.0).contains(&m.pseudo_label_rate));
        assert_eq!(agent.window.len(), 16);
        let m2 = agent.train_step(&batch);
        assert!(m2.predictor_loss_e.is_finite() && m2.q_loss.is_finite(), "{m2:?}");
    }

    /// Every network's parameters, and log α, in a fixed order.
    fn all_params(a: &PeSac<B>) -> Vec<Vec<f32>> {
        vec![
            params(&a.q_e),
            params(&a.q_n),
            params(&a.q_e_target),
            params(&a.q_n_target),
            params(&a.pi_e),
            params(&a.pi_n),
            params(&a.p_e),
            params(&a.p_n),
            params(&a.gate_omega),
            params(&a.gate_zeta),
            params(&a.log_alpha),
        ]
    }

    /// In the warm-up no λ is read, so the pipelined schedule gives exactly the networks, σ_Δ
    /// and window of the paper's order.
    #[test]
    fn pipelined_equals_the_paper_order_during_the_warmup() {
        let config = small_config(100);
        let (mut paper, mut pipelined) =
            (agent(config.clone()), agent(config.clone().with_pipelined(true)));
        let batch = batch(&config);
        for _ in 0..4 {
            let (a, b) = (paper.train_step(&batch), pipelined.train_step(&batch));
            assert_eq!(a, b);
        }
        assert_eq!(all_params(&paper), all_params(&pipelined));
        assert_eq!(
            (&paper.window, &paper.delta_scale),
            (&pipelined.window, &pipelined.delta_scale)
        );
    }

    /// After the warm-up, update t's critic and actor steps read the gates of update t − 1. In
    /// the first update that is the initial gates: the critics and actors equal those of an
    /// agent in the paper's order whose gates cannot move (gate learning rate 0), while the
    /// pipelined agent's own gates did move. Two pipelined runs are identical (the thread's
    /// timing does not enter the result).
    #[test]
    fn pipelined_critic_and_actor_read_the_previous_gates() {
        let config = small_config(0);
        let batch = batch(&config);
        let mut pipelined = agent(config.clone().with_pipelined(true));
        let mut frozen_gates = agent(config.clone().with_gate_lr(0.0));
        let gates = (params(&pipelined.gate_omega), params(&pipelined.gate_zeta));
        let (a, b) = (pipelined.train_step(&batch), frozen_gates.train_step(&batch));
        assert!(a.lambda_fraction > 0.0 && a.lambda_fraction < 1.0, "both branches used: {a:?}");
        assert_eq!(
            (a.q_loss, a.actor_loss, a.lambda_fraction),
            (b.q_loss, b.actor_loss, b.lambda_fraction)
        );
        for (x, y) in all_params(&pipelined).iter().zip(all_params(&frozen_gates)).take(6) {
            assert!(x == &y, "critics, targets and actors must match");
        }
        assert!(
            params(&pipelined.gate_omega) != gates.0 && params(&pipelined.gate_zeta) != gates.1
        );

        let mut again = agent(config.clone().with_pipelined(true));
        again.train_step(&batch);
        for _ in 0..3 {
            assert_eq!(pipelined.train_step(&batch), again.train_step(&batch));
        }
        assert_eq!(all_params(&pipelined), all_params(&again));
    }

    #[test]
    fn during_warmup_only_the_equivariant_branch_learns() {
        let config = small_config(10);
        let mut agent = agent(config.clone());
        let batch = batch(&config);
        let (q_e, q_n, q_n_t) = (params(&agent.q_e), params(&agent.q_n), params(&agent.q_n_target));
        let (pi_e, pi_n) = (params(&agent.pi_e), params(&agent.pi_n));
        let (p_n, omega) = (params(&agent.p_n), params(&agent.gate_omega));
        for _ in 0..2 {
            let m = agent.train_step(&batch);
            assert_eq!((m.lambda_fraction, m.lambda_zeta_fraction), (0.0, 0.0));
        }
        assert!(agent.in_gate_warmup());
        assert!(params(&agent.q_n) == q_n, "Q_N must get no critic gradient in the warm-up");
        // Polyak averaging of equal values moves them by at most rounding.
        let target = params(&agent.q_n_target);
        assert!(target.iter().zip(&q_n_t).all(|(a, b)| (a - b).abs() <= 1e-6 * (1.0 + b.abs())));
        assert!(params(&agent.pi_n) == pi_n, "π_N must not train in the warm-up");
        assert!(params(&agent.q_e) != q_e && params(&agent.pi_e) != pi_e);
        // The predictors and the gates train from the start.
        assert!(params(&agent.p_n) != p_n && params(&agent.gate_omega) != omega);
    }

    #[test]
    fn after_warmup_a_gate_at_one_trains_only_the_standard_critic() {
        let config = small_config(0);
        let mut agent = agent(config.clone());
        // p_ω ≡ σ(50) ≈ 1: the last layer outputs its bias only.
        let last = agent.gate_omega.mlp.layers.last_mut().unwrap();
        last.weight = Param::from_tensor(last.weight.val().zeros_like());
        last.bias =
            last.bias.as_ref().map(|b| Param::from_tensor(b.val().zeros_like().add_scalar(50.0)));
        let batch = batch(&config);
        let (q_e, q_n) = (params(&agent.q_e), params(&agent.q_n));
        let step = agent.update_critic(&batch, 0.2);
        assert_eq!(step.lambda_fraction, 1.0);
        assert!(step.q_loss.is_finite());
        assert!(params(&agent.q_e) == q_e, "λ = 1 everywhere: Q_E gets no critic gradient");
        assert!(params(&agent.q_n) != q_n, "Q_N must train where λ = 1");
    }

    /// With `pi_n_all_states`, π_N learns on the λζ = 0 rows too (here all of them, in the
    /// warm-up), while π_E gets the same update as in the paper's order and the acting log π
    /// is unchanged.
    #[test]
    fn pi_n_all_states_trains_the_standard_actor_where_the_state_gate_is_off() {
        let config = small_config(10);
        let batch = batch(&config);
        let (mut paper, mut everywhere) =
            (agent(config.clone()), agent(config.clone().with_pi_n_all_states(true)));
        let pi_n = params(&paper.pi_n);
        let (_, log_pi_paper, zeta_paper) = paper.update_actor(&batch, 0.2);
        let (loss, log_pi, zeta) = everywhere.update_actor(&batch, 0.2);
        assert_eq!((zeta_paper, zeta), (0.0, 0.0), "warm-up: λζ ≡ 0");
        assert!(loss.is_finite());
        assert!(params(&paper.pi_n) == pi_n, "paper order: π_N gets no rows in the warm-up");
        assert!(params(&everywhere.pi_n) != pi_n, "π_N must learn on the λζ = 0 rows");
        let close = |a: &[f32], b: &[f32]| {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-5 * (1.0 + y.abs()))
        };
        assert!(
            close(&params(&everywhere.pi_e), &params(&paper.pi_e)),
            "π_E's update must not change"
        );
        let to_vec = |t: Tensor<Flex, 2>| t.into_data().to_vec::<f32>().unwrap();
        assert!(close(&to_vec(log_pi), &to_vec(log_pi_paper)), "the acting log π must not change");
    }

    /// Each branch sees only its rows, and the result is back in row order.
    #[test]
    fn mix_evaluates_each_branch_on_its_own_rows() {
        use std::cell::Cell;
        let device = Default::default();
        let p = vec![0.9f32, 0.1, 0.7, 0.2, 0.3];
        let p = Tensor::<Flex, 2>::from_data(TensorData::new(p, [5, 1]), &device);
        let gate = HardGate::from_probability(p, 0.5);
        assert_eq!((gate.ones, gate.rows), (2, 5));
        let x: Vec<f32> = (0..10).map(|v| v as f32).collect();
        let x = Tensor::<Flex, 2>::from_data(TensorData::new(x, [5, 2]), &device);
        let (rows_e, rows_n) = (Cell::new(0), Cell::new(0));
        let out = gate.mix(
            &[x],
            |r| {
                rows_e.set(r[0].dims()[0]);
                r[0].clone().mul_scalar(-1.0)
            },
            |r| {
                rows_n.set(r[0].dims()[0]);
                r[0].clone().mul_scalar(10.0)
            },
        );
        assert_eq!((rows_e.get(), rows_n.get()), (3, 2));
        let got = out.into_data().to_vec::<f32>().unwrap();
        let want = [0.0, 10.0, -2.0, -3.0, 40.0, 50.0, -6.0, -7.0, -8.0, -9.0];
        assert_eq!(got, want);
    }

    #[test]
    fn pseudo_labels_mark_exactly_the_outliers() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        // N(0, 1)-like values (clipped to ±2.5) with five large outliers among them.
        let mut dis: Vec<f32> =
            standard_normal(&mut rng, 300).iter().map(|v| v.clamp(-2.5, 2.5)).collect();
        let outliers = [3, 50, 120, 200, 299];
        for &i in &outliers {
            dis[i] = 40.0 + i as f32;
        }
        let mut window = DisagreementWindow::new(1000);
        let (y, threshold) = window.push_and_label(&dis, 3.0);
        assert!(threshold > 2.5 && threshold < 6.0, "threshold {threshold}");
        let labelled: Vec<usize> = (0..dis.len()).filter(|&i| y[i] == 1.0).collect();
        assert_eq!(labelled, outliers);

        // A constant window: MAD = 0, threshold = median, nothing labelled, nothing NaN.
        let mut constant = DisagreementWindow::new(8);
        let (y, threshold) = constant.push_and_label(&[0.25; 20], 3.0);
        assert_eq!(threshold, 0.25);
        assert!(y.iter().all(|&v| v == 0.0));
        assert_eq!(constant.len(), 8, "the window slides");
        assert_eq!(DisagreementWindow::new(4).threshold(3.0), f32::INFINITY);
    }

    #[test]
    fn expectile_near_one_pushes_the_state_gate_to_the_max() {
        // p_ω at four sampled actions; minimise L_ζ over a constant p_ζ by gradient descent.
        let device = Default::default();
        let targets = Tensor::<B, 2>::from_floats([[0.1], [0.3], [0.9], [0.5]], &device);
        let fit = |tau: f64| {
            let mut v = 0.0f32;
            for _ in 0..3000 {
                let p = Tensor::<B, 1>::from_floats([v], &device).require_grad();
                let u = targets.clone() - p.clone().reshape([1, 1]).repeat_dim(0, 4);
                let grads = expectile_loss(u, tau).backward();
                v -= 0.5 * p.grad(&grads).unwrap().into_scalar().elem::<f32>();
            }
            v
        };
        let (mean, high) = (fit(0.5), fit(0.99));
        assert!((mean - 0.45).abs() < 1e-3, "τ = 0.5 gives the mean, got {mean}");
        assert!(high > 0.85 && high < 0.9, "τ = 0.99 approaches the max 0.9, got {high}");
    }

    #[test]
    fn acting_with_the_equivariant_actor_is_invariant_under_c4() {
        let config = small_config(5);
        let mut agent = agent(config.clone());
        let batch = batch(&config);
        agent.train_step(&batch); // a non-trivial π_E
        let (obs_rep, _) = reps();
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let s: Vec<f32> = standard_normal(&mut rng, 3 * 5);
        assert!(agent.lambda_zeta(&s).iter().all(|&l| l == 0.0), "λζ = 0 in the warm-up");
        let a = agent.act(&s, ActMode::Deterministic);
        assert!(a.iter().any(|v| v.abs() > 1e-4));
        for g in obs_rep.group().elements() {
            let gs: Vec<f32> = s
                .chunks(5)
                .flat_map(|row| {
                    let row: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
                    obs_rep.act(g, &row).unwrap().into_iter().map(|v| v as f32)
                })
                .collect();
            let ga = agent.act(&gs, ActMode::Deterministic);
            for (x, y) in a.iter().zip(&ga) {
                assert!((x - y).abs() < 1e-4, "act(g·s) = {ga:?} ≠ act(s) = {a:?}");
            }
        }
    }
    #[test]
    fn checkpoint_round_trip_resumes_exactly_and_loads_for_inference() {
        let config = {
            let mut c = small_config(2);
            c.sac.seed = 11;
            c
        };
        let mut agent = agent(config.clone());
        let batch = batch(&config);
        for _ in 0..3 {
            agent.train_step(&batch);
        }
        let dir = std::env::temp_dir().join(format!("equigate-pesac-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        agent.save_checkpoint(&dir).unwrap();
        let names =
            ["q_e", "q_n", "pi_e", "pi_n", "p_e", "p_n", "gate_omega", "gate_zeta", "log_alpha"];
        for name in names {
            assert!(dir.join(format!("{name}.mpk")).is_file(), "{name}");
            assert!(dir.join(format!("{name}_optimizer.mpk")).is_file(), "{name} optimizer");
        }
        for f in [CONFIG_FILE, TRAIN_STATE_FILE, "q_e_target.mpk", "q_n_target.mpk"] {
            assert!(dir.join(f).is_file(), "{f}");
        }
        let leftovers = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0, "no temporary files remain");

        // Inference on the non-autodiff backend: the same actions as the learner's.
        let (obs_rep, act_rep) = reps();
        let device = Default::default();
        let policy = PeSacPolicy::<Flex>::load(&dir, &obs_rep, &act_rep, &device).unwrap();
        assert!(policy.gate_active);
        let s = standard_normal(&mut ChaCha8Rng::seed_from_u64(3), 4 * 5);
        let obs = Tensor::<Flex, 2>::from_data(TensorData::new(s.clone(), [4, 5]), &device);
        let loaded = to_vec(policy.act_deterministic(obs));
        let own = agent.act(&s, ActMode::Deterministic);
        assert!(
            loaded.iter().zip(&own).all(|(a, b)| (a - b).abs() < 1e-5),
            "{loaded:?} vs {own:?}"
        );

        // Resume: a fresh learner restored from the checkpoint continues exactly.
        let mut restored = PeSac::<B>::new(config, &obs_rep, &act_rep, &device)
            .unwrap()
            .load_checkpoint(&dir)
            .unwrap();
        assert_eq!(restored.updates(), 3);
        assert_eq!(restored.window, agent.window);
        assert_eq!(restored.delta_scale, agent.delta_scale);
        assert!(params(&restored.q_e_target) == params(&agent.q_e_target));
        for _ in 0..2 {
            assert_eq!(agent.train_step(&batch), restored.train_step(&batch));
        }
        assert!(params(&restored.pi_e) == params(&agent.pi_e));
        assert!(params(&restored.gate_zeta) == params(&agent.gate_zeta));
        assert!(params(&restored.q_n) == params(&agent.q_n));

        let missing = PeSacPolicy::<Flex>::load(&dir.join("nope"), &obs_rep, &act_rep, &device);
        assert!(missing.unwrap_err().to_string().contains("nope"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
