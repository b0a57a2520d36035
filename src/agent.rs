//! The five agents of `equigate train` behind one object-safe interface, built from a task's
//! observation/action layout and the group C_n.
//!
//! | kind | critic | actor | source |
//! |---|---|---|---|
//! | `sac` | 2×256 MLP twin | MLP | Haarnoja et al. 2018, algorithms.md §1.2 |
//! | `equi-sac` | exact invariant twin | exact invariant | Wang et al. 2022, §3.1 (state-vector form) |
//! | `approx-sac` | relaxed regular layers | relaxed | Park et al. / Wang et al. 2022c, §2.1 |
//! | `rpp-sac` | RPP layers, prior 0/0 | RPP layers, prior in the loss | Finzi et al. 2021, §2.2 |
//! | `pe-sac` | gated Q_E/Q_N | gated π_E/π_N | PE-SAC, §1.1 |
//!
//! All share the SAC skeleton of [`equigate_learn::sac`]; PE-SAC is [`equigate_learn::pesac`].

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use equigate_learn::checkpoint::CheckpointError;
use equigate_learn::layers::LayerError;
use equigate_learn::nets::{
    EquiActor, EquiConfig, EquiCritic, EquiKind, MlpActor, MlpCritic, NetsConfig,
};
use equigate_learn::pesac::{Branch, PeSac, PeSacConfig, PeSacError};
use equigate_learn::replay::Batch;
use equigate_learn::sac::{ActMode, Sac, SacConfig, TrainActor, TrainCritic};
use equigate_robot::task::{Field, FieldKind as TaskFieldKind};
use equigate_symmetry::{FieldKind, Group, Representation};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Which learner to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AgentKind {
    /// Partially equivariant SAC: equivariant and standard networks gated by λ(s, a) (§1.1).
    PeSac,
    /// Plain SAC with 2×256 MLPs.
    Sac,
    /// SAC with exactly invariant critics and an invariant/equivariant actor.
    EquiSac,
    /// SAC with residual-pathway-prior layers (equivariant + small unconstrained path).
    RppSac,
    /// SAC with relaxed (approximately equivariant) regular layers.
    ApproxSac,
}

impl AgentKind {
    /// Every kind, in the order of the table in the module docs.
    pub const ALL: [AgentKind; 5] = [
        AgentKind::Sac,
        AgentKind::EquiSac,
        AgentKind::ApproxSac,
        AgentKind::RppSac,
        AgentKind::PeSac,
    ];

    /// The command-line and file name: `pe-sac`, `sac`, `equi-sac`, `rpp-sac`, `approx-sac`.
    pub fn name(self) -> &'static str {
        match self {
            AgentKind::PeSac => "pe-sac",
            AgentKind::Sac => "sac",
            AgentKind::EquiSac => "equi-sac",
            AgentKind::RppSac => "rpp-sac",
            AgentKind::ApproxSac => "approx-sac",
        }
    }
}

impl std::fmt::Display for AgentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors building an agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The group or a representation could not be built from the task's layout.
    #[error("symmetry of the task: {0}")]
    Symmetry(#[from] equigate_symmetry::SymmetryError),
    /// A network could not be built.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// PE-SAC rejected its config.
    #[error(transparent)]
    PeSac(#[from] PeSacError),
}

/// Scalars every agent reports after one update (PE-SAC's extra ones are `Some`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UpdateMetrics {
    /// Critic loss L_Q (with the RPP prior for `rpp-sac`).
    pub q_loss: f32,
    /// Actor loss L_π.
    pub actor_loss: f32,
    /// Temperature α after the update.
    pub alpha: f32,
    /// Policy entropy estimate −mean log π(ã|s), nats.
    pub entropy: f32,
    /// PE-SAC: fraction of the batch with λ(s, a) = 1 in the critic update.
    pub lambda_fraction: Option<f32>,
    /// PE-SAC: fraction of the batch with pseudo-label 1.
    pub pseudo_label_rate: Option<f32>,
    /// PE-SAC: predictor losses L_P of P̂_E and P̂_N.
    pub predictor_loss: Option<(f32, f32)>,
}

/// A learner `equigate train` can drive: act on a batch of scaled observations, update from
/// replay batches, checkpoint.
pub trait Agent<B: AutodiffBackend> {
    /// Which learner this is.
    fn kind(&self) -> AgentKind;

    /// Actions in [-1, 1] for a row-major batch of scaled observations, on no-grad copies.
    ///
    /// # Shapes
    /// `obs: [n · obs_dim]` -> `[n · act_dim]`.
    fn act(&mut self, obs: &[f32], mode: ActMode) -> Vec<f32>;

    /// One update from `batch`.
    fn train_step(&mut self, batch: &Batch<B>) -> UpdateMetrics;

    /// Number of updates so far.
    fn updates(&self) -> u64;

    /// PE-SAC: λζ(s) ∈ {0, 1} per row (1 where the standard actor acts); `None` for the others.
    ///
    /// # Shapes
    /// `obs: [n · obs_dim]` -> `[n]`.
    fn lambda_state(&self, obs: &[f32]) -> Option<Vec<f32>>;

    /// Writes every network, optimizer state and counter into `dir` (atomic files).
    fn save_checkpoint(&self, dir: &Path) -> Result<(), CheckpointError>;

    /// Restores what [`Agent::save_checkpoint`] wrote (into an agent built from the same config).
    fn load_checkpoint(self: Box<Self>, dir: &Path) -> Result<Box<dyn Agent<B>>, CheckpointError>;

    /// Starts the actor and critics from a checkpoint in SAC's layout (SAC, Equi-SAC or an
    /// offline learner) holding standard (`equivariant = false`) or equivariant networks: all
    /// of SAC / Equi-SAC when it matches their kind, one branch of PE-SAC. Optimizer state and
    /// counters stay fresh.
    ///
    /// # Errors
    /// An agent without such networks (RPP-SAC, Approx-SAC, or the other kind), unreadable files.
    fn init_from(
        self: Box<Self>,
        dir: &Path,
        equivariant: bool,
    ) -> anyhow::Result<Box<dyn Agent<B>>>;
}

/// The group C_n and the representations of a task's observation and action layouts under it.
#[derive(Debug, Clone)]
pub struct TaskSymmetry {
    /// C_n, rotations about the arm's pan (first) joint axis by 2πk/n.
    pub group: Group,
    /// ρ_s on the observation.
    pub obs: Representation,
    /// ρ_a on the action (trivial on joint velocities).
    pub act: Representation,
}

impl TaskSymmetry {
    /// C_`order` acting on the task layouts (`equigate_robot::task::observation_layout` and
    /// `action_layout`): Rotation2 fields by ρ1, invariant fields trivially.
    pub fn new(
        order: usize,
        obs_layout: &[Field],
        act_layout: &[Field],
    ) -> Result<Self, AgentError> {
        let group = Group::cyclic(order)?;
        let obs = Representation::from_layout(&group, &symmetry_layout(obs_layout))?;
        let act = Representation::from_layout(&group, &symmetry_layout(act_layout))?;
        Ok(Self { group, obs, act })
    }
}

/// The robot crate's field layout as the symmetry crate's `(kind, len)` list (the two crates do
/// not depend on each other; this is the one place they meet).
pub fn symmetry_layout(layout: &[Field]) -> Vec<(FieldKind, usize)> {
    layout
        .iter()
        .map(|f| {
            let kind = match f.kind {
                TaskFieldKind::Rotation2 => FieldKind::Rotation2,
                TaskFieldKind::Invariant => FieldKind::Invariant,
            };
            (kind, f.len)
        })
        .collect()
}

/// Builds the learner `kind` for `symmetry` from `config` (its `sac` part for the SAC family,
/// all of it for PE-SAC). Networks are initialised from `config.sac.seed`.
pub fn build<B: AutodiffBackend>(
    kind: AgentKind,
    config: &PeSacConfig,
    symmetry: &TaskSymmetry,
    device: &B::Device,
) -> Result<Box<dyn Agent<B>>, AgentError> {
    let sac = config.sac.clone();
    let nets = &config.nets;
    let mut rng = ChaCha8Rng::seed_from_u64(sac.seed);
    let (obs, act) = (&symmetry.obs, &symmetry.act);
    Ok(match kind {
        AgentKind::PeSac => Box::new(PeSac::<B>::new(config.clone(), obs, act, device)?),
        AgentKind::Sac => {
            let q = MlpCritic::<B>::new(&nets.mlp, obs.dim(), act.dim(), &mut rng, device)?;
            let actor =
                MlpActor::<B>::new(&nets.mlp, &nets.actor, obs.dim(), act.dim(), &mut rng, device)?;
            sac_agent(kind, sac, q, actor, device)
        }
        AgentKind::EquiSac | AgentKind::ApproxSac | AgentKind::RppSac => {
            let equi_kind = match kind {
                AgentKind::EquiSac => EquiKind::Exact,
                AgentKind::ApproxSac => EquiKind::Relaxed,
                _ => EquiKind::Rpp,
            };
            let actor_trunk = nets.equi.clone().with_kind(equi_kind);
            // RPP's jax-rl critics use a zero prior (algorithms.md §2.2); the policy keeps it.
            let critic_trunk = critic_equi_config(&actor_trunk);
            let q = EquiCritic::<B>::new(&critic_trunk, obs, act, &mut rng, device)?;
            let actor = EquiActor::<B>::new(&actor_trunk, &nets.actor, obs, act, &mut rng, device)?;
            let sac = match kind {
                // The equivariant layers' step per weight (`PeSacConfig::equi_lr_scale`).
                AgentKind::EquiSac => sac
                    .clone()
                    .with_q_lr(sac.q_lr * config.equi_lr_scale)
                    .with_policy_lr(sac.policy_lr * config.equi_lr_scale),
                _ => sac,
            };
            sac_agent(kind, sac, q, actor, device)
        }
    })
}

/// The critic trunk: as the actor's, with RPP's critic prior weights 0/0 (§2.2).
fn critic_equi_config(actor: &EquiConfig) -> EquiConfig {
    let rpp = actor.rpp.clone().with_basic_wd(0.0).with_equiv_wd(0.0);
    actor.clone().with_rpp(rpp)
}

fn sac_agent<B, C, A>(
    kind: AgentKind,
    config: SacConfig,
    q: C,
    actor: A,
    device: &B::Device,
) -> Box<dyn Agent<B>>
where
    B: AutodiffBackend,
    C: TrainCritic<B> + 'static,
    A: TrainActor<B> + 'static,
{
    Box::new(SacAgent { kind, sac: Sac::new(config, q, actor, device) })
}

/// A [`Sac`] with the kind it was built as.
struct SacAgent<B: AutodiffBackend, C: TrainCritic<B>, A: TrainActor<B>> {
    kind: AgentKind,
    sac: Sac<B, C, A>,
}

impl<B, C, A> Agent<B> for SacAgent<B, C, A>
where
    B: AutodiffBackend,
    C: TrainCritic<B> + 'static,
    A: TrainActor<B> + 'static,
{
    fn kind(&self) -> AgentKind {
        self.kind
    }

    fn act(&mut self, obs: &[f32], mode: ActMode) -> Vec<f32> {
        self.sac.act(obs, mode)
    }

    fn train_step(&mut self, batch: &Batch<B>) -> UpdateMetrics {
        let m = self.sac.train_step(batch);
        UpdateMetrics {
            q_loss: m.q_loss,
            actor_loss: m.actor_loss,
            alpha: m.alpha,
            entropy: m.entropy,
            ..UpdateMetrics::default()
        }
    }

    fn updates(&self) -> u64 {
        self.sac.updates()
    }

    fn lambda_state(&self, _obs: &[f32]) -> Option<Vec<f32>> {
        None
    }

    fn save_checkpoint(&self, dir: &Path) -> Result<(), CheckpointError> {
        self.sac.save_checkpoint(dir)
    }

    fn load_checkpoint(self: Box<Self>, dir: &Path) -> Result<Box<dyn Agent<B>>, CheckpointError> {
        let SacAgent { kind, sac } = *self;
        Ok(Box::new(SacAgent { kind, sac: sac.load_checkpoint(dir)? }))
    }

    fn init_from(
        self: Box<Self>,
        dir: &Path,
        equivariant: bool,
    ) -> anyhow::Result<Box<dyn Agent<B>>> {
        let matches = match self.kind {
            AgentKind::Sac => !equivariant,
            AgentKind::EquiSac => equivariant,
            _ => false,
        };
        anyhow::ensure!(
            matches,
            "{} cannot start from {} networks",
            self.kind,
            if equivariant { "equivariant" } else { "standard" }
        );
        let SacAgent { kind, sac } = *self;
        Ok(Box::new(SacAgent { kind, sac: sac.init_networks(dir)? }))
    }
}

impl<B: AutodiffBackend> Agent<B> for PeSac<B> {
    fn kind(&self) -> AgentKind {
        AgentKind::PeSac
    }

    fn act(&mut self, obs: &[f32], mode: ActMode) -> Vec<f32> {
        PeSac::act(self, obs, mode)
    }

    fn train_step(&mut self, batch: &Batch<B>) -> UpdateMetrics {
        let m = PeSac::train_step(self, batch);
        UpdateMetrics {
            q_loss: m.q_loss,
            actor_loss: m.actor_loss,
            alpha: m.alpha,
            entropy: m.entropy,
            lambda_fraction: Some(m.lambda_fraction),
            pseudo_label_rate: Some(m.pseudo_label_rate),
            predictor_loss: Some((m.predictor_loss_e, m.predictor_loss_n)),
        }
    }

    fn updates(&self) -> u64 {
        PeSac::updates(self)
    }

    fn lambda_state(&self, obs: &[f32]) -> Option<Vec<f32>> {
        Some(self.lambda_zeta(obs))
    }

    fn save_checkpoint(&self, dir: &Path) -> Result<(), CheckpointError> {
        PeSac::save_checkpoint(self, dir)
    }

    fn load_checkpoint(self: Box<Self>, dir: &Path) -> Result<Box<dyn Agent<B>>, CheckpointError> {
        Ok(Box::new(PeSac::load_checkpoint(*self, dir)?))
    }

    fn init_from(
        self: Box<Self>,
        dir: &Path,
        equivariant: bool,
    ) -> anyhow::Result<Box<dyn Agent<B>>> {
        let branch = if equivariant { Branch::Equivariant } else { Branch::Standard };
        Ok(Box::new(PeSac::init_branch(*self, branch, dir)?))
    }
}

/// The default network and learner config of `equigate train` for a task with `obs_dim`
/// observations and `act_dim` actions.
pub fn default_config(obs_dim: usize, act_dim: usize) -> PeSacConfig {
    PeSacConfig::new(SacConfig::new(obs_dim, act_dim)).with_nets(NetsConfig::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use equigate_learn::nets::{EquiConfig, MlpConfig};
    use equigate_learn::replay::{ReplayBuffer, Transition};
    use equigate_robot::task::{action_layout, observation_layout};

    type B = Autodiff<Flex>;

    fn small_config(obs_dim: usize, act_dim: usize) -> PeSacConfig {
        let sac = SacConfig::new(obs_dim, act_dim).with_batch_size(16).with_seed(3);
        let nets = NetsConfig::new()
            .with_mlp(MlpConfig::new().with_hidden(vec![16, 16]))
            .with_equi(EquiConfig::new().with_hidden_dim(16));
        PeSacConfig::new(sac).with_nets(nets).with_gate_warmup_updates(1)
    }

    /// Every kind builds for the UR5e layout under C_8, takes two updates, acts invariantly
    /// (except plain SAC, and approximately for the relaxed/RPP kinds, which start near-exact),
    /// and resumes from a checkpoint to the same actions.
    #[test]
    fn every_agent_builds_updates_and_checkpoints_on_the_ur5e_layout() {
        let dof = 6;
        let symmetry = TaskSymmetry::new(8, &observation_layout(dof), &action_layout(dof)).unwrap();
        let (obs_dim, act_dim) = (symmetry.obs.dim(), symmetry.act.dim());
        assert_eq!((obs_dim, act_dim), (22, 6));
        let device = Default::default();
        let mut buffer = ReplayBuffer::new(64, obs_dim, act_dim, 1).unwrap();
        let obs: Vec<f32> = (0..obs_dim).map(|i| (i as f32 * 0.37).sin()).collect();
        for k in 0..32 {
            let action: Vec<f32> = (0..act_dim).map(|i| ((i + k) as f32).cos()).collect();
            let t = Transition {
                obs: &obs,
                action: &action,
                reward: -1.0,
                next_obs: &obs,
                terminated: false,
                truncated: false,
            };
            buffer.push(t).unwrap();
        }
        let dir = std::env::temp_dir().join(format!("equigate-agent-test-{}", std::process::id()));
        for kind in AgentKind::ALL {
            let config = small_config(obs_dim, act_dim);
            let mut agent = build::<B>(kind, &config, &symmetry, &device).unwrap();
            assert_eq!(agent.kind(), kind);
            for _ in 0..2 {
                let batch = buffer.sample::<B>(16, &device).unwrap();
                let m = agent.train_step(&batch);
                assert!(m.q_loss.is_finite(), "{kind}: q_loss {}", m.q_loss);
                assert_eq!(m.lambda_fraction.is_some(), kind == AgentKind::PeSac);
            }
            assert_eq!(agent.updates(), 2);
            let a = agent.act(&obs, ActMode::Deterministic);
            assert_eq!(a.len(), act_dim);
            assert!(a.iter().all(|x| (-1.0..=1.0).contains(x)));
            if kind == AgentKind::EquiSac {
                // The actor is invariant: every element of C_8 gives the same action.
                for g in symmetry.group.elements() {
                    let rho = symmetry.obs.matrix(g);
                    let turned: Vec<f32> = (0..obs_dim)
                        .map(|r| (0..obs_dim).map(|c| rho[(r, c)] as f32 * obs[c]).sum())
                        .collect();
                    let b = agent.act(&turned, ActMode::Deterministic);
                    for (x, y) in a.iter().zip(&b) {
                        assert!((x - y).abs() < 1e-4, "{kind}, g = {g:?}: {a:?} vs {b:?}");
                    }
                }
            }
            let sub = dir.join(kind.name());
            agent.save_checkpoint(&sub).unwrap();
            let fresh = build::<B>(kind, &small_config(obs_dim, act_dim), &symmetry, &device)
                .unwrap()
                .load_checkpoint(&sub)
                .unwrap();
            let mut fresh = fresh;
            assert_eq!(fresh.updates(), 2);
            assert_eq!(fresh.act(&obs, ActMode::Deterministic), a, "{kind}: resumed actions");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
