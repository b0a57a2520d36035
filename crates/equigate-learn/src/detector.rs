//! The symmetry-breaking detector: PE-SAC's steps 1–4 on their own (algorithms.md §1.1), learned
//! from observed transitions whoever drives the arm. Equivariant and standard one-step predictors
//! P̂_E, P̂_N; their disagreement; robust upper-tail pseudo-labels over a sliding window; the gate
//! p_ω(s, a) = Pr(λ = 1 | s, a) trained by BCE on the labels.
//!
//! The labels are §1.1's by default. One option beyond it, off by default
//! ([`DetectorConfig::orbit_relative`]): a sample is labelled 1 only if its disagreement is also
//! above the mean disagreement over its orbit {(ρ_s(g)s, ρ_a(g)a) : g ∈ G}. Why: P̂_E, being
//! equivariant, fits the orbit average of the dynamics, so where one copy of an orbit is broken,
//! P̂_E is wrong in every copy: by (1 − 1/|G|)·b in the broken copy and by b/|G| in each of the
//! others. The plain upper-tail rule labels the others too once b/|G| clears the window threshold
//! (the C_4 "mud corner" experiment of tests/pesac_point_reach.rs: λ = 1 on 25–35% of the
//! unbroken rotations). Within an orbit the broken copy has the largest disagreement, so comparing
//! with the orbit mean removes them. It costs |G| no-grad predictor passes per batch. Why it is
//! off: on the default obstacle task (UR5e, C_8, 40,000 random transitions; BENCHMARKS.md) it
//! ranks the broken steps worse (AUROC of λ 0.905 and 0.882 on seeds 0 and 1, against 0.926 and
//! 0.893 without) and makes the detector about 2.5× slower; what it buys is a darker map off the
//! obstacles (precision at λ > 0.5 about 0.3 against 0.2). On this module's broken-corner test
//! (C_4, one slow corner) it does what it is for: λ > 0.5 on 0.0% of the unbroken 90° turn of
//! the corner against 12.6% with §1.1's rule (AUROC 0.998 against 0.981).
//!
//! [`auroc`] and [`precision_recall`] score λ against a ground truth of where the symmetry is
//! broken (the simulator knows it).

use std::path::Path;

use burn::config::Config;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use equigate_symmetry::Representation;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{self, CheckpointError};
use crate::nets::{ActionGate, EquiPredictor, MlpPredictor, NetsConfig};
use crate::pesac::{
    adam_step, bce_with_logits, disagreement, load_trained, save_trained, scalar, to_vec,
    DeltaScale, DisagreementWindow, PeSacError, PredictorStep,
};
use crate::replay::Batch;

/// Detector hyperparameters (defaults: PE-SAC's, algorithms.md §1.2), saved in checkpoints.
#[derive(Config, Debug)]
pub struct DetectorConfig {
    /// Observation length.
    pub obs_dim: usize,
    /// Action length.
    pub act_dim: usize,
    /// Widths: `mlp` for P̂_N and p_ω, `equi` for P̂_E (default: 2×256 and 256 regular features).
    #[config(default = "NetsConfig::new()")]
    pub nets: NetsConfig,
    /// Adam learning rate of the predictors and the gate (default: `3e-4`).
    #[config(default = 3e-4)]
    pub lr: f64,
    /// Adam ε (default: `1e-8`).
    #[config(default = 1e-8)]
    pub adam_epsilon: f64,
    /// Global-norm gradient clipping (default: `Some(0.5)`, as the learners).
    #[config(default = "Some(0.5)")]
    pub max_grad_norm: Option<f64>,
    /// c_r, the weight of the reward terms (default: `1.0`, as PE-SAC).
    #[config(default = 1.0)]
    pub reward_weight: f64,
    /// Size of the disagreement window W (default: `10000`, as PE-SAC).
    #[config(default = 10000)]
    pub window_size: usize,
    /// k of the upper-tail rule (default: `3.0`, as PE-SAC).
    #[config(default = 3.0)]
    pub outlier_k: f64,
    /// Also require the disagreement to exceed its orbit mean (default: `false`, §1.1's rule;
    /// module docs).
    #[config(default = false)]
    pub orbit_relative: bool,
    /// Seed of the initialisation (default: `0`).
    #[config(default = 0)]
    pub seed: u64,
}

/// Scalars of one [`Detector::train_step`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DetectorMetrics {
    /// L_P of P̂_E.
    pub predictor_loss_e: f32,
    /// L_P of P̂_N.
    pub predictor_loss_n: f32,
    /// Mean disagreement over the batch.
    pub disagreement: f32,
    /// The window threshold median(W) + k·1.4826·MAD(W).
    pub label_threshold: f32,
    /// Fraction of the batch labelled 1.
    pub label_rate: f32,
    /// L_ω = BCE(p_ω(s, a), y).
    pub gate_bce: f32,
}

/// (ρ_s(g)ᵀ, ρ_a(g)ᵀ) of one group element g: `[obs_dim, obs_dim]`, `[act_dim, act_dim]`.
type Transposes<B> = (Tensor<B, 2>, Tensor<B, 2>);

/// The detector's networks, optimizers and label state (module docs).
pub struct Detector<B: AutodiffBackend> {
    /// Hyperparameters.
    pub config: DetectorConfig,
    /// Equivariant predictor P̂_E.
    pub p_e: EquiPredictor<B>,
    /// Standard predictor P̂_N.
    pub p_n: MlpPredictor<B>,
    /// The gate p_ω(s, a).
    pub gate: ActionGate<B>,
    /// Window W of recent disagreements.
    pub window: DisagreementWindow,
    /// σ_Δ of the predictors' target.
    pub delta_scale: DeltaScale,
    opt_p_e: OptimizerAdaptor<Adam, EquiPredictor<B>, B>,
    opt_p_n: OptimizerAdaptor<Adam, MlpPredictor<B>, B>,
    opt_gate: OptimizerAdaptor<Adam, ActionGate<B>, B>,
    /// (ρ_s(g)ᵀ, ρ_a(g)ᵀ) for every g ≠ e, so that a row batch turns by `x.matmul(ρᵀ)`.
    orbit: Vec<Transposes<B::InnerBackend>>,
    device: B::Device,
    updates: u64,
}

/// Checkpoint file of the [`DetectorConfig`].
pub const DETECTOR_CONFIG_FILE: &str = "detector_config.json";
/// Checkpoint file of the gate (the same name and format as PE-SAC's, so either loads).
pub const GATE_FILE: &str = "gate_omega.mpk";

impl<B: AutodiffBackend> Detector<B> {
    /// A detector for observations with representation `obs` and actions `act`.
    ///
    /// # Errors
    /// [`PeSacError::DimMismatch`] if the config's dims differ from the representations',
    /// [`PeSacError::Layer`] if a network cannot be built.
    pub fn new(
        config: DetectorConfig,
        obs: &Representation,
        act: &Representation,
        device: &B::Device,
    ) -> Result<Self, PeSacError> {
        for (what, config, representation) in
            [("obs_dim", config.obs_dim, obs.dim()), ("act_dim", config.act_dim, act.dim())]
        {
            if config != representation {
                return Err(PeSacError::DimMismatch { what, config, representation });
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let nets = &config.nets;
        let p_e = EquiPredictor::new(&nets.equi, obs, act, &mut rng, device)?;
        let p_n = MlpPredictor::new(&nets.mlp, config.obs_dim, config.act_dim, &mut rng, device)?;
        let gate = ActionGate::new(&nets.mlp, config.obs_dim, config.act_dim, &mut rng, device)?;
        let adam = AdamConfig::new().with_epsilon(config.adam_epsilon as f32);
        let group = *obs.group();
        let orbit = group
            .elements()
            .into_iter()
            .filter(|&g| g != group.identity())
            .map(|g| (transposed(&obs.matrix(g), device), transposed(&act.matrix(g), device)))
            .collect();
        Ok(Self {
            window: DisagreementWindow::new(config.window_size),
            delta_scale: DeltaScale::new(),
            opt_p_e: adam.init(),
            opt_p_n: adam.init(),
            opt_gate: adam.init(),
            orbit,
            device: device.clone(),
            updates: 0,
            p_e,
            p_n,
            gate,
            config,
        })
    }

    /// Number of [`Self::train_step`] calls so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// One detector update: predictors, disagreement, labels, gate (§1.1 steps 1–4).
    pub fn train_step(&mut self, batch: &Batch<B>) -> DetectorMetrics {
        let c = &self.config;
        let step =
            PredictorStep { reward_weight: c.reward_weight, lr: c.lr, clip: c.max_grad_norm };
        let (p_e, p_n, (predictor_loss_e, predictor_loss_n)) = step.apply(
            batch,
            &mut self.delta_scale,
            (self.p_e.clone(), &mut self.opt_p_e),
            (self.p_n.clone(), &mut self.opt_p_n),
        );
        (self.p_e, self.p_n) = (p_e, p_n);

        let (obs, actions) = (batch.obs.clone().inner(), batch.actions.clone().inner());
        let dis = self.disagreements(obs, actions);
        let (mut y, label_threshold) = self.window.push_and_label(&dis[0], self.config.outlier_k);
        if self.config.orbit_relative && !self.orbit.is_empty() {
            let n = dis.len() as f32;
            for (i, label) in y.iter_mut().enumerate() {
                let orbit_mean = dis.iter().map(|d| d[i]).sum::<f32>() / n;
                if dis[0][i] <= orbit_mean {
                    *label = 0.0;
                }
            }
        }

        let rows = y.len();
        let label_rate = y.iter().sum::<f32>() / rows.max(1) as f32;
        let labels = Tensor::<B, 2>::from_data(TensorData::new(y, [rows, 1]), &self.device);
        let logits = self.gate.logits(batch.obs.clone(), batch.actions.clone());
        let bce = bce_with_logits(logits, labels);
        let grads = burn::optim::GradientsParams::from_grads(bce.backward(), &self.gate);
        let gate = self.gate.clone();
        self.gate =
            adam_step(&mut self.opt_gate, self.config.lr, self.config.max_grad_norm, gate, grads);
        self.updates += 1;
        DetectorMetrics {
            predictor_loss_e,
            predictor_loss_n,
            disagreement: dis[0].iter().sum::<f32>() / rows.max(1) as f32,
            label_threshold,
            label_rate,
            gate_bce: scalar(bce.inner()),
        }
    }

    /// Disagreement of every sample (index 0) and of its turned copies (indices 1.., one per
    /// g ≠ e; only when `orbit_relative`), no grad. `[1 or |G|][batch]`.
    fn disagreements(
        &self,
        obs: Tensor<B::InnerBackend, 2>,
        actions: Tensor<B::InnerBackend, 2>,
    ) -> Vec<Vec<f32>> {
        let (p_e, p_n) = (self.p_e.valid(), self.p_n.valid());
        let c_r = self.config.reward_weight;
        let mut out = vec![to_vec(disagreement(&p_e, &p_n, obs.clone(), actions.clone(), c_r))];
        if self.config.orbit_relative {
            for (rho_s, rho_a) in &self.orbit {
                let (s, a) =
                    (obs.clone().matmul(rho_s.clone()), actions.clone().matmul(rho_a.clone()));
                out.push(to_vec(disagreement(&p_e, &p_n, s, a, c_r)));
            }
        }
        out
    }

    /// p_ω(s, a) for row-major batches of observations `[n · obs_dim]` and actions
    /// `[n · act_dim]` -> `[n]` in [0, 1], on a no-grad copy.
    ///
    /// # Panics
    /// If the lengths are not matching multiples of the dims.
    pub fn lambda(&self, obs: &[f32], actions: &[f32]) -> Vec<f32> {
        let (d, a) = (self.config.obs_dim, self.config.act_dim);
        let n = obs.len() / d;
        assert!(
            obs.len() == n * d && actions.len() == n * a,
            "lambda: {} observation and {} action values for dims {d} and {a}",
            obs.len(),
            actions.len()
        );
        let s = Tensor::from_data(TensorData::new(obs.to_vec(), [n, d]), &self.device);
        let u = Tensor::from_data(TensorData::new(actions.to_vec(), [n, a]), &self.device);
        to_vec(self.gate.valid().forward(s, u))
    }

    /// The predictors' disagreement dis(s, a) (§1.1 step 2) for row-major batches of
    /// observations `[n · obs_dim]` and actions `[n · act_dim]` -> `[n]`, no grad: the raw score
    /// the labels are cut from.
    ///
    /// # Panics
    /// As [`Self::lambda`].
    pub fn disagreement(&self, obs: &[f32], actions: &[f32]) -> Vec<f32> {
        let (d, a) = (self.config.obs_dim, self.config.act_dim);
        let n = obs.len() / d;
        assert!(obs.len() == n * d && actions.len() == n * a, "disagreement: bad lengths");
        let s = Tensor::from_data(TensorData::new(obs.to_vec(), [n, d]), &self.device);
        let u = Tensor::from_data(TensorData::new(actions.to_vec(), [n, a]), &self.device);
        let (p_e, p_n) = (self.p_e.valid(), self.p_n.valid());
        to_vec(disagreement(&p_e, &p_n, s, u, self.config.reward_weight))
    }

    /// Writes the config, the three networks with their Adam states and σ_Δ/W counters into
    /// `dir` (atomic files). The gate is `gate_omega.mpk`, as in a PE-SAC checkpoint.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), CheckpointError> {
        checkpoint::save_config(&self.config, &dir.join(DETECTOR_CONFIG_FILE))?;
        save_trained(dir, "p_e", &self.p_e, &self.opt_p_e)?;
        save_trained(dir, "p_n", &self.p_n, &self.opt_p_n)?;
        save_trained(dir, "gate_omega", &self.gate, &self.opt_gate)
    }

    /// Restores what [`Self::save_checkpoint`] wrote (into a detector with the same config).
    pub fn load_checkpoint(mut self, dir: &Path) -> Result<Self, CheckpointError> {
        let d = self.device.clone();
        (self.p_e, self.opt_p_e) = load_trained(dir, "p_e", self.p_e, self.opt_p_e, &d)?;
        (self.p_n, self.opt_p_n) = load_trained(dir, "p_n", self.p_n, self.opt_p_n, &d)?;
        (self.gate, self.opt_gate) = load_trained(dir, "gate_omega", self.gate, self.opt_gate, &d)?;
        Ok(self)
    }

    /// Replaces the gate with the one in a PE-SAC (or detector) checkpoint directory `dir`
    /// (`gate_omega.mpk`; the gate's MLP widths must match `config.nets.mlp`).
    pub fn load_gate(mut self, dir: &Path) -> Result<Self, CheckpointError> {
        self.gate = checkpoint::load_module(self.gate, &dir.join(GATE_FILE), &self.device)?;
        Ok(self)
    }
}

/// ρᵀ as a `[dim, dim]` f32 tensor.
fn transposed<B: Backend>(m: &equigate_symmetry::DMatrix<f64>, device: &B::Device) -> Tensor<B, 2> {
    let (r, c) = m.shape();
    let values: Vec<f32> = (0..c).flat_map(|j| (0..r).map(move |i| m[(i, j)] as f32)).collect();
    Tensor::from_data(TensorData::new(values, [c, r]), device)
}

/// Area under the ROC curve of `scores` against `labels` (true = positive): the probability that
/// a random positive scores above a random negative, ties counting ½ (Mann–Whitney U / (n₊n₋)).
/// `None` if either class is empty.
pub fn auroc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), labels.len(), "auroc: one label per score");
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Average ranks (1-based) over ties.
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    let positives = labels.iter().filter(|l| **l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let rank_sum: f64 = ranks.iter().zip(labels).filter(|(_, l)| **l).map(|(r, _)| r).sum();
    let u = rank_sum - (positives * (positives + 1)) as f64 / 2.0;
    Some(u / (positives * negatives) as f64)
}

/// (precision, recall) of `score > threshold` against `labels`; precision is `None` when nothing
/// is predicted positive, recall `None` when there are no positives.
pub fn precision_recall(
    scores: &[f32],
    labels: &[bool],
    threshold: f32,
) -> (Option<f64>, Option<f64>) {
    let (mut tp, mut fp, mut fnn) = (0usize, 0usize, 0usize);
    for (&s, &l) in scores.iter().zip(labels) {
        match (s > threshold, l) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fnn += 1,
            (false, false) => {}
        }
    }
    let ratio = |a: usize, b: usize| (a + b > 0).then(|| a as f64 / (a + b) as f64);
    (ratio(tp, fp), ratio(tp, fnn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::{EquiConfig, MlpConfig};
    use crate::replay::{ReplayBuffer, Transition};
    use burn::backend::{Autodiff, Flex};
    use equigate_symmetry::{FieldKind, Group};
    use rand::Rng;

    type B = Autodiff<Flex>;

    #[test]
    fn auroc_matches_hand_counts_with_ties() {
        assert_eq!(auroc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]), Some(0.75));
        assert_eq!(auroc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(auroc(&[0.9, 0.1], &[true, false]), Some(1.0));
        assert_eq!(auroc(&[0.9, 0.1], &[true, true]), None);
        let (p, r) = precision_recall(&[0.9, 0.6, 0.2, 0.7], &[true, false, true, true], 0.5);
        assert_eq!((p, r), (Some(2.0 / 3.0), Some(2.0 / 3.0)));
    }

    /// A C_4-symmetric point mover (obs = position ρ1, action = velocity ρ1, s' = s + 0.1a)
    /// except in the corner x > 0.3, y > 0.3, where a step moves 30% as far. After training
    /// with §1.1's labels (the default), the gate must rank broken (s, a) above unbroken ones
    /// (AUROC 0.981 when written) and leave most of the unbroken 90° turn of the corner off
    /// (λ > 0.5 on 12.6% of it).
    #[test]
    fn detector_finds_a_broken_corner() {
        let (score, turn_on) = broken_corner(false);
        assert!(score > 0.9, "AUROC {score}");
        assert!(turn_on < 0.25, "λ on in {:.0}% of the unbroken turn", 100.0 * turn_on);
    }

    /// The orbit-relative rule on the same data keeps the unbroken turn off (0.0% when written,
    /// AUROC 0.998): what it is for.
    #[test]
    fn orbit_relative_rule_keeps_the_rotations_of_a_broken_corner_off() {
        let (score, turn_on) = broken_corner(true);
        assert!(score > 0.9, "AUROC {score}");
        assert!(turn_on < 0.05, "λ on in {:.0}% of the unbroken turn", 100.0 * turn_on);
    }

    /// Trains a detector on the corner task; returns (AUROC, fraction of λ > 0.5 in a turn).
    fn broken_corner(orbit_relative: bool) -> (f64, f64) {
        let group = Group::cyclic(4).unwrap();
        let rho = Representation::from_layout(&group, &[(FieldKind::Rotation2, 2)]).unwrap();
        let broken = |p: [f32; 2]| p[0] > 0.3 && p[1] > 0.3;
        let config = DetectorConfig::new(2, 2)
            .with_lr(1e-3)
            .with_window_size(4000)
            .with_orbit_relative(orbit_relative)
            .with_nets(
                NetsConfig::new()
                    .with_mlp(MlpConfig::new().with_hidden(vec![64, 64]))
                    .with_equi(EquiConfig::new().with_hidden_dim(64)),
            );
        let device = Default::default();
        let mut det = Detector::<B>::new(config, &rho, &rho, &device).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut buffer = ReplayBuffer::new(20_000, 2, 2, 5).unwrap();
        let sample = |rng: &mut ChaCha8Rng| {
            let s = [rng.random_range(-1.0..1.0f32), rng.random_range(-1.0..1.0f32)];
            let a = [rng.random_range(-1.0..1.0f32), rng.random_range(-1.0..1.0f32)];
            let k = if broken(s) { 0.3 } else { 1.0 };
            let next = [s[0] + 0.1 * k * a[0], s[1] + 0.1 * k * a[1]];
            (s, a, next)
        };
        for _ in 0..20_000 {
            let (s, a, next) = sample(&mut rng);
            let t = Transition {
                obs: &s,
                action: &a,
                reward: 0.0,
                next_obs: &next,
                terminated: false,
                truncated: false,
            };
            buffer.push(t).unwrap();
        }
        for _ in 0..2500 {
            det.train_step(&buffer.sample::<B>(128, &device).unwrap());
        }
        let (mut obs, mut act, mut truth, mut turned) = (vec![], vec![], vec![], vec![]);
        for _ in 0..2000 {
            let (s, a, _) = sample(&mut rng);
            obs.extend(s);
            act.extend(a);
            truth.push(broken(s));
            // In a 90° turn of the corner (x < -0.3, y > 0.3), unbroken.
            turned.push(s[0] < -0.3 && s[1] > 0.3);
        }
        let lambda = det.lambda(&obs, &act);
        let score = auroc(&lambda, &truth).unwrap();
        let in_turn: Vec<f32> =
            lambda.iter().zip(&turned).filter(|(_, t)| **t).map(|(l, _)| *l).collect();
        let turn_on = in_turn.iter().filter(|l| **l > 0.5).count() as f64 / in_turn.len() as f64;
        let (precision, recall) = precision_recall(&lambda, &truth, 0.5);
        println!(
            "broken corner, orbit_relative = {orbit_relative}: AUROC {score:.3}, precision \
             {precision:?}, recall {recall:?}, λ > 0.5 on {:.1}% of its 90° turn",
            100.0 * turn_on
        );
        (score, turn_on)
    }
}
