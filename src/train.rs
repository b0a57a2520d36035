//! `equigate train` and `equigate eval`: the in-process training job on the built-in simulator.
//!
//! One process steps `num_envs` reach environments ([`equigate_robot::task::ReachEnv`]) in
//! lockstep, acts for all of them with one batched forward pass, stores every transition in one
//! replay buffer and performs `updates_per_step` updates per transition (the update-to-data
//! ratio). A run directory holds:
//!
//! | file | what |
//! |---|---|
//! | `train.yaml` | the exact [`TrainConfig`] of the run (with the task file's path) |
//! | `task.yaml` | the resolved task (defaults with the task file laid over them) |
//! | `metrics.csv` | one [`MetricsRow`] every `log_every` environment steps |
//! | `learning_curve.png` | evaluation return and success rate against environment steps |
//! | `checkpoint/` | the agent's networks, optimizer states and counters + `run_state.json` |
//!
//! Observations are scaled by [`ObsScaler`] from [`observation_bounds`] (a scaling that commutes
//! with the rotation, so the symmetry survives it); actions in [-1, 1] are joint velocities as
//! fractions of the URDF velocity limits ([`ActionScaler`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _};
use burn::tensor::backend::AutodiffBackend;
use equigate_learn::detector::DetectorConfig;
use equigate_learn::nets::{EquiConfig, MlpConfig, NetsConfig};
use equigate_learn::pesac::PeSacConfig;
use equigate_learn::replay::{ReplayBuffer, Transition};
use equigate_learn::sac::{ActMode, SacConfig};
use equigate_learn::scaling::{ActionScaler, ObsScaler};
use equigate_robot::model::{RobotKind, RobotModel};
use equigate_robot::task::{action_layout, ReachEnv, TaskConfig};
use equigate_ros::yaml;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::agent::{self, Agent, AgentKind, TaskSymmetry};
use crate::metrics::{MetricsRow, MetricsWindow, MetricsWriter};
use crate::run_dir::{next_multiple, read_json, read_yaml};

/// Everything a training run reads: one YAML file (`config/train/*.yaml`); every key optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// The arm (default: `ur5e`).
    pub robot: RobotKind,
    /// Task overlay file (`config/tasks/*.yaml`, resolved as [`crate::resources::resolve`]), or
    /// none for the robot's defaults (default: `config/tasks/ur5e_reach_obstacles.yaml`: the
    /// table and two boxes in the +y sector break the symmetry locally, which is what PE-SAC is
    /// for).
    pub task: Option<String>,
    /// The learner (default: `pe-sac`).
    pub agent: AgentKind,
    /// n of the rotation group C_n about the pan axis (default: `8` \[I\]: 45° steps, as equi_rl's
    /// `equi_n` = 8 (algorithms.md §3.1); the joint-velocity action is invariant, so tanh
    /// commutes with every element and any n is exact; 8 halves the parameters of C_4 nets).
    pub group_order: usize,
    /// Seed of the environments, the networks, the exploration noise and the replay sampling
    /// (default: `0`). Two runs with the same config and seed are identical on one backend.
    pub seed: u64,
    /// Environment steps summed over all environments (default: `100000`).
    pub total_steps: usize,
    /// Environments stepped together (default: `4` \[I\]: one batched forward pass acts for all;
    /// more decorrelates the data, fewer keeps the update-to-data ratio per env high).
    pub num_envs: usize,
    /// Updates per environment transition after `learning_starts` (default: `1.0`, SAC's).
    pub updates_per_step: f64,
    /// Evaluate every this many environment steps (default: `5000`).
    pub eval_every: usize,
    /// Deterministic evaluation episodes, the same starts and goals each time (default: `10`,
    /// §1.2's 10 episodes).
    pub eval_episodes: usize,
    /// Write a checkpoint every this many environment steps, and at the end (default: `10000`).
    pub checkpoint_every: usize,
    /// Write a metrics row every this many environment steps (default: `1000`).
    pub log_every: usize,
    /// Hyperparameters of the learners.
    pub learner: LearnerConfig,
    /// Run directories (of `equigate offline`, or `train` with `sac` / `equi-sac`) whose actor and
    /// critics start this run's networks (default: none). A `sac` run starts the standard
    /// networks, an `equi-sac` run the equivariant ones: all of SAC / Equi-SAC, or one branch of
    /// PE-SAC (give both for both). Widths, robot and group order must match. The uniform random
    /// phase is skipped: the pre-trained policy acts from the first step.
    pub init_from: Vec<String>,
    /// The symmetry-breaking detector of `equigate detect` and detector_node.
    pub detector: DetectorSettings,
}

/// The detector's pseudo-label rule (algorithms.md §1.1 step 3); the defaults are
/// [`DetectorConfig`]'s. Its networks' widths, learning rate and batch size are the learner's;
/// its equivariant predictor has an invariant embedding only if asked here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorSettings {
    /// k of the upper-tail rule y = 1\[dis > median(W) + k·1.4826·MAD(W)\] (default: `3.0`).
    pub outlier_k: f64,
    /// Also require the disagreement to exceed its orbit mean (default: `false`; see
    /// [`DetectorConfig::orbit_relative`]).
    pub orbit_relative: bool,
    /// Width of the invariant embedding of the equivariant predictor P̂_E, 0 for none (default:
    /// `0`, with which the detector's AUROC in BENCHMARKS.md was measured; the learner's
    /// `equi_invariant_embedding` does not reach the detector).
    pub equi_invariant_embedding: usize,
}

impl Default for DetectorSettings {
    fn default() -> Self {
        let d = DetectorConfig::new(1, 1);
        Self {
            outlier_k: d.outlier_k,
            orbit_relative: d.orbit_relative,
            equi_invariant_embedding: 0,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            robot: RobotKind::Ur5e,
            task: Some("config/tasks/ur5e_reach_obstacles.yaml".to_owned()),
            agent: AgentKind::PeSac,
            group_order: 8,
            seed: 0,
            total_steps: 100_000,
            num_envs: 4,
            updates_per_step: 1.0,
            eval_every: 5_000,
            eval_episodes: 10,
            checkpoint_every: 10_000,
            log_every: 1_000,
            learner: LearnerConfig::default(),
            init_from: Vec::new(),
            detector: DetectorSettings::default(),
        }
    }
}

/// Learner hyperparameters `equigate train` exposes; the defaults are the library's
/// (algorithms.md §1.2), read from [`SacConfig`] and [`PeSacConfig`] rather than repeated here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearnerConfig {
    /// Minibatch size (default: `256`).
    pub batch_size: usize,
    /// Uniform random environment steps before the first update (default: `10000`).
    pub learning_starts: usize,
    /// Replay capacity, capped at `total_steps` (default: `1000000`).
    pub buffer_size: usize,
    /// Discount γ (default: `0.99`).
    pub gamma: f64,
    /// Polyak τ of the target critics (default: `0.005`).
    pub tau: f64,
    /// Adam learning rate of every network and of log α (default: `3e-4`).
    pub lr: f64,
    /// Hidden widths of the MLPs (default: `[256, 256]`).
    pub hidden: Vec<usize>,
    /// Width of the equivariant hidden layers in features (default: `256`).
    pub equi_hidden_dim: usize,
    /// Width of the dense layer that embeds the invariant inputs of every equivariant network
    /// before its first equivariant layer, 0 for none (default: `0`;
    /// [`equigate_learn::nets::InvariantEmbedding`]).
    pub equi_invariant_embedding: usize,
    /// Initial temperature α₀ (default: `1.0`).
    pub init_temperature: f64,
    /// Target entropy per action dimension, nats: automatic temperature tuning holds the
    /// policy's entropy at this · |A| (default: `-0.5`, −|A|/2 of algorithms.md §1.2;
    /// [`SacConfig::target_entropy_per_dim`]). Lower values shrink the exploration noise; −1
    /// (the SAC paper's −|A|) lifted SAC's deterministic success on the obstacle task but
    /// lowered PE-SAC's on the seeds measured (BENCHMARKS.md).
    pub target_entropy_per_dim: f64,
    /// PE-SAC: updates with λ forced to 0 (default: `5000`).
    pub gate_warmup_updates: u64,
    /// PE-SAC: run the predictor and gate steps on a second thread beside the critic and actor
    /// steps, which then read the gates of the previous update (default: `false`, the paper's
    /// order; `true` is about 1.5x faster on two cores, BENCHMARKS.md; [`PeSacConfig::pipelined`]).
    pub pipelined: bool,
    /// PE-SAC: train the standard actor π_N on every state of the batch, not only where the
    /// state gate picks it (default: `false`, the paper's hard product of experts;
    /// [`PeSacConfig::pi_n_all_states`]).
    pub pi_n_all_states: bool,
    /// Factor on the learning rates of the equivariant critics and actors (Equi-SAC's; PE-SAC's
    /// Q_E and π_E) (default: `1.0`, the MLPs' rate; [`PeSacConfig::equi_lr_scale`]). The
    /// equivariant layers move each weight √|G| times less per Adam step than a dense layer at
    /// the same rate, so √|G| (2.83 for C_8) gives both the same step per weight; offline,
    /// `equigate offline` uses √|G| by default (BENCHMARKS.md).
    pub equi_lr_scale: f64,
}

impl Default for LearnerConfig {
    fn default() -> Self {
        let sac = SacConfig::new(1, 1);
        let pe = PeSacConfig::new(sac.clone());
        Self {
            batch_size: sac.batch_size,
            learning_starts: sac.learning_starts,
            buffer_size: sac.buffer_size,
            gamma: sac.gamma,
            tau: sac.tau,
            lr: sac.q_lr,
            hidden: MlpConfig::new().hidden,
            equi_hidden_dim: EquiConfig::new().hidden_dim,
            equi_invariant_embedding: EquiConfig::new().invariant_embedding,
            init_temperature: sac.init_temperature,
            target_entropy_per_dim: sac.target_entropy_per_dim,
            gate_warmup_updates: pe.gate_warmup_updates,
            pipelined: pe.pipelined,
            pi_n_all_states: pe.pi_n_all_states,
            equi_lr_scale: pe.equi_lr_scale,
        }
    }
}

impl LearnerConfig {
    /// The shape of the equivariant networks: `equi_hidden_dim` wide, as many hidden layers as
    /// the MLPs, exact layers, the invariant embedding.
    pub fn equi_config(&self) -> EquiConfig {
        EquiConfig::new()
            .with_hidden_dim(self.equi_hidden_dim)
            .with_hidden_layers(self.hidden.len())
            .with_invariant_embedding(self.equi_invariant_embedding)
    }
}

impl TrainConfig {
    /// Reads a train config file: YAML, unknown keys are errors naming the key and the file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read train config {}", path.display()))?;
        let value = yaml::parse(&text)
            .with_context(|| format!("train config {}: invalid YAML", path.display()))?;
        let config: TrainConfig = match value {
            yaml::Value::Null => TrainConfig::default(),
            v => yaml::from_value(v).map_err(|(key, reason)| {
                anyhow::anyhow!("train config {}: key `{key}`: {reason}", path.display())
            })?,
        };
        config.validate().with_context(|| format!("train config {}", path.display()))?;
        Ok(config)
    }

    /// Checks the ranges: positive counts, γ in [0, 1), τ in (0, 1], lr > 0, a batch no larger
    /// than the replay buffer, the detector's k finite and ≥ 0.
    pub fn validate(&self) -> anyhow::Result<()> {
        let l = &self.learner;
        for (what, n) in [
            ("group_order", self.group_order),
            ("total_steps", self.total_steps),
            ("num_envs", self.num_envs),
            ("eval_every", self.eval_every),
            ("eval_episodes", self.eval_episodes),
            ("checkpoint_every", self.checkpoint_every),
            ("log_every", self.log_every),
            ("learner.batch_size", l.batch_size),
            ("learner.buffer_size", l.buffer_size),
            ("learner.equi_hidden_dim", l.equi_hidden_dim),
        ] {
            if n == 0 {
                bail!("{what} must be positive");
            }
        }
        if !(self.updates_per_step.is_finite() && self.updates_per_step >= 0.0) {
            bail!("updates_per_step = {} must be finite and >= 0", self.updates_per_step);
        }
        if !(0.0..1.0).contains(&l.gamma) {
            bail!("learner.gamma = {} must be in [0, 1)", l.gamma);
        }
        // Written so that NaN fails every check.
        let positive = |x: f64| x > 0.0;
        let tau_ok = l.tau > 0.0 && l.tau <= 1.0;
        if !tau_ok || !positive(l.lr) || !positive(l.init_temperature) {
            bail!("learner.tau must be in (0, 1], learner.lr and init_temperature > 0");
        }
        if !(l.equi_lr_scale.is_finite() && l.equi_lr_scale > 0.0) {
            bail!("learner.equi_lr_scale = {} must be finite and > 0", l.equi_lr_scale);
        }
        if !l.target_entropy_per_dim.is_finite() {
            bail!("learner.target_entropy_per_dim = {} must be finite", l.target_entropy_per_dim);
        }
        if l.hidden.is_empty() || l.hidden.contains(&0) {
            bail!("learner.hidden must be a non-empty list of positive widths");
        }
        if !(self.detector.outlier_k.is_finite() && self.detector.outlier_k >= 0.0) {
            bail!("detector.outlier_k = {} must be finite and >= 0", self.detector.outlier_k);
        }
        if l.batch_size > l.buffer_size.min(self.total_steps) {
            bail!("learner.batch_size {} exceeds the replay capacity", l.batch_size);
        }
        Ok(())
    }

    /// The learner config for a task with `obs_dim` observations and `act_dim` actions.
    pub fn learner_config(&self, obs_dim: usize, act_dim: usize) -> PeSacConfig {
        let l = &self.learner;
        let sac = SacConfig::new(obs_dim, act_dim)
            .with_hidden(l.hidden[0])
            .with_batch_size(l.batch_size)
            .with_learning_starts(l.learning_starts)
            .with_buffer_size(l.buffer_size.min(self.total_steps))
            .with_gamma(l.gamma)
            .with_tau(l.tau)
            .with_q_lr(l.lr)
            .with_policy_lr(l.lr)
            .with_alpha_lr(l.lr)
            .with_init_temperature(l.init_temperature)
            .with_target_entropy_per_dim(l.target_entropy_per_dim)
            .with_seed(self.seed);
        let nets = NetsConfig::new()
            .with_mlp(MlpConfig::new().with_hidden(l.hidden.clone()))
            .with_equi(l.equi_config());
        PeSacConfig::new(sac)
            .with_nets(nets)
            .with_predictor_lr(l.lr)
            .with_gate_lr(l.lr)
            .with_gate_warmup_updates(l.gate_warmup_updates)
            .with_pipelined(l.pipelined)
            .with_pi_n_all_states(l.pi_n_all_states)
            .with_equi_lr_scale(l.equi_lr_scale)
    }
}

/// The robot, the resolved task and the model shared by all environments of a run.
#[derive(Debug, Clone)]
pub struct EnvSpec {
    /// The arm.
    pub robot: RobotKind,
    /// The resolved task.
    pub task: TaskConfig,
    /// The kinematic model, loaded once.
    pub model: Arc<RobotModel>,
}

impl EnvSpec {
    /// Loads the robot's URDF from the package share directory and the task file of `config`.
    pub fn load(config: &TrainConfig) -> anyhow::Result<Self> {
        let task_path = config.task.as_deref().map(crate::resources::resolve);
        let task = crate::resources::load_task(config.robot, task_path.as_deref())?;
        Self::with_task(config.robot, task)
    }

    /// The spec of `robot` with an already resolved `task`.
    pub fn with_task(robot: RobotKind, task: TaskConfig) -> anyhow::Result<Self> {
        let urdf = crate::resources::share_dir().join("urdf").join(robot.urdf_file_name());
        let model = RobotModel::from_urdf_file(&urdf, robot.base_link(), robot.ee_link())
            .with_context(|| format!("loading {}", urdf.display()))?;
        Ok(Self { robot, task, model: Arc::new(model) })
    }

    /// A fresh environment with its own seed.
    pub fn env(&self, seed: u64) -> anyhow::Result<ReachEnv> {
        Ok(ReachEnv::new(Arc::clone(&self.model), self.task.clone(), seed)?)
    }
}

/// Declared ranges `(low, high)` of every observation feature, for [`ObsScaler`]: ±1 for
/// (cos q1, sin q1); the URDF position limits for the other joints (±π for continuous ones);
/// ±the URDF velocity limits for q̇; ±R for positions relative to the pan axis and, for the
/// goal-minus-end-effector vector, ± the task's `goal_error_range_m` if set, else ±2R; R is the
/// sum of the lengths of the chain's joint offsets (an upper bound on the reach). These set a
/// scale; values outside are not clipped.
///
/// # Shapes
/// `([2 * dof + 10], [2 * dof + 10])`, the order of
/// [`equigate_robot::task::observation_layout`].
pub fn observation_bounds(env: &ReachEnv) -> (Vec<f64>, Vec<f64>) {
    let model = env.model();
    let pan = env.pan_index();
    let reach: f64 = model.segments().iter().map(|s| s.origin.translation.vector.norm()).sum();
    let (mut low, mut high) = (vec![-1.0, -1.0], vec![1.0, 1.0]);
    for (_, l) in model.limits().iter().enumerate().filter(|(i, _)| *i != pan) {
        let (lo, hi) = if l.continuous {
            (-std::f64::consts::PI, std::f64::consts::PI)
        } else {
            (l.lower, l.upper)
        };
        low.push(lo);
        high.push(hi);
    }
    for l in model.limits() {
        low.push(-l.velocity);
        high.push(l.velocity);
    }
    let goal_error = env.config().goal_error_range_m.unwrap_or(2.0 * reach);
    for r in [reach, reach, goal_error] {
        low.extend([-r; 3]);
        high.extend([r; 3]);
    }
    (low, high)
}

/// The observation and action scalings of a task.
#[derive(Debug, Clone)]
pub struct Scaling {
    /// Observation scaling (equivariant).
    pub obs: ObsScaler,
    /// [-1, 1] ↔ ± URDF velocity limits.
    pub act: ActionScaler,
}

impl Scaling {
    /// The scalings of `env`'s task ([`observation_bounds`], the URDF velocity limits).
    pub fn new(env: &ReachEnv) -> anyhow::Result<Self> {
        let (low, high) = observation_bounds(env);
        let layout = agent::symmetry_layout(env.layout());
        let obs = ObsScaler::new(&layout, &low, &high)?;
        let limits: Vec<f64> = env.model().limits().iter().map(|l| l.velocity).collect();
        Ok(Self { obs, act: ActionScaler::new(&limits)? })
    }
}

/// Results of deterministic evaluation episodes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EvalResult {
    /// Episodes run.
    pub episodes: usize,
    /// Mean undiscounted return.
    pub mean_return: f64,
    /// Fraction of episodes that reached the goal (terminated).
    pub success_rate: f64,
    /// Mean distance from the end effector to the goal at the end of an episode, m.
    pub mean_final_distance_m: f64,
    /// Fraction of steps inside the ground-truth symmetry-breaking region.
    pub breaking_fraction: f64,
    /// PE-SAC: mean λζ(s) over the visited states (the share of steps the standard actor acted).
    pub mean_lambda_state: Option<f64>,
}

/// One control step of an evaluation episode, as [`evaluate_traced`] reports it
/// (`equigate eval --trace` writes one CSV row of these per step).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalStep {
    /// Episode index, from 0 in the order the episodes were seeded.
    pub episode: usize,
    /// Control step within the episode, from 1.
    pub step: usize,
    /// End-effector to goal distance after the step, m.
    pub distance_m: f64,
    /// Euclidean norm of the scaled action (each joint in [-1, 1] of its velocity limit).
    pub action_norm: f64,
    /// Largest |scaled action| over the joints.
    pub action_max_abs: f64,
    /// PE-SAC: λζ(s) at the state the action was taken in (1: the standard actor acts); empty
    /// for other agents.
    pub lambda_state: Option<f32>,
    /// The goal in `base_link`, m.
    pub goal_x_m: f64,
    /// See `goal_x_m`.
    pub goal_y_m: f64,
    /// See `goal_x_m`.
    pub goal_z_m: f64,
    /// The step was in the ground-truth symmetry-breaking region.
    pub in_breaking_region: bool,
    /// The step was blocked by a collision.
    pub collided: bool,
    /// The goal was reached (the episode ends).
    pub terminated: bool,
    /// The time limit ended the episode.
    pub truncated: bool,
    /// Joint positions after the step, rad or m, in the model's joint order, space-separated.
    pub q: String,
    /// The scaled action (each joint in [-1, 1] of its velocity limit), space-separated.
    pub action: String,
}

/// `values` as one space-separated CSV field, 4 decimals each.
fn spaced(values: impl IntoIterator<Item = f64>) -> String {
    values.into_iter().map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(" ")
}

/// Runs `episodes` episodes of `policy` (a function from a batch of scaled observations
/// `[n · obs_dim]` to actions `[n · act_dim]` in [-1, 1]) on environments seeded from `seed`,
/// `batch` at a time. The same seed gives the same starts and goals whatever the policy.
pub fn evaluate(
    spec: &EnvSpec,
    scaling: &Scaling,
    episodes: usize,
    seed: u64,
    policy: impl FnMut(&[f32]) -> (Vec<f32>, Option<Vec<f32>>),
) -> anyhow::Result<EvalResult> {
    evaluate_traced(spec, scaling, episodes, seed, policy, None)
}

/// What [`evaluate_traced`] calls after every step, with the step's row.
pub type OnStep<'a> = &'a mut dyn FnMut(&EvalStep) -> anyhow::Result<()>;

/// [`evaluate`], calling `on_step` (if any; the rows are built only then) after every control
/// step of every episode (the steps of the episodes run side by side interleave; each row names
/// its episode).
///
/// # Errors
/// A simulator error, or the first error `on_step` returns.
pub fn evaluate_traced(
    spec: &EnvSpec,
    scaling: &Scaling,
    episodes: usize,
    seed: u64,
    mut policy: impl FnMut(&[f32]) -> (Vec<f32>, Option<Vec<f32>>),
    mut on_step: Option<OnStep<'_>>,
) -> anyhow::Result<EvalResult> {
    let batch = 8.min(episodes.max(1));
    let mut result = EvalResult { episodes, ..EvalResult::default() };
    let (mut steps, mut breaking, mut lambda_sum, mut lambda_n) = (0usize, 0usize, 0.0, 0usize);
    let mut done_episodes = 0;
    while done_episodes < episodes {
        let n = batch.min(episodes - done_episodes);
        let mut envs = (0..n)
            .map(|i| spec.env(seed.wrapping_add((done_episodes + i) as u64)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut obs: Vec<Vec<f32>> =
            envs.iter_mut().map(|e| scaling.obs.normalize(&e.reset())).collect();
        let mut active = vec![true; n];
        while active.iter().any(|a| *a) {
            let rows: Vec<usize> = (0..n).filter(|&i| active[i]).collect();
            let flat: Vec<f32> = rows.iter().flat_map(|&i| obs[i].iter().copied()).collect();
            let (actions, lambda) = policy(&flat);
            if let Some(l) = &lambda {
                lambda_sum += l.iter().map(|x| f64::from(*x)).sum::<f64>();
                lambda_n += l.len();
            }
            let act_dim = actions.len() / rows.len();
            for (k, &i) in rows.iter().enumerate() {
                let a = &actions[k * act_dim..(k + 1) * act_dim];
                let t = envs[i].step(&scaling.act.to_velocity(a))?;
                if let Some(on_step) = on_step.as_mut() {
                    let goal = envs[i].goal();
                    on_step(&EvalStep {
                        episode: done_episodes + i,
                        step: envs[i].steps(),
                        distance_m: t.distance,
                        action_norm: a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt(),
                        action_max_abs: a.iter().fold(0.0, |m, x| m.max(f64::from(x.abs()))),
                        lambda_state: lambda.as_ref().map(|l| l[k]),
                        goal_x_m: goal.x,
                        goal_y_m: goal.y,
                        goal_z_m: goal.z,
                        in_breaking_region: t.in_breaking_region,
                        collided: t.collided,
                        terminated: t.terminated,
                        truncated: t.truncated,
                        q: spaced(envs[i].state().q),
                        action: spaced(a.iter().map(|&x| f64::from(x))),
                    })?;
                }
                result.mean_return += t.reward;
                steps += 1;
                breaking += usize::from(t.in_breaking_region);
                obs[i] = scaling.obs.normalize(&t.obs);
                if t.terminated || t.truncated {
                    active[i] = false;
                    result.success_rate += f64::from(u8::from(t.terminated));
                    result.mean_final_distance_m += t.distance;
                }
            }
        }
        done_episodes += n;
    }
    let e = episodes.max(1) as f64;
    result.mean_return /= e;
    result.success_rate /= e;
    result.mean_final_distance_m /= e;
    result.breaking_fraction = breaking as f64 / steps.max(1) as f64;
    result.mean_lambda_state = (lambda_n > 0).then(|| lambda_sum / lambda_n as f64);
    Ok(result)
}

/// Evaluation of a uniform random policy (the baseline the learning tests compare against).
pub fn evaluate_random(
    spec: &EnvSpec,
    scaling: &Scaling,
    episodes: usize,
    seed: u64,
) -> anyhow::Result<EvalResult> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    evaluate(spec, scaling, episodes, seed, |obs| {
        let n = obs.len() / scaling.obs.dim();
        ((0..n * scaling.act.dim()).map(|_| rng.random_range(-1.0..1.0)).collect(), None)
    })
}

/// Deterministic evaluation of `agent` (its no-grad acting path, a = tanh(μ(s))).
pub fn evaluate_agent<B: AutodiffBackend>(
    agent: &mut dyn Agent<B>,
    spec: &EnvSpec,
    scaling: &Scaling,
    episodes: usize,
    seed: u64,
) -> anyhow::Result<EvalResult> {
    evaluate_agent_as(agent, spec, scaling, episodes, seed, ActMode::Deterministic)
}

/// Evaluation of `agent` on its no-grad acting path: `ActMode::Deterministic` acts with
/// a = tanh(μ(s)) (the usual SAC evaluation), `ActMode::Stochastic` samples as in training
/// (from the agent's own noise stream, so a loaded checkpoint gives the same episodes each time).
pub fn evaluate_agent_as<B: AutodiffBackend>(
    agent: &mut dyn Agent<B>,
    spec: &EnvSpec,
    scaling: &Scaling,
    episodes: usize,
    seed: u64,
    mode: ActMode,
) -> anyhow::Result<EvalResult> {
    evaluate_agent_traced(agent, spec, scaling, episodes, seed, mode, None)
}

/// [`evaluate_agent_as`], calling `on_step` (if any) after every step ([`evaluate_traced`]).
///
/// # Errors
/// A simulator error, or the first error `on_step` returns.
pub fn evaluate_agent_traced<B: AutodiffBackend>(
    agent: &mut dyn Agent<B>,
    spec: &EnvSpec,
    scaling: &Scaling,
    episodes: usize,
    seed: u64,
    mode: ActMode,
    on_step: Option<OnStep<'_>>,
) -> anyhow::Result<EvalResult> {
    let policy = |obs: &[f32]| {
        let lambda = agent.lambda_state(obs);
        (agent.act(obs, mode), lambda)
    };
    evaluate_traced(spec, scaling, episodes, seed, policy, on_step)
}

/// Counters saved beside the agent's checkpoint so that `--resume` continues the run.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RunState {
    /// Environment steps taken.
    pub env_steps: usize,
    /// Episodes finished.
    pub episodes: usize,
    /// Wall-clock seconds spent so far.
    pub wall_s: f64,
}

/// Seed of the evaluation environments: fixed per run seed and distinct from the training ones.
pub fn eval_seed(seed: u64) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(0xe7a1)
}

/// What [`train`] reports at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    /// Environment steps taken (in total, across resumes).
    pub env_steps: usize,
    /// Updates done.
    pub updates: u64,
    /// The last evaluation.
    pub final_eval: EvalResult,
    /// Evaluation of a uniform random policy on the same episodes.
    pub random_eval: EvalResult,
    /// Mean λ fraction of the PE-SAC batches after the gate warm-up (`None` for other agents).
    pub mean_lambda_fraction: Option<f64>,
    /// Wall-clock seconds of this invocation.
    pub seconds: f64,
}

/// Options of one [`train`] call besides the config.
pub struct TrainOptions<'a> {
    /// The run directory (created; must not hold another run unless `resume`).
    pub run_dir: PathBuf,
    /// Continue from `run_dir/checkpoint`.
    pub resume: bool,
    /// Set to stop early (SIGINT): a checkpoint is written and the run ends cleanly.
    pub stop: Option<Arc<AtomicBool>>,
    /// Called after every metrics row (progress display).
    pub on_row: Option<&'a mut dyn FnMut(&MetricsRow)>,
    /// Write the learning-curve PNG at every evaluation and at the end.
    pub plot: bool,
}

/// File names inside a run directory.
pub mod files {
    /// The run's [`super::TrainConfig`].
    pub const TRAIN_CONFIG: &str = "train.yaml";
    /// The resolved task.
    pub const TASK: &str = "task.yaml";
    /// The metrics.
    pub const METRICS: &str = "metrics.csv";
    /// The learning curve.
    pub const LEARNING_CURVE: &str = "learning_curve.png";
    /// The checkpoint directory.
    pub const CHECKPOINT: &str = "checkpoint";
    /// [`super::RunState`] inside the checkpoint directory.
    pub const RUN_STATE: &str = "run_state.json";
}

/// One environment being stepped by [`train`].
struct Slot {
    env: ReachEnv,
    /// Scaled observation.
    obs: Vec<f32>,
    episode_return: f64,
}

/// Trains `config.agent` on the built-in simulator (module docs) on backend `B`.
///
/// # Errors
/// Unreadable task or URDF files, a run directory that already holds a run (without `resume`)
/// or lacks a checkpoint (with it), I/O errors writing metrics or checkpoints.
pub fn train<B: AutodiffBackend>(
    config: &TrainConfig,
    options: TrainOptions<'_>,
    device: &B::Device,
) -> anyhow::Result<TrainSummary> {
    config.validate()?;
    let started = Instant::now();
    let run_dir = &options.run_dir;
    let spec = if options.resume {
        let task: TaskConfig = read_yaml(&run_dir.join(files::TASK))?;
        EnvSpec::with_task(config.robot, task)?
    } else {
        EnvSpec::load(config)?
    };
    crate::run_dir::prepare(
        run_dir,
        config,
        &spec.task,
        options.resume,
        "pass --resume to continue it or choose another --out",
    )?;

    let mut slots = (0..config.num_envs)
        .map(|i| {
            let env = spec.env(config.seed.wrapping_mul(7919).wrapping_add(i as u64))?;
            Ok(Slot { env, obs: Vec::new(), episode_return: 0.0 })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let scaling = Scaling::new(&slots[0].env)?;
    for s in &mut slots {
        s.obs = scaling.obs.normalize(&s.env.reset());
    }
    let dof = spec.model.dof();
    let symmetry =
        TaskSymmetry::new(config.group_order, slots[0].env.layout(), &action_layout(dof))?;
    let (obs_dim, act_dim) = (symmetry.obs.dim(), symmetry.act.dim());
    let learner = config.learner_config(obs_dim, act_dim);
    let mut agent = agent::build::<B>(config.agent, &learner, &symmetry, device)?;
    let checkpoint_dir = run_dir.join(files::CHECKPOINT);
    let mut state = RunState::default();
    if !options.resume {
        for dir in &config.init_from {
            agent = init_from_run(agent, config, Path::new(dir))?;
        }
    }
    if options.resume {
        agent = agent
            .load_checkpoint(&checkpoint_dir)
            .with_context(|| format!("resuming from {}", checkpoint_dir.display()))?;
        state = read_json(&checkpoint_dir.join(files::RUN_STATE))?;
        tracing::info!(
            "resuming {} at {} environment steps, {} updates (the replay buffer starts empty)",
            config.agent,
            state.env_steps,
            agent.updates()
        );
    }
    let sac = &learner.sac;
    let mut buffer =
        ReplayBuffer::new(sac.buffer_size, obs_dim, act_dim, config.seed.wrapping_add(11))?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(13));
    let mut writer = MetricsWriter::open(&run_dir.join(files::METRICS), options.resume)?;
    let eval_seed = eval_seed(config.seed);
    let random_eval = evaluate_random(&spec, &scaling, config.eval_episodes, eval_seed)?;

    let mut window = MetricsWindow::default();
    let mut last_eval: Option<EvalResult> = None;
    let (mut lambda_sum, mut lambda_n) = (0.0, 0usize);
    let mut update_credit = 0.0;
    let mut on_row = options.on_row;
    let mut last_row_time = Instant::now();
    let mut last_row_updates = agent.updates();
    let mut next_log = next_multiple(state.env_steps, config.log_every);
    let mut next_eval = next_multiple(state.env_steps, config.eval_every);
    let mut next_checkpoint = next_multiple(state.env_steps, config.checkpoint_every);
    let wall_before = state.wall_s;
    let stopped = || options.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));

    while state.env_steps < config.total_steps && !stopped() {
        // Act for every environment at once.
        let random_phase =
            state.env_steps < sac.learning_starts && !options.resume && config.init_from.is_empty();
        let actions: Vec<f32> = if random_phase {
            (0..slots.len() * act_dim).map(|_| rng.random_range(-1.0..1.0)).collect()
        } else {
            let flat: Vec<f32> = slots.iter().flat_map(|s| s.obs.iter().copied()).collect();
            agent.act(&flat, ActMode::Stochastic)
        };
        for (i, slot) in slots.iter_mut().enumerate() {
            let action = &actions[i * act_dim..(i + 1) * act_dim];
            let t = slot.env.step(&scaling.act.to_velocity(action))?;
            let next = scaling.obs.normalize(&t.obs);
            buffer.push(Transition {
                obs: &slot.obs,
                action,
                reward: t.reward as f32,
                next_obs: &next,
                terminated: t.terminated,
                truncated: t.truncated,
            })?;
            slot.episode_return += t.reward;
            window.breaking += usize::from(t.in_breaking_region);
            window.steps += 1;
            if t.terminated || t.truncated {
                window.returns.push(slot.episode_return);
                window.successes += usize::from(t.terminated);
                state.episodes += 1;
                slot.episode_return = 0.0;
                slot.obs = scaling.obs.normalize(&slot.env.reset());
            } else {
                slot.obs = next;
            }
        }
        state.env_steps += slots.len();

        // Updates, at the configured ratio once learning has started.
        if !random_phase && buffer.len() >= sac.batch_size {
            update_credit += config.updates_per_step * slots.len() as f64;
            while update_credit >= 1.0 {
                update_credit -= 1.0;
                let batch = buffer.sample::<B>(sac.batch_size, device)?;
                let m = agent.train_step(&batch);
                if let Some(l) = m.lambda_fraction {
                    if agent.updates() > learner.gate_warmup_updates {
                        lambda_sum += f64::from(l);
                        lambda_n += 1;
                    }
                }
                window.add(&m, agent.updates() > learner.gate_warmup_updates);
            }
        }

        if state.env_steps >= next_eval || state.env_steps >= config.total_steps {
            next_eval = next_multiple(state.env_steps, config.eval_every);
            let eval =
                evaluate_agent(agent.as_mut(), &spec, &scaling, config.eval_episodes, eval_seed)?;
            last_eval = Some(eval);
            window.eval = Some(eval);
        }
        if state.env_steps >= next_log || state.env_steps >= config.total_steps {
            next_log = next_multiple(state.env_steps, config.log_every);
            let now = Instant::now();
            let updates = agent.updates();
            let rate = (updates - last_row_updates) as f64
                / now.duration_since(last_row_time).as_secs_f64().max(1e-9);
            (last_row_time, last_row_updates) = (now, updates);
            let wall_s = wall_before + started.elapsed().as_secs_f64();
            let row = window.row(&state, updates, rate, wall_s);
            writer.write(&row)?;
            if let Some(f) = on_row.as_mut() {
                f(&row);
            }
            let eval_written = window.eval.take().is_some();
            window = MetricsWindow::default();
            if eval_written && options.plot {
                write_learning_curve(run_dir)?;
            }
        }
        if state.env_steps >= next_checkpoint {
            next_checkpoint = next_multiple(state.env_steps, config.checkpoint_every);
            state.wall_s = wall_before + started.elapsed().as_secs_f64();
            save_checkpoint(agent.as_ref(), &checkpoint_dir, &state)?;
        }
    }
    state.wall_s = wall_before + started.elapsed().as_secs_f64();
    save_checkpoint(agent.as_ref(), &checkpoint_dir, &state)?;
    writer.flush()?;
    if options.plot {
        write_learning_curve(run_dir)?;
    }
    let final_eval = match last_eval {
        Some(e) => e,
        None => evaluate_agent(agent.as_mut(), &spec, &scaling, config.eval_episodes, eval_seed)?,
    };
    Ok(TrainSummary {
        env_steps: state.env_steps,
        updates: agent.updates(),
        final_eval,
        random_eval,
        mean_lambda_fraction: (lambda_n > 0).then(|| lambda_sum / lambda_n as f64),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Loads the run in `run_dir` (its config, task and checkpoint) and evaluates it for `episodes`
/// deterministic episodes from `seed` (default: the run's evaluation seed), beside a uniform
/// random policy on the same episodes. Returns (trained, random).
pub fn eval_run<B: AutodiffBackend>(
    run_dir: &Path,
    episodes: usize,
    seed: Option<u64>,
    device: &B::Device,
) -> anyhow::Result<(EvalResult, EvalResult)> {
    eval_run_as::<B>(run_dir, episodes, seed, ActMode::Deterministic, None, device)
}

/// [`eval_run`] with the acting mode chosen: `ActMode::Stochastic` samples actions as in
/// training (`equigate eval --stochastic`), which shows how much of a gap between training and
/// evaluation success is the deterministic mean action's. With `trace`, the trained policy's
/// steps are written there as CSV, one [`EvalStep`] per row (`equigate eval --trace`).
///
/// # Errors
/// As [`eval_run`], or a trace file that cannot be written.
pub fn eval_run_as<B: AutodiffBackend>(
    run_dir: &Path,
    episodes: usize,
    seed: Option<u64>,
    mode: ActMode,
    trace: Option<&Path>,
    device: &B::Device,
) -> anyhow::Result<(EvalResult, EvalResult)> {
    let config: TrainConfig = read_yaml(&run_dir.join(files::TRAIN_CONFIG))?;
    let task: TaskConfig = read_yaml(&run_dir.join(files::TASK))?;
    let spec = EnvSpec::with_task(config.robot, task)?;
    let env = spec.env(0)?;
    let scaling = Scaling::new(&env)?;
    let symmetry =
        TaskSymmetry::new(config.group_order, env.layout(), &action_layout(spec.model.dof()))?;
    let learner = config.learner_config(symmetry.obs.dim(), symmetry.act.dim());
    let checkpoint_dir = run_dir.join(files::CHECKPOINT);
    let mut agent = agent::build::<B>(config.agent, &learner, &symmetry, device)?
        .load_checkpoint(&checkpoint_dir)
        .with_context(|| format!("loading {}", checkpoint_dir.display()))?;
    let seed = seed.unwrap_or_else(|| eval_seed(config.seed));
    let trained = match trace {
        None => evaluate_agent_as(agent.as_mut(), &spec, &scaling, episodes, seed, mode)?,
        Some(path) => {
            let mut writer = csv::Writer::from_path(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut write = |row: &EvalStep| {
                writer.serialize(row).with_context(|| format!("writing {}", path.display()))
            };
            let result = evaluate_agent_traced(
                agent.as_mut(),
                &spec,
                &scaling,
                episodes,
                seed,
                mode,
                Some(&mut write),
            )?;
            writer.flush().with_context(|| format!("writing {}", path.display()))?;
            result
        }
    };
    let random = evaluate_random(&spec, &scaling, episodes, seed)?;
    Ok((trained, random))
}

/// Starts `agent`'s networks from the checkpoint of run `dir` (see [`TrainConfig::init_from`]),
/// after checking that the run's robot, group order and widths are this config's.
///
/// # Errors
/// An unreadable run, a mismatch, or an agent that cannot start from that run's kind.
pub fn init_from_run<B: AutodiffBackend>(
    agent: Box<dyn Agent<B>>,
    config: &TrainConfig,
    dir: &Path,
) -> anyhow::Result<Box<dyn Agent<B>>> {
    let run: TrainConfig = read_yaml(&dir.join(files::TRAIN_CONFIG))?;
    let (a, b) = (&run.learner, &config.learner);
    let same = run.robot == config.robot
        && run.group_order == config.group_order
        && a.hidden == b.hidden
        && a.equi_hidden_dim == b.equi_hidden_dim
        && a.equi_invariant_embedding == b.equi_invariant_embedding;
    anyhow::ensure!(
        same,
        "{}: robot {:?}, C_{}, hidden {:?}, equivariant width {} (invariant embedding {}) differ \
         from this run's {:?}, C_{}, {:?}, {} ({})",
        dir.display(),
        run.robot,
        run.group_order,
        a.hidden,
        a.equi_hidden_dim,
        a.equi_invariant_embedding,
        config.robot,
        config.group_order,
        b.hidden,
        b.equi_hidden_dim,
        b.equi_invariant_embedding
    );
    let equivariant = match run.agent {
        AgentKind::Sac => false,
        AgentKind::EquiSac => true,
        other => anyhow::bail!(
            "{}: a {other} run cannot start another run's networks (sac or equi-sac only)",
            dir.display()
        ),
    };
    let checkpoint = dir.join(files::CHECKPOINT);
    let kind = agent.kind();
    let agent = agent
        .init_from(&checkpoint, equivariant)
        .with_context(|| format!("starting {kind} from {}", checkpoint.display()))?;
    tracing::info!(
        "{kind}: {} networks start from {}",
        if equivariant { "equivariant" } else { "standard" },
        dir.display()
    );
    Ok(agent)
}

/// Redraws `run_dir/learning_curve.png` from `run_dir/metrics.csv`.
pub fn write_learning_curve(run_dir: &Path) -> anyhow::Result<()> {
    let rows = crate::metrics::read_metrics(&run_dir.join(files::METRICS))?;
    let label =
        run_dir.file_name().map_or_else(|| "run".to_owned(), |n| n.to_string_lossy().into());
    let curves = crate::plot::RunCurves::from_rows(&label, &rows);
    crate::plot::learning_curves(&[curves], &run_dir.join(files::LEARNING_CURVE))
}

fn save_checkpoint<B: AutodiffBackend>(
    agent: &dyn Agent<B>,
    dir: &Path,
    state: &RunState,
) -> anyhow::Result<()> {
    agent.save_checkpoint(dir).with_context(|| format!("writing checkpoint {}", dir.display()))?;
    let json = serde_json::to_vec_pretty(state)?;
    equigate_learn::checkpoint::write_atomic(&dir.join(files::RUN_STATE), &json)?;
    Ok(())
}
