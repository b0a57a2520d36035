//! `equigate`: train, evaluate and plot PE-SAC and its baselines on the built-in simulator; run the
//! graph; record bags and train offline on them.
//!
//! ```text
//! equigate train [--config config/train/ur5e_reach_obstacles.yaml] [--agent pe-sac] [--seed 0]
//!                [--steps N] [--out runs/NAME] [--resume] [--init-from RUN]... [--device cpu|cuda]
//! equigate eval RUN_DIR [--episodes 100]
//! equigate plot --out curves.png RUN_DIR...
//! equigate record --ros-args -p output:=bags/NAME                        (a node)
//! equigate collect --out bags/NAME [--steps 10000] [--noise 0.1] [--depth-hz 15]
//! equigate offline --algo cql|iql [--equivariant] --bag bags/NAME [--updates 20000] [--out runs/NAME]
//! equigate dataset --bag bags/NAME [--depth-topic] --out datasets/NAME      (.npy, D4RL names)
//! ```

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::AutodiffBackend;
use clap::{Parser, Subcommand, ValueEnum};
use equigate::agent::AgentKind;
use equigate::detect::{self, DetectOptions};
use equigate::metrics::MetricsRow;
use equigate::train::{self, EvalResult, TrainConfig, TrainOptions};
use equigate_learn::sac::ActMode;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser, Debug)]
#[command(name = "equigate", version, about = "Partially equivariant RL (PE-SAC) for robot arms")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train an agent on the built-in simulator; writes a run directory (metrics.csv,
    /// learning_curve.png, checkpoint/).
    Train {
        /// Train config (YAML; `config/train/*.yaml`, resolved against the package share
        /// directory when not found here).
        #[arg(long, default_value = "config/train/ur5e_reach_obstacles.yaml")]
        config: String,
        /// Override the config's agent.
        #[arg(long, value_enum)]
        agent: Option<AgentKind>,
        /// Override the config's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the config's total environment steps.
        #[arg(long)]
        steps: Option<usize>,
        /// Run directory (default: runs/<config name>-<agent>-s<seed>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue the run in --out from its last checkpoint (its own train.yaml is used).
        #[arg(long)]
        resume: bool,
        /// PE-SAC: run the predictor and gate steps on a second thread, the critic and actor
        /// reading the previous update's gates (`learner.pipelined`; about 1.5x faster on two
        /// cores; default: the config's, the paper's order in the shipped configs).
        #[arg(long)]
        pipelined: bool,
        /// PE-SAC: train the standard actor π_N on every state, not only where the state gate
        /// picks it (`learner.pi_n_all_states`; default: the config's).
        #[arg(long)]
        pi_n_all_states: bool,
        /// Factor on the equivariant critics' and actors' learning rates (`learner.equi_lr_scale`;
        /// default: the config's; √|G| gives them the MLPs' step per weight).
        #[arg(long)]
        equi_lr_scale: Option<f64>,
        /// Target entropy per action dimension in nats (`learner.target_entropy_per_dim`;
        /// default: the config's, −0.5 in the shipped configs).
        #[arg(long, allow_hyphen_values = true)]
        target_entropy_per_dim: Option<f64>,
        /// Start the networks from a `sac` / `equi-sac` run or an `equigate offline` run
        /// (repeat: for PE-SAC, one of each starts both branches).
        #[arg(long = "init-from")]
        init_from: Vec<PathBuf>,
        /// Where the networks run.
        #[arg(long, value_enum, default_value_t = Device::Cpu)]
        device: Device,
    },
    /// Evaluate a run's last checkpoint (deterministic actions) beside a random policy.
    Eval {
        /// The run directory written by `equigate train`.
        run_dir: PathBuf,
        /// Evaluation episodes.
        #[arg(long, default_value_t = 100)]
        episodes: usize,
        /// Seed of the evaluation episodes (default: the run's evaluation seed).
        #[arg(long)]
        seed: Option<u64>,
        /// Sample actions as in training instead of acting with the mean action tanh(μ(s)).
        #[arg(long)]
        stochastic: bool,
        /// Write the trained policy's steps to this CSV (episode, step, distance_m, the scaled
        /// action's norm and largest entry, λζ(s), the goal, breaking/collision/termination
        /// flags, q and the action); `benches/eval_failures.py` sorts its failures.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Where the networks run.
        #[arg(long, value_enum, default_value_t = Device::Cpu)]
        device: Device,
    },
    /// Learn the symmetry-breaking detector from simulator transitions and score λ against the
    /// simulator's ground truth (AUROC, precision/recall); writes lambda_map.png and depth.png.
    Detect {
        /// Train config: robot, task, group, seed and network widths (YAML, as `train`).
        #[arg(long, default_value = "config/train/ur5e_reach_obstacles.yaml")]
        config: String,
        /// Training transitions (80,000: where λ's AUROC clears 0.9 on the default task).
        #[arg(long, default_value_t = 80_000)]
        steps: usize,
        /// Held-out transitions scored against the ground truth.
        #[arg(long, default_value_t = 10_000)]
        eval_steps: usize,
        /// A run directory whose policy drives the arm (default: random joint velocities).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Output directory.
        #[arg(long, default_value = "runs/detect")]
        out: PathBuf,
        /// Where the networks run.
        #[arg(long, value_enum, default_value_t = Device::Cpu)]
        device: Device,
    },
    /// The main job: sim_node (lockstep), policy_node (train) and detector_node as three
    /// processes of this executable talking over localhost DDS; leaves the checkpoint,
    /// learning_curve.png, lambda_map.png and depth.png in --out.
    Graph {
        /// The arm.
        #[arg(long, value_enum, default_value_t = Robot::Ur5e)]
        robot: Robot,
        /// The learner (default: the policy config's train file's, PE-SAC).
        #[arg(long, value_enum)]
        agent: Option<AgentKind>,
        /// Environment steps to train for.
        #[arg(long, default_value_t = 20_000)]
        steps: usize,
        /// Task file for all three nodes (default: config/tasks/ur5e_reach_obstacles.yaml for
        /// the UR5e, config/tasks/fetch_reach.yaml for the Fetch).
        #[arg(long)]
        task: Option<String>,
        /// Run directory.
        #[arg(long, default_value = "runs/graph")]
        out: PathBuf,
        /// Leave the detector out.
        #[arg(long)]
        no_detector: bool,
    },
    /// Run one node (`sim`, `policy`, `detector`, `record`) with its `--ros-args`, as its own
    /// executable would (what `graph` starts).
    #[command(hide = true)]
    Node {
        /// sim | policy | detector | record.
        name: String,
        /// `--ros-args ...`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Record topics into a rosbag2 bag (a node: takes --ros-args).
    Record {
        /// `--ros-args ...` (parameters: config/record.yaml).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Record a dataset bag (rosbag2, MCAP) of a scripted reaching controller with exploration
    /// noise driving the built-in simulator: /clock, /joint_states, /goal and the velocity
    /// commands, as the lockstep graph carries them.
    Collect {
        /// Train config: robot and task (YAML, as `train`).
        #[arg(long, default_value = "config/train/ur5e_reach_obstacles.yaml")]
        config: String,
        /// Control steps (transitions) to record.
        #[arg(long, default_value_t = 10_000)]
        steps: usize,
        /// Gaussian noise on each joint's command, as a fraction of its velocity limit.
        #[arg(long, default_value_t = 0.1)]
        noise: f64,
        /// Probability of a uniform random command instead of the controller's.
        #[arg(long, default_value_t = 0.1)]
        random_prob: f64,
        /// Seed of the episodes and the noise.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also record depth images (sensor_msgs/Image 32FC1 on /camera/depth/image_raw, the sim
        /// node's camera) at this rate of simulated time, Hz (the sim node uses 15).
        #[arg(long)]
        depth_hz: Option<f64>,
        /// Bag directory to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Train CQL or IQL (or Equi-CQL / Equi-IQL) offline on bags, evaluate in the simulator, and
    /// write a run directory that `eval`, policy_node and `train --resume` read.
    Offline {
        /// The algorithm.
        #[arg(long, value_enum)]
        algo: equigate::offline::OfflineAlgo,
        /// Invariant critics, equivariant actor (the task's C_n).
        #[arg(long)]
        equivariant: bool,
        #[command(flatten)]
        input: BagArgs,
        /// Gradient updates.
        #[arg(long, default_value_t = 20_000)]
        updates: u64,
        /// CQL's α_cql (default: CORL's 10; Equi-CQL's paper uses 1).
        #[arg(long)]
        cql_alpha: Option<f64>,
        /// One learning rate for every network (default: CORL's per-network values).
        #[arg(long)]
        lr: Option<f64>,
        /// CQL's initial entropy temperature α₀ (default: CORL's 1.0).
        #[arg(long)]
        init_temperature: Option<f64>,
        /// CQL's importance sampling of the proposals, true or false (default: CORL's true).
        #[arg(long)]
        cql_importance_sample: Option<bool>,
        /// Factor on the equivariant networks' learning rates (default: √|G|, the same Adam step
        /// per weight as the MLPs'; 1: the MLPs' learning rates).
        #[arg(long)]
        equi_lr_scale: Option<f64>,
        /// Evaluate every this many updates.
        #[arg(long, default_value_t = 5_000)]
        eval_every: u64,
        /// Override the config's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Run directory (default: runs/offline-<algo>[-equi]-s<seed>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where the networks run.
        #[arg(long, value_enum, default_value_t = Device::Cpu)]
        device: Device,
    },
    /// Build the transitions of bags (as `offline` does) and write them as .npy files with D4RL's
    /// names (observations, actions, rewards, next_observations, terminals, timeouts; with
    /// --depth-topic also depth, next_depth and depth_frames) and a dataset.json sidecar.
    Dataset {
        #[command(flatten)]
        input: BagArgs,
        /// Directory to write (created; must not hold a dataset.json yet).
        #[arg(long)]
        out: PathBuf,
    },
    /// Draw the learning curves of several runs into one PNG; runs of the same agent are pooled
    /// (mean line, min–max band).
    Plot {
        /// Output PNG.
        #[arg(long)]
        out: PathBuf,
        /// Run directories.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
    },
}

/// The bags and how to read them, shared by `offline` and `dataset`.
#[derive(clap::Args, Debug)]
struct BagArgs {
    /// A bag directory (repeat for several).
    #[arg(long = "bag", required = true)]
    bags: Vec<PathBuf>,
    /// Train config (YAML, as `train`): robot and task; `offline` also takes the seed, group
    /// order, widths, batch size, γ, τ and evaluation episodes from it.
    #[arg(long, default_value = "config/train/ur5e_reach_obstacles.yaml")]
    config: String,
    /// Attach depth images from this sensor_msgs/Image topic (32FC1 or 16UC1) to s and s';
    /// transitions without one are dropped. Without a value: /camera/depth/image_raw.
    #[arg(long, num_args = 0..=1, default_missing_value = equigate::dataset::DEPTH_TOPIC)]
    depth_topic: Option<String>,
    /// Oldest depth image attached to a state, s.
    #[arg(long, default_value_t = equigate::dataset::DEFAULT_DEPTH_MAX_AGE_S)]
    depth_max_age: f64,
}

impl BagArgs {
    /// The train config file, resolved against the package share directory.
    fn train_config(&self) -> anyhow::Result<TrainConfig> {
        TrainConfig::load(&equigate::resources::resolve(&self.config))
    }

    /// The default topics with the depth options.
    fn topics(&self) -> equigate::dataset::DatasetTopics {
        equigate::dataset::DatasetTopics {
            depth: self.depth_topic.clone(),
            depth_max_age_s: self.depth_max_age,
            ..Default::default()
        }
    }
}

/// The arms `graph` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Robot {
    /// Universal Robots UR5e.
    Ur5e,
    /// Fetch.
    Fetch,
}

impl Robot {
    fn name(self) -> &'static str {
        match self {
            Robot::Ur5e => "ur5e",
            Robot::Fetch => "fetch",
        }
    }
}

/// `equigate graph`: the three nodes as child processes of this executable.
mod graph {
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};

    use anyhow::{bail, Context as _};
    use equigate::agent::AgentKind;

    use super::Robot;

    pub struct GraphOptions {
        pub robot: Robot,
        pub agent: Option<AgentKind>,
        pub steps: usize,
        pub task: Option<String>,
        pub out: PathBuf,
        pub detector: bool,
    }

    /// A child node, stopped with SIGINT (as `ros2 launch` does) when dropped.
    struct NodeProcess {
        name: &'static str,
        child: Child,
    }

    impl NodeProcess {
        fn start(name: &'static str, ros_args: Vec<String>) -> anyhow::Result<Self> {
            let exe = std::env::current_exe().context("finding the equigate executable")?;
            let child = Command::new(exe)
                .arg("node")
                .arg(name)
                .args(ros_args)
                .stdin(Stdio::null())
                .spawn()
                .with_context(|| format!("starting the {name} node"))?;
            Ok(Self { name, child })
        }

        fn interrupt(&mut self) {
            let _ = Command::new("kill").arg("-INT").arg(self.child.id().to_string()).status();
        }
    }

    impl Drop for NodeProcess {
        fn drop(&mut self) {
            if let Ok(None) = self.child.try_wait() {
                self.interrupt();
                for _ in 0..100 {
                    if let Ok(Some(_)) = self.child.try_wait() {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                tracing::warn!("{} node did not stop on SIGINT within 5 s; killing it", self.name);
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }

    fn params(file: &str, overrides: &[(&str, String)]) -> Vec<String> {
        let share = equigate::resources::share_dir();
        let mut args = vec!["--ros-args".into(), "--params-file".into()];
        args.push(share.join("config").join(file).display().to_string());
        for (k, v) in overrides {
            args.push("-p".into());
            args.push(format!("{k}:={v}"));
        }
        args
    }

    pub fn run(o: &GraphOptions) -> anyhow::Result<()> {
        let robot = o.robot.name();
        let task = o.task.clone().unwrap_or_else(|| match o.robot {
            Robot::Ur5e => "config/tasks/ur5e_reach_obstacles.yaml".into(),
            Robot::Fetch => "config/tasks/fetch_reach.yaml".into(),
        });
        let task = equigate::resources::resolve(&task);
        if !task.is_file() {
            bail!("task file {} not found", task.display());
        }
        let task = std::fs::canonicalize(&task)?.display().to_string();
        if o.out.join(equigate::train::files::METRICS).exists() {
            bail!("{} already holds a run; choose another --out", o.out.display());
        }
        std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
        let out = std::fs::canonicalize(&o.out)?.display().to_string();
        tracing::info!("sim_node (lockstep), policy_node (train) and detector_node on {robot}, task {task}, into {out}");
        let _sim = NodeProcess::start(
            "sim",
            params(
                &format!("{robot}.yaml"),
                &[("mode", "lockstep".into()), ("task_file", task.clone())],
            ),
        )?;
        let _detector = if o.detector {
            Some(NodeProcess::start(
                "detector",
                params(
                    &format!("detector_{robot}.yaml"),
                    &[("task_file", task.clone()), ("output_dir", out.clone())],
                ),
            )?)
        } else {
            None
        };
        let mut policy_overrides = vec![
            ("mode", "train".to_owned()),
            ("use_sim_time", "true".into()),
            ("lockstep", "true".into()),
            ("run_dir", out.clone()),
            ("task_file", task.clone()),
            ("total_steps", o.steps.to_string()),
        ];
        if let Some(agent) = o.agent {
            policy_overrides.push(("agent", agent.name().into()));
        }
        let mut policy = NodeProcess::start(
            "policy",
            params(&format!("policy_{robot}.yaml"), &policy_overrides),
        )?;
        // Ctrl-C reaches the whole process group: the children stop by themselves, the policy
        // with a final checkpoint; this process only waits for it.
        let stop = equigate::logging::stop_flag().context("installing the SIGINT handler")?;
        let status = loop {
            if let Some(status) = policy.child.try_wait()? {
                break status;
            }
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                break policy.child.wait()?;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        drop(_detector); // SIGINT: the detector writes its final λ map and depth PNGs
        if !status.success() {
            bail!("policy_node exited with {status}");
        }
        super::train::write_learning_curve(std::path::Path::new(&out))?;
        println!("run directory {out}:");
        for f in ["checkpoint", "metrics.csv", "learning_curve.png", "lambda_map.png", "depth.png"]
        {
            let p = std::path::Path::new(&out).join(f);
            println!("  {} {}", if p.exists() { "ok     " } else { "missing" }, p.display());
        }
        Ok(())
    }
}

/// The burn backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Device {
    /// burn's pure-Rust `flex` CPU backend.
    Cpu,
    /// burn-cuda (build with `--features cuda`; needs an NVIDIA driver at run time).
    Cuda,
}

fn main() -> anyhow::Result<()> {
    equigate::logging::init(None);
    let cli = Cli::parse();
    match cli.command {
        Command::Train {
            config,
            agent,
            seed,
            steps,
            out,
            resume,
            pipelined,
            pi_n_all_states,
            equi_lr_scale,
            target_entropy_per_dim,
            init_from,
            device,
        } => {
            let (mut config, run_dir) = train_config(&config, agent, seed, steps, out, resume)?;
            if pipelined {
                anyhow::ensure!(
                    !resume,
                    "--pipelined changes the config; a resumed run keeps its own"
                );
                config.learner.pipelined = true;
            }
            if pi_n_all_states {
                anyhow::ensure!(
                    !resume,
                    "--pi-n-all-states changes the config; a resumed run keeps its own"
                );
                config.learner.pi_n_all_states = true;
            }
            if let Some(scale) = equi_lr_scale {
                anyhow::ensure!(
                    !resume,
                    "--equi-lr-scale changes the config; a resumed run keeps its own"
                );
                config.learner.equi_lr_scale = scale;
                config.validate()?;
            }
            if let Some(h) = target_entropy_per_dim {
                anyhow::ensure!(
                    !resume,
                    "--target-entropy-per-dim changes the config; a resumed run keeps its own"
                );
                config.learner.target_entropy_per_dim = h;
                config.validate()?;
            }
            if !init_from.is_empty() {
                anyhow::ensure!(!resume, "--init-from starts a new run; it cannot be resumed into");
                config.init_from = init_from.iter().map(|p| p.display().to_string()).collect();
            }
            match device {
                Device::Cpu => {
                    run_train::<Autodiff<Flex>>(&config, run_dir, resume, &Default::default())
                }
                Device::Cuda => cuda(|d| run_train::<CudaBackend>(&config, run_dir, resume, d)),
            }
        }
        Command::Eval { run_dir, episodes, seed, stochastic, trace, device } => {
            let mode = if stochastic { ActMode::Stochastic } else { ActMode::Deterministic };
            let trace = trace.as_deref();
            match device {
                Device::Cpu => run_eval::<Autodiff<Flex>>(
                    &run_dir,
                    episodes,
                    seed,
                    mode,
                    trace,
                    &Default::default(),
                ),
                Device::Cuda => {
                    cuda(|d| run_eval::<CudaBackend>(&run_dir, episodes, seed, mode, trace, d))
                }
            }
        }
        Command::Detect { config, steps, eval_steps, policy, out, device } => {
            let config = TrainConfig::load(&equigate::resources::resolve(&config))?;
            let options = DetectOptions {
                steps,
                eval_steps,
                learning_starts: 2_000.min(steps),
                policy,
                out: Some(out.clone()),
            };
            let report = match device {
                Device::Cpu => {
                    detect::detect::<Autodiff<Flex>>(&config, &options, &Default::default())?
                }
                Device::Cuda => {
                    let mut report = None;
                    cuda(|d| {
                        report = Some(detect::detect::<CudaBackend>(&config, &options, d)?);
                        Ok(())
                    })?;
                    report.expect("set by the closure")
                }
            };
            let fmt = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3}"));
            println!(
                "detector on {} held-out transitions ({:.1}% in the breaking region), {} updates, \
                 {:.0} s: AUROC {} (blocked steps only: {}; raw disagreement: {}), precision {}, recall {} (λ > 0.5); λ map mean {} where the \
                 symmetry breaks, {} elsewhere; wrote {}",
                report.eval_transitions,
                100.0 * report.positive_fraction,
                report.updates,
                report.seconds,
                fmt(report.auroc),
                fmt(report.auroc_collided),
                fmt(report.auroc_disagreement),
                fmt(report.precision),
                fmt(report.recall),
                fmt(report.map_mean_broken),
                fmt(report.map_mean_symmetric),
                out.display()
            );
            Ok(())
        }
        Command::Graph { robot, agent, steps, task, out, no_detector } => {
            graph::run(&graph::GraphOptions {
                robot,
                agent,
                steps,
                task,
                out,
                detector: !no_detector,
            })
        }
        Command::Record { args } => equigate::nodes::record::run(equigate_ros::RosArgs::parse(
            std::iter::once("record".to_owned()).chain(args),
        )?),
        Command::Node { name, args } => {
            let args = equigate_ros::RosArgs::parse(std::iter::once(name.clone()).chain(args))?;
            match name.as_str() {
                "sim" => equigate::nodes::sim::run(args),
                "policy" => equigate::nodes::policy::run(args),
                "detector" => equigate::nodes::detector::run(args),
                "record" => equigate::nodes::record::run(args),
                other => bail!("no node `{other}`: sim, policy, detector or record"),
            }
        }
        Command::Collect { config, steps, noise, random_prob, seed, depth_hz, out } => {
            let config = TrainConfig::load(&equigate::resources::resolve(&config))?;
            let spec = train::EnvSpec::load(&config)?;
            let controller =
                equigate::collect::ScriptedReach { noise, random_prob, ..Default::default() };
            let depth = depth_hz.map(equigate::collect::DepthStream::at);
            let s = equigate::collect::collect_scripted(
                &spec,
                &controller,
                seed,
                steps,
                depth.as_ref(),
                &out,
            )?;
            println!(
                "wrote {}: {} steps in {} episodes ({} successes, {} blocked steps), {} messages \
                 ({} depth images)",
                out.display(),
                s.steps,
                s.episodes,
                s.successes,
                s.collisions,
                s.messages,
                s.depth_images
            );
            Ok(())
        }
        Command::Dataset { input, out } => {
            let spec = train::EnvSpec::load(&input.train_config()?)?;
            let topics = input.topics();
            let dataset = equigate::offline::load_dataset(&spec, &input.bags, &topics, &[])?;
            equigate::export::write_npy(&dataset, &spec, &input.bags, &topics, &out)?;
            println!("dataset: {}", dataset.summary);
            println!("wrote {}", out.display());
            Ok(())
        }
        Command::Offline {
            algo,
            equivariant,
            input,
            updates,
            cql_alpha,
            lr,
            init_temperature,
            cql_importance_sample,
            equi_lr_scale,
            eval_every,
            seed,
            out,
            device,
        } => {
            let mut train_config = input.train_config()?;
            if let Some(seed) = seed {
                train_config.seed = seed;
            }
            let name = format!(
                "offline-{}{}-s{}",
                match algo {
                    equigate::offline::OfflineAlgo::Cql => "cql",
                    equigate::offline::OfflineAlgo::Iql => "iql",
                },
                if equivariant { "-equi" } else { "" },
                train_config.seed
            );
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(name));
            let offline = equigate::offline::OfflineConfig {
                algo,
                equivariant,
                topics: input.topics(),
                bags: input.bags,
                joints: Vec::new(),
                updates,
                eval_every,
                cql_alpha,
                lr,
                init_temperature,
                cql_importance_sample,
                equi_lr_scale,
                train: train_config,
            };
            let report = |u: u64, e: &EvalResult| {
                println!(
                    "{u:>7} updates: return {:.2}, success {:.0}%",
                    e.mean_return,
                    100.0 * e.success_rate
                );
            };
            let summary = match device {
                Device::Cpu => equigate::offline::run::<Autodiff<Flex>>(
                    &offline,
                    &out,
                    &Default::default(),
                    report,
                )?,
                Device::Cuda => {
                    let mut summary = None;
                    cuda(|d| {
                        summary =
                            Some(equigate::offline::run::<CudaBackend>(&offline, &out, d, report)?);
                        Ok(())
                    })?;
                    summary.expect("set by the closure")
                }
            };
            println!("dataset: {}", summary.dataset);
            println!(
                "{}: success {:.0}% (random {:.0}%), return {:.2} (random {:.2}), {:.1} updates/s; wrote {}",
                out.display(),
                100.0 * summary.final_eval.success_rate,
                100.0 * summary.random_eval.success_rate,
                summary.final_eval.mean_return,
                summary.random_eval.mean_return,
                summary.updates_per_s,
                out.display()
            );
            Ok(())
        }
        Command::Plot { out, runs } => {
            let curves = runs
                .iter()
                .map(|dir| {
                    let rows = equigate::metrics::read_metrics(&dir.join(train::files::METRICS))?;
                    let config: TrainConfig = read_run_config(dir)?;
                    Ok(equigate::plot::RunCurves::from_rows(config.agent.name(), &rows))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            equigate::plot::learning_curves(&curves, &out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
    }
}

#[cfg(feature = "cuda")]
type CudaBackend = Autodiff<burn::backend::Cuda>;
#[cfg(not(feature = "cuda"))]
type CudaBackend = Autodiff<Flex>;

/// Runs `f` on the CUDA device, or explains how to get one.
fn cuda<D: Default>(f: impl FnOnce(&D) -> anyhow::Result<()>) -> anyhow::Result<()> {
    if cfg!(feature = "cuda") {
        f(&D::default())
    } else {
        bail!("this binary was built without CUDA; rebuild with `--features cuda`")
    }
}

fn read_run_config(dir: &std::path::Path) -> anyhow::Result<TrainConfig> {
    TrainConfig::load(&dir.join(train::files::TRAIN_CONFIG))
}

/// The effective config and run directory of `equigate train`.
fn train_config(
    path: &str,
    agent: Option<AgentKind>,
    seed: Option<u64>,
    steps: Option<usize>,
    out: Option<PathBuf>,
    resume: bool,
) -> anyhow::Result<(TrainConfig, PathBuf)> {
    if resume {
        let Some(dir) = out else { bail!("--resume needs --out RUN_DIR") };
        let mut config = read_run_config(&dir)?;
        if let Some(steps) = steps {
            config.total_steps = steps;
        }
        return Ok((config, dir));
    }
    let file = equigate::resources::resolve(path);
    let mut config = TrainConfig::load(&file)?;
    if let Some(agent) = agent {
        config.agent = agent;
    }
    if let Some(seed) = seed {
        config.seed = seed;
    }
    if let Some(steps) = steps {
        config.total_steps = steps;
    }
    config.validate().with_context(|| format!("train config {}", file.display()))?;
    let stem = file.file_stem().map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
    let dir = out.unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("{stem}-{}-s{}", config.agent, config.seed))
    });
    Ok((config, dir))
}

fn run_train<B: AutodiffBackend>(
    config: &TrainConfig,
    run_dir: PathBuf,
    resume: bool,
    device: &B::Device,
) -> anyhow::Result<()> {
    let stop = equigate::logging::stop_flag().context("installing the SIGINT handler")?;
    let interactive = std::io::stderr().is_terminal();
    let bar = ProgressBar::new(config.total_steps as u64);
    if interactive {
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    tracing::info!(
        "training {} on the {:?} for {} steps ({} envs, C_{}) into {}",
        config.agent,
        config.robot,
        config.total_steps,
        config.num_envs,
        config.group_order,
        run_dir.display()
    );
    let mut on_row = |row: &MetricsRow| {
        let text = progress_text(row);
        bar.set_position(row.env_steps as u64);
        bar.set_message(text.clone());
        if !interactive {
            tracing::info!("{} steps: {text}", row.env_steps);
        }
    };
    let options = TrainOptions {
        run_dir: run_dir.clone(),
        resume,
        stop: Some(stop),
        on_row: Some(&mut on_row),
        plot: true,
    };
    let summary = train::train::<B>(config, options, device)?;
    bar.finish_and_clear();
    print_eval("trained (deterministic)", &summary.final_eval);
    print_eval("random policy", &summary.random_eval);
    if let Some(l) = summary.mean_lambda_fraction {
        println!("mean λ(s,a) of the batches after the gate warm-up: {l:.3}");
    }
    println!(
        "{} environment steps, {} updates in {:.0} s; run directory {}",
        summary.env_steps,
        summary.updates,
        summary.seconds,
        run_dir.display()
    );
    Ok(())
}

fn run_eval<B: AutodiffBackend>(
    run_dir: &std::path::Path,
    episodes: usize,
    seed: Option<u64>,
    mode: ActMode,
    trace: Option<&std::path::Path>,
    device: &B::Device,
) -> anyhow::Result<()> {
    let (trained, random) = train::eval_run_as::<B>(run_dir, episodes, seed, mode, trace, device)?;
    let what = match mode {
        ActMode::Deterministic => "trained (deterministic)",
        ActMode::Stochastic => "trained (stochastic)",
    };
    print_eval(what, &trained);
    print_eval("random policy", &random);
    Ok(())
}

fn progress_text(row: &MetricsRow) -> String {
    let mut parts = Vec::new();
    if let Some(r) = row.train_return {
        parts.push(format!("return {r:.1}"));
    }
    if let Some(s) = row.train_success {
        parts.push(format!("success {:.0}%", 100.0 * s));
    }
    if let Some(s) = row.eval_success {
        parts.push(format!("eval success {:.0}%", 100.0 * s));
    }
    if let Some(l) = row.lambda_fraction {
        parts.push(format!("λ {l:.2}"));
    }
    parts.push(format!("{:.0} upd/s", row.updates_per_s));
    parts.join(" · ")
}

fn print_eval(what: &str, e: &EvalResult) {
    let lambda = e.mean_lambda_state.map_or_else(String::new, |l| format!(", mean λζ {l:.3}"));
    println!(
        "{what}: {} episodes, success {:.1}%, mean return {:.2}, final distance {:.3} m, {:.1}% of \
         steps in the symmetry-breaking region{lambda}",
        e.episodes,
        100.0 * e.success_rate,
        e.mean_return,
        e.mean_final_distance_m,
        100.0 * e.breaking_fraction
    );
}
