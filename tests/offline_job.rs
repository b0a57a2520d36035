//! From bag to policy, in process: `equigate collect` writes a rosbag2 bag of the scripted
//! controller on the obstacle task, the dataset builder turns it into transitions, and each of
//! CQL, IQL, Equi-CQL and Equi-IQL trains on them and leaves a run directory that loads into the
//! online agent (`sac` or `equi-sac`) and acts exactly as the offline learner did.
//!
//! Whether offline learning improves the return is tested on the point-reach task in
//! crates/equigate-learn/tests/offline_point_reach.rs; the success rates on the arm are measured
//! by the commands in BENCHMARKS.md.

use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use equigate::collect::{collect_scripted, ScriptedReach};
use equigate::offline::{self, OfflineAlgo, OfflineConfig};
use equigate::train::{self, files, EnvSpec, LearnerConfig, TrainConfig};
use equigate_bag::{BagReader, TopicFilter};

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
    let collected = collect_scripted(&spec, &ScriptedReach::default(), 1, 300, &bag).unwrap();
    assert_eq!(collected.steps, 300);

    let reader = BagReader::open(&bag).unwrap();
    assert!(reader.recovery().is_none(), "a finished bag needs no recovery");
    let count = reader.messages(&TopicFilter::All).unwrap().count() as u64;
    assert_eq!(count, collected.messages);

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
        let _ = std::fs::remove_dir_all(&out);
    }
    let _ = std::fs::remove_dir_all(&bag);
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
        train: config,
    };
    let err = offline::run::<B>(&offline, &out, &Default::default(), |_, _| {}).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains(&not_a_bag.display().to_string()), "{text}");
    assert!(!out.exists(), "nothing written for a failed run");
    let _ = std::fs::remove_dir_all(&not_a_bag);
}
