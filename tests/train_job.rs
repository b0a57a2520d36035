//! `equigate train` end to end on the built-in simulator, in process.
//!
//! `cargo test --test train_job -- --nocapture` prints the evaluation of the trained and of a
//! uniform random policy on the same 10 episodes (UR5e reach without obstacles), the mean λ of
//! PE-SAC's batches after its gate warm-up, and the training time.

use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use equigate::agent::AgentKind;
use equigate::metrics::read_metrics;
use equigate::train::{self, files, LearnerConfig, TrainConfig, TrainOptions, TrainSummary};
use equigate_learn::sac::ActMode;

type B = Autodiff<Flex>;

fn run_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("equigate-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn options(run_dir: PathBuf, resume: bool) -> TrainOptions<'static> {
    TrainOptions { run_dir, resume, stop: None, on_row: None, plot: true }
}

/// A few thousand steps on the symmetric UR5e reach, with small networks and a larger learning
/// rate than the 100k-step defaults.
fn quick_config(agent: AgentKind) -> TrainConfig {
    TrainConfig {
        task: Some("config/tasks/ur5e_reach.yaml".into()),
        agent,
        total_steps: 4000,
        eval_every: 1000,
        log_every: 1000,
        checkpoint_every: 4000,
        learner: LearnerConfig {
            batch_size: 128,
            learning_starts: 1000,
            lr: 1e-3,
            gamma: 0.95,
            hidden: vec![128, 128],
            equi_hidden_dim: 128,
            gate_warmup_updates: 1000,
            ..LearnerConfig::default()
        },
        ..TrainConfig::default()
    }
}

fn report(agent: AgentKind, s: &TrainSummary) {
    println!(
        "{agent} on the UR5e reach, {} steps, {} updates in {:.0} s: return {:.2} (random {:.2}), \
         final distance {:.3} m (random {:.3} m), mean λ after the warm-up {:?}, λζ {:?}",
        s.env_steps,
        s.updates,
        s.seconds,
        s.final_eval.mean_return,
        s.random_eval.mean_return,
        s.final_eval.mean_final_distance_m,
        s.random_eval.mean_final_distance_m,
        s.mean_lambda_fraction,
        s.final_eval.mean_lambda_state
    );
}

/// The trained policy's return must close at least a quarter of the way from a random policy's
/// return to 0 (the return is −Σ distance, so 0 is unreachable; SAC gets ~40% of the way here).
fn assert_learned(agent: AgentKind, s: &TrainSummary) {
    let random = s.random_eval.mean_return;
    let trained = s.final_eval.mean_return;
    assert!(
        trained > random + 0.25 * random.abs(),
        "{agent}: trained return {trained:.2} is not clearly above random {random:.2}"
    );
}

#[test]
fn sac_and_pe_sac_beat_a_random_policy_on_the_symmetric_ur5e_reach() {
    for agent in [AgentKind::Sac, AgentKind::PeSac] {
        let dir = run_dir(agent.name());
        let s = train::train::<B>(
            &quick_config(agent),
            options(dir.clone(), false),
            &Default::default(),
        )
        .unwrap();
        report(agent, &s);
        assert_learned(agent, &s);
        if agent == AgentKind::PeSac {
            let lambda = s.mean_lambda_fraction.expect("PE-SAC reports λ");
            assert!(lambda < 0.2, "mean λ {lambda:.3} on a symmetric task");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A run leaves its files, refuses to overwrite itself, and `--resume` continues it: the metrics
/// gain rows, the step count reaches the new total, and `eval_run` loads the checkpoint.
#[test]
fn a_run_writes_its_directory_and_resumes_from_its_checkpoint() {
    let mut config = quick_config(AgentKind::Sac);
    config.total_steps = 800;
    config.eval_every = 400;
    config.log_every = 400;
    config.eval_episodes = 2;
    config.learner.learning_starts = 400;
    config.learner.hidden = vec![32, 32];
    let dir = run_dir("resume");
    let device = Default::default();
    let first = train::train::<B>(&config, options(dir.clone(), false), &device).unwrap();
    assert_eq!(first.env_steps, 800);
    for f in [files::TRAIN_CONFIG, files::TASK, files::METRICS, files::LEARNING_CURVE] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert!(dir.join(files::CHECKPOINT).join(files::RUN_STATE).is_file());
    let err = train::train::<B>(&config, options(dir.clone(), false), &device).unwrap_err();
    assert!(format!("{err:#}").contains("already holds a run"), "{err:#}");

    config.total_steps = 1600;
    let second = train::train::<B>(&config, options(dir.clone(), true), &device).unwrap();
    assert_eq!(second.env_steps, 1600);
    assert!(second.updates > first.updates, "{} !> {}", second.updates, first.updates);
    let rows = read_metrics(&dir.join(files::METRICS)).unwrap();
    let steps: Vec<usize> = rows.iter().map(|r| r.env_steps).collect();
    assert_eq!(steps, [400, 800, 1200, 1600]);

    let (trained, random) = train::eval_run::<B>(&dir, 2, None, &device).unwrap();
    assert_eq!((trained.episodes, random.episodes), (2, 2));
    // `equigate eval --stochastic`: sampled actions, on the same episodes, repeatable from the
    // checkpoint's noise stream, and not the mean action's episodes.
    let stochastic = || train::eval_run_as::<B>(&dir, 2, None, ActMode::Stochastic, None, &device);
    let (first, random_again) = stochastic().unwrap();
    assert_eq!(random_again, random, "the same episodes as the deterministic evaluation");
    assert_eq!(stochastic().unwrap().0, first, "a loaded checkpoint samples the same actions");
    assert_ne!(first.mean_return, trained.mean_return, "sampled actions are not the mean's");

    // `equigate eval --trace`: one row per step of the same episodes; each episode's last row
    // carries its end, and those rows give the summary's success rate and final distance.
    let trace = dir.join("trace.csv");
    let mode = ActMode::Deterministic;
    let (traced, _) = train::eval_run_as::<B>(&dir, 2, None, mode, Some(&trace), &device).unwrap();
    assert_eq!(traced, trained, "tracing does not change the episodes");
    let mut reader = csv::Reader::from_path(&trace).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (ep, step, dist) = (col("episode"), col("step"), col("distance_m"));
    let (norm, term, trunc) = (col("action_norm"), col("terminated"), col("truncated"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let mut ends = Vec::new();
    for e in 0..2 {
        let mine: Vec<&csv::StringRecord> =
            rows.iter().filter(|r| r[ep].parse::<usize>().unwrap() == e).collect();
        let steps: Vec<usize> = mine.iter().map(|r| r[step].parse().unwrap()).collect();
        assert_eq!(steps, (1..=mine.len()).collect::<Vec<_>>(), "episode {e}: steps 1, 2, ...");
        let last = mine.last().unwrap();
        assert!(&last[term] == "true" || &last[trunc] == "true", "episode {e} ends");
        let parse = |r: &csv::StringRecord, name: &str| -> Vec<f64> {
            r[col(name)].split(' ').map(|x| x.parse().unwrap()).collect()
        };
        for (k, r) in mine.iter().enumerate() {
            let (a, q) = (parse(r, "action"), parse(r, "q"));
            assert_eq!((a.len(), q.len()), (6, 6), "the UR5e's six joints");
            let a_norm = a.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!((a_norm - r[norm].parse::<f64>().unwrap()).abs() < 1e-3);
            assert!(a.iter().all(|x| x.abs() <= 1.0));
            // q is the state after the step: each joint moved by its command (π rad/s at
            // a = 1, held 0.04 s) unless a position limit or a collision stopped it.
            if k > 0 && &r[col("collided")] == "false" {
                let before = parse(mine[k - 1], "q");
                for j in 0..6 {
                    let expected = before[j] + a[j] * std::f64::consts::PI * 0.04;
                    let limit =
                        if j == 2 { std::f64::consts::PI } else { 2.0 * std::f64::consts::PI };
                    if expected.abs() < limit {
                        assert!((q[j] - expected).abs() < 3e-4, "episode {e} step {k} joint {j}");
                    }
                }
            }
        }
        ends.push((&last[term] == "true", last[dist].parse::<f64>().unwrap()));
    }
    let successes = ends.iter().filter(|(t, _)| *t).count() as f64 / 2.0;
    let final_distance = ends.iter().map(|(_, d)| d).sum::<f64>() / 2.0;
    assert_eq!(successes, trained.success_rate);
    assert!((final_distance - trained.mean_final_distance_m).abs() < 1e-9);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every shipped train config parses, names a loadable robot and task, a bad key is an error
/// naming the key and the file, and the `detector` section reaches the detector.
#[test]
fn shipped_train_configs_load_and_bad_keys_are_named() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/train");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let config = TrainConfig::load(&path).unwrap();
        train::EnvSpec::load(&config).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        n += 1;
    }
    assert!(n >= 3, "only {n} train configs");
    let bad = std::env::temp_dir().join(format!("equigate-bad-train-{}.yaml", std::process::id()));
    std::fs::write(&bad, "learner:\n  batch_sise: 3\n").unwrap();
    let err = format!("{:#}", TrainConfig::load(&bad).unwrap_err());
    assert!(err.contains("batch_sise") && err.contains(&bad.display().to_string()), "{err}");
    std::fs::write(&bad, "num_envs: 0\n").unwrap();
    let err = format!("{:#}", TrainConfig::load(&bad).unwrap_err());
    assert!(err.contains("num_envs must be positive"), "{err}");
    std::fs::write(&bad, "detector:\n  outlier_k: -1\n").unwrap();
    let err = format!("{:#}", TrainConfig::load(&bad).unwrap_err());
    assert!(err.contains("detector.outlier_k = -1"), "{err}");
    // The detector's label rule reaches the detector.
    std::fs::write(&bad, "detector:\n  outlier_k: 2.5\n  orbit_relative: true\n").unwrap();
    let det = equigate::detect::detector_config(&TrainConfig::load(&bad).unwrap(), 22, 6);
    assert_eq!((det.outlier_k, det.orbit_relative), (2.5, true));
    let det = equigate::detect::detector_config(&TrainConfig::default(), 22, 6);
    assert_eq!((det.outlier_k, det.orbit_relative), (3.0, false), "§1.1's rule by default");
    // The learner's invariant embedding stays with the learner; the detector has its own.
    let text = "learner:\n  equi_invariant_embedding: 256\n";
    std::fs::write(&bad, text).unwrap();
    let config = TrainConfig::load(&bad).unwrap();
    assert_eq!(config.learner_config(22, 6).nets.equi.invariant_embedding, 256);
    assert_eq!(equigate::detect::detector_config(&config, 22, 6).nets.equi.invariant_embedding, 0);
    std::fs::write(&bad, format!("{text}detector:\n  equi_invariant_embedding: 64\n")).unwrap();
    let config = TrainConfig::load(&bad).unwrap();
    assert_eq!(equigate::detect::detector_config(&config, 22, 6).nets.equi.invariant_embedding, 64);
    // The target entropy reaches the learner: H̄ = per-dimension value · |A|.
    std::fs::write(&bad, "learner:\n  target_entropy_per_dim: -1.5\n").unwrap();
    let sac = TrainConfig::load(&bad).unwrap().learner_config(22, 6).sac;
    assert_eq!(sac.target_entropy(), -9.0);
    assert_eq!(TrainConfig::default().learner_config(22, 6).sac.target_entropy(), -3.0);
    std::fs::write(&bad, "learner:\n  target_entropy_per_dim: .nan\n").unwrap();
    let err = format!("{:#}", TrainConfig::load(&bad).unwrap_err());
    assert!(err.contains("target_entropy_per_dim = NaN must be finite"), "{err}");
    let _ = std::fs::remove_file(&bad);
}

/// Every agent trains a few hundred steps on the Fetch (8 joints, the pan with position limits)
/// and its checkpoint evaluates: the job is not UR5e-specific.
#[test]
fn every_agent_runs_on_the_fetch() {
    for agent in AgentKind::ALL {
        let config = TrainConfig {
            robot: equigate_robot::model::RobotKind::Fetch,
            task: Some("config/tasks/fetch_reach.yaml".into()),
            agent,
            total_steps: 400,
            eval_every: 400,
            log_every: 200,
            checkpoint_every: 400,
            eval_episodes: 2,
            learner: LearnerConfig {
                batch_size: 32,
                learning_starts: 200,
                hidden: vec![16, 16],
                equi_hidden_dim: 16,
                gate_warmup_updates: 50,
                ..LearnerConfig::default()
            },
            ..TrainConfig::default()
        };
        let dir = run_dir(&format!("fetch-{agent}"));
        let device = Default::default();
        let s = train::train::<B>(&config, options(dir.clone(), false), &device).unwrap();
        assert_eq!((s.env_steps, s.updates), (400, 200), "{agent}");
        assert!(s.final_eval.mean_return.is_finite(), "{agent}");
        let (trained, _) = train::eval_run::<B>(&dir, 2, None, &device).unwrap();
        assert_eq!(trained.episodes, 2, "{agent}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The task's `goal_error_range_m` sets the scale of the goal-minus-end-effector features and
/// nothing else; without it they are divided by twice the reach bound R (the chain's summed joint
/// offsets, about 1.3 m on the UR5e).
#[test]
fn the_goal_error_range_scales_only_the_goal_error_features() {
    use equigate_robot::model::RobotKind;
    use equigate_robot::task::TaskConfig;
    let scaled = |range: Option<f64>| {
        let task = TaskConfig { goal_error_range_m: range, ..TaskConfig::default() };
        let spec = train::EnvSpec::with_task(RobotKind::Ur5e, task).unwrap();
        let env = spec.env(0).unwrap();
        let reach: f64 =
            spec.model.segments().iter().map(|s| s.origin.translation.vector.norm()).sum();
        let scaling = train::Scaling::new(&env).unwrap();
        let obs: Vec<f64> = (0..env.obs_dim()).map(|i| 0.01 * (i as f64 + 1.0)).collect();
        (env.layout().to_vec(), reach, obs.clone(), scaling.obs.normalize(&obs))
    };
    let (layout, reach, obs, default) = scaled(None);
    assert!((1.2..1.5).contains(&reach), "UR5e reach bound {reach} m");
    let (_, _, _, half_metre) = scaled(Some(0.5));
    let mut goal_error_features = 0;
    for field in &layout {
        for i in field.offset..field.offset + field.len {
            if field.name.starts_with("goal_minus_ee") {
                goal_error_features += 1;
                assert!((f64::from(half_metre[i]) - obs[i] / 0.5).abs() < 1e-6, "{}", field.name);
                let by_reach = obs[i] / (2.0 * reach);
                assert!((f64::from(default[i]) - by_reach).abs() < 1e-6, "{}", field.name);
            } else {
                assert_eq!(half_metre[i], default[i], "{} is not the goal error", field.name);
            }
        }
    }
    assert_eq!(goal_error_features, 3);
}
