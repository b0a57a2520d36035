//! `equigate offline`: train CQL or IQL (standard or equivariant) on transitions from rosbag2
//! bags, evaluate in the built-in simulator, and leave a run directory that `equigate eval`,
//! `equigate train --resume` (online fine-tuning) and policy_node (run mode) read like one of
//! `equigate train`.
//!
//! The run directory has [`crate::train::files`]'s layout: `train.yaml` names the online agent
//! the checkpoint loads into (`sac` for CQL/IQL, `equi-sac` for their equivariant versions: the
//! offline learners keep SAC's actor and twin critics, and write them in SAC's checkpoint
//! layout), `task.yaml`, `checkpoint/`; plus `offline.yaml` (what was trained on, the dataset
//! summary) and `offline_metrics.csv` (one row per evaluation: the last update's losses and
//! [`PolicyDataStats`] of the critic and actor on the dataset's first rows).
//!
//! With a depth topic ([`DatasetTopics::depth`]) transitions without a fresh depth image are
//! dropped and the summary counts the frames, but the learners are state-based: they never see
//! the frames (`equigate dataset` exports them for learners that do).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use burn::tensor::backend::AutodiffBackend;
use equigate_bag::{BagReader, TopicFilter};
use equigate_learn::checkpoint::{write_atomic, CheckpointError};
use equigate_learn::cql::{self, Cql, CqlConfig};
use equigate_learn::iql::{self, Iql, IqlConfig};
use equigate_learn::offline::{policy_data_stats, PolicyDataStats};
use equigate_learn::replay::{Batch, ReplayBuffer, Transition};
use equigate_learn::sac::{ActMode, Sac, TrainActor, TrainCritic, TrainValue};
use equigate_robot::task::action_layout;
use serde::{Deserialize, Serialize};

use crate::agent::{AgentKind, TaskSymmetry};
use crate::dataset::{Dataset, DatasetBuilder, DatasetSummary, DatasetTopics};
use crate::observe::{ObservationModel, ObservedTransition};
use crate::run_dir::prepare;
use crate::train::{
    evaluate, evaluate_random, files, EnvSpec, EvalResult, RunState, Scaling, TrainConfig,
};

/// The offline algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OfflineAlgo {
    /// Conservative Q-learning, CORL form (arXiv 2006.04779; algorithms.md §3).
    Cql,
    /// Implicit Q-learning (arXiv 2110.06169; algorithms.md §3).
    Iql,
}

/// Everything an offline run reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineConfig {
    /// The algorithm.
    pub algo: OfflineAlgo,
    /// Invariant critics (and value), equivariant actor under the task's C_n (Tangri et al.'s
    /// Equi-CQL / Equi-IQL), instead of MLPs.
    pub equivariant: bool,
    /// The bag directories, read in order.
    pub bags: Vec<PathBuf>,
    /// Topic names in the bags.
    pub topics: DatasetTopics,
    /// Joint order of the states and commands (empty: the URDF's order).
    pub joints: Vec<String>,
    /// Gradient updates (default: `20000`).
    pub updates: u64,
    /// Evaluate every this many updates (default: `5000`).
    pub eval_every: u64,
    /// CQL's conservative weight α_cql (default: none, the library's CORL value 10; Equi-CQL
    /// (Tangri et al., algorithms.md §3.2) uses 1).
    #[serde(default)]
    pub cql_alpha: Option<f64>,
    /// One Adam learning rate for every network and log α (default: none, the library's CORL
    /// values: CQL critics 3e-4, actor and α 3e-5; IQL 3e-4; Equi-CQL/IQL use 1e-4).
    #[serde(default)]
    pub lr: Option<f64>,
    /// CQL's initial entropy temperature α₀ (default: none, the library's CORL value 1.0). The
    /// temperature weighs log π against Q in the actor loss; CORL's 1.0 suits D4RL's rewards of
    /// O(1–10) per step. The reach task's rewards are −distance in m, O(0.1–1), so α₀ = 1 keeps
    /// the policy near uniform for thousands of updates at the actor's lr of 3e-5.
    #[serde(default)]
    pub init_temperature: Option<f64>,
    /// CQL's importance sampling of the proposals (default: none, the library's CORL value
    /// `true`; `false`: the plain logsumexp with the dataset action, see
    /// `equigate_learn::cql::CqlConfig::importance_sample`).
    #[serde(default)]
    pub cql_importance_sample: Option<bool>,
    /// Factor on the Adam learning rates of the equivariant networks (Equi-CQL's and
    /// Equi-IQL's critics, value and actor; not log α) (default: none, √|G|, 2.83 for C_8).
    /// The equivariant layers' orthonormal basis spreads each coefficient over |G| weight
    /// entries at 1/√|G| each, so one Adam step of lr moves each entry by lr/√|G| where an MLP's
    /// entries move by lr (`equigate_learn::layers` test
    /// `one_adam_step_moves_each_regular_weight_entry_by_lr_over_sqrt_g`); √|G| gives both kinds
    /// of network the same step per weight. 1: the MLPs' learning rates. `offline.yaml` records
    /// the factor used.
    #[serde(default)]
    pub equi_lr_scale: Option<f64>,
    /// Robot, task, group order, seed, evaluation episodes and the learner's widths, batch size,
    /// γ and τ come from here; `agent` is set from `algo`/`equivariant`.
    pub train: TrainConfig,
}

/// What [`run`] reports.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineSummary {
    /// What the bags gave.
    pub dataset: DatasetSummary,
    /// The last evaluation of the learned policy.
    pub final_eval: EvalResult,
    /// A uniform random policy on the same episodes.
    pub random_eval: EvalResult,
    /// Gradient updates per second (training only, evaluations excluded).
    pub updates_per_s: f64,
}

/// The four offline learners behind one face.
trait OfflineLearner {
    /// One update; returns named scalars for the metrics file.
    fn step(&mut self, buffer: &mut ReplayBuffer) -> anyhow::Result<Vec<(&'static str, f32)>>;
    /// Deterministic actions for scaled observations `[n · obs_dim]` -> `[n · act_dim]`.
    fn act(&mut self, obs: &[f32]) -> Vec<f32>;
    /// Writes a SAC-layout checkpoint.
    fn save(&self, dir: &Path) -> Result<(), CheckpointError>;
    /// [`policy_data_stats`] of the critic and actor on rows `rows` of `buffer`.
    fn policy_data_stats(&self, buffer: &ReplayBuffer, rows: &[usize]) -> PolicyDataStats;
}

/// Rows of the dataset on which every evaluation reports [`PolicyDataStats`] (the first ones).
const STATS_ROWS: usize = 1024;

/// [`PolicyDataStats`] of `sac`'s critic and actor (no-grad copies) on rows `rows` of `buffer`.
fn sac_policy_data_stats<B: AutodiffBackend, C: TrainCritic<B>, A: TrainActor<B>>(
    sac: &Sac<B, C, A>,
    buffer: &ReplayBuffer,
    rows: &[usize],
    device: &B::Device,
) -> PolicyDataStats {
    let batch = buffer.gather::<B::InnerBackend>(rows, device);
    policy_data_stats(&sac.q.valid(), &sac.actor.valid(), batch.obs, batch.actions, 0)
}

struct CqlLearner<B: AutodiffBackend, C: TrainCritic<B>, A: TrainActor<B>> {
    cql: Cql<B, C, A>,
    batch_size: usize,
    device: B::Device,
}

impl<B: AutodiffBackend, C: TrainCritic<B>, A: TrainActor<B>> OfflineLearner
    for CqlLearner<B, C, A>
{
    fn step(&mut self, buffer: &mut ReplayBuffer) -> anyhow::Result<Vec<(&'static str, f32)>> {
        let batch: Batch<B> = buffer.sample(self.batch_size, &self.device)?;
        let m = self.cql.train_step(&batch);
        Ok(vec![
            ("q_loss", m.q_loss),
            ("cql_gap", m.cql_gap),
            ("actor_loss", m.actor_loss),
            ("alpha", m.alpha),
            ("entropy", m.entropy),
        ])
    }

    fn act(&mut self, obs: &[f32]) -> Vec<f32> {
        self.cql.act(obs, ActMode::Deterministic)
    }

    fn save(&self, dir: &Path) -> Result<(), CheckpointError> {
        self.cql.save_checkpoint(dir)
    }

    fn policy_data_stats(&self, buffer: &ReplayBuffer, rows: &[usize]) -> PolicyDataStats {
        sac_policy_data_stats(&self.cql.sac, buffer, rows, &self.device)
    }
}

struct IqlLearner<B: AutodiffBackend, C: TrainCritic<B>, V: TrainValue<B>, A: TrainActor<B>> {
    iql: Iql<B, C, V, A>,
    batch_size: usize,
    device: B::Device,
}

impl<B: AutodiffBackend, C: TrainCritic<B>, V: TrainValue<B>, A: TrainActor<B>> OfflineLearner
    for IqlLearner<B, C, V, A>
{
    fn step(&mut self, buffer: &mut ReplayBuffer) -> anyhow::Result<Vec<(&'static str, f32)>> {
        let batch: Batch<B> = buffer.sample(self.batch_size, &self.device)?;
        let m = self.iql.train_step(&batch);
        Ok(vec![
            ("value_loss", m.value_loss),
            ("q_loss", m.q_loss),
            ("actor_loss", m.actor_loss),
            ("advantage_mean", m.advantage_mean),
        ])
    }

    fn act(&mut self, obs: &[f32]) -> Vec<f32> {
        self.iql.act(obs, ActMode::Deterministic)
    }

    fn save(&self, dir: &Path) -> Result<(), CheckpointError> {
        self.iql.save_checkpoint(dir)
    }

    fn policy_data_stats(&self, buffer: &ReplayBuffer, rows: &[usize]) -> PolicyDataStats {
        sac_policy_data_stats(&self.iql.sac, buffer, rows, &self.device)
    }
}

/// Reads every bag of `bags` (time order within a bag, bags in the given order) into one
/// [`Dataset`] by [`DatasetBuilder`]. A bag that was not finalised (recorder killed) is read as
/// far as it is complete and says so on stderr.
///
/// # Errors
/// A bag that cannot be opened, a message that cannot be read from storage, an invalid
/// `depth_max_age_s`, depth frames of different sizes in two bags.
pub fn load_dataset(
    spec: &EnvSpec,
    bags: &[PathBuf],
    topics: &DatasetTopics,
    joints: &[String],
) -> anyhow::Result<Dataset> {
    topics.validate()?;
    let mut all: Option<Dataset> = None;
    for bag in bags {
        let reader =
            BagReader::open(bag).with_context(|| format!("opening bag {}", bag.display()))?;
        if let Some(recovery) = reader.recovery() {
            eprintln!("{}: not finalised; {recovery:?}", bag.display());
        }
        let model = ObservationModel::new(spec.model.clone(), spec.task.clone(), joints)?;
        let mut builder = DatasetBuilder::new(model, topics.clone());
        for message in reader.messages(&TopicFilter::Only(topics.names()))? {
            let m = message.with_context(|| format!("reading {}", bag.display()))?;
            builder.push(&m.topic, m.log_time_ns, &m.data)?;
        }
        let dataset = builder.finish_dataset();
        all = Some(match all.take() {
            None => dataset,
            Some(mut all) => {
                all.append(dataset).with_context(|| format!("adding {}", bag.display()))?;
                all
            }
        });
    }
    Ok(all.unwrap_or_default())
}

/// The transitions as an offline dataset: observations scaled as `equigate train` scales them,
/// commands mapped to tanh actions `q̇ / q̇_max` (clamped to [-1, 1]).
///
/// # Errors
/// No transitions.
pub fn to_buffer(
    transitions: &[ObservedTransition],
    scaling: &Scaling,
    seed: u64,
) -> anyhow::Result<ReplayBuffer> {
    anyhow::ensure!(!transitions.is_empty(), "the bags gave no transitions (see the summary)");
    let mut buffer =
        ReplayBuffer::new(transitions.len(), scaling.obs.dim(), scaling.act.dim(), seed)?;
    for t in transitions {
        let obs = scaling.obs.normalize(&t.obs);
        let next_obs = scaling.obs.normalize(&t.next_obs);
        let action = scaling.act.to_action(&t.command);
        buffer.push(Transition {
            obs: &obs,
            action: &action,
            reward: t.outcome.reward as f32,
            next_obs: &next_obs,
            terminated: t.outcome.terminated,
            truncated: t.outcome.truncated,
        })?;
    }
    Ok(buffer)
}

/// Trains `config` offline, evaluating every `eval_every` updates, and writes the run directory
/// `out` (module docs). `on_eval(updates, result)` is called after each evaluation.
///
/// # Errors
/// Bags, an empty dataset, building the networks, writing the run directory.
pub fn run<B: AutodiffBackend>(
    config: &OfflineConfig,
    out: &Path,
    device: &B::Device,
    mut on_eval: impl FnMut(u64, &EvalResult),
) -> anyhow::Result<OfflineSummary> {
    let mut config = config.clone();
    if config.equivariant {
        let scale = config.equi_lr_scale.unwrap_or((config.train.group_order as f64).sqrt());
        anyhow::ensure!(
            scale.is_finite() && scale > 0.0,
            "equi_lr_scale must be finite and > 0, got {scale}"
        );
        config.equi_lr_scale = Some(scale);
    }
    let config = &config;
    let mut train = config.train.clone();
    train.agent = if config.equivariant { AgentKind::EquiSac } else { AgentKind::Sac };
    train.validate()?;
    anyhow::ensure!(
        config.updates > 0 && config.eval_every > 0,
        "updates and eval_every must be > 0"
    );
    let spec = EnvSpec::load(&train)?;
    let env = spec.env(0)?;
    let scaling = Scaling::new(&env)?;
    // The depth frames, if any, are dropped here: the learners are state-based.
    let Dataset { transitions, summary: dataset, .. } =
        load_dataset(&spec, &config.bags, &config.topics, &config.joints)?;
    let mut buffer = to_buffer(&transitions, &scaling, train.seed)?;
    drop(transitions);

    let symmetry =
        TaskSymmetry::new(train.group_order, env.layout(), &action_layout(spec.model.dof()))?;
    let mut learner = build_learner::<B>(config, &train, &symmetry, device)?;

    anyhow::ensure!(
        !out.join(OFFLINE_CONFIG).exists(),
        "{} already holds an offline run; choose another --out",
        out.display()
    );
    prepare(out, &train, &spec.task, false, "choose another --out")?;
    let offline_yaml = equigate_ros::yaml::to_string(&OfflineRecord { config, dataset: &dataset })?;
    write_atomic(&out.join(OFFLINE_CONFIG), offline_yaml.as_bytes())?;

    let eval_seed = crate::train::eval_seed(train.seed);
    let episodes = train.eval_episodes;
    let random_eval = evaluate_random(&spec, &scaling, episodes, eval_seed)?;
    let mut csv = csv::Writer::from_path(out.join(OFFLINE_METRICS))?;
    let mut header_written = false;
    let mut final_eval = EvalResult::default();
    let mut train_s = 0.0;
    let mut updates = 0u64;
    let stats_rows: Vec<usize> = (0..buffer.len().min(STATS_ROWS)).collect();
    while updates < config.updates {
        let chunk = config.eval_every.min(config.updates - updates);
        let start = Instant::now();
        let mut last = Vec::new();
        for _ in 0..chunk {
            last = learner.step(&mut buffer)?;
        }
        train_s += start.elapsed().as_secs_f64();
        updates += chunk;
        final_eval =
            evaluate(&spec, &scaling, episodes, eval_seed, |obs| (learner.act(obs), None))?;
        on_eval(updates, &final_eval);
        if !header_written {
            let mut header = vec!["updates", "eval_return", "eval_success_rate"];
            header.extend(last.iter().map(|(k, _)| *k));
            header.extend(["action_mse", "q_pi_minus_data", "q_uniform_minus_data"]);
            header.push("data_above_uniform");
            csv.write_record(&header)?;
            header_written = true;
        }
        let mut row = vec![
            updates.to_string(),
            format!("{:.4}", final_eval.mean_return),
            format!("{:.3}", final_eval.success_rate),
        ];
        row.extend(last.iter().map(|(_, v)| format!("{v:.5}")));
        let stats = learner.policy_data_stats(&buffer, &stats_rows);
        row.extend(
            [
                stats.action_mse,
                stats.q_pi_minus_data,
                stats.q_uniform_minus_data,
                stats.data_above_uniform,
            ]
            .map(|v| format!("{v:.5}")),
        );
        csv.write_record(&row)?;
        csv.flush()?;
    }
    let checkpoint = out.join(files::CHECKPOINT);
    learner.save(&checkpoint).with_context(|| format!("writing {}", checkpoint.display()))?;
    let state = RunState { env_steps: 0, episodes: 0, wall_s: train_s };
    write_atomic(&checkpoint.join(files::RUN_STATE), &serde_json::to_vec_pretty(&state)?)?;
    let dataset_text = format!("{dataset}\n");
    write_atomic(&out.join(DATASET_SUMMARY), dataset_text.as_bytes())?;
    Ok(OfflineSummary {
        dataset,
        final_eval,
        random_eval,
        updates_per_s: updates as f64 / train_s.max(1e-9),
    })
}

/// What `offline.yaml` holds: the config and what the bags gave.
#[derive(Serialize)]
struct OfflineRecord<'a> {
    #[serde(flatten)]
    config: &'a OfflineConfig,
    /// Transitions, drops by reason, depth images and frames (when a depth topic was given).
    dataset: &'a DatasetSummary,
}

/// The offline run's own config and its dataset summary, beside `train.yaml`.
pub const OFFLINE_CONFIG: &str = "offline.yaml";
/// One row per evaluation.
pub const OFFLINE_METRICS: &str = "offline_metrics.csv";
/// [`DatasetSummary`] as text.
pub const DATASET_SUMMARY: &str = "dataset.txt";

fn build_learner<B: AutodiffBackend>(
    config: &OfflineConfig,
    train: &TrainConfig,
    symmetry: &TaskSymmetry,
    device: &B::Device,
) -> anyhow::Result<Box<dyn OfflineLearner>> {
    let l = &train.learner;
    let (obs, act) = (&symmetry.obs, &symmetry.act);
    // The same widths as `equigate train` builds for `sac` / `equi-sac`, so that the checkpoint
    // loads into them.
    let equi = l.equi_config();
    anyhow::ensure!(
        l.hidden.len() == 2 && l.hidden[0] == l.hidden[1],
        "offline learners use two equal MLP hidden layers; learner.hidden is {:?}",
        l.hidden
    );
    let batch_size = l.batch_size;
    // `run` has resolved the factor for equivariant runs.
    let equi_scale = config.equi_lr_scale.unwrap_or(1.0);
    Ok(match config.algo {
        OfflineAlgo::Cql => {
            let mut c = CqlConfig::new(obs.dim(), act.dim());
            if let Some(alpha) = config.cql_alpha {
                c.cql_alpha = alpha;
            }
            if let Some(lr) = config.lr {
                (c.q_lr, c.policy_lr, c.alpha_lr) = (lr, lr, lr);
            }
            if let Some(t) = config.init_temperature {
                c.init_temperature = t;
            }
            if let Some(is) = config.cql_importance_sample {
                c.importance_sample = is;
            }
            let c = c
                .with_hidden(l.hidden[0])
                .with_equi(equi)
                .with_batch_size(batch_size)
                .with_gamma(l.gamma)
                .with_tau(l.tau)
                .with_seed(train.seed);
            if config.equivariant {
                let c = c
                    .clone()
                    .with_q_lr(c.q_lr * equi_scale)
                    .with_policy_lr(c.policy_lr * equi_scale);
                let cql = cql::build_equi::<B>(c, obs, act, device)?;
                Box::new(CqlLearner { cql, batch_size, device: device.clone() })
            } else {
                let cql = cql::build_mlp::<B>(c, device)?;
                Box::new(CqlLearner { cql, batch_size, device: device.clone() })
            }
        }
        OfflineAlgo::Iql => {
            let mut c = IqlConfig::new(obs.dim(), act.dim());
            if let Some(lr) = config.lr {
                (c.q_lr, c.value_lr, c.policy_lr) = (lr, lr, lr);
            }
            let c = c
                .with_hidden(l.hidden[0])
                .with_equi(equi)
                .with_batch_size(batch_size)
                .with_gamma(l.gamma)
                .with_tau(l.tau)
                .with_total_updates(config.updates)
                .with_seed(train.seed);
            if config.equivariant {
                let c = c
                    .clone()
                    .with_q_lr(c.q_lr * equi_scale)
                    .with_value_lr(c.value_lr * equi_scale)
                    .with_policy_lr(c.policy_lr * equi_scale);
                let iql = iql::build_equi::<B>(c, obs, act, device)?;
                Box::new(IqlLearner { iql, batch_size, device: device.clone() })
            } else {
                let iql = iql::build_mlp::<B>(c, device)?;
                Box::new(IqlLearner { iql, batch_size, device: device.clone() })
            }
        }
    })
}
