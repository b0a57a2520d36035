//! policy_node over DDS, as separate processes: against sim_node (train mode in lockstep, run mode
//! in real time) and against an independent Cyclone DDS peer that sends it bad joint states.
//!
//! `cargo test --test policy_node_interop -- --nocapture` prints the measured returns and
//! distances. Every process that opens a DDS participant runs inside a fresh network namespace
//! with only loopback (tests/interop/in_netns.sh, `unshare -rn`). `EQUIGATE_SKIP_INTEROP=1` skips
//! them; the bad-input test needs PyPI `cyclonedds` (`python3 -m pip install -r
//! tests/requirements.txt`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::backend::{Autodiff, Flex};
use equigate::agent::AgentKind;
use equigate::metrics::read_metrics;
use equigate::train::{self, files, LearnerConfig, TrainConfig, TrainOptions};

type B = Autodiff<Flex>;

const TASK: &str = "config/tasks/ur5e_reach.yaml";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn skip() -> bool {
    let skip = std::env::var("EQUIGATE_SKIP_INTEROP").as_deref() == Ok("1");
    if skip {
        eprintln!("skipped: EQUIGATE_SKIP_INTEROP=1");
    }
    skip
}

fn has_cyclone() -> bool {
    let status = Command::new("python3").args(["-c", "import cyclonedds"]).status();
    status.is_ok_and(|s| s.success())
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("equigate-pn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `script` with bash inside a loopback-only network namespace, with `SIM` and `POLICY`
/// naming the node binaries and `vars` in the environment.
fn in_netns(script: &str, vars: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(root().join("tests/interop/in_netns.sh"));
    cmd.args(["bash", "-c", script])
        .current_dir(root())
        .env("SIM", env!("CARGO_BIN_EXE_sim_node"))
        .env("POLICY", env!("CARGO_BIN_EXE_policy_node"))
        .env("PYTHONPATH", root().join("tests/interop"))
        .env("RUST_LOG", "info");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("tests/interop/in_netns.sh runs (needs unshare and ip)")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A small SAC learner for a short run on 2 cores.
fn small_train_config(total_steps: usize, learning_starts: usize, hidden: usize) -> TrainConfig {
    TrainConfig {
        task: Some(TASK.into()),
        agent: AgentKind::Sac,
        total_steps,
        eval_every: total_steps,
        log_every: 500,
        checkpoint_every: total_steps,
        learner: LearnerConfig {
            batch_size: 128.min(learning_starts),
            learning_starts,
            lr: 1e-3,
            gamma: 0.95,
            hidden: vec![hidden, hidden],
            equi_hidden_dim: hidden,
            gate_warmup_updates: 1000,
            ..LearnerConfig::default()
        },
        ..TrainConfig::default()
    }
}

/// A run directory trained in process by `equigate::train::train`.
fn trained_run(name: &str, config: &TrainConfig) -> PathBuf {
    let dir = temp_dir(name).join("run");
    let options =
        TrainOptions { run_dir: dir.clone(), resume: false, stop: None, on_row: None, plot: false };
    let s = train::train::<B>(config, options, &Default::default()).unwrap();
    println!(
        "trained in process: {} steps in {:.0} s, eval return {:.2} (random {:.2}), final distance \
         {:.3} m (random {:.3} m)",
        s.env_steps,
        s.seconds,
        s.final_eval.mean_return,
        s.random_eval.mean_return,
        s.final_eval.mean_final_distance_m,
        s.random_eval.mean_final_distance_m
    );
    dir
}

/// (1) sim_node in lockstep and policy_node in train mode as two processes: the training return
/// of the last 1000 steps beats that of the first 1000 (uniform random actions) by a quarter of
/// its size, and the run directory loads in `equigate eval` (train::eval_run), beating a random
/// policy on the same episodes.
#[test]
fn train_mode_against_the_lockstep_simulator_improves_the_return() {
    if skip() {
        return;
    }
    let dir = temp_dir("train");
    let (run_dir, train_file) = (dir.join("run"), dir.join("train.yaml"));
    let config = small_train_config(6000, 1000, 128);
    std::fs::write(&train_file, equigate_ros::yaml::to_string(&config).unwrap()).unwrap();
    // With PyPI cyclonedds, an independent peer also records policy_node's /diagnostics.
    let diag = has_cyclone();
    let script = r#"
        if [ "$DIAG" = 1 ]; then
            python3 tests/interop/diag_listen.py "equigate: policy_node" "$DIR/diag.json" 600 & diag=$!
        fi
        "$SIM" --ros-args -p robot:=ur5e -p mode:=lockstep -p task_file:=config/tasks/ur5e_reach.yaml \
            2>"$DIR/sim.log" & sim=$!
        trap 'kill $sim $diag; wait $sim' EXIT
        timeout 600 "$POLICY" --ros-args --params-file config/policy_ur5e.yaml -p mode:=train \
            -p use_sim_time:=true -p run_dir:="$RUN" -p train_file:="$TRAIN"
    "#;
    let flag = PathBuf::from(if diag { "1" } else { "0" });
    let vars = [("RUN", &*run_dir), ("TRAIN", &*train_file), ("DIR", &*dir), ("DIAG", &*flag)];
    let out = in_netns(script, &vars);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "policy_node train failed ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stderr.contains("training done: 6000 steps"), "{stderr}");

    let rows = read_metrics(&run_dir.join(files::METRICS)).unwrap();
    let mean = |rows: Vec<f64>| rows.iter().sum::<f64>() / rows.len().max(1) as f64;
    let first =
        mean(rows.iter().filter(|r| r.env_steps <= 1000).filter_map(|r| r.train_return).collect());
    let last =
        mean(rows.iter().filter(|r| r.env_steps > 5000).filter_map(|r| r.train_return).collect());
    let last_row = rows.last().unwrap();
    println!(
        "policy_node train mode over DDS: {} steps, {} updates, {} episodes in {:.0} s; mean episode \
         return, first 1000 steps (random actions) {first:.2}, last 1000 steps {last:.2}",
        last_row.env_steps, last_row.updates, last_row.episodes, last_row.wall_s
    );
    assert!(last > first + 0.25 * first.abs(), "no clear improvement: {first:.2} -> {last:.2}");

    if diag {
        let text = std::fs::read_to_string(dir.join("diag.json")).expect("diagnostics received");
        let d: serde_json::Value = serde_json::from_str(&text).unwrap();
        println!("last /diagnostics of policy_node seen by the Cyclone DDS peer: {d}");
        let value = |k: &str| d["values"][k].as_str().unwrap_or_else(|| panic!("no {k}: {d}"));
        assert_eq!(value("mode"), "train");
        let number = |k: &str| value(k).parse::<f64>().unwrap_or_else(|_| panic!("{k}: {d}"));
        assert!(number("env_steps") >= 5000.0 && number("updates") >= 4000.0, "{d}");
        for k in ["return", "mean_return", "success_rate", "q_loss", "actor_loss", "alpha"] {
            assert!(number(k).is_finite(), "{k}: {d}");
        }
        assert!(number("updates_per_s") > 0.0, "{d}");
        assert!(value("lambda_fraction") == "nan", "λ is PE-SAC's only: {d}");
    }

    let (trained, random) = train::eval_run::<B>(&run_dir, 10, None, &Default::default()).unwrap();
    println!(
        "equigate eval of that run: return {:.2}, final distance {:.3} m; random policy {:.2}, {:.3} m",
        trained.mean_return,
        trained.mean_final_distance_m,
        random.mean_return,
        random.mean_final_distance_m
    );
    assert!(trained.mean_return > random.mean_return, "{trained:?} vs {random:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The distances in "... end effector 0.412 m from the goal ..." log lines of `node` (its log
/// target, e.g. `nodes::sim:`).
fn distances(log: &str, node: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains(node))
        .filter_map(|l| l.split("end effector ").nth(1)?.split(" m from").next()?.parse().ok())
        .collect()
}

/// (2) A checkpoint trained in process drives the real-time simulator's arm towards its goal
/// through policy_node's run mode, for two seeds (two start poses and goals): the distance that
/// sim_node logs (its own state) 5 s after start is below 70% of the start, and the closest
/// approach policy_node logs (once a second) is below half of it.
#[test]
fn run_mode_drives_the_arm_towards_the_goal() {
    if skip() {
        return;
    }
    let run_dir = trained_run("run", &small_train_config(12000, 1000, 128));
    for seed in [0, 1] {
        let script = r#"
            "$SIM" --ros-args --params-file config/ur5e.yaml -p seed:=$SEED & sim=$!
            "$POLICY" --ros-args --params-file config/policy_ur5e.yaml -p mode:=run -p run_dir:="$RUN" & policy=$!
            sleep 7
            kill -INT $policy; wait $policy; code=$?
            kill -INT $sim; wait $sim
            exit $code
        "#;
        let seed_s = PathBuf::from(seed.to_string());
        let out = in_netns(script, &[("RUN", &run_dir), ("SEED", &seed_s)]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "seed {seed} ({}):\n{stdout}\n{stderr}", out.status);
        let sim = distances(&stderr, "nodes::sim:");
        let policy = distances(&stderr, "nodes::policy:");
        println!("run mode, seed {seed}: sim_node's distance every 5 s {sim:?} m, policy_node's every 1 s {policy:?} m");
        assert!(sim.len() >= 2 && !policy.is_empty(), "{stderr}");
        let closest = policy.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(sim[1] < 0.7 * sim[0], "seed {seed}: {:.3} m -> {:.3} m after 5 s", sim[0], sim[1]);
        assert!(
            closest < 0.5 * sim[0],
            "seed {seed}: closest {closest:.3} m, start {:.3} m",
            sim[0]
        );
    }
    let _ = std::fs::remove_dir_all(run_dir.parent().unwrap());
}

/// (3) NaN positions, a missing joint, wrong array lengths, an empty velocity array, an infinite
/// velocity and a stalled stream from a Cyclone DDS peer: zero-velocity commands, no crash,
/// recovery on good states (tests/interop/policy_peer.py).
#[test]
fn bad_joint_states_from_a_cyclone_peer_give_zero_velocity_and_no_crash() {
    if skip() {
        return;
    }
    assert!(
        has_cyclone(),
        "the interop peer needs PyPI cyclonedds: python3 -m pip install -r tests/requirements.txt \
         (or set EQUIGATE_SKIP_INTEROP=1)"
    );
    let mut config = small_train_config(300, 200, 16);
    config.learner.batch_size = 32;
    let run_dir = trained_run("bad", &config);
    let script = r#"python3 tests/interop/policy_peer.py "$POLICY" "$RUN""#;
    let out = in_netns(script, &[("RUN", &run_dir)]);
    let (stdout, stderr) = text(&out);
    println!("{stdout}");
    assert!(out.status.success(), "policy_peer.py failed ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("all policy_node bad-input checks passed"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(stderr.contains("sending zero velocity"), "throttled warnings logged:\n{stderr}");
    let _ = std::fs::remove_dir_all(run_dir.parent().unwrap());
}

/// (4) `act_on_state`: a Cyclone DDS peer (benches/latency_peer.py, 2 s at 500 Hz) gets a
/// command for most joint states, each matched to its state, and zero velocity from the timer
/// once the stream stalls; the node exits cleanly. The latency itself is a benchmark
/// (benches/policy_latency.sh), not checked here.
#[test]
fn act_on_state_commands_each_joint_state_and_zero_on_a_stalled_stream() {
    if skip() {
        return;
    }
    assert!(has_cyclone(), "the latency peer needs PyPI cyclonedds (or EQUIGATE_SKIP_INTEROP=1)");
    let mut config = small_train_config(300, 200, 16);
    config.learner.batch_size = 32;
    let run_dir = trained_run("act_on_state", &config);
    let script = r#"python3 benches/latency_peer.py "$POLICY" "$RUN" 2 -p act_on_state:=true"#;
    let out = in_netns(script, &[("RUN", &run_dir)]);
    let (stdout, stderr) = text(&out);
    println!("{stdout}");
    assert!(out.status.success(), "latency_peer.py failed ({}):\n{stdout}\n{stderr}", out.status);
    let result: serde_json::Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_else(|| panic!("no RESULT line:\n{stdout}"));
    let (samples, sent) = (result["samples"].as_u64(), result["states_sent"].as_u64());
    assert!(matches!((samples, sent), (Some(s), Some(n)) if 2 * s >= n), "{result}");
    assert_eq!(result["stalled_stream_all_zero"], serde_json::Value::Bool(true), "{result}");
    let _ = std::fs::remove_dir_all(run_dir.parent().unwrap());
}
