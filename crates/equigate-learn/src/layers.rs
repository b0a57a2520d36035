//! Layers: exact equivariant linear maps, the gated nonlinearity, the relaxed regular layer, the
//! residual-pathway-prior (RPP) layer and the plain MLP.
//!
//! # Sources
//! - [`EquivariantLinear`]: W = Σ_k β_k B_k over an orthonormal basis {B_k} of Hom_G(ρ_in, ρ_out)
//!   (`reference/algorithms.md` §6, "Generic layer"; EMLP, Finzi, Welling & Wilson 2021,
//!   arXiv:2104.09459), initialised as W = Π(W₀) with W₀ LeCun-normal (§6 step 5). Between
//!   regular representations the basis is the group convolution W\[g,h\] = ψ(g⁻¹h) (Cohen & Welling
//!   2016, arXiv:1602.07576), so this layer is also the "regular group convolution" of issue 3.
//! - [`GatedActivation`]: σ(invariant gate)·v on ρ1 and sign fields, pointwise ReLU on trivial,
//!   regular and permutation fields (§6 "Explicit sharing"; the gate nonlinearity of EMLP/e3nn).
//! - [`RelaxedRegularLinear`]: y_c(g) = Σ_l w_l(g) Σ_{c',h} ψ_{l,c,c'}(g⁻¹h) x_{c'}(h) (§2.1, Wang
//!   et al. 2022 "Approximately Equivariant Networks for Imperfectly Symmetric Dynamics",
//!   arXiv:2201.11969; Park et al. use L = 1), relaxed weights initialised to ones.
//! - [`RppLinear`]: W = P(w_equiv) + w_basic, b = P_b(b_equiv) + b_basic, with a Gaussian prior
//!   (weight decay) on both paths (§2.2; Finzi, Benton & Wilson 2021 "Residual Pathway Priors for
//!   Soft Equivariance Constraints", arXiv:2112.01388).
//! - [`Mlp`]: `burn::nn::Linear` + ReLU, PyTorch's default initialisation.
//!
//! # What differs
//! - The weight of [`EquivariantLinear`] is built by a gather from its coefficients β (burn.md:
//!   "keep a small `Param` and build the full weight with `select`/`gather` from a constant index
//!   tensor"), not by a matmul with the dense basis stacked as `[n_basis, d_out*d_in]`: for a
//!   256 → 256 regular layer of C_4 that stack would hold 16384 × 65536 floats (4 GiB). Every
//!   entry of W is a combination of at most `terms` basis coefficients (1 for every layer of this
//!   package's networks), so the gather costs O(d_in·d_out).
//! - RPP stores w_equiv in basis coordinates β (P(w_equiv) = Σ β_k B_k, ‖P(w_equiv)‖ = ‖β‖ for
//!   an orthonormal basis). The part of w_equiv that P removes never reaches the output; only
//!   its weight decay is lost.
//!
//! # Layouts
//! Every layer maps `[batch, d_in] -> [batch, d_out]`, with features laid out as the blocks of the
//! [`Representation`]s (copies of the regular representation of G are `c * |G| + index_of(g)`).
//! Weights are built transposed, `[d_in, d_out]`, as `burn::nn::Linear` stores them.

use std::f64::consts::TAU;

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use equigate_symmetry::{
    bias_basis, equivariant_basis, Block, DMatrix, EquivariantBasis, Group, Representation,
    SymmetryError,
};
use rand::Rng;

/// Errors when building layers and networks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LayerError {
    /// The symmetry crate refused (different groups, bad layout, …).
    #[error(transparent)]
    Symmetry(#[from] SymmetryError),
    /// The only equivariant map between the two representations is 0.
    #[error("no non-zero equivariant linear map from dim {d_in} to dim {d_out}")]
    NoEquivariantMap {
        /// dim ρ_in.
        d_in: usize,
        /// dim ρ_out.
        d_out: usize,
    },
    /// A size given in a config is too small.
    #[error("{what} must be at least {min}, got {got}")]
    TooSmall {
        /// The config field.
        what: &'static str,
        /// Smallest accepted value.
        min: usize,
        /// Value given.
        got: usize,
    },
    /// A bound pair in a config is empty or reversed.
    #[error("{what}: min {min} must be below max {max}")]
    BadRange {
        /// The config fields.
        what: &'static str,
        /// Lower bound given.
        min: f64,
        /// Upper bound given.
        max: f64,
    },
}

/// One standard normal sample (Box–Muller), so that initialisation depends only on the caller's
/// seeded `rng` and not on the backend's generator.
pub(crate) fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
}

/// LeCun-normal W₀ ~ N(0, 1/d_in), `[d_out, d_in]`.
fn lecun_normal(rng: &mut impl Rng, d_out: usize, d_in: usize) -> DMatrix<f64> {
    let std = 1.0 / (d_in.max(1) as f64).sqrt();
    DMatrix::from_fn(d_out, d_in, |_, _| std * standard_normal(rng))
}

/// A float tensor of `shape` from f64 values.
pub(crate) fn float_tensor<B: Backend, const D: usize>(
    values: &[f64],
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// A 1-D index tensor.
pub(crate) fn index_tensor<B: Backend>(values: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let v: Vec<i64> = values.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(v, [values.len()]), device)
}

/// A trainable parameter from f64 values.
pub(crate) fn param<B: Backend, const D: usize>(
    values: &[f64],
    shape: [usize; D],
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    Param::from_tensor(float_tensor(values, shape, device))
}

/// The linear map β ↦ Wᵀ of an [`EquivariantBasis`], as a gather: entry e of Wᵀ is
/// Σ_{j < terms} coef[e, j] · β[idx[e, j]]. Built once per layer; constant (no parameters).
#[derive(Module, Debug)]
pub struct BasisWeight<B: Backend> {
    /// Basis index of each term, `[d_in * d_out * terms]`.
    idx: Tensor<B, 1, Int>,
    /// Coefficient of each term (0 for padding), `[d_in * d_out, terms]`.
    coef: Tensor<B, 2>,
    d_in: usize,
    d_out: usize,
    terms: usize,
}

impl<B: Backend> BasisWeight<B> {
    /// The gather tables of `basis` (which must be non-empty).
    pub fn new(basis: &EquivariantBasis, device: &B::Device) -> Self {
        let (d_in, d_out) = (basis.dim_in(), basis.dim_out());
        let n = d_in * d_out;
        let mut entries: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
        let mut k = 0;
        for b in basis.blocks() {
            for m in b.basis.iter() {
                for r in 0..m.nrows() {
                    for c in 0..m.ncols() {
                        let v = m[(r, c)];
                        if v.abs() > 1e-12 {
                            // Transposed layout: row = input coordinate, column = output.
                            entries[(b.in_offset + c) * d_out + b.out_offset + r].push((k, v));
                        }
                    }
                }
                k += 1;
            }
        }
        let terms = entries.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut idx = vec![0usize; n * terms];
        let mut coef = vec![0.0f64; n * terms];
        for (e, list) in entries.iter().enumerate() {
            for (j, &(k, v)) in list.iter().enumerate() {
                idx[e * terms + j] = k;
                coef[e * terms + j] = v;
            }
        }
        BasisWeight {
            idx: index_tensor(&idx, device),
            coef: float_tensor(&coef, [n, terms], device),
            d_in,
            d_out,
            terms,
        }
    }

    /// Wᵀ = (Σ_k β_k B_k)ᵀ.
    ///
    /// # Shapes
    /// `beta: [n_basis]` -> `[d_in, d_out]`.
    pub fn weight(&self, beta: Tensor<B, 1>) -> Tensor<B, 2> {
        let n = self.d_in * self.d_out;
        let w = beta.select(0, self.idx.clone()).reshape([n, self.terms]) * self.coef.clone();
        let w = if self.terms == 1 { w } else { w.sum_dim(1) }; // [n, 1]
        w.reshape([self.d_in, self.d_out])
    }
}

/// An exact G-equivariant linear layer y = W x + b with W = Σ_k β_k B_k and b = Σ_j γ_j b_j over
/// orthonormal bases of Hom_G(ρ_in, ρ_out) and of the invariant vectors of ρ_out.
///
/// Initialisation (`reference/algorithms.md` §6 step 5, as EMLP/RPP): β = the basis coordinates
/// of W₀ ~ LeCun-normal N(0, 1/d_in), i.e. W = Π(W₀); γ = 0.
///
/// The weight is rebuilt from β on every [`forward`](Self::forward) (a gather, O(d_in·d_out));
/// to apply the same weights many times, build them once with [`weight`](Self::weight) and
/// [`bias`](Self::bias) and call [`forward_with`](Self::forward_with).
///
/// # Shapes
/// `[batch, d_in] -> [batch, d_out]`.
#[derive(Module, Debug)]
pub struct EquivariantLinear<B: Backend> {
    /// Weight coefficients β, `[n_basis]`.
    pub beta: Param<Tensor<B, 1>>,
    /// Bias coefficients γ, `[n_bias]`; `None` when ρ_out has no invariant vector.
    pub bias_beta: Option<Param<Tensor<B, 1>>>,
    weight_map: BasisWeight<B>,
    /// Orthonormal invariant vectors of ρ_out as rows, `[n_bias, d_out]`.
    bias_map: Option<Tensor<B, 2>>,
    d_in: usize,
    d_out: usize,
}

impl<B: Backend> EquivariantLinear<B> {
    /// A layer ρ_in → ρ_out, initialised as W = Π(W₀). Errors if the groups differ or the only
    /// equivariant map is 0.
    pub fn new(
        rho_in: &Representation,
        rho_out: &Representation,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<Self, LayerError> {
        let basis = equivariant_basis(rho_in, rho_out)?;
        if basis.is_empty() {
            return Err(LayerError::NoEquivariantMap { d_in: rho_in.dim(), d_out: rho_out.dim() });
        }
        let w0 = lecun_normal(rng, rho_out.dim(), rho_in.dim());
        let beta = basis.coefficients(&w0).expect("w0 is built [dim_out, dim_in]");
        let biases = bias_basis(rho_out);
        let (bias_beta, bias_map) = if biases.is_empty() {
            (None, None)
        } else {
            let rows: Vec<f64> = biases.iter().flat_map(|v| v.iter().copied()).collect();
            (
                Some(param(&vec![0.0; biases.len()], [biases.len()], device)),
                Some(float_tensor(&rows, [biases.len(), rho_out.dim()], device)),
            )
        };
        Ok(EquivariantLinear {
            beta: param(&beta, [beta.len()], device),
            bias_beta,
            weight_map: BasisWeight::new(&basis, device),
            bias_map,
            d_in: rho_in.dim(),
            d_out: rho_out.dim(),
        })
    }

    /// dim ρ_in.
    pub fn dim_in(&self) -> usize {
        self.d_in
    }

    /// dim ρ_out.
    pub fn dim_out(&self) -> usize {
        self.d_out
    }

    /// Number of weight coefficients, dim Hom_G(ρ_in, ρ_out).
    pub fn num_basis(&self) -> usize {
        self.beta.shape().dims::<1>()[0]
    }

    /// The transposed weight Wᵀ.
    ///
    /// # Shapes
    /// `[d_in, d_out]`.
    pub fn weight(&self) -> Tensor<B, 2> {
        self.weight_map.weight(self.beta.val())
    }

    /// The bias b, `None` when ρ_out has no invariant vector (then b = 0).
    ///
    /// # Shapes
    /// `[d_out]`.
    pub fn bias(&self) -> Option<Tensor<B, 1>> {
        match (&self.bias_beta, &self.bias_map) {
            (Some(gamma), Some(map)) => {
                Some(gamma.val().unsqueeze_dim::<2>(0).matmul(map.clone()).reshape([self.d_out]))
            }
            _ => None,
        }
    }

    /// y = x Wᵀ + b with the layer's own weights.
    ///
    /// # Shapes
    /// `x: [batch, d_in]` -> `[batch, d_out]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        Self::forward_with(x, self.weight(), self.bias())
    }

    /// y = x w + b with weights built before (see [`weight`](Self::weight)).
    ///
    /// # Shapes
    /// `x: [batch, d_in]`, `w: [d_in, d_out]`, `b: [d_out]` -> `[batch, d_out]`.
    pub fn forward_with(x: Tensor<B, 2>, w: Tensor<B, 2>, b: Option<Tensor<B, 1>>) -> Tensor<B, 2> {
        burn::tensor::module::linear(x, w, b)
    }
}

/// The gated nonlinearity for a representation ρ: pointwise ReLU on trivial, regular and
/// permutation blocks (pointwise maps commute with permutations), and v ↦ σ(s)·v on every ρ1 or
/// sign block v, with s an invariant gate scalar of its own (ReLU of a rotated vector is not the
/// rotated ReLU; a sigmoid of an invariant times v is).
///
/// The gates come from extra trivial features after ρ's: the layer before outputs
/// [`GatedActivation::input_representation`] = ρ ⊕ trivial^n_gates, one gate per gated block in
/// block order. With no gated block it is plain ReLU and adds no input.
///
/// # Shapes
/// `[batch, dim ρ + n_gates] -> [batch, dim ρ]`.
#[derive(Module, Debug)]
pub struct GatedActivation<B: Backend> {
    /// Coordinates of pointwise blocks, `[n_pointwise]`; `None` if there are none.
    pointwise: Option<Tensor<B, 1, Int>>,
    /// Coordinates of gated blocks, `[n_gated]`; `None` if there are none.
    gated: Option<Tensor<B, 1, Int>>,
    /// For each gated coordinate, the input column of its gate, `[n_gated]`.
    gates: Option<Tensor<B, 1, Int>>,
    /// Inverse of the order [pointwise, gated] → ρ's coordinates, `[dim ρ]`.
    restore: Option<Tensor<B, 1, Int>>,
    dim: usize,
    n_gates: usize,
}

impl<B: Backend> GatedActivation<B> {
    /// The nonlinearity for `rho` (its block layout; no parameters).
    pub fn new(rho: &Representation, device: &B::Device) -> Self {
        let group = rho.group();
        let (mut pointwise, mut gated, mut gates) = (Vec::new(), Vec::new(), Vec::new());
        let mut n_gates = 0;
        for (block, offset) in rho.blocks().iter().zip(rho.block_offsets()) {
            let coords = offset..offset + block.dim(group);
            match block {
                Block::Standard | Block::Sign => {
                    for c in coords {
                        gated.push(c);
                        gates.push(rho.dim() + n_gates);
                    }
                    n_gates += 1;
                }
                Block::Trivial | Block::Regular | Block::Permutation(_) => pointwise.extend(coords),
            }
        }
        let mut restore = vec![0; rho.dim()];
        for (position, &c) in pointwise.iter().chain(&gated).enumerate() {
            restore[c] = position;
        }
        let opt = |v: &[usize]| (!v.is_empty()).then(|| index_tensor(v, device));
        GatedActivation {
            pointwise: opt(&pointwise),
            gated: opt(&gated),
            gates: opt(&gates),
            restore: (n_gates > 0).then(|| index_tensor(&restore, device)),
            dim: rho.dim(),
            n_gates,
        }
    }

    /// ρ ⊕ trivial^n_gates, the representation of the input (n_gates = number of ρ1 and sign
    /// blocks of ρ).
    pub fn input_representation(rho: &Representation) -> Representation {
        let n_gates =
            rho.blocks().iter().filter(|b| matches!(b, Block::Standard | Block::Sign)).count();
        if n_gates == 0 {
            rho.clone()
        } else {
            rho.oplus(&Representation::trivial(rho.group()).repeat(n_gates))
                .expect("the gates are built on rho's own group")
        }
    }

    /// dim ρ (output width).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of gate scalars expected after ρ's features.
    pub fn n_gates(&self) -> usize {
        self.n_gates
    }

    /// Apply the nonlinearity.
    ///
    /// # Shapes
    /// `x: [batch, dim + n_gates]` -> `[batch, dim]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let (Some(gated), Some(gates), Some(restore)) = (&self.gated, &self.gates, &self.restore)
        else {
            return relu(x);
        };
        let v = x.clone().select(1, gated.clone());
        let s = sigmoid(x.clone().select(1, gates.clone()));
        let gated = v * s; // [batch, n_gated]
        let parts = match &self.pointwise {
            Some(pw) => vec![relu(x.select(1, pw.clone())), gated],
            None => vec![gated],
        };
        Tensor::cat(parts, 1).select(1, restore.clone()) // [batch, dim]
    }
}

/// A relaxed group convolution between `c_in` and `c_out` copies of the regular representation
/// of G (`reference/algorithms.md` §2.1, state-vector version):
///
/// y_c(g) = Σ_l w_l(g) Σ_{c',h} ψ_{l,c,c'}(g⁻¹h) x_{c'}(h) + b_c.
///
/// It is exactly equivariant when every w_l(·) is constant over G; the relaxed weights start at
/// ones (Wang et al.'s tutorial code; Park et al.: the network starts exactly equivariant) and are
/// not regularised (Park et al. mention no regulariser). ψ starts as the group convolution of
/// Π(W₀), W₀ LeCun-normal (entries N(0, 1/(d_in·|G|))), so that at initialisation the layer has the
/// distribution of [`EquivariantLinear`]. The bias b_c is shared over G (not relaxed).
///
/// # Shapes
/// `[batch, c_in * |G|] -> [batch, c_out * |G|]`.
#[derive(Module, Debug)]
pub struct RelaxedRegularLinear<B: Backend> {
    /// Kernels ψ, `[L, c_out, c_in, |G|]` (last index: element u = g⁻¹h in element order).
    pub psi: Param<Tensor<B, 4>>,
    /// Relaxed weights w_l(g), `[|G|, L]` (initialised to 1).
    pub relaxed: Param<Tensor<B, 2>>,
    /// Bias per output channel, `[c_out]` (initialised to 0).
    pub bias: Param<Tensor<B, 1>>,
    /// index_of(g⁻¹h) at g·|G| + h, `[|G|²]`.
    conv_idx: Tensor<B, 1, Int>,
    /// Output channel of each output coordinate, `[c_out * |G|]`.
    bias_idx: Tensor<B, 1, Int>,
    order: usize,
    c_in: usize,
    c_out: usize,
    kernels: usize,
}

impl<B: Backend> RelaxedRegularLinear<B> {
    /// A relaxed layer regular^c_in → regular^c_out of `group` with `kernels` = L ≥ 1.
    pub fn new(
        group: &Group,
        c_in: usize,
        c_out: usize,
        kernels: usize,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<Self, LayerError> {
        for (what, got) in [("c_in", c_in), ("c_out", c_out), ("relaxed kernels L", kernels)] {
            if got == 0 {
                return Err(LayerError::TooSmall { what, min: 1, got });
            }
        }
        let n = group.order();
        let std = 1.0 / ((c_in * n * n) as f64).sqrt();
        let psi: Vec<f64> =
            (0..kernels * c_out * c_in * n).map(|_| std * standard_normal(rng)).collect();
        let mut conv_idx = Vec::with_capacity(n * n);
        for g in group.elements() {
            for h in group.elements() {
                conv_idx.push(group.index_of(group.compose(group.inverse(g), h)));
            }
        }
        let bias_idx: Vec<usize> = (0..c_out * n).map(|i| i / n).collect();
        Ok(RelaxedRegularLinear {
            psi: param(&psi, [kernels, c_out, c_in, n], device),
            relaxed: param(&vec![1.0; n * kernels], [n, kernels], device),
            bias: param(&vec![0.0; c_out], [c_out], device),
            conv_idx: index_tensor(&conv_idx, device),
            bias_idx: index_tensor(&bias_idx, device),
            order: n,
            c_in,
            c_out,
            kernels,
        })
    }

    /// c_in · |G|.
    pub fn dim_in(&self) -> usize {
        self.c_in * self.order
    }

    /// c_out · |G|.
    pub fn dim_out(&self) -> usize {
        self.c_out * self.order
    }

    /// The transposed weight, Wᵀ[(c',h), (c,g)] = Σ_l w_l(g) ψ_{l,c,c'}(g⁻¹h).
    ///
    /// # Shapes
    /// `[c_in * |G|, c_out * |G|]`.
    pub fn weight(&self) -> Tensor<B, 2> {
        let (n, l) = (self.order, self.kernels);
        let w = self
            .psi
            .val()
            .select(3, self.conv_idx.clone()) // [L, c_out, c_in, n*n]
            .reshape([l, self.c_out, self.c_in, n, n]) // [L, c, c', g, h]
            .permute([0, 1, 3, 2, 4]); // [L, c, g, c', h]
        let rw = self.relaxed.val().transpose().reshape([l, 1, n, 1, 1]); // [L, 1, g, 1, 1]
        (w * rw)
            .sum_dim(0) // [1, c, g, c', h]
            .reshape([self.c_out * n, self.c_in * n])
            .transpose()
    }

    /// The bias b_c at every (c, g).
    ///
    /// # Shapes
    /// `[c_out * |G|]`.
    pub fn bias(&self) -> Tensor<B, 1> {
        self.bias.val().select(0, self.bias_idx.clone())
    }

    /// y = x Wᵀ + b.
    ///
    /// # Shapes
    /// `x: [batch, c_in * |G|]` -> `[batch, c_out * |G|]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        burn::tensor::module::linear(x, self.weight(), Some(self.bias()))
    }
}

/// Hyperparameters of an [`RppLinear`] layer.
///
/// The defaults follow `reference/algorithms.md` §2.2: RPP's policy default equiv_wd = 1e-6
/// (verified in rpp/flax.py), and basic_wd = 10 × equiv_wd because the prior only prefers the
/// equivariant path when the basic path decays faster (§2.2 \[I\]: basic_wd ≥ 10×equiv_wd; with
/// equal decay the two paths are penalised alike). RPP's critics use 0/0; set both to 0 there.
#[derive(Config, Debug)]
pub struct RppConfig {
    /// Weight decay of the basic (unconstrained) path, per unit squared norm (default: `1e-5`).
    #[config(default = 1e-5)]
    pub basic_wd: f64,
    /// Weight decay of the equivariant path (default: `1e-6`).
    #[config(default = 1e-6)]
    pub equiv_wd: f64,
    /// Scale of the LeCun-normal initialisation of the basic weight and bias (default: `1e-3`,
    /// RPP's `RPP_SCALE`).
    #[config(default = 1e-3)]
    pub basic_init_scale: f64,
}

/// A residual-pathway-prior layer: y = (P(w_equiv) + w_basic) x + P_b(b_equiv) + b_basic
/// (Finzi, Benton & Wilson 2021, arXiv:2112.01388; `reference/algorithms.md` §2.2).
///
/// The equivariant path is an [`EquivariantLinear`] (initialised W = Π(W₀), b_equiv = 0); the basic
/// path is a dense weight and bias initialised LeCun-normal × `basic_init_scale`. The prior
/// [`prior`](Self::prior) is added to the loss.
///
/// # Shapes
/// `[batch, d_in] -> [batch, d_out]`.
#[derive(Module, Debug)]
pub struct RppLinear<B: Backend> {
    /// The equivariant path P(w_equiv), P_b(b_equiv).
    pub equiv: EquivariantLinear<B>,
    /// The basic path's transposed weight, `[d_in, d_out]`.
    pub basic_weight: Param<Tensor<B, 2>>,
    /// The basic path's bias, `[d_out]`.
    pub basic_bias: Param<Tensor<B, 1>>,
    basic_wd: f64,
    equiv_wd: f64,
}

impl<B: Backend> RppLinear<B> {
    /// An RPP layer ρ_in → ρ_out. Errors as [`EquivariantLinear::new`].
    pub fn new(
        rho_in: &Representation,
        rho_out: &Representation,
        config: &RppConfig,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<Self, LayerError> {
        let equiv = EquivariantLinear::new(rho_in, rho_out, rng, device)?;
        let (d_in, d_out) = (rho_in.dim(), rho_out.dim());
        let std = config.basic_init_scale / (d_in as f64).sqrt();
        let w: Vec<f64> = (0..d_in * d_out).map(|_| std * standard_normal(rng)).collect();
        let b: Vec<f64> = (0..d_out).map(|_| std * standard_normal(rng)).collect();
        Ok(RppLinear {
            equiv,
            basic_weight: param(&w, [d_in, d_out], device),
            basic_bias: param(&b, [d_out], device),
            basic_wd: config.basic_wd,
            equiv_wd: config.equiv_wd,
        })
    }

    /// Wᵀ = P(w_equiv)ᵀ + w_basicᵀ.
    ///
    /// # Shapes
    /// `[d_in, d_out]`.
    pub fn weight(&self) -> Tensor<B, 2> {
        self.equiv.weight() + self.basic_weight.val()
    }

    /// b = P_b(b_equiv) + b_basic.
    ///
    /// # Shapes
    /// `[d_out]`.
    pub fn bias(&self) -> Tensor<B, 1> {
        match self.equiv.bias() {
            Some(b) => b + self.basic_bias.val(),
            None => self.basic_bias.val(),
        }
    }

    /// y = x Wᵀ + b.
    ///
    /// # Shapes
    /// `x: [batch, d_in]` -> `[batch, d_out]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        burn::tensor::module::linear(x, self.weight(), Some(self.bias()))
    }

    /// The prior (negative log density up to a constant), to add to the loss:
    /// basic_wd·(‖w_basic‖² + ‖b_basic‖²) + equiv_wd·(‖β‖² + ‖γ‖²), where ‖β‖ = ‖P(w_equiv)‖.
    ///
    /// # Shapes
    /// `[1]`.
    pub fn prior(&self) -> Tensor<B, 1> {
        let basic = self.basic_weight.val().square().sum() + self.basic_bias.val().square().sum();
        let mut equiv = self.equiv.beta.val().square().sum();
        if let Some(gamma) = &self.equiv.bias_beta {
            equiv = equiv + gamma.val().square().sum();
        }
        basic.mul_scalar(self.basic_wd) + equiv.mul_scalar(self.equiv_wd)
    }
}

/// A plain MLP: `burn::nn::Linear` layers with ReLU between them (none after the last).
///
/// Initialisation: weights and biases U(−1/√d_in, 1/√d_in), PyTorch's `nn.Linear` default (and
/// burn's `LinearConfig` default), as in CleanRL's SAC, drawn from the caller's seeded `rng`.
///
/// # Shapes
/// `[batch, d_in] -> [batch, d_out]`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// The layers, input first.
    pub layers: Vec<Linear<B>>,
}

impl<B: Backend> Mlp<B> {
    /// d_in → hidden\[0\] → … → d_out. Errors if a width is 0.
    pub fn new(
        d_in: usize,
        hidden: &[usize],
        d_out: usize,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Result<Self, LayerError> {
        let widths: Vec<usize> =
            std::iter::once(d_in).chain(hidden.iter().copied()).chain([d_out]).collect();
        if let Some(&got) = widths.iter().find(|&&w| w == 0) {
            return Err(LayerError::TooSmall { what: "MLP width", min: 1, got });
        }
        let layers = widths
            .windows(2)
            .map(|w| {
                let bound = 1.0 / (w[0] as f64).sqrt();
                let mut uniform = |n: usize| -> Vec<f64> {
                    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
                };
                let weight = uniform(w[0] * w[1]);
                let bias = uniform(w[1]);
                Linear {
                    weight: param(&weight, [w[0], w[1]], device),
                    bias: Some(param(&bias, [w[1]], device)),
                }
            })
            .collect();
        Ok(Mlp { layers })
    }

    /// Apply the MLP.
    ///
    /// # Shapes
    /// `x: [batch, d_in]` -> `[batch, d_out]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |x, (i, layer)| {
            let y = layer.forward(x);
            if i < last {
                relu(y)
            } else {
                y
            }
        })
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Helpers for the equivariance tests of this crate (CPU backend `Flex`, f32).

    use burn::backend::{Autodiff, Flex};
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::backend::AutodiffBackend;
    use burn::tensor::Tensor;
    use equigate_symmetry::{FieldKind, Group, Representation};
    use rand::Rng;

    pub type TB = Flex;
    pub type AD = Autodiff<Flex>;

    /// The UR5e observation layout, copied from `equigate_robot::task::observation_layout(6)`
    /// (22 dims): pan (cos, sin), q2..q6, q̇1..q̇6, ee xy, ee z, goal xy, goal z, goal−ee xy,
    /// goal−ee z.
    pub fn ur5e_obs(group: &Group) -> Representation {
        use FieldKind::{Invariant, Rotation2};
        let layout = [
            (Rotation2, 2),
            (Invariant, 5),
            (Invariant, 6),
            (Rotation2, 2),
            (Invariant, 1),
            (Rotation2, 2),
            (Invariant, 1),
            (Rotation2, 2),
            (Invariant, 1),
        ];
        let rep = Representation::from_layout(group, &layout).unwrap();
        assert_eq!(rep.dim(), 22);
        rep
    }

    /// The UR5e action: 6 invariant joint velocities.
    pub fn ur5e_act(group: &Group) -> Representation {
        Representation::from_layout(group, &[(FieldKind::Invariant, 6)]).unwrap()
    }

    /// `batch` rows of N(0, 1)-ish values.
    pub fn random_rows(rng: &mut impl Rng, batch: usize, dim: usize) -> Vec<f64> {
        (0..batch * dim).map(|_| super::standard_normal(rng)).collect()
    }

    /// ρ(g) applied to each row.
    pub fn act_rows(rho: &Representation, g: equigate_symmetry::Element, x: &[f64]) -> Vec<f64> {
        x.chunks(rho.dim()).flat_map(|row| rho.act(g, row).unwrap()).collect()
    }

    pub fn tensor(x: &[f64], dim: usize) -> Tensor<TB, 2> {
        super::float_tensor(x, [x.len() / dim, dim], &Default::default())
    }

    pub fn values<const D: usize>(t: Tensor<TB, D>) -> Vec<f64> {
        t.into_data().convert::<f32>().to_vec::<f32>().unwrap().into_iter().map(f64::from).collect()
    }

    /// max |a − b| / max(max |b|, 1e-3).
    pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        let diff = a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
        let scale = b.iter().fold(1e-3f64, |m, y| m.max(y.abs()));
        diff / scale
    }

    /// The largest relative error of f(ρ_in(g)x) vs ρ_out(g) f(x) over every g, for random x.
    pub fn equivariance_error(
        rho_in: &Representation,
        rho_out: &Representation,
        f: impl Fn(Tensor<TB, 2>) -> Tensor<TB, 2>,
        rng: &mut impl Rng,
    ) -> f64 {
        let batch = 8;
        let x = random_rows(rng, batch, rho_in.dim());
        let fx = values(f(tensor(&x, rho_in.dim())));
        assert_eq!(fx.len(), batch * rho_out.dim());
        let mut worst = 0.0f64;
        for g in rho_in.group().elements() {
            let fgx = values(f(tensor(&act_rows(rho_in, g, &x), rho_in.dim())));
            worst = worst.max(rel_err(&fgx, &act_rows(rho_out, g, &fx)));
        }
        worst
    }

    /// Visits every float parameter and records whether its gradient exists and is non-zero.
    pub struct GradCheck<'a> {
        pub grads: &'a <AD as AutodiffBackend>::Gradients,
        pub missing: Vec<String>,
        pub count: usize,
    }

    impl ModuleVisitor<AD> for GradCheck<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AD, D>>) {
            self.count += 1;
            let ok =
                param.val().grad(self.grads).is_some_and(|g| g.abs().max().into_scalar() > 0.0);
            if !ok {
                self.missing.push(format!("{:?} shape {:?}", param.id, param.shape().to_vec()));
            }
        }
    }

    /// Panics unless every float parameter of `module` got a non-zero gradient.
    pub fn assert_all_grads<M: Module<AD>>(module: &M, grads: &<AD as AutodiffBackend>::Gradients) {
        let mut check = GradCheck { grads, missing: Vec::new(), count: 0 };
        module.visit(&mut check);
        assert!(check.count > 0);
        assert!(check.missing.is_empty(), "parameters without gradient: {:?}", check.missing);
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;
    use equigate_symmetry::{Group, Representation};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const TOL: f64 = 1e-4;

    fn hidden(group: &Group, copies: usize) -> Representation {
        Representation::regular(group).repeat(copies)
    }

    /// A representation with every block kind that C_n (n even) has.
    fn mixed(group: &Group) -> Representation {
        Representation::direct_sum(&[
            Representation::standard(group),
            Representation::trivial(group),
            Representation::regular(group),
            Representation::sign(group).unwrap(),
            Representation::standard(group),
        ])
        .unwrap()
    }

    #[test]
    fn equivariant_linear_is_equivariant_c4_c8() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let dev = Default::default();
        for n in [4, 8] {
            let g = Group::cyclic(n).unwrap();
            let obs = ur5e_obs(&g);
            let h = hidden(&g, 3);
            let pairs = [
                (obs.clone(), h.clone()),
                (h.clone(), h.clone()),
                (h.clone(), obs.clone()),
                (mixed(&g), mixed(&g)),
                (obs.clone(), obs.clone()),
            ];
            for (rin, rout) in pairs {
                let layer = EquivariantLinear::<TB>::new(&rin, &rout, &mut rng, &dev).unwrap();
                let err = equivariance_error(&rin, &rout, |x| layer.forward(x), &mut rng);
                assert!(err < TOL, "C{n} {}→{}: {err}", rin.dim(), rout.dim());
            }
        }
    }

    #[test]
    fn one_adam_step_moves_each_regular_weight_entry_by_lr_over_sqrt_g() {
        // The orthonormal basis spreads each coefficient β_k over |G| entries of W at 1/√|G|
        // each, and Adam's first step moves every β_k by lr: every entry of a regular → regular
        // weight moves by lr/√|G|, where a dense layer's entries move by lr. (Why equivariant
        // networks of C_8 learn about √8 times slower than MLPs at one learning rate.)
        use burn::optim::{AdamConfig, GradientsParams, Optimizer};
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let dev = Default::default();
        let lr = 1e-3;
        for n in [4, 8] {
            let g = Group::cyclic(n).unwrap();
            let h = hidden(&g, 2);
            let layer = EquivariantLinear::<AD>::new(&h, &h, &mut rng, &dev).unwrap();
            let w0 = values(layer.weight().inner());
            let x =
                Tensor::<AD, 2>::from_inner(tensor(&random_rows(&mut rng, 16, h.dim()), h.dim()));
            let c =
                Tensor::<AD, 2>::from_inner(tensor(&random_rows(&mut rng, 16, h.dim()), h.dim()));
            let grads =
                GradientsParams::from_grads((layer.forward(x) * c).sum().backward(), &layer);
            let mut adam =
                AdamConfig::new().with_epsilon(1e-12).init::<AD, EquivariantLinear<AD>>();
            let layer = adam.step(lr, layer, grads);
            let w1 = values(layer.weight().inner());
            let expected = lr / (n as f64).sqrt();
            for (a, b) in w0.iter().zip(&w1) {
                assert!(((b - a).abs() - expected).abs() < 1e-3 * expected, "C{n}: {}", b - a);
            }
        }
    }

    #[test]
    fn equivariant_linear_init_is_projection_and_bias_invariant() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let g = Group::cyclic(4).unwrap();
        let h = hidden(&g, 2);
        let mut layer =
            EquivariantLinear::<TB>::new(&ur5e_obs(&g), &h, &mut rng, &Default::default()).unwrap();
        // Regular output: one invariant vector per copy. Set the bias and check it is constant
        // over each copy.
        let gamma = layer.bias_beta.take().unwrap();
        assert_eq!(gamma.shape().dims::<1>(), [2]);
        layer.bias_beta =
            Some(Param::from_tensor(float_tensor(&[1.0, -2.0], [2], &Default::default())));
        let b = values(layer.bias().unwrap());
        assert!(b[..4].iter().all(|&v| (v - 0.5).abs() < 1e-6), "{b:?}");
        assert!(b[4..].iter().all(|&v| (v + 1.0).abs() < 1e-6), "{b:?}");
        // No map from rotations to invariants: ρ1 → trivial is empty.
        let rot = Representation::standard(&g);
        let triv = Representation::trivial(&g);
        assert!(matches!(
            EquivariantLinear::<TB>::new(&rot, &triv, &mut rng, &Default::default()),
            Err(LayerError::NoEquivariantMap { d_in: 2, d_out: 1 })
        ));
    }

    #[test]
    fn gated_activation_is_equivariant_c4_c8() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let dev = Default::default();
        for n in [4, 8] {
            let g = Group::cyclic(n).unwrap();
            for rho in [mixed(&g), ur5e_obs(&g), hidden(&g, 2)] {
                let act = GatedActivation::<TB>::new(&rho, &dev);
                let rin = GatedActivation::<TB>::input_representation(&rho);
                assert_eq!(rin.dim(), rho.dim() + act.n_gates());
                let err = equivariance_error(&rin, &rho, |x| act.forward(x), &mut rng);
                assert!(err < TOL, "C{n} gate on {}: {err}", rho.dim());
            }
        }
        // Rotating a vector does not commute with ReLU, so the gate matters: a plain ReLU on ρ1
        // is not equivariant.
        let g = Group::cyclic(4).unwrap();
        let rho = Representation::standard(&g);
        let err = equivariance_error(&rho, &rho, burn::tensor::activation::relu, &mut rng);
        assert!(err > 1e-3);
    }

    #[test]
    fn relaxed_layer_exact_with_equal_weights_not_after_perturbation() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let dev = Default::default();
        for (n, l) in [(4, 1), (4, 2), (8, 1)] {
            let g = Group::cyclic(n).unwrap();
            let (rin, rout) = (hidden(&g, 3), hidden(&g, 2));
            let mut layer = RelaxedRegularLinear::<TB>::new(&g, 3, 2, l, &mut rng, &dev).unwrap();
            layer.bias = Param::from_tensor(float_tensor(&[0.3, -0.7], [2], &dev));
            let err = equivariance_error(&rin, &rout, |x| layer.forward(x), &mut rng);
            assert!(err < TOL, "C{n} L={l} relaxed at init: {err}");
            // Equal but not one: still exact.
            let w = vec![0.4; n * l];
            layer.relaxed = Param::from_tensor(float_tensor(&w, [n, l], &dev));
            let err = equivariance_error(&rin, &rout, |x| layer.forward(x), &mut rng);
            assert!(err < TOL, "C{n} L={l} relaxed equal weights: {err}");
            let w: Vec<f64> = (0..n * l).map(|_| 1.0 + 0.5 * standard_normal(&mut rng)).collect();
            layer.relaxed = Param::from_tensor(float_tensor(&w, [n, l], &dev));
            let err = equivariance_error(&rin, &rout, |x| layer.forward(x), &mut rng);
            assert!(err > 1e-3, "C{n} L={l} perturbed relaxed weights still exact: {err}");
        }
    }

    #[test]
    fn relaxed_layer_with_unit_weights_equals_exact_group_convolution() {
        // With L = 1 and w ≡ 1 the weight is the group convolution W[g,h] = ψ(g⁻¹h).
        let g = Group::cyclic(4).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let layer =
            RelaxedRegularLinear::<TB>::new(&g, 1, 1, 1, &mut rng, &Default::default()).unwrap();
        let psi = values(layer.psi.val());
        let w = values(layer.weight()); // [h, g] transposed
        let expected = equigate_symmetry::regular_weight(&g, &psi).unwrap(); // [g, h]
        for gi in 0..4 {
            for hi in 0..4 {
                assert!((w[hi * 4 + gi] - expected[(gi, hi)]).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn rpp_exact_without_basic_path_not_with_it() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let dev = Default::default();
        for n in [4, 8] {
            let g = Group::cyclic(n).unwrap();
            let obs = ur5e_obs(&g);
            let h = hidden(&g, 2);
            for (rin, rout) in [(obs.clone(), h.clone()), (h.clone(), obs.clone())] {
                let mut layer =
                    RppLinear::<TB>::new(&rin, &rout, &RppConfig::new(), &mut rng, &dev).unwrap();
                let (d_in, d_out) = (rin.dim(), rout.dim());
                layer.basic_weight =
                    Param::from_tensor(float_tensor(&vec![0.0; d_in * d_out], [d_in, d_out], &dev));
                layer.basic_bias =
                    Param::from_tensor(float_tensor(&vec![0.0; d_out], [d_out], &dev));
                let err = equivariance_error(&rin, &rout, |x| layer.forward(x), &mut rng);
                assert!(err < TOL, "C{n} RPP with zero basic path: {err}");
                let w = random_rows(&mut rng, d_in, d_out);
                layer.basic_weight = Param::from_tensor(float_tensor(&w, [d_in, d_out], &dev));
                let err = equivariance_error(&rin, &rout, |x| layer.forward(x), &mut rng);
                assert!(err > 1e-3, "C{n} RPP with a basic path still exact: {err}");
            }
        }
    }

    #[test]
    fn rpp_prior_is_the_weighted_squared_norms() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let g = Group::cyclic(4).unwrap();
        let (rin, rout) = (ur5e_obs(&g), hidden(&g, 1));
        let cfg = RppConfig::new().with_basic_wd(2.0).with_equiv_wd(0.5);
        let layer = RppLinear::<TB>::new(&rin, &rout, &cfg, &mut rng, &Default::default()).unwrap();
        let sq = |v: Vec<f64>| v.iter().map(|x| x * x).sum::<f64>();
        let expected = 2.0
            * (sq(values(layer.basic_weight.val())) + sq(values(layer.basic_bias.val())))
            + 0.5
                * (sq(values(layer.equiv.beta.val()))
                    + sq(values(layer.equiv.bias_beta.as_ref().unwrap().val())));
        let got = values(layer.prior())[0];
        assert!((got - expected).abs() < 1e-5 * expected.abs().max(1e-6), "{got} vs {expected}");
        // The basic path starts small: LeCun-normal × 1e-3.
        let basic_max = values(layer.basic_weight.val()).iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(basic_max < 1e-2);
    }

    #[test]
    fn mlp_shapes_and_gradients() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let mlp = Mlp::<AD>::new(28, &[32, 16], 3, &mut rng, &Default::default()).unwrap();
        let x = super::float_tensor::<AD, 2>(
            &random_rows(&mut rng, 5, 28),
            [5, 28],
            &Default::default(),
        );
        let y = mlp.forward(x);
        assert_eq!(y.dims(), [5, 3]);
        let grads = y.sum().backward();
        assert_all_grads(&mlp, &grads);
        assert!(matches!(
            Mlp::<TB>::new(3, &[0], 1, &mut rng, &Default::default()),
            Err(LayerError::TooSmall { .. })
        ));
    }

    #[test]
    fn equivariant_layers_get_gradients() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let dev = Default::default();
        let g = Group::cyclic(4).unwrap();
        let (rin, h) = (ur5e_obs(&g), hidden(&g, 2));
        let x = || {
            super::float_tensor::<AD, 2>(
                &random_rows(&mut ChaCha8Rng::seed_from_u64(1), 5, 22),
                [5, 22],
                &dev,
            )
        };
        let lin = EquivariantLinear::<AD>::new(&rin, &h, &mut rng, &dev).unwrap();
        let relaxed = RelaxedRegularLinear::<AD>::new(&g, 2, 2, 2, &mut rng, &dev).unwrap();
        let rpp = RppLinear::<AD>::new(&h, &rin, &RppConfig::new(), &mut rng, &dev).unwrap();
        let y = rpp.forward(relaxed.forward(lin.forward(x()).tanh()).tanh());
        let loss = (y.clone() * y).sum() + rpp.prior().sum();
        let grads = loss.backward();
        assert_all_grads(&lin, &grads);
        assert_all_grads(&relaxed, &grads);
        assert_all_grads(&rpp, &grads);
    }
}
