//! `equigate detect`: learn the symmetry-breaking detector from transitions of the built-in
//! simulator and score it against the simulator's ground truth
//! ([`equigate_robot::task::ReachEnv::breaking_region`], reported per step as
//! `Transition::in_breaking_region`).
//!
//! The behaviour policy is uniform random joint velocities or, with a run directory, that run's
//! stochastic policy; the detector never sees the ground truth. After `steps` training
//! transitions (one detector update per transition once `learning_starts` have been collected),
//! `eval_steps` fresh transitions are scored: λ = p_ω(s, a) against the ground truth gives the
//! AUROC and precision/recall at 0.5, and the same transitions fill a [`LambdaMap`] that is saved
//! as a PNG beside the depth image of the scene.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use burn::tensor::backend::AutodiffBackend;
use equigate_learn::detector::{auroc, precision_recall, Detector, DetectorConfig};
use equigate_learn::nets::{MlpConfig, NetsConfig};
use equigate_learn::replay::{ReplayBuffer, Transition};
use equigate_learn::sac::ActMode;
use equigate_robot::camera::DepthCameraConfig;
use equigate_robot::task::{action_layout, ReachEnv};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::agent::{self, Agent, TaskSymmetry};
use crate::lambda_map::{self, LambdaMap};
use crate::train::{EnvSpec, Scaling, TrainConfig};

/// Settings of one detection run besides the [`TrainConfig`] (robot, task, group, seed, widths).
#[derive(Debug, Clone)]
pub struct DetectOptions {
    /// Training transitions (default in the CLI: 80000).
    pub steps: usize,
    /// Held-out transitions scored against the ground truth (default: 10000).
    pub eval_steps: usize,
    /// Transitions collected before the first update (default: 2000).
    pub learning_starts: usize,
    /// A run directory whose policy drives the arm; `None` = uniform random actions.
    pub policy: Option<PathBuf>,
    /// Where `lambda_map.png`, `depth.png` and `detector/` are written; `None` = nowhere.
    pub out: Option<PathBuf>,
}

/// What [`detect`] measured.
#[derive(Debug, Clone)]
pub struct DetectReport {
    /// AUROC of p_ω(s, a) against the ground truth on the held-out transitions.
    pub auroc: Option<f64>,
    /// AUROC of the raw disagreement dis(s, a) against the ground truth (what the labels are
    /// cut from: low here means the predictors, high with a low λ AUROC means the labels or gate).
    pub auroc_disagreement: Option<f64>,
    /// AUROC against the narrower truth "the step was blocked by a collision" (the region also
    /// holds steps clamped at the pan limit or scaled by a fault, and, with the task's
    /// `breaking` margins above 0, free steps close to an obstacle or a limit).
    pub auroc_collided: Option<f64>,
    /// Precision of λ = 1[p_ω > 0.5].
    pub precision: Option<f64>,
    /// Recall of λ = 1[p_ω > 0.5].
    pub recall: Option<f64>,
    /// Fraction of held-out transitions inside the breaking region.
    pub positive_fraction: f64,
    /// Held-out transitions scored.
    pub eval_transitions: usize,
    /// Detector updates.
    pub updates: u64,
    /// Mean λ of map pixels whose transitions were mostly (> 50%) in the breaking region, and of
    /// the other pixels with data.
    pub map_mean_broken: Option<f64>,
    /// See `map_mean_broken`.
    pub map_mean_symmetric: Option<f64>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The λ map of the held-out transitions.
    pub map: LambdaMap,
}

/// The detector config for a task: the learner's widths and learning rate of `config`, its
/// `detector` label rule and invariant embedding, the seed.
pub fn detector_config(config: &TrainConfig, obs_dim: usize, act_dim: usize) -> DetectorConfig {
    let l = &config.learner;
    let equi = l.equi_config().with_invariant_embedding(config.detector.equi_invariant_embedding);
    DetectorConfig::new(obs_dim, act_dim)
        .with_nets(
            NetsConfig::new()
                .with_mlp(MlpConfig::new().with_hidden(l.hidden.clone()))
                .with_equi(equi),
        )
        .with_lr(l.lr)
        .with_seed(config.seed.wrapping_add(101))
        .with_outlier_k(config.detector.outlier_k)
        .with_orbit_relative(config.detector.orbit_relative)
}

/// A behaviour policy: random, or a trained run's stochastic policy.
enum Behaviour<B: AutodiffBackend> {
    Random(Box<ChaCha8Rng>),
    Agent(Box<dyn Agent<B>>),
}

impl<B: AutodiffBackend> Behaviour<B> {
    /// The action for one scaled observation.
    fn act(&mut self, obs: &[f32], act_dim: usize) -> Vec<f32> {
        match self {
            Behaviour::Random(rng) => (0..act_dim).map(|_| rng.random_range(-1.0..1.0)).collect(),
            Behaviour::Agent(agent) => agent.act(obs, ActMode::Stochastic),
        }
    }
}

/// One environment step with the data the detector and the scoring need.
struct Step {
    obs: Vec<f32>,
    action: Vec<f32>,
    reward: f32,
    next: Vec<f32>,
    terminated: bool,
    truncated: bool,
    broken: bool,
    collided: bool,
    ee: nalgebra::Vector3<f64>,
}

fn step_env<B: AutodiffBackend>(
    env: &mut ReachEnv,
    obs: &mut Vec<f32>,
    behaviour: &mut Behaviour<B>,
    scaling: &Scaling,
) -> anyhow::Result<Step> {
    let action = behaviour.act(obs, scaling.act.dim());
    let ee = env.ee();
    let t = env.step(&scaling.act.to_velocity(&action))?;
    let next = scaling.obs.normalize(&t.obs);
    let step = Step {
        obs: obs.clone(),
        action,
        reward: t.reward as f32,
        next: next.clone(),
        terminated: t.terminated,
        truncated: t.truncated,
        broken: t.in_breaking_region,
        collided: t.collided,
        ee,
    };
    *obs = if t.terminated || t.truncated { scaling.obs.normalize(&env.reset()) } else { next };
    Ok(step)
}

/// Runs the detection job (module docs) on backend `B`.
///
/// # Errors
/// Unreadable task/URDF/run files, an unloadable policy checkpoint, I/O errors writing `out`.
pub fn detect<B: AutodiffBackend>(
    config: &TrainConfig,
    options: &DetectOptions,
    device: &B::Device,
) -> anyhow::Result<DetectReport> {
    let started = Instant::now();
    let spec = EnvSpec::load(config)?;
    let mut env = spec.env(config.seed.wrapping_add(7))?;
    let scaling = Scaling::new(&env)?;
    let symmetry =
        TaskSymmetry::new(config.group_order, env.layout(), &action_layout(spec.model.dof()))?;
    let (obs_dim, act_dim) = (symmetry.obs.dim(), symmetry.act.dim());
    let mut behaviour: Behaviour<B> = match &options.policy {
        None => {
            Behaviour::Random(Box::new(ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(17))))
        }
        Some(dir) => {
            let run: TrainConfig = TrainConfig::load(&dir.join(crate::train::files::TRAIN_CONFIG))?;
            let learner = run.learner_config(obs_dim, act_dim);
            let checkpoint = dir.join(crate::train::files::CHECKPOINT);
            let agent = agent::build::<B>(run.agent, &learner, &symmetry, device)?
                .load_checkpoint(&checkpoint)
                .with_context(|| {
                    format!("loading the behaviour policy {}", checkpoint.display())
                })?;
            Behaviour::Agent(agent)
        }
    };
    let det_config = detector_config(config, obs_dim, act_dim);
    let batch_size = config.learner.batch_size;
    let mut detector = Detector::<B>::new(det_config, &symmetry.obs, &symmetry.act, device)?;
    let mut buffer =
        ReplayBuffer::new(options.steps.max(batch_size), obs_dim, act_dim, config.seed + 19)?;

    let mut obs = scaling.obs.normalize(&env.reset());
    for i in 0..options.steps {
        let s = step_env(&mut env, &mut obs, &mut behaviour, &scaling)?;
        buffer.push(Transition {
            obs: &s.obs,
            action: &s.action,
            reward: s.reward,
            next_obs: &s.next,
            terminated: s.terminated,
            truncated: s.truncated,
        })?;
        if i >= options.learning_starts.max(batch_size) {
            detector.train_step(&buffer.sample::<B>(batch_size, device)?);
        }
    }

    // Held-out transitions from a differently seeded environment.
    let mut env = spec.env(config.seed.wrapping_add(1_000_003))?;
    let mut obs = scaling.obs.normalize(&env.reset());
    let mut map = LambdaMap::new(DepthCameraConfig::default(), options.eval_steps.max(1))?;
    let mut truth_map = LambdaMap::new(DepthCameraConfig::default(), options.eval_steps.max(1))?;
    let (mut scores, mut truth, mut collided) = (Vec::new(), Vec::new(), Vec::new());
    let mut dis = Vec::new();
    let chunk = 256;
    let mut pending: Vec<Step> = Vec::with_capacity(chunk);
    let mut flush = |pending: &mut Vec<Step>| {
        let s: Vec<f32> = pending.iter().flat_map(|p| p.obs.iter().copied()).collect();
        let a: Vec<f32> = pending.iter().flat_map(|p| p.action.iter().copied()).collect();
        dis.extend(detector.disagreement(&s, &a));
        for (p, l) in pending.iter().zip(detector.lambda(&s, &a)) {
            scores.push(l);
            truth.push(p.broken);
            collided.push(p.collided);
            map.add(p.ee, l);
            truth_map.add(p.ee, f32::from(u8::from(p.broken)));
        }
        pending.clear();
    };
    for _ in 0..options.eval_steps {
        pending.push(step_env(&mut env, &mut obs, &mut behaviour, &scaling)?);
        if pending.len() == chunk {
            flush(&mut pending);
        }
    }
    flush(&mut pending);
    let auroc_collided = auroc(&scores, &collided);
    let auroc_disagreement = auroc(&dis, &truth);
    let auroc = auroc(&scores, &truth);
    let (precision, recall) = precision_recall(&scores, &truth, 0.5);
    let (values, broken_share) = (map.values(), truth_map.values());
    let mean_where = |pick: fn(f32) -> bool| {
        let v: Vec<f64> = values
            .iter()
            .zip(&broken_share)
            .filter(|(v, b)| !v.is_nan() && pick(**b))
            .map(|(v, _)| f64::from(*v))
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let report = DetectReport {
        auroc,
        auroc_collided,
        auroc_disagreement,
        precision,
        recall,
        positive_fraction: truth.iter().filter(|t| **t).count() as f64 / truth.len().max(1) as f64,
        eval_transitions: truth.len(),
        updates: detector.updates(),
        map_mean_broken: mean_where(|b| b > 0.5),
        map_mean_symmetric: mean_where(|b| b <= 0.5),
        seconds: started.elapsed().as_secs_f64(),
        map,
    };
    if let Some(out) = &options.out {
        write_outputs(out, &report, &spec, &detector)?;
    }
    Ok(report)
}

/// Writes `lambda_map.png`, `depth.png` (the scene at the home pose, same grid) and the
/// detector checkpoint into `out`.
fn write_outputs<B: AutodiffBackend>(
    out: &Path,
    report: &DetectReport,
    spec: &EnvSpec,
    detector: &Detector<B>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let w = report.map.width();
    let values = report.map.values();
    lambda_map::write_png(
        &out.join("lambda_map.png"),
        w,
        |i| lambda_map::lambda_rgb(values[i]),
        8,
    )?;
    let depth = depth_at_home(spec, report.map.camera())?;
    let far = depth.iter().copied().filter(|d| d.is_finite()).fold(0.0_f32, f32::max);
    let near = depth.iter().copied().filter(|d| d.is_finite()).fold(f32::INFINITY, f32::min);
    lambda_map::write_png(
        &out.join("depth.png"),
        w,
        |i| lambda_map::depth_rgb(depth[i], near, far),
        8,
    )?;
    detector
        .save_checkpoint(&out.join("detector"))
        .with_context(|| format!("writing {}", out.join("detector").display()))?;
    Ok(())
}

/// The depth image of the task's scene with the arm at its home pose, `[width * width]`.
pub fn depth_at_home(
    spec: &EnvSpec,
    camera: &equigate_robot::camera::DepthCamera,
) -> anyhow::Result<Vec<f32>> {
    let env = spec.env(0)?;
    let home = spec.robot.home();
    let (mut poses, mut links) = (Vec::new(), Vec::new());
    spec.model.collision_primitives_into(&home, &mut poses, &mut links)?;
    let mut depth = vec![0.0; camera.pixel_count()];
    camera.render(env.scene(), &links, &mut depth)?;
    Ok(depth)
}
