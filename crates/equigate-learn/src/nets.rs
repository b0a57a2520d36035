//! Networks of the SAC family and PE-SAC: twin critics, tanh-Gaussian actors, one-step predictors
//! and gates, each with its own trunk (`reference/algorithms.md` §1: "critic, actor, predictors and
//! gate each have their own trunk").
//!
//! | network | equivariant (`Equi*`) | standard (`Mlp*`) |
//! |---|---|---|
//! | twin critic Q | ρ_s ⊕ ρ_a → regular hidden → trivial, ×2 | MLP, ×2 |
//! | actor π (mean, log-std) | ρ_s → regular hidden → ρ_a ⊕ ρ_logstd | MLP |
//! | value V (IQL) | ρ_s → regular hidden → trivial | MLP |
//! | predictor P̂ (Δs, r̂) | ρ_s ⊕ ρ_a → regular hidden → ρ_s ⊕ trivial | MLP |
//! | gates p_ω(s,a), p_ζ(s) | — | MLP + sigmoid |
//!
//! # Sources
//! §1.1 (the networks of one PE-SAC update), §1.2 (widths), §2.1/§2.2 (relaxed and RPP trunks for
//! the Approx-SAC and RPP-SAC baselines), §6 (exactness); the actor's tanh-Gaussian and log-std
//! range follow CleanRL's `sac_continuous_action.py`.
//!
//! # What differs
//! The PE-SAC paper uses EMLP trunks with a mixed middle representation (§1.2, e.g. `136T0+30T1`
//! for Z4). Here the hidden features are copies of the regular representation of G, on which a
//! pointwise ReLU is exact, so no gated nonlinearity is needed inside the trunk (the trunk still
//! applies [`GatedActivation`], which is plain ReLU on regular features).

use std::f64::consts::{LN_2, TAU};

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use equigate_symmetry::{bias_basis, Block, Group, Representation};
use rand::Rng;

use crate::layers::{
    float_tensor, index_tensor, param, standard_normal, EquivariantLinear, GatedActivation,
    LayerError, Mlp, RelaxedRegularLinear, RppConfig, RppLinear,
};
use crate::sac::Value;

/// Which kind of equivariant trunk.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum EquiKind {
    /// Exact: every layer an [`EquivariantLinear`] (Equi-SAC, PE-SAC's equivariant branch).
    Exact,
    /// Approximate (Approx-SAC, §2.1): an exact embedding ρ_in → regular, relaxed regular layers,
    /// an exact regular → ρ_out layer.
    Relaxed,
    /// Residual pathway prior (RPP-SAC, §2.2): every layer an [`RppLinear`].
    Rpp,
}

/// Widths of the plain MLPs (critics, actors, predictors, gates).
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Hidden widths (default: `[256, 256]`, the 2×256 of SAC and of RPP's jax-rl defaults, §1.2).
    #[config(default = "vec![256, 256]")]
    pub hidden: Vec<usize>,
}

/// Shape of the equivariant trunks.
#[derive(Config, Debug)]
pub struct EquiConfig {
    /// Width of each hidden layer in features (default: `256`). It is rounded up to whole copies
    /// of the regular representation: 64 copies for C_4, 32 for C_8. 256 dims match the 2×256
    /// MLPs (§1.2 asks for an EMLP middle representation of about 256 dims), so an equivariant
    /// network costs the same dense FLOPs as its standard twin and has |G|× fewer parameters.
    #[config(default = 256)]
    pub hidden_dim: usize,
    /// Number of hidden layers (default: `2`, as the MLPs).
    #[config(default = 2)]
    pub hidden_layers: usize,
    /// Exact, relaxed or RPP layers (default: `Exact`).
    #[config(default = "EquiKind::Exact")]
    pub kind: EquiKind,
    /// Relaxed kernels L of [`RelaxedRegularLinear`] (default: `1`, Park et al.'s choice, §2.1).
    #[config(default = 1)]
    pub relaxed_kernels: usize,
    /// Priors of the RPP layers (default: [`RppConfig`]'s defaults; RPP uses 0/0 in critics).
    #[config(default = "RppConfig::new()")]
    pub rpp: RppConfig,
    /// Width of the invariant embedding, 0 for none (default: `0`, the plain trunk of the
    /// equivariant baselines). See [`InvariantEmbedding`]; it is read by the equivariant path of
    /// the first layer only (an RPP layer's basic path does not see it).
    #[config(default = 0)]
    pub invariant_embedding: usize,
}

impl EquiConfig {
    /// The hidden representation: ⌈hidden_dim / |G|⌉ copies of the regular representation.
    /// Errors if `hidden_dim` is 0.
    pub fn hidden_representation(&self, group: &Group) -> Result<Representation, LayerError> {
        if self.hidden_dim == 0 {
            return Err(LayerError::TooSmall { what: "hidden_dim", min: 1, got: 0 });
        }
        Ok(Representation::regular(group).repeat(self.hidden_dim.div_ceil(group.order())))
    }
}

/// The actor's log-std range.
///
/// log σ = min + ½(max − min)(tanh(raw) + 1), CleanRL's smooth squashing into [min, max], which
/// keeps a gradient everywhere (a hard clamp has none outside the range).
#[derive(Config, Debug)]
pub struct ActorConfig {
    /// Lowest log σ (default: `-5.0`, CleanRL's; σ ≥ 6.7e-3 keeps log π finite in f32, while
    /// SB3's −20 allows σ ≈ 2e-9, far below any useful joint-velocity resolution).
    #[config(default = -5.0)]
    pub log_std_min: f64,
    /// Highest log σ (default: `2.0`, as CleanRL and SB3).
    #[config(default = 2.0)]
    pub log_std_max: f64,
}

/// All network hyperparameters, with their defaults, in one place (saved beside checkpoints).
#[derive(Config, Debug)]
pub struct NetsConfig {
    /// Plain MLPs: Q_N, π_N, P̂_N, p_ω, p_ζ (default: 2×256).
    #[config(default = "MlpConfig::new()")]
    pub mlp: MlpConfig,
    /// Equivariant trunks: Q_E, π_E, P̂_E (default: 2 × 256 regular features, exact).
    #[config(default = "EquiConfig::new()")]
    pub equi: EquiConfig,
    /// Actor log-std range (default: [−5, 2]).
    #[config(default = "ActorConfig::new()")]
    pub actor: ActorConfig,
}

/// A dense ReLU layer on the invariant (trivial) input coordinates, read into the first layer of
/// an equivariant trunk: e = relu(W x_inv + b), `width` features, and y₀ += e C V with C
/// `[width, n_fixed]` learned and V `[n_fixed, dim ρ_out]` the orthonormal invariant vectors of
/// that layer's output representation ρ_out.
///
/// This is the trunk that appends e to its input as `width` more trivial fields (ρ_in ⊕ `width` ×
/// trivial) before an equivariant first layer: an equivariant map from a trivial field into ρ_out
/// is a combination of the invariant vectors of ρ_out, so that layer's block on e is exactly C V
/// (and C's initialisation, N(0, 1/(dim ρ_in + width)), is that layer's Π(W₀) on the block).
/// Applying the block apart costs batch·n_fixed·(width + dim ρ_out) multiply-adds instead of
/// rebuilding and multiplying a `[dim ρ_in + width, dim ρ_out]` weight. An equivariant twin
/// critic of C_4 × 256 with a 256-wide embedding takes 4.6 ms per forward + backward at batch
/// 256, against 6.9 ms the other way and 3.2 ms without the embedding (`update_rate
/// --breakdown`, BENCHMARKS.md).
///
/// Why: a map from the trivial representation into a regular one has one weight per regular
/// copy, so the |G| hidden units of a copy share their response to the invariant inputs. A
/// critic of C_8 at width 256 thus sees an invariant action through 32 directions where the
/// MLP critic has 256, which a conservative penalty that must shape Q over actions (CQL) may
/// need. The embedding keeps the trunk exactly equivariant, since every group element fixes the
/// coordinates it reads and the vectors it writes along. Measured on Equi-CQL (BENCHMARKS.md, 1k
/// transitions): with a 256-wide embedding the conservative gap closes as fast as the MLP
/// critic's, but the policy does not succeed more often. Online (the 100k-step UR5e obstacle
/// experiment, three seeds): PE-SAC's deterministic success 79.7% → 89.7%, Equi-SAC's 59.7% →
/// 83.7%, and the equivariant actors stop winding a wrist near the goal.
///
/// # Shapes
/// `[batch, dim ρ_in] -> [batch, dim ρ_out]`, to be added to the first layer's output.
#[derive(Module, Debug)]
pub struct InvariantEmbedding<B: Backend> {
    /// The trivial coordinates of ρ_in, `[n_invariant]`.
    index: Tensor<B, 1, Int>,
    /// n_invariant → width.
    dense: Mlp<B>,
    /// C: the coefficients of each embedded feature on the invariant vectors, `[width, n_fixed]`.
    pub readout: Param<Tensor<B, 2>>,
    /// V: the orthonormal invariant vectors of ρ_out as rows, `[n_fixed, dim ρ_out]`.
    fixed: Tensor<B, 2>,
}

impl<B: Backend> InvariantEmbedding<B> {
    /// The embedding of the trivial coordinates of `rho_in` into `width` features, read out into
    /// `rho_out`; `None` if `width` is 0, ρ_in has no trivial block or ρ_out no invariant vector
    /// (then the appended fields could not reach the output either).
    ///
    /// # Errors
    /// None in practice (the widths are positive); [`LayerError`] from [`Mlp::new`].
    pub fn new(
        rho_in: &Representation,
        rho_out: &Representation,
        width: usize,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<Option<Self>, LayerError> {
        let trivial: Vec<usize> = rho_in
            .blocks()
            .iter()
            .zip(rho_in.block_offsets())
            .filter(|(block, _)| matches!(block, Block::Trivial))
            .map(|(_, offset)| offset)
            .collect();
        let fixed = bias_basis(rho_out);
        if width == 0 || trivial.is_empty() || fixed.is_empty() {
            return Ok(None);
        }
        let dense = Mlp::new(trivial.len(), &[], width, rng, device)?;
        let std = 1.0 / ((rho_in.dim() + width) as f64).sqrt();
        let c: Vec<f64> = (0..width * fixed.len()).map(|_| std * standard_normal(rng)).collect();
        let v: Vec<f64> = fixed.iter().flat_map(|v| v.iter().copied()).collect();
        Ok(Some(Self {
            index: index_tensor(&trivial, device),
            dense,
            readout: param(&c, [width, fixed.len()], device),
            fixed: float_tensor(&v, [fixed.len(), rho_out.dim()], device),
        }))
    }

    /// e C V, the embedding's contribution to the first layer's output.
    ///
    /// # Shapes
    /// `x: [batch, dim ρ_in]` -> `[batch, dim ρ_out]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let features = relu(self.dense.forward(x.select(1, self.index.clone())));
        features.matmul(self.readout.val()).matmul(self.fixed.clone())
    }
}

/// One layer of an [`EquiTrunk`].
#[derive(Module, Debug)]
pub enum EquiLayer<B: Backend> {
    /// Exact equivariant linear.
    Exact(EquivariantLinear<B>),
    /// Relaxed regular layer.
    Relaxed(RelaxedRegularLinear<B>),
    /// RPP layer.
    Rpp(RppLinear<B>),
    /// A built (frozen) weight of one of the others, see [`EquiTrunk::frozen`].
    Dense(Linear<B>),
}

impl<B: Backend> EquiLayer<B> {
    /// The transposed weight `[d_in, d_out]` and bias `[d_out]`.
    fn weight_bias(&self) -> (Tensor<B, 2>, Option<Tensor<B, 1>>) {
        match self {
            EquiLayer::Exact(l) => (l.weight(), l.bias()),
            EquiLayer::Relaxed(l) => (l.weight(), Some(l.bias())),
            EquiLayer::Rpp(l) => (l.weight(), Some(l.bias())),
            EquiLayer::Dense(l) => (l.weight.val(), l.bias.as_ref().map(Param::val)),
        }
    }

    /// Apply the layer.
    ///
    /// # Shapes
    /// `[batch, d_in] -> [batch, d_out]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            EquiLayer::Exact(l) => l.forward(x),
            EquiLayer::Relaxed(l) => l.forward(x),
            EquiLayer::Rpp(l) => l.forward(x),
            EquiLayer::Dense(l) => l.forward(x),
        }
    }

    /// The layer with its initial weights (and the RPP basic path's bias) multiplied by
    /// `factor`; meant right after construction.
    fn scale_init(self, factor: f64) -> Self {
        fn scaled<B: Backend, const D: usize>(
            p: Param<Tensor<B, D>>,
            factor: f64,
        ) -> Param<Tensor<B, D>> {
            // A new leaf: the product alone would be a node of the old parameter's graph.
            Param::from_tensor((p.val() * factor).detach())
        }
        match self {
            EquiLayer::Exact(mut l) => {
                l.beta = scaled(l.beta, factor);
                EquiLayer::Exact(l)
            }
            EquiLayer::Rpp(mut l) => {
                l.equiv.beta = scaled(l.equiv.beta, factor);
                l.basic_weight = scaled(l.basic_weight, factor);
                l.basic_bias = scaled(l.basic_bias, factor);
                EquiLayer::Rpp(l)
            }
            other => other,
        }
    }

    /// The RPP prior of this layer, `None` for the other kinds.
    ///
    /// # Shapes
    /// `[1]`.
    pub fn prior(&self) -> Option<Tensor<B, 1>> {
        match self {
            EquiLayer::Rpp(l) => Some(l.prior()),
            _ => None,
        }
    }
}

/// An equivariant trunk ρ_in → hidden (regular copies) → ρ_out with [`GatedActivation`]s between
/// layers and none after the last.
///
/// # Shapes
/// `[batch, dim ρ_in] -> [batch, dim ρ_out]`.
#[derive(Module, Debug)]
pub struct EquiTrunk<B: Backend> {
    /// The invariant embedding before the first layer, if `invariant_embedding > 0`.
    pub embedding: Option<InvariantEmbedding<B>>,
    /// The layers, input first (`hidden_layers + 1` of them).
    pub layers: Vec<EquiLayer<B>>,
    /// The nonlinearity after each layer but the last.
    acts: Vec<GatedActivation<B>>,
}

impl<B: Backend> EquiTrunk<B> {
    /// A trunk ρ_in → ρ_out shaped by `config`. Errors if the groups differ, a size is 0, or some
    /// layer has no equivariant map (e.g. ρ_out has invariant outputs but ρ_in only ρ1 fields).
    pub fn new(
        config: &EquiConfig,
        rho_in: &Representation,
        rho_out: &Representation,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<Self, LayerError> {
        if config.hidden_layers == 0 {
            return Err(LayerError::TooSmall { what: "hidden_layers", min: 1, got: 0 });
        }
        let group = rho_in.group();
        let hidden = config.hidden_representation(group)?;
        let copies = hidden.dim() / group.order();
        let pre_act = GatedActivation::<B>::input_representation(&hidden);
        let mut layers = Vec::with_capacity(config.hidden_layers + 1);
        let mut acts = Vec::with_capacity(config.hidden_layers);
        let embedding =
            InvariantEmbedding::new(rho_in, &pre_act, config.invariant_embedding, rng, device)?;
        let mut rho = rho_in.clone();
        for i in 0..=config.hidden_layers {
            let last = i == config.hidden_layers;
            let out = if last { rho_out } else { &pre_act };
            let layer = match config.kind {
                EquiKind::Exact => {
                    EquiLayer::Exact(EquivariantLinear::new(&rho, out, rng, device)?)
                }
                EquiKind::Rpp => {
                    EquiLayer::Rpp(RppLinear::new(&rho, out, &config.rpp, rng, device)?)
                }
                // The relaxed layers sit between regular representations; the embedding and the
                // output layer are exact (§2.1, state-vector version).
                EquiKind::Relaxed if i == 0 || last => {
                    EquiLayer::Exact(EquivariantLinear::new(&rho, out, rng, device)?)
                }
                EquiKind::Relaxed => EquiLayer::Relaxed(RelaxedRegularLinear::new(
                    group,
                    copies,
                    copies,
                    config.relaxed_kernels,
                    rng,
                    device,
                )?),
            };
            // The first layer's initialisation is that of a layer on ρ_in ⊕ width × trivial
            // (LeCun over the whole fan-in), of which the embedding holds the other block.
            let layer = match (&embedding, i) {
                (Some(_), 0) => {
                    let fan_in = rho_in.dim() + config.invariant_embedding;
                    layer.scale_init((rho_in.dim() as f64 / fan_in as f64).sqrt())
                }
                _ => layer,
            };
            layers.push(layer);
            if !last {
                acts.push(GatedActivation::new(&hidden, device));
                rho = hidden.clone();
            }
        }
        Ok(EquiTrunk { embedding, layers, acts })
    }

    /// Apply the trunk.
    ///
    /// # Shapes
    /// `x: [batch, dim ρ_in]` -> `[batch, dim ρ_out]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let mut embedded = self.embedding.as_ref().map(|embedding| embedding.forward(x.clone()));
        let mut x = x;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if let Some(e) = embedded.take() {
                x = x + e;
            }
            if let Some(act) = self.acts.get(i) {
                x = act.forward(x);
            }
        }
        x
    }

    /// Σ of the RPP priors of the layers, `None` if no layer is RPP.
    ///
    /// # Shapes
    /// `[1]`.
    pub fn prior(&self) -> Option<Tensor<B, 1>> {
        self.layers.iter().filter_map(EquiLayer::prior).reduce(|a, b| a + b)
    }

    /// A copy whose layers hold their built weights as plain dense `Linear`s: the same function,
    /// without rebuilding W = Σ β_k B_k on every call (burn.md: that costs ~26%). Meant for
    /// acting and evaluation on no-grad copies (`module.valid().frozen()`), rebuilt once per
    /// update; its parameters are new leaves, not tied to the original's, and its record differs
    /// (do not checkpoint it).
    pub fn frozen(&self) -> Self {
        let layers = self
            .layers
            .iter()
            .map(|layer| {
                let (w, b) = layer.weight_bias();
                EquiLayer::Dense(Linear {
                    weight: Param::from_tensor(w.detach()),
                    bias: b.map(|b| Param::from_tensor(b.detach())),
                })
            })
            .collect();
        EquiTrunk { embedding: self.embedding.clone(), layers, acts: self.acts.clone() }
    }
}

/// Concatenate observation and action features.
///
/// # Shapes
/// `obs: [batch, obs_dim]`, `act: [batch, act_dim]` -> `[batch, obs_dim + act_dim]`.
fn cat_obs_act<B: Backend>(obs: Tensor<B, 2>, act: Tensor<B, 2>) -> Tensor<B, 2> {
    Tensor::cat(vec![obs, act], 1)
}

/// The invariant twin critic Q_E^{1,2}: two trunks ρ_s ⊕ ρ_a → regular hidden → trivial.
///
/// # Shapes
/// `obs: [batch, obs_dim]`, `act: [batch, act_dim]` -> `[batch, 2]` (column j is Q^{j+1}).
#[derive(Module, Debug)]
pub struct EquiCritic<B: Backend> {
    /// Q^1.
    pub q1: EquiTrunk<B>,
    /// Q^2.
    pub q2: EquiTrunk<B>,
}

impl<B: Backend> EquiCritic<B> {
    /// Twin invariant critics for observation representation `obs` and action representation
    /// `act`. Errors as [`EquiTrunk::new`].
    pub fn new(
        config: &EquiConfig,
        obs: &Representation,
        act: &Representation,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<Self, LayerError> {
        let rho_in = obs.oplus(act)?;
        let trivial = Representation::trivial(obs.group());
        Ok(EquiCritic {
            q1: EquiTrunk::new(config, &rho_in, &trivial, rng, device)?,
            q2: EquiTrunk::new(config, &rho_in, &trivial, rng, device)?,
        })
    }

    /// Q^1(s, a), Q^2(s, a).
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]`, `act: [batch, act_dim]` -> `[batch, 2]`.
    pub fn forward(&self, obs: Tensor<B, 2>, act: Tensor<B, 2>) -> Tensor<B, 2> {
        let x = cat_obs_act(obs, act);
        Tensor::cat(vec![self.q1.forward(x.clone()), self.q2.forward(x)], 1)
    }

    /// Σ of the RPP priors, `None` unless the trunks are RPP.
    ///
    /// # Shapes
    /// `[1]`.
    pub fn prior(&self) -> Option<Tensor<B, 1>> {
        [self.q1.prior(), self.q2.prior()].into_iter().flatten().reduce(|a, b| a + b)
    }

    /// A dense copy for acting/evaluation (see [`EquiTrunk::frozen`]).
    pub fn frozen(&self) -> Self {
        EquiCritic { q1: self.q1.frozen(), q2: self.q2.frozen() }
    }
}

/// The standard twin critic Q_N^{1,2}: two MLPs (obs ⊕ act) → 1.
///
/// # Shapes
/// `obs: [batch, obs_dim]`, `act: [batch, act_dim]` -> `[batch, 2]`.
#[derive(Module, Debug)]
pub struct MlpCritic<B: Backend> {
    /// Q^1.
    pub q1: Mlp<B>,
    /// Q^2.
    pub q2: Mlp<B>,
}

impl<B: Backend> MlpCritic<B> {
    /// Twin MLP critics. Errors if a width is 0.
    pub fn new(
        config: &MlpConfig,
        obs_dim: usize,
        act_dim: usize,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<Self, LayerError> {
        Ok(MlpCritic {
            q1: Mlp::new(obs_dim + act_dim, &config.hidden, 1, rng, device)?,
            q2: Mlp::new(obs_dim + act_dim, &config.hidden, 1, rng, device)?,
        })
    }

    /// Q^1(s, a), Q^2(s, a).
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]`, `act: [batch, act_dim]` -> `[batch, 2]`.
    pub fn forward(&self, obs: Tensor<B, 2>, act: Tensor<B, 2>) -> Tensor<B, 2> {
        let x = cat_obs_act(obs, act);
        Tensor::cat(vec![self.q1.forward(x.clone()), self.q2.forward(x)], 1)
    }
}

/// The invariant state-value function V_E(s) of Equi-IQL (Tangri et al., algorithms.md §3.2): one
/// trunk ρ_s → regular hidden → trivial, built as one head of [`EquiCritic`] without the action
/// input, so V(gs) = V(s) for every g.
///
/// # Shapes
/// `obs: [batch, obs_dim]` -> `[batch, 1]`.
#[derive(Module, Debug)]
pub struct EquiValue<B: Backend> {
    /// The trunk ρ_s → trivial.
    pub trunk: EquiTrunk<B>,
}

impl<B: Backend> EquiValue<B> {
    /// An invariant value network for observation representation `obs`. Errors as
    /// [`EquiTrunk::new`].
    pub fn new(
        config: &EquiConfig,
        obs: &Representation,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<Self, LayerError> {
        let trivial = Representation::trivial(obs.group());
        Ok(EquiValue { trunk: EquiTrunk::new(config, obs, &trivial, rng, device)? })
    }

    /// V(s).
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]` -> `[batch, 1]`.
    pub fn forward(&self, obs: Tensor<B, 2>) -> Tensor<B, 2> {
        self.trunk.forward(obs)
    }

    /// The RPP prior of the trunk, `None` unless it is RPP.
    ///
    /// # Shapes
    /// `[1]`.
    pub fn prior(&self) -> Option<Tensor<B, 1>> {
        self.trunk.prior()
    }

    /// A dense copy for evaluation (see [`EquiTrunk::frozen`]).
    pub fn frozen(&self) -> Self {
        EquiValue { trunk: self.trunk.frozen() }
    }
}

/// The standard state-value function V(s) of IQL: an MLP obs → 1.
///
/// # Shapes
/// `obs: [batch, obs_dim]` -> `[batch, 1]`.
#[derive(Module, Debug)]
pub struct MlpValue<B: Backend> {
    /// The MLP.
    pub mlp: Mlp<B>,
}

impl<B: Backend> MlpValue<B> {
    /// An MLP value network. Errors if a width is 0.
    pub fn new(
        config: &MlpConfig,
        obs_dim: usize,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<Self, LayerError> {
        Ok(MlpValue { mlp: Mlp::new(obs_dim, &config.hidden, 1, rng, device)? })
    }

    /// V(s).
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]` -> `[batch, 1]`.
    pub fn forward(&self, obs: Tensor<B, 2>) -> Tensor<B, 2> {
        self.mlp.forward(obs)
    }
}

impl<B: Backend> Value<B> for EquiValue<B> {
    fn v(&self, obs: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(obs)
    }

    fn prior(&self) -> Option<Tensor<B, 1>> {
        EquiValue::prior(self)
    }
}

impl<B: Backend> Value<B> for MlpValue<B> {
    fn v(&self, obs: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(obs)
    }
}

/// log σ = min + ½(max − min)(tanh(raw) + 1) (see [`ActorConfig`]).
fn squash_log_std<B: Backend>(raw: Tensor<B, 2>, min: f64, max: f64) -> Tensor<B, 2> {
    raw.tanh().add_scalar(1.0).mul_scalar(0.5 * (max - min)).add_scalar(min)
}

fn check_range(config: &ActorConfig) -> Result<(), LayerError> {
    if config.log_std_min < config.log_std_max {
        Ok(())
    } else {
        Err(LayerError::BadRange {
            what: "log_std_min/log_std_max",
            min: config.log_std_min,
            max: config.log_std_max,
        })
    }
}

/// A reparameterised sample of the tanh-squashed Gaussian and its log-likelihood:
/// u = μ + σ ε, a = tanh u, log π(a|s) = Σ_i [log N(u_i; μ_i, σ_i) − log(1 − tanh² u_i)], with
/// log(1 − tanh² u) = 2(log 2 − u − softplus(−2u)) and softplus(x) = max(x, 0) + log1p(e^{−|x|}),
/// finite for any |u| (arXiv:1812.05905 App. C; the form of TF-Agents and SB3). The one
/// tanh-Gaussian of the crate: SAC and both PE-SAC actors use it.
///
/// # Shapes
/// `mean, log_std, eps: [batch, act_dim]` -> (`action: [batch, act_dim]` in (−1, 1),
/// `log_prob: [batch, 1]` in nats).
pub fn tanh_gaussian<B: Backend>(
    mean: Tensor<B, 2>,
    log_std: Tensor<B, 2>,
    eps: Tensor<B, 2>,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let u = mean + log_std.clone().exp() * eps.clone();
    let action = u.clone().tanh();
    let gauss = (eps.square().mul_scalar(-0.5) - log_std).sub_scalar(0.5 * TAU.ln());
    let log_det =
        (u.clone().neg() - stable_softplus(u.mul_scalar(-2.0))).add_scalar(LN_2).mul_scalar(2.0);
    (action, (gauss - log_det).sum_dim(1))
}

/// softplus(x) = log(1 + eˣ) = max(x, 0) + log1p(e^{−|x|}), which never overflows (burn's
/// `softplus` computes log1p(eˣ) and gives ∞ for x ≳ 89 in f32).
fn stable_softplus<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    relu(x.clone()) + x.abs().neg().exp().log1p()
}

/// The representation of the compact log-std output of an equivariant actor and the index that
/// expands it to one log-std per action coordinate. Per action block: trivial and sign → one
/// invariant scalar; ρ1 → one invariant scalar shared by the pair (σ_x = σ_y, §1.1 "Exactness
/// caveats"); regular and permutation → the same representation (log-stds permuted with the
/// action).
fn log_std_layout(act: &Representation) -> Result<(Representation, Vec<usize>), LayerError> {
    let group = act.group();
    let mut parts = Vec::new();
    let mut expand = Vec::with_capacity(act.dim());
    let mut compact = 0;
    for block in act.blocks() {
        match block {
            Block::Trivial | Block::Sign | Block::Standard => {
                parts.push(Representation::trivial(group));
                expand.extend(std::iter::repeat_n(compact, block.dim(group)));
                compact += 1;
            }
            Block::Regular => {
                parts.push(Representation::regular(group));
                expand.extend(compact..compact + group.order());
                compact += group.order();
            }
            Block::Permutation(p) => {
                parts
                    .push(Representation::permutation(group, p.degree(), |g| p.sigma(g).to_vec())?);
                expand.extend(compact..compact + p.degree());
                compact += p.degree();
            }
        }
    }
    Ok((Representation::direct_sum(&parts)?, expand))
}

/// The equivariant tanh-Gaussian actor π_E: a trunk ρ_s → regular hidden → ρ_a ⊕ ρ_logstd.
///
/// The mean is equivariant, μ(gs) = ρ_a(g)μ(s); the log-std is invariant on trivial, sign and ρ1
/// action blocks (tied across each ρ1 pair) and permuted on regular/permutation blocks. For the
/// UR5e's joint velocities ρ_a is trivial, so the whole actor is invariant. tanh commutes with
/// ρ_a(g) only for signed permutations (C_4, D_4, not C_8's 45° turns, §1.1).
///
/// # Shapes
/// `obs: [batch, obs_dim]` -> (`mean: [batch, act_dim]` pre-tanh, `log_std: [batch, act_dim]`).
#[derive(Module, Debug)]
pub struct EquiActor<B: Backend> {
    /// The trunk, output `[mean (act_dim), compact log-std]`.
    pub trunk: EquiTrunk<B>,
    /// Compact log-std column of each action coordinate, `[act_dim]`.
    log_std_expand: Tensor<B, 1, Int>,
    act_dim: usize,
    log_std_dim: usize,
    log_std_min: f64,
    log_std_max: f64,
}

impl<B: Backend> EquiActor<B> {
    /// An equivariant actor. Errors as [`EquiTrunk::new`] or if the log-std range is empty.
    pub fn new(
        config: &EquiConfig,
        actor: &ActorConfig,
        obs: &Representation,
        act: &Representation,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<Self, LayerError> {
        check_range(actor)?;
        let (log_std_rep, expand) = log_std_layout(act)?;
        let rho_out = act.oplus(&log_std_rep)?;
        Ok(EquiActor {
            trunk: EquiTrunk::new(config, obs, &rho_out, rng, device)?,
            log_std_expand: index_tensor(&expand, device),
            act_dim: act.dim(),
            log_std_dim: log_std_rep.dim(),
            log_std_min: actor.log_std_min,
            log_std_max: actor.log_std_max,
        })
    }

    /// Mean (pre-tanh) and log-std of the Gaussian.
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]` -> (`[batch, act_dim]`, `[batch, act_dim]`).
    pub fn forward(&self, obs: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let y = self.trunk.forward(obs); // [batch, act_dim + log_std_dim]
        let mean = y.clone().narrow(1, 0, self.act_dim);
        let raw =
            y.narrow(1, self.act_dim, self.log_std_dim).select(1, self.log_std_expand.clone());
        (mean, squash_log_std(raw, self.log_std_min, self.log_std_max))
    }

    /// A dense copy for acting/evaluation (see [`EquiTrunk::frozen`]).
    pub fn frozen(&self) -> Self {
        EquiActor { trunk: self.trunk.frozen(), ..self.clone() }
    }
}

/// The standard tanh-Gaussian actor π_N: an MLP obs → (mean, raw log-std).
///
/// # Shapes
/// `obs: [batch, obs_dim]` -> (`mean: [batch, act_dim]` pre-tanh, `log_std: [batch, act_dim]`).
#[derive(Module, Debug)]
pub struct MlpActor<B: Backend> {
    /// The MLP, output `[mean (act_dim), raw log-std (act_dim)]`.
    pub mlp: Mlp<B>,
    act_dim: usize,
    log_std_min: f64,
    log_std_max: f64,
}

impl<B: Backend> MlpActor<B> {
    /// An MLP actor. Errors if a width is 0 or the log-std range is empty.
    pub fn new(
        config: &MlpConfig,
        actor: &ActorConfig,
        obs_dim: usize,
        act_dim: usize,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<Self, LayerError> {
        check_range(actor)?;
        Ok(MlpActor {
            mlp: Mlp::new(obs_dim, &config.hidden, 2 * act_dim, rng, device)?,
            act_dim,
            log_std_min: actor.log_std_min,
            log_std_max: actor.log_std_max,
        })
    }

    /// Mean (pre-tanh) and log-std of the Gaussian.
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]` -> (`[batch, act_dim]`, `[batch, act_dim]`).
    pub fn forward(&self, obs: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let y = self.mlp.forward(obs);
        let mean = y.clone().narrow(1, 0, self.act_dim);
        let raw = y.narrow(1, self.act_dim, self.act_dim);
        (mean, squash_log_std(raw, self.log_std_min, self.log_std_max))
    }
}

/// The equivariant one-step predictor P̂_E: a trunk ρ_s ⊕ ρ_a → regular hidden → ρ_s ⊕ trivial,
/// whose outputs are the (normalised) state change and the invariant reward head.
///
/// # Shapes
/// `obs: [batch, obs_dim]`, `act: [batch, act_dim]` -> (`delta_s: [batch, obs_dim]`,
/// `reward: [batch, 1]`).
#[derive(Module, Debug)]
pub struct EquiPredictor<B: Backend> {
    /// The trunk, output `[delta_s (obs_dim), reward (1)]`.
    pub trunk: EquiTrunk<B>,
    obs_dim: usize,
}

impl<B: Backend> EquiPredictor<B> {
    /// An equivariant predictor. Errors as [`EquiTrunk::new`].
    pub fn new(
        config: &EquiConfig,
        obs: &Representation,
        act: &Representation,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<Self, LayerError> {
        let rho_in = obs.oplus(act)?;
        let rho_out = obs.oplus(&Representation::trivial(obs.group()))?;
        Ok(EquiPredictor {
            trunk: EquiTrunk::new(config, &rho_in, &rho_out, rng, device)?,
            obs_dim: obs.dim(),
        })
    }

    /// Predicted Δs and reward.
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]`, `act: [batch, act_dim]` -> (`[batch, obs_dim]`, `[batch, 1]`).
    pub fn forward(&self, obs: Tensor<B, 2>, act: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let y = self.trunk.forward(cat_obs_act(obs, act));
        (y.clone().narrow(1, 0, self.obs_dim), y.narrow(1, self.obs_dim, 1))
    }
}

/// The standard one-step predictor P̂_N: an MLP (obs ⊕ act) → (Δs, reward).
///
/// # Shapes
/// `obs: [batch, obs_dim]`, `act: [batch, act_dim]` -> (`delta_s: [batch, obs_dim]`,
/// `reward: [batch, 1]`).
#[derive(Module, Debug)]
pub struct MlpPredictor<B: Backend> {
    /// The MLP, output `[delta_s (obs_dim), reward (1)]`.
    pub mlp: Mlp<B>,
    obs_dim: usize,
}

impl<B: Backend> MlpPredictor<B> {
    /// An MLP predictor. Errors if a width is 0.
    pub fn new(
        config: &MlpConfig,
        obs_dim: usize,
        act_dim: usize,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<Self, LayerError> {
        Ok(MlpPredictor {
            mlp: Mlp::new(obs_dim + act_dim, &config.hidden, obs_dim + 1, rng, device)?,
            obs_dim,
        })
    }

    /// Predicted Δs and reward.
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]`, `act: [batch, act_dim]` -> (`[batch, obs_dim]`, `[batch, 1]`).
    pub fn forward(&self, obs: Tensor<B, 2>, act: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let y = self.mlp.forward(cat_obs_act(obs, act));
        (y.clone().narrow(1, 0, self.obs_dim), y.narrow(1, self.obs_dim, 1))
    }
}

/// The state-action gate p_ω(s, a) = σ(MLP(s ⊕ a)) = Pr(λ = 1 | s, a).
///
/// # Shapes
/// `obs: [batch, obs_dim]`, `act: [batch, act_dim]` -> `[batch, 1]`.
#[derive(Module, Debug)]
pub struct ActionGate<B: Backend> {
    /// The MLP, output the logit.
    pub mlp: Mlp<B>,
}

impl<B: Backend> ActionGate<B> {
    /// A state-action gate. Errors if a width is 0.
    pub fn new(
        config: &MlpConfig,
        obs_dim: usize,
        act_dim: usize,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<Self, LayerError> {
        Ok(ActionGate { mlp: Mlp::new(obs_dim + act_dim, &config.hidden, 1, rng, device)? })
    }

    /// The logit (for a stable BCE loss).
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]`, `act: [batch, act_dim]` -> `[batch, 1]`.
    pub fn logits(&self, obs: Tensor<B, 2>, act: Tensor<B, 2>) -> Tensor<B, 2> {
        self.mlp.forward(cat_obs_act(obs, act))
    }

    /// The probability p_ω(s, a) in (0, 1).
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]`, `act: [batch, act_dim]` -> `[batch, 1]`.
    pub fn forward(&self, obs: Tensor<B, 2>, act: Tensor<B, 2>) -> Tensor<B, 2> {
        sigmoid(self.logits(obs, act))
    }
}

/// The state gate p_ζ(s) = σ(MLP(s)), trained towards max_a p_ω(s, a).
///
/// # Shapes
/// `obs: [batch, obs_dim]` -> `[batch, 1]`.
#[derive(Module, Debug)]
pub struct StateGate<B: Backend> {
    /// The MLP, output the logit.
    pub mlp: Mlp<B>,
}

impl<B: Backend> StateGate<B> {
    /// A state gate. Errors if a width is 0.
    pub fn new(
        config: &MlpConfig,
        obs_dim: usize,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<Self, LayerError> {
        Ok(StateGate { mlp: Mlp::new(obs_dim, &config.hidden, 1, rng, device)? })
    }

    /// The logit.
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]` -> `[batch, 1]`.
    pub fn logits(&self, obs: Tensor<B, 2>) -> Tensor<B, 2> {
        self.mlp.forward(obs)
    }

    /// The probability p_ζ(s) in (0, 1).
    ///
    /// # Shapes
    /// `obs: [batch, obs_dim]` -> `[batch, 1]`.
    pub fn forward(&self, obs: Tensor<B, 2>) -> Tensor<B, 2> {
        sigmoid(self.logits(obs))
    }
}

#[cfg(test)]
mod tests {
    use burn::module::AutodiffModule;
    use equigate_symmetry::FieldKind;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::layers::test_util::*;

    const TOL: f64 = 1e-4;

    /// Exact, relaxed and RPP trunks, and an exact one with an invariant embedding.
    fn kinds() -> [EquiConfig; 4] {
        [
            EquiConfig::new(),
            EquiConfig::new().with_kind(EquiKind::Relaxed),
            EquiConfig::new().with_kind(EquiKind::Rpp),
            EquiConfig::new().with_invariant_embedding(64),
        ]
    }

    /// Zero the basic paths of every RPP layer (then an RPP trunk is exactly equivariant).
    fn zero_basic(trunk: &mut EquiTrunk<TB>) {
        for layer in &mut trunk.layers {
            if let EquiLayer::Rpp(l) = layer {
                l.basic_weight = Param::from_tensor(l.basic_weight.val().zeros_like());
                l.basic_bias = Param::from_tensor(l.basic_bias.val().zeros_like());
            }
        }
    }

    /// Split rows of ρ_s ⊕ ρ_a inputs into the two tensors.
    fn split(x: Tensor<TB, 2>, obs_dim: usize) -> (Tensor<TB, 2>, Tensor<TB, 2>) {
        let d = x.dims()[1];
        (x.clone().narrow(1, 0, obs_dim), x.narrow(1, obs_dim, d - obs_dim))
    }

    /// The embedding's readout C has exactly as many entries as Hom_G(width × trivial, ρ_out) has
    /// dimensions, so it spans the first layer's block on appended trivial fields, and the first
    /// layer keeps the whole fan-in's LeCun scale.
    #[test]
    fn embedding_readout_spans_the_trivial_block_c4_c8() {
        let mut rng = ChaCha8Rng::seed_from_u64(19);
        let dev = Default::default();
        for n in [4, 8] {
            let g = Group::cyclic(n).unwrap();
            let rho_in = ur5e_obs(&g).oplus(&ur5e_act(&g)).unwrap();
            let cfg = EquiConfig::new().with_invariant_embedding(64);
            let hidden = cfg.hidden_representation(&g).unwrap();
            let pre_act = GatedActivation::<TB>::input_representation(&hidden);
            let trivial = Representation::trivial(&g).repeat(64);
            let block = equigate_symmetry::equivariant_basis(&trivial, &pre_act).unwrap().len();
            let trunk = EquiTrunk::<TB>::new(&cfg, &rho_in, &pre_act, &mut rng, &dev).unwrap();
            let embedding = trunk.embedding.as_ref().expect("an embedding");
            let [width, n_fixed] = embedding.readout.val().dims();
            assert_eq!((width, width * n_fixed), (64, block), "C_{n}");
            let EquiLayer::Exact(first) = &trunk.layers[0] else { panic!("exact") };
            let beta: Vec<f32> = first.beta.val().into_data().to_vec().unwrap();
            let var = beta.iter().map(|b| f64::from(*b).powi(2)).sum::<f64>() / beta.len() as f64;
            let lecun = 1.0 / (rho_in.dim() + 64) as f64;
            // Without the rescaling the ratio would be (28 + 64) / 28 ≈ 3.3.
            assert!((var / lecun - 1.0).abs() < 0.2, "C_{n}: Var β = {var}, 1/fan_in = {lecun}");
        }
    }

    #[test]
    fn critic_is_invariant_for_every_kind_c4_c8() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let dev = Default::default();
        for n in [4, 8] {
            let g = Group::cyclic(n).unwrap();
            let (obs, act) = (ur5e_obs(&g), ur5e_act(&g));
            let rho_in = obs.oplus(&act).unwrap();
            let out = Representation::trivial(&g).repeat(2);
            for cfg in kinds() {
                let mut critic = EquiCritic::<TB>::new(&cfg, &obs, &act, &mut rng, &dev).unwrap();
                zero_basic(&mut critic.q1);
                zero_basic(&mut critic.q2);
                assert_eq!(critic.q1.layers.len(), 3);
                assert_eq!(critic.q1.embedding.is_some(), cfg.invariant_embedding > 0);
                let f = |x| {
                    let (s, a) = split(x, 22);
                    critic.forward(s, a)
                };
                let err = equivariance_error(&rho_in, &out, f, &mut rng);
                assert!(err < TOL, "C{n} {cfg:?} critic: {err}");
                // The frozen copy computes the same function.
                let frozen = critic.frozen();
                let x = tensor(&random_rows(&mut rng, 4, 28), 28);
                let (s, a) = split(x, 22);
                let (y, yf) =
                    (values(critic.forward(s.clone(), a.clone())), values(frozen.forward(s, a)));
                assert!(rel_err(&yf, &y) < 1e-5);
            }
        }
    }

    #[test]
    fn value_is_invariant_for_every_kind_c4_c8() {
        let mut rng = ChaCha8Rng::seed_from_u64(18);
        let dev = Default::default();
        for n in [4, 8] {
            let g = Group::cyclic(n).unwrap();
            let obs = ur5e_obs(&g);
            let out = Representation::trivial(&g);
            for cfg in kinds() {
                let mut value = EquiValue::<TB>::new(&cfg, &obs, &mut rng, &dev).unwrap();
                zero_basic(&mut value.trunk);
                assert_eq!(value.trunk.layers.len(), 3);
                let err = equivariance_error(&obs, &out, |x| value.forward(x), &mut rng);
                assert!(err < TOL, "C{n} {cfg:?} value: {err}");
                let frozen = value.frozen();
                let x = tensor(&random_rows(&mut rng, 4, 22), 22);
                let (y, yf) = (values(value.forward(x.clone())), values(frozen.forward(x)));
                assert_eq!(y.len(), 4);
                assert!(rel_err(&yf, &y) < 1e-5);
            }
        }
        // Every parameter of the value networks gets a gradient.
        let g = Group::cyclic(4).unwrap();
        let s = ad_rows(&mut rng, 16, 22);
        for cfg in kinds() {
            let value = EquiValue::<AD>::new(&cfg, &ur5e_obs(&g), &mut rng, &dev).unwrap();
            let mut loss = value.forward(s.clone()).square().sum();
            if let Some(p) = value.prior() {
                loss = loss + p.sum();
            }
            assert_all_grads(&value, &loss.backward());
        }
        let value = MlpValue::<AD>::new(&MlpConfig::new(), 22, &mut rng, &dev).unwrap();
        assert_eq!(value.forward(s.clone()).dims(), [16, 1]);
        assert_all_grads(&value, &value.forward(s).square().sum().backward());
    }

    #[test]
    fn rpp_critic_is_not_exact_with_its_basic_path() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let g = Group::cyclic(4).unwrap();
        let (obs, act) = (ur5e_obs(&g), ur5e_act(&g));
        let cfg = EquiConfig::new().with_kind(EquiKind::Rpp).with_hidden_dim(32);
        let mut critic =
            EquiCritic::<TB>::new(&cfg, &obs, &act, &mut rng, &Default::default()).unwrap();
        for layer in critic.q1.layers.iter_mut().chain(critic.q2.layers.iter_mut()) {
            if let EquiLayer::Rpp(l) = layer {
                l.basic_weight = Param::from_tensor(l.basic_weight.val().mul_scalar(1000.0));
            }
        }
        let rho_in = obs.oplus(&act).unwrap();
        let out = Representation::trivial(&g).repeat(2);
        let err = equivariance_error(
            &rho_in,
            &out,
            |x| {
                let (s, a) = split(x, 22);
                critic.forward(s, a)
            },
            &mut rng,
        );
        assert!(err > 1e-3, "{err}");
    }

    #[test]
    fn actor_is_invariant_for_joint_actions_c4_c8() {
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let dev = Default::default();
        for n in [4, 8] {
            let g = Group::cyclic(n).unwrap();
            let (obs, act) = (ur5e_obs(&g), ur5e_act(&g));
            let out = Representation::trivial(&g).repeat(12);
            for cfg in kinds() {
                let mut actor =
                    EquiActor::<TB>::new(&cfg, &ActorConfig::new(), &obs, &act, &mut rng, &dev)
                        .unwrap();
                zero_basic(&mut actor.trunk);
                let f = |x| {
                    let (mean, log_std) = actor.forward(x);
                    Tensor::cat(vec![mean, log_std], 1)
                };
                let err = equivariance_error(&obs, &out, f, &mut rng);
                assert!(err < TOL, "C{n} {cfg:?} actor: {err}");
                let ls = values(actor.forward(tensor(&random_rows(&mut rng, 4, 22), 22)).1);
                assert!(ls.iter().all(|&v| (-5.0..=2.0).contains(&v)));
            }
        }
    }

    #[test]
    fn actor_with_rotation_pair_is_equivariant_with_tied_log_std() {
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        let dev = Default::default();
        for n in [4, 8] {
            let g = Group::cyclic(n).unwrap();
            let obs = ur5e_obs(&g);
            // Fetch-like (dx, dy) pair, then dz and the grip command.
            let act = Representation::from_layout(
                &g,
                &[(FieldKind::Rotation2, 2), (FieldKind::Invariant, 2)],
            )
            .unwrap();
            let out = act.oplus(&Representation::trivial(&g).repeat(4)).unwrap();
            let actor = EquiActor::<TB>::new(
                &EquiConfig::new(),
                &ActorConfig::new(),
                &obs,
                &act,
                &mut rng,
                &dev,
            )
            .unwrap();
            let f = |x| {
                let (mean, log_std) = actor.forward(x);
                Tensor::cat(vec![mean, log_std], 1)
            };
            let err = equivariance_error(&obs, &out, f, &mut rng);
            assert!(err < TOL, "C{n} ρ1 actor: {err}");
            let (mean, ls) = actor.forward(tensor(&random_rows(&mut rng, 5, 22), 22));
            let ls = values(ls);
            for row in ls.chunks(4) {
                assert_eq!(row[0], row[1], "log-std of the ρ1 pair must be tied");
            }
            assert!(values(mean).iter().any(|v| v.abs() > 1e-4));
        }
    }

    #[test]
    fn predictor_is_equivariant_c4_c8() {
        let mut rng = ChaCha8Rng::seed_from_u64(15);
        let dev = Default::default();
        for n in [4, 8] {
            let g = Group::cyclic(n).unwrap();
            let (obs, act) = (ur5e_obs(&g), ur5e_act(&g));
            let rho_in = obs.oplus(&act).unwrap();
            let out = obs.oplus(&Representation::trivial(&g)).unwrap();
            for cfg in kinds() {
                let mut p = EquiPredictor::<TB>::new(&cfg, &obs, &act, &mut rng, &dev).unwrap();
                zero_basic(&mut p.trunk);
                let f = |x| {
                    let (s, a) = split(x, 22);
                    let (ds, r) = p.forward(s, a);
                    assert_eq!(ds.dims()[1], 22);
                    assert_eq!(r.dims()[1], 1);
                    Tensor::cat(vec![ds, r], 1)
                };
                let err = equivariance_error(&rho_in, &out, f, &mut rng);
                assert!(err < TOL, "C{n} {cfg:?} predictor: {err}");
            }
        }
    }

    #[test]
    fn standard_networks_shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(16);
        let dev = Default::default();
        let cfg = NetsConfig::new();
        let s = tensor(&random_rows(&mut rng, 3, 22), 22);
        let a = tensor(&random_rows(&mut rng, 3, 6), 6);
        let q = MlpCritic::<TB>::new(&cfg.mlp, 22, 6, &mut rng, &dev).unwrap();
        assert_eq!(q.forward(s.clone(), a.clone()).dims(), [3, 2]);
        let pi = MlpActor::<TB>::new(&cfg.mlp, &cfg.actor, 22, 6, &mut rng, &dev).unwrap();
        let (m, ls) = pi.forward(s.clone());
        assert_eq!((m.dims(), ls.dims()), ([3, 6], [3, 6]));
        let p = MlpPredictor::<TB>::new(&cfg.mlp, 22, 6, &mut rng, &dev).unwrap();
        let (ds, r) = p.forward(s.clone(), a.clone());
        assert_eq!((ds.dims(), r.dims()), ([3, 22], [3, 1]));
        let gate = ActionGate::<TB>::new(&cfg.mlp, 22, 6, &mut rng, &dev).unwrap();
        let pw = values(gate.forward(s.clone(), a));
        assert!(pw.len() == 3 && pw.iter().all(|&v| v > 0.0 && v < 1.0));
        let sgate = StateGate::<TB>::new(&cfg.mlp, 22, &mut rng, &dev).unwrap();
        assert_eq!(sgate.forward(s).dims(), [3, 1]);
        assert!(matches!(
            MlpActor::<TB>::new(
                &cfg.mlp,
                &ActorConfig::new().with_log_std_min(3.0),
                22,
                6,
                &mut rng,
                &dev
            ),
            Err(LayerError::BadRange { .. })
        ));
        // Defaults: 64 copies of the C_4 regular representation, 32 of C_8's.
        let c4 = Group::cyclic(4).unwrap();
        assert_eq!(cfg.equi.hidden_representation(&c4).unwrap().blocks().len(), 64);
        assert_eq!(cfg.equi.hidden_representation(&Group::cyclic(8).unwrap()).unwrap().dim(), 256);
    }

    #[test]
    fn tanh_gaussian_log_prob_matches_the_formula() {
        let dev = Default::default();
        let mean = crate::layers::float_tensor::<TB, 2>(&[0.3, -1.0, 4.0, 0.0], [2, 2], &dev);
        let log_std = crate::layers::float_tensor::<TB, 2>(&[-1.0, 0.5, 0.0, -3.0], [2, 2], &dev);
        let eps = crate::layers::float_tensor::<TB, 2>(&[1.0, -0.5, 2.0, 0.1], [2, 2], &dev);
        let (a, lp) = tanh_gaussian(mean, log_std, eps);
        let (a, lp) = (values(a), values(lp));
        let (m, l, e) = ([0.3, -1.0, 4.0, 0.0], [-1.0f64, 0.5, 0.0, -3.0], [1.0, -0.5, 2.0, 0.1]);
        for (row, lp_row) in lp.iter().enumerate() {
            let mut expected = 0.0;
            for j in 0..2 {
                let i = row * 2 + j;
                let u: f64 = m[i] + l[i].exp() * e[i];
                assert!((a[i] - u.tanh()).abs() < 1e-6);
                expected +=
                    -0.5 * e[i] * e[i] - l[i] - 0.5 * TAU.ln() - (1.0 - u.tanh().powi(2)).ln();
            }
            assert!((lp_row - expected).abs() < 1e-3, "{lp_row} vs {expected}");
        }
        // |u| = 60: 1 − tanh² u underflows to 0 in f32 and e^{120} overflows; the stable form
        // gives log π ≈ 2·(2·60 − 2 log 2) − log 2π.
        let big = crate::layers::float_tensor::<TB, 2>(&[60.0, -60.0], [1, 2], &dev);
        let zeros = crate::layers::float_tensor::<TB, 2>(&[0.0, 0.0], [1, 2], &dev);
        let lp = values(tanh_gaussian(big, zeros.clone(), zeros).1)[0];
        let expected = 2.0 * (120.0 - 2.0 * LN_2) - TAU.ln();
        assert!((lp - expected).abs() < 1e-2, "log π = {lp}, expected {expected}");
    }

    fn ad_rows(rng: &mut ChaCha8Rng, batch: usize, dim: usize) -> Tensor<AD, 2> {
        crate::layers::float_tensor(
            &random_rows(rng, batch, dim),
            [batch, dim],
            &Default::default(),
        )
    }

    #[test]
    fn every_parameter_gets_a_gradient() {
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        let dev = Default::default();
        let g = Group::cyclic(4).unwrap();
        let (obs, act) = (ur5e_obs(&g), ur5e_act(&g));
        let cfg = NetsConfig::new();
        let s = ad_rows(&mut rng, 16, 22);
        let a = ad_rows(&mut rng, 16, 6);
        let eps = ad_rows(&mut rng, 16, 6);
        for equi in kinds() {
            let critic = EquiCritic::<AD>::new(&equi, &obs, &act, &mut rng, &dev).unwrap();
            let mut loss = critic.forward(s.clone(), a.clone()).square().sum();
            if let Some(p) = critic.prior() {
                loss = loss + p.sum();
            }
            assert_all_grads(&critic, &loss.backward());

            let actor =
                EquiActor::<AD>::new(&equi, &cfg.actor, &obs, &act, &mut rng, &dev).unwrap();
            let (m, ls) = actor.forward(s.clone());
            let (pa, lp) = tanh_gaussian(m, ls, eps.clone());
            let loss = pa.sum() + lp.sum();
            assert_all_grads(&actor, &loss.backward());

            let p = EquiPredictor::<AD>::new(&equi, &obs, &act, &mut rng, &dev).unwrap();
            let (ds, r) = p.forward(s.clone(), a.clone());
            assert_all_grads(&p, &(ds.square().sum() + r.square().sum()).backward());
        }
        let critic = MlpCritic::<AD>::new(&cfg.mlp, 22, 6, &mut rng, &dev).unwrap();
        assert_all_grads(&critic, &critic.forward(s.clone(), a.clone()).square().sum().backward());
        let actor = MlpActor::<AD>::new(&cfg.mlp, &cfg.actor, 22, 6, &mut rng, &dev).unwrap();
        let (m, ls) = actor.forward(s.clone());
        let (pa, lp) = tanh_gaussian(m, ls, eps);
        assert_all_grads(&actor, &(pa.sum() + lp.sum()).backward());
        let p = MlpPredictor::<AD>::new(&cfg.mlp, 22, 6, &mut rng, &dev).unwrap();
        let (ds, r) = p.forward(s.clone(), a.clone());
        assert_all_grads(&p, &(ds.square().sum() + r.square().sum()).backward());
        let gate = ActionGate::<AD>::new(&cfg.mlp, 22, 6, &mut rng, &dev).unwrap();
        assert_all_grads(&gate, &gate.forward(s.clone(), a).sum().backward());
        let sgate = StateGate::<AD>::new(&cfg.mlp, 22, &mut rng, &dev).unwrap();
        assert_all_grads(&sgate, &sgate.forward(s.clone()).sum().backward());
        // A no-grad, frozen copy of an autodiff actor computes the same function.
        let equi = EquiActor::<AD>::new(&cfg.equi, &cfg.actor, &obs, &act, &mut rng, &dev).unwrap();
        let frozen = equi.valid().frozen();
        let x = random_rows(&mut rng, 4, 22);
        let (m_ad, _) = equi.forward(crate::layers::float_tensor(&x, [4, 22], &dev));
        let m_ad: Vec<f64> =
            m_ad.into_data().to_vec::<f32>().unwrap().into_iter().map(f64::from).collect();
        let (m_fr, _) = frozen.forward(tensor(&x, 22));
        assert!(rel_err(&values(m_fr), &m_ad) < 1e-5);
    }
}
