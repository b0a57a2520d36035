//! Online learning one transition at a time: the per-transition part of `equigate train`'s loop
//! ([`crate::train::train`]) for a learner whose environment is outside the process (the policy
//! node, fed by topics). Same replay buffer, same scalings ([`Scaling`]), same uniform random
//! actions for the first `learning_starts` steps, same update-to-data ratio, and a run directory
//! in the layout of `equigate train` ([`crate::train::files`]: `train.yaml`, `task.yaml`,
//! `metrics.csv`, `checkpoint/` with `run_state.json`), so `equigate eval` and the policy node's
//! run mode load it ([`load_run`]).
//!
//! What differs from `equigate train`: one environment, no periodic deterministic evaluation
//! (the environment is not ours to reset at will), so `metrics.csv` rows carry training returns
//! only and no learning-curve PNG is drawn.
//!
//! ```text
//! let mut learner = OnlineLearner::<B>::create(config, &spec, run_dir, false, &device)?;
//! loop {
//!     let action = learner.act(&obs);                 // [-1, 1]; to_velocity for the command
//!     ... command, wait for the next state, reward by observe::ObservationModel ...
//!     learner.record(&OnlineStep { obs: &obs, action: &action, reward, next_obs: &next, .. })?;
//! }
//! learner.finish()?;                                     // final checkpoint
//! ```

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use burn::tensor::backend::AutodiffBackend;
use equigate_learn::pesac::PeSacConfig;
use equigate_learn::replay::{ReplayBuffer, Transition};
use equigate_learn::sac::ActMode;
use equigate_robot::task::{action_layout, TaskConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::agent::{self, Agent, TaskSymmetry, UpdateMetrics};
use crate::metrics::{MetricsWindow, MetricsWriter};
use crate::run_dir::{next_multiple, read_json, read_yaml};
use crate::train::{files, EnvSpec, RunState, Scaling, TrainConfig};

/// Episodes kept for the running return and success rate.
pub const RECENT_EPISODES: usize = 20;

/// One transition, observations unscaled (as [`crate::observe::ObservationModel::observe`]
/// gives them), the action as [`OnlineLearner::act`] returned it.
#[derive(Debug, Clone, Copy)]
pub struct OnlineStep<'a> {
    /// Observation before the step, `[obs_dim]`.
    pub obs: &'a [f64],
    /// Action in [-1, 1], `[act_dim]`.
    pub action: &'a [f32],
    /// Reward of the step.
    pub reward: f64,
    /// Observation after the step, `[obs_dim]`.
    pub next_obs: &'a [f64],
    /// The episode ended in success.
    pub terminated: bool,
    /// The episode hit its step limit.
    pub truncated: bool,
    /// The step was in the symmetry-breaking region (ground truth, for the metrics).
    pub in_breaking_region: bool,
}

/// Running statistics for `/diagnostics` and the log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OnlineStats {
    /// Environment steps so far (across resumes).
    pub env_steps: usize,
    /// Updates so far.
    pub updates: u64,
    /// Episodes finished so far.
    pub episodes: usize,
    /// Return of the last finished episode.
    pub last_return: Option<f64>,
    /// Mean return of the last [`RECENT_EPISODES`] episodes.
    pub mean_return: Option<f64>,
    /// Success rate of the last [`RECENT_EPISODES`] episodes.
    pub success_rate: Option<f64>,
    /// The last update's metrics.
    pub last_update: Option<UpdateMetrics>,
    /// Updates per second over the last metrics window.
    pub updates_per_s: f64,
    /// Transitions in the replay buffer.
    pub buffer_len: usize,
    /// Still in the uniform random phase (`learning_starts`).
    pub random_phase: bool,
}

/// A learner trained one transition at a time (module docs).
pub struct OnlineLearner<B: AutodiffBackend> {
    config: TrainConfig,
    learner: PeSacConfig,
    agent: Box<dyn Agent<B>>,
    buffer: ReplayBuffer,
    scaling: Scaling,
    device: B::Device,
    rng: ChaCha8Rng,
    run_dir: PathBuf,
    resumed: bool,
    state: RunState,
    update_credit: f64,
    episode_return: f64,
    recent: VecDeque<(f64, bool)>,
    window: MetricsWindow,
    writer: MetricsWriter,
    next_log: usize,
    next_checkpoint: usize,
    started: Instant,
    wall_before: f64,
    last_row: (Instant, u64),
    stats: OnlineStats,
}

impl<B: AutodiffBackend> OnlineLearner<B> {
    /// A learner for `config` on the task of `spec`, writing into `run_dir`: a new run (the
    /// directory must not hold one), or with `resume` the run there (its checkpoint and counters;
    /// the replay buffer starts empty, as in `equigate train --resume`).
    ///
    /// # Errors
    /// An invalid config, a run directory that already holds a run (or, with `resume`, lacks a
    /// checkpoint), I/O errors.
    pub fn create(
        config: TrainConfig,
        spec: &EnvSpec,
        run_dir: &Path,
        resume: bool,
        device: &B::Device,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        crate::run_dir::prepare(
            run_dir,
            &config,
            &spec.task,
            resume,
            "set `resume: true` to continue it or choose another `run_dir`",
        )?;
        let env = spec.env(config.seed)?;
        let scaling = Scaling::new(&env)?;
        let symmetry =
            TaskSymmetry::new(config.group_order, env.layout(), &action_layout(spec.model.dof()))?;
        let (obs_dim, act_dim) = (symmetry.obs.dim(), symmetry.act.dim());
        let learner = config.learner_config(obs_dim, act_dim);
        let mut agent = agent::build::<B>(config.agent, &learner, &symmetry, device)?;
        let checkpoint = run_dir.join(files::CHECKPOINT);
        let mut state = RunState::default();
        if resume {
            agent = agent
                .load_checkpoint(&checkpoint)
                .with_context(|| format!("resuming from {}", checkpoint.display()))?;
            state = read_json(&checkpoint.join(files::RUN_STATE))?;
        }
        let buffer = ReplayBuffer::new(
            learner.sac.buffer_size,
            obs_dim,
            act_dim,
            config.seed.wrapping_add(11),
        )?;
        let writer = MetricsWriter::open(&run_dir.join(files::METRICS), resume)?;
        let updates = agent.updates();
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(13)),
            next_log: next_multiple(state.env_steps, config.log_every),
            next_checkpoint: next_multiple(state.env_steps, config.checkpoint_every),
            wall_before: state.wall_s,
            stats: OnlineStats { env_steps: state.env_steps, updates, ..OnlineStats::default() },
            config,
            learner,
            agent,
            buffer,
            scaling,
            device: device.clone(),
            run_dir: run_dir.to_path_buf(),
            resumed: resume,
            state,
            update_credit: 0.0,
            episode_return: 0.0,
            recent: VecDeque::new(),
            window: MetricsWindow::default(),
            writer,
            started: Instant::now(),
            last_row: (Instant::now(), updates),
        })
    }

    /// The run's config.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The observation and action scalings.
    pub fn scaling(&self) -> &Scaling {
        &self.scaling
    }

    /// The agent (e.g. for [`Agent::lambda_state`]).
    pub fn agent_mut(&mut self) -> &mut dyn Agent<B> {
        self.agent.as_mut()
    }

    /// Whether the training budget (`total_steps`) is spent.
    pub fn done(&self) -> bool {
        self.state.env_steps >= self.config.total_steps
    }

    /// Whether actions are still uniform random (the first `learning_starts` steps of a new run).
    pub fn random_phase(&self) -> bool {
        !self.resumed && self.state.env_steps < self.learner.sac.learning_starts
    }

    /// The action for the unscaled observation `obs` (`[obs_dim]`): uniform in [-1, 1] during the
    /// random phase, else sampled from the policy. [`Scaling::act`]'s `to_velocity` turns it
    /// into joint velocities (model order).
    ///
    /// # Shapes
    /// `[obs_dim]` -> `[act_dim]`.
    pub fn act(&mut self, obs: &[f64]) -> Vec<f32> {
        if self.random_phase() {
            let n = self.scaling.act.dim();
            return (0..n).map(|_| self.rng.random_range(-1.0..1.0)).collect();
        }
        self.agent.act(&self.scaling.obs.normalize(obs), ActMode::Stochastic)
    }

    /// Stores one transition, performs the updates it is owed (`updates_per_step` after the
    /// random phase), counts a finished episode, writes a metrics row every `log_every` steps and
    /// a checkpoint every `checkpoint_every` steps. Returns the finished episode's return when
    /// the step ended one.
    ///
    /// # Errors
    /// Wrong lengths (replay buffer), I/O errors writing metrics or checkpoints.
    pub fn record(&mut self, step: &OnlineStep<'_>) -> anyhow::Result<Option<f64>> {
        let random_phase = self.random_phase();
        let obs = self.scaling.obs.normalize(step.obs);
        let next = self.scaling.obs.normalize(step.next_obs);
        self.buffer.push(Transition {
            obs: &obs,
            action: step.action,
            reward: step.reward as f32,
            next_obs: &next,
            terminated: step.terminated,
            truncated: step.truncated,
        })?;
        self.state.env_steps += 1;
        self.episode_return += step.reward;
        self.window.steps += 1;
        self.window.breaking += usize::from(step.in_breaking_region);
        let mut finished = None;
        if step.terminated || step.truncated {
            let r = std::mem::take(&mut self.episode_return);
            self.state.episodes += 1;
            self.window.returns.push(r);
            self.window.successes += usize::from(step.terminated);
            self.recent.push_back((r, step.terminated));
            if self.recent.len() > RECENT_EPISODES {
                self.recent.pop_front();
            }
            finished = Some(r);
        }

        let batch_size = self.learner.sac.batch_size;
        if !random_phase && self.buffer.len() >= batch_size {
            self.update_credit += self.config.updates_per_step;
            while self.update_credit >= 1.0 {
                self.update_credit -= 1.0;
                let batch = self.buffer.sample::<B>(batch_size, &self.device)?;
                let m = self.agent.train_step(&batch);
                self.window.add(&m, self.agent.updates() > self.learner.gate_warmup_updates);
                self.stats.last_update = Some(m);
            }
        }

        if self.state.env_steps >= self.next_log || self.done() {
            self.next_log = next_multiple(self.state.env_steps, self.config.log_every);
            self.write_row()?;
        }
        if self.state.env_steps >= self.next_checkpoint {
            self.next_checkpoint =
                next_multiple(self.state.env_steps, self.config.checkpoint_every);
            self.save_checkpoint()?;
        }
        self.refresh_stats(finished);
        Ok(finished)
    }

    /// Drops the return of an episode cut short from outside (a reset that was not the task's
    /// end, a lost state): the next transition starts a new episode's sum.
    pub fn abandon_episode(&mut self) {
        self.episode_return = 0.0;
    }

    /// Writes the checkpoint (networks, optimizers, counters) and `run_state.json`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn save_checkpoint(&mut self) -> anyhow::Result<()> {
        self.state.wall_s = self.wall_before + self.started.elapsed().as_secs_f64();
        let dir = self.run_dir.join(files::CHECKPOINT);
        self.agent
            .save_checkpoint(&dir)
            .with_context(|| format!("writing checkpoint {}", dir.display()))?;
        let json = serde_json::to_vec_pretty(&self.state)?;
        equigate_learn::checkpoint::write_atomic(&dir.join(files::RUN_STATE), &json)?;
        Ok(())
    }

    /// Final checkpoint and metrics flush (call at the end and on shutdown).
    ///
    /// # Errors
    /// I/O errors.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        if self.window.steps > 0 {
            self.write_row()?;
        }
        self.save_checkpoint()?;
        self.writer.flush()
    }

    /// Running statistics.
    pub fn stats(&self) -> &OnlineStats {
        &self.stats
    }

    fn refresh_stats(&mut self, finished: Option<f64>) {
        let n = self.recent.len();
        let random_phase = self.random_phase();
        let s = &mut self.stats;
        s.env_steps = self.state.env_steps;
        s.updates = self.agent.updates();
        s.episodes = self.state.episodes;
        if finished.is_some() {
            s.last_return = finished;
        }
        if n > 0 {
            s.mean_return = Some(self.recent.iter().map(|(r, _)| r).sum::<f64>() / n as f64);
            s.success_rate =
                Some(self.recent.iter().filter(|(_, ok)| *ok).count() as f64 / n as f64);
        }
        s.buffer_len = self.buffer.len();
        s.random_phase = random_phase;
    }

    fn write_row(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        let updates = self.agent.updates();
        let rate = (updates - self.last_row.1) as f64
            / now.duration_since(self.last_row.0).as_secs_f64().max(1e-9);
        self.last_row = (now, updates);
        self.stats.updates_per_s = rate;
        let wall_s = self.wall_before + self.started.elapsed().as_secs_f64();
        let row = self.window.row(&self.state, updates, rate, wall_s);
        self.writer.write(&row)?;
        self.window = MetricsWindow::default();
        Ok(())
    }
}

/// A trained run loaded for acting: its config, task and agent.
pub struct LoadedRun<B: AutodiffBackend> {
    /// `train.yaml`.
    pub config: TrainConfig,
    /// The robot, the run's task (`task.yaml`) and the model.
    pub spec: EnvSpec,
    /// The scalings of the run's task.
    pub scaling: Scaling,
    /// The agent with the checkpoint's weights.
    pub agent: Box<dyn Agent<B>>,
}

/// Loads `run_dir` (from `equigate train` or the policy node's train mode): config, task and
/// checkpoint.
///
/// # Errors
/// Missing or malformed files, a checkpoint that does not fit the config.
pub fn load_run<B: AutodiffBackend>(
    run_dir: &Path,
    device: &B::Device,
) -> anyhow::Result<LoadedRun<B>> {
    let config: TrainConfig = read_yaml(&run_dir.join(files::TRAIN_CONFIG))?;
    let task: TaskConfig = read_yaml(&run_dir.join(files::TASK))?;
    let spec = EnvSpec::with_task(config.robot, task)?;
    let env = spec.env(0)?;
    let scaling = Scaling::new(&env)?;
    let symmetry =
        TaskSymmetry::new(config.group_order, env.layout(), &action_layout(spec.model.dof()))?;
    let learner = config.learner_config(symmetry.obs.dim(), symmetry.act.dim());
    let checkpoint = run_dir.join(files::CHECKPOINT);
    let agent = agent::build::<B>(config.agent, &learner, &symmetry, device)?
        .load_checkpoint(&checkpoint)
        .with_context(|| format!("loading {}", checkpoint.display()))?;
    Ok(LoadedRun { config, spec, scaling, agent })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::AgentKind;
    use crate::observe::ObservationModel;
    use crate::train::LearnerConfig;
    use burn::backend::{Autodiff, Flex};

    type B = Autodiff<Flex>;

    /// The online learner on a ReachEnv stepped here (as the node steps the simulator over
    /// topics): the run directory has equigate train's layout, `load_run` and `eval_run` read it,
    /// and a resume continues the counters.
    #[test]
    fn learns_from_single_transitions_and_writes_a_loadable_run() {
        let dir = std::env::temp_dir().join(format!("equigate-online-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = TrainConfig {
            task: Some("config/tasks/ur5e_reach.yaml".into()),
            agent: AgentKind::Sac,
            total_steps: 300,
            log_every: 100,
            checkpoint_every: 200,
            learner: LearnerConfig {
                batch_size: 32,
                learning_starts: 100,
                hidden: vec![16, 16],
                ..LearnerConfig::default()
            },
            ..TrainConfig::default()
        };
        let spec = EnvSpec::load(&config).unwrap();
        let device = Default::default();
        let mut learner =
            OnlineLearner::<B>::create(config.clone(), &spec, &dir, false, &device).unwrap();
        let mut env = spec.env(1).unwrap();
        let mut om = ObservationModel::new(spec.model.clone(), spec.task.clone(), &[]).unwrap();
        let mut obs = env.reset();
        let mut episodes = 0;
        while !learner.done() {
            let before = env.state();
            let action = learner.act(&obs);
            assert!(action.iter().all(|a| (-1.0..=1.0).contains(a)));
            let velocity = learner.scaling().act.to_velocity(&action);
            env.step(&velocity).unwrap();
            let t = om.transition(&before, &velocity, &env.state(), env.steps()).unwrap();
            assert_eq!(t.obs, obs);
            let step = OnlineStep {
                obs: &t.obs,
                action: &action,
                reward: t.outcome.reward,
                next_obs: &t.next_obs,
                terminated: t.outcome.terminated,
                truncated: t.outcome.truncated,
                in_breaking_region: t.outcome.in_breaking_region,
            };
            if learner.record(&step).unwrap().is_some() {
                episodes += 1;
                obs = env.reset();
            } else {
                obs = t.next_obs;
            }
        }
        learner.finish().unwrap();
        let stats = learner.stats().clone();
        assert_eq!(stats.env_steps, 300);
        assert_eq!(stats.updates, 200, "one update per step after the 100 random ones");
        assert_eq!(stats.episodes, episodes);
        assert!(episodes >= 2 && stats.mean_return.is_some());
        let rows = crate::metrics::read_metrics(&dir.join(files::METRICS)).unwrap();
        let steps: Vec<usize> = rows.iter().map(|r| r.env_steps).collect();
        assert_eq!(steps, [100, 200, 300]);
        assert!(rows[2].q_loss.is_some() && rows[0].q_loss.is_none());

        let mut run = load_run::<B>(&dir, &device).unwrap();
        assert_eq!(run.config, config);
        let a = run.agent.act(&run.scaling.obs.normalize(&obs), ActMode::Deterministic);
        assert_eq!(a.len(), 6);
        let (trained, _) = crate::train::eval_run::<B>(&dir, 1, None, &device).unwrap();
        assert_eq!(trained.episodes, 1);

        assert!(OnlineLearner::<B>::create(config.clone(), &spec, &dir, false, &device).is_err());
        let resumed = OnlineLearner::<B>::create(config, &spec, &dir, true, &device).unwrap();
        assert_eq!(resumed.stats().env_steps, 300);
        assert_eq!(resumed.stats().updates, 200);
        assert!(!resumed.random_phase());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
