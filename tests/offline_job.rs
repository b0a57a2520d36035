//! From bag to policy, in process: `equigate collect` writes a rosbag2 bag of the scripted
//! controller on the obstacle task, the dataset builder turns it into transitions, and each of
//! CQL, IQL, Equi-CQL and Equi-IQL trains on them and leaves a run directory that loads into the
//! online agent (`sac` or `equi-sac`) and acts exactly as the offline learner did; PE-SAC starts
//! its two branches from the CQL and Equi-CQL runs for online fine-tuning.
//!
//! Whether offline learning improves the return is tested on the point-reach task in
//! crates/equigate-learn/tests/offline_point_reach.rs; the success rates on the arm are measured
//! by the commands in BENCHMARKS.md.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, Flex};
use equigate::agent::{self, AgentKind, TaskSymmetry};
use equigate::collect::{collect_scripted, ScriptedReach};
use equigate::offline::{self, OfflineAlgo, OfflineConfig};
use equigate::online::load_run;
use equigate::train::{self, files, EnvSpec, LearnerConfig, Scaling, TrainConfig, TrainOptions};
use equigate_bag::{BagReader, TopicFilter};
use equigate_learn::sac::ActMode;
use equigate_robot::task::action_layout;

type B = Autodiff<Flex>;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("equigate-offline-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn small_config() -> TrainConfig {
    TrainConfig {
        eval_episodes: 3,
        learner: LearnerConfig {
            batch_size: 32,
            hidden: vec![32, 32],
            equi_hidden_dim: 32,
            ..LearnerConfig::default()
        },
        ..TrainConfig::default()
    }
}

#[test]
fn bag_to_transitions_to_checkpoints_that_load_online() {
    let config = small_config();
    let spec = EnvSpec::load(&config).unwrap();
    let bag = temp("bag");
    let collected = collect_scripted(&spec, &ScriptedReach::default(), 1, 300, None, &bag).unwrap();
    assert_eq!(collected.steps, 300);

    let reader = BagReader::open(&bag).unwrap();
    assert!(reader.recovery().is_none(), "a finished bag needs no recovery");
    let count = reader.messages(&TopicFilter::All).unwrap().count() as u64;
    assert_eq!(count, collected.messages);

    let mut runs = Vec::new();
    for (algo, equivariant) in [
        (OfflineAlgo::Cql, false),
        (OfflineAlgo::Iql, false),
        (OfflineAlgo::Cql, true),
        (OfflineAlgo::Iql, true),
    ] {
        let out = temp(&format!("{algo:?}-{equivariant}"));
        let offline = OfflineConfig {
            algo,
            equivariant,
            bags: vec![bag.clone()],
            topics: Default::default(),
            joints: Vec::new(),
            updates: 20,
            eval_every: 10,
            cql_alpha: None,
            lr: None,
            init_temperature: None,
            cql_importance_sample: None,
            equi_lr_scale: None,
            train: config.clone(),
        };
        let mut evals = Vec::new();
        let summary =
            offline::run::<B>(&offline, &out, &Default::default(), |u, _| evals.push(u)).unwrap();
        assert_eq!(evals, vec![10, 20]);
        assert_eq!(summary.dataset.transitions, 300, "{}", summary.dataset);
        assert_eq!(summary.dataset.terminated as usize, collected.successes);
        for f in
            [files::TRAIN_CONFIG, files::TASK, offline::OFFLINE_CONFIG, offline::OFFLINE_METRICS]
        {
            assert!(out.join(f).is_file(), "{f} missing in {}", out.display());
        }
        // Each evaluation row ends with where the actor stands against the dataset's actions.
        let metrics = std::fs::read_to_string(out.join(offline::OFFLINE_METRICS)).unwrap();
        let mut lines = metrics.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(
            header[header.len() - 4..],
            ["action_mse", "q_pi_minus_data", "q_uniform_minus_data", "data_above_uniform"]
        );
        for line in lines {
            let v: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
            assert_eq!(v.len(), header.len(), "{line}");
            let [mse, q_pi, q_u, above] = v[v.len() - 4..] else { unreachable!() };
            assert!((0.0..=4.0).contains(&mse), "action_mse {mse}");
            assert!(q_pi.is_finite() && q_u.is_finite(), "{line}");
            assert!((0.0..=1.0).contains(&above), "data_above_uniform {above}");
        }
        // The checkpoint loads into the online agent, which acts as the offline learner did:
        // the same evaluation episodes give the same return.
        let (loaded, random) = train::eval_run::<B>(&out, 3, None, &Default::default()).unwrap();
        assert!(
            (loaded.mean_return - summary.final_eval.mean_return).abs() < 1e-3,
            "{algo:?} equivariant={equivariant}: offline {} vs loaded {}",
            summary.final_eval.mean_return,
            loaded.mean_return
        );
        assert_eq!(random, summary.random_eval);
        runs.push(out);
    }
    fine_tune_pe_sac_from_offline_runs(&config, &runs[0], &runs[2]);
    for dir in runs.iter().chain([&bag]) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// PE-SAC starts its standard branch from the CQL run and its equivariant branch from the
/// Equi-CQL run: in its gate warm-up (λ = 0, π_E acts) it acts exactly as Equi-CQL's checkpoint
/// loaded into Equi-SAC; and `equigate train` runs with `init_from`, recording it in train.yaml.
fn fine_tune_pe_sac_from_offline_runs(config: &TrainConfig, cql: &Path, equi_cql: &Path) {
    let device = Default::default();
    let pe = TrainConfig {
        agent: AgentKind::PeSac,
        init_from: vec![cql.display().to_string(), equi_cql.display().to_string()],
        total_steps: 40,
        num_envs: 4,
        eval_every: 40,
        log_every: 40,
        checkpoint_every: 40,
        eval_episodes: 1,
        ..config.clone()
    };
    let spec = EnvSpec::load(&pe).unwrap();
    let mut env = spec.env(5).unwrap();
    let scaling = Scaling::new(&env).unwrap();
    let symmetry =
        TaskSymmetry::new(pe.group_order, env.layout(), &action_layout(spec.model.dof())).unwrap();
    let learner = pe.learner_config(symmetry.obs.dim(), symmetry.act.dim());
    let mut agent = agent::build::<B>(AgentKind::PeSac, &learner, &symmetry, &device).unwrap();
    for dir in &pe.init_from {
        agent = train::init_from_run(agent, &pe, Path::new(dir)).unwrap();
    }
    let mut offline = load_run::<B>(equi_cql, &device).unwrap();
    let obs: Vec<f32> = (0..8).flat_map(|_| scaling.obs.normalize(&env.reset())).collect();
    let a = agent.act(&obs, ActMode::Deterministic);
    let b = offline.agent.act(&obs, ActMode::Deterministic);
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-4, "PE-SAC {a:?} vs Equi-CQL {b:?}");
    }
    // A run from offline networks (no random phase) that PE-SAC can also be resumed from.
    let dir = temp("pe-sac-fine-tune");
    let options =
        TrainOptions { run_dir: dir.clone(), resume: false, stop: None, on_row: None, plot: false };
    let summary = train::train::<B>(&pe, options, &device).unwrap();
    assert_eq!(summary.env_steps, 40);
    assert!(summary.updates > 0, "no random phase: updates once a batch is there");
    let saved: TrainConfig = equigate::run_dir::read_yaml(&dir.join(files::TRAIN_CONFIG)).unwrap();
    assert_eq!(saved.init_from, pe.init_from);
    // A mismatched width is refused with both runs' widths named.
    let wide = TrainConfig {
        learner: LearnerConfig { hidden: vec![64, 64], ..pe.learner.clone() },
        ..pe.clone()
    };
    let learner = wide.learner_config(symmetry.obs.dim(), symmetry.act.dim());
    let agent = agent::build::<B>(AgentKind::PeSac, &learner, &symmetry, &device).unwrap();
    let err = train::init_from_run(agent, &wide, cql).err().expect("widths differ");
    assert!(format!("{err:#}").contains("[32, 32]"), "{err:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A directory that is not a bag, and a bag without the commands topic, fail with an error that
/// says which file or topic; nothing is written.
#[test]
fn bad_bags_are_clear_errors() {
    let config = small_config();
    let out = temp("bad-out");
    let not_a_bag = temp("not-a-bag");
    std::fs::create_dir_all(&not_a_bag).unwrap();
    let offline = OfflineConfig {
        algo: OfflineAlgo::Iql,
        equivariant: false,
        bags: vec![not_a_bag.clone()],
        topics: Default::default(),
        joints: Vec::new(),
        updates: 10,
        eval_every: 10,
        cql_alpha: None,
        lr: None,
        init_temperature: None,
        cql_importance_sample: None,
        equi_lr_scale: None,
        train: config,
    };
    let err = offline::run::<B>(&offline, &out, &Default::default(), |_, _| {}).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains(&not_a_bag.display().to_string()), "{text}");
    assert!(!out.exists(), "nothing written for a failed run");
    let _ = std::fs::remove_dir_all(&not_a_bag);
}
