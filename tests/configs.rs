//! Every shipped parameter file and task file parses, with unknown keys rejected, and builds
//! the node it is for.

use std::path::{Path, PathBuf};

use equigate::resources;
use equigate::sim_server::{SimNodeConfig, SimServer};
use equigate_robot::model::RobotKind;
use equigate_ros::Params;

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    out.sort();
    out
}

/// Parameter files of another node than sim_node, by file name prefix.
fn is_other_node(path: &Path) -> bool {
    path.file_name().is_some_and(|n| {
        let n = n.to_string_lossy();
        n.starts_with("policy_") || n.starts_with("detector_") || n.starts_with("record")
    })
}

#[test]
fn every_node_parameter_file_builds_its_node() {
    let configs: Vec<PathBuf> = files("config").into_iter().filter(|p| !is_other_node(p)).collect();
    assert!(configs.len() >= 2, "config/ur5e.yaml and config/fetch.yaml at least");
    for path in configs {
        let mut params = Params::new("/sim_node");
        params.merge_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!params.is_empty(), "{} has no sim_node parameters", path.display());
        let config: SimNodeConfig = params.deserialize().unwrap_or_else(|e| panic!("{e}"));
        let robot = config.robot;
        let sim = SimServer::new(config).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        assert_eq!(sim.joint_names().len(), robot.joint_names().len());
    }
}

#[test]
fn every_task_file_parses_for_its_robot() {
    let tasks = files("config/tasks");
    assert!(!tasks.is_empty());
    for path in tasks {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let robot = match name.split('_').next() {
            Some("ur5e") => RobotKind::Ur5e,
            Some("fetch") => RobotKind::Fetch,
            _ => panic!("task file {name} must start with its robot (ur5e_ or fetch_)"),
        };
        resources::load_task(robot, Some(&path)).unwrap_or_else(|e| panic!("{e:#}"));
    }
}

/// config/policy_*.yaml: the policy node's parameters parse, validate, name the joints of their
/// robot in the sim node's order, and give a valid train config whose task is the sim's.
#[test]
fn every_policy_node_parameter_file_parses_and_matches_the_sim_config() {
    use equigate::policy::PolicyNodeConfig;
    let configs: Vec<PathBuf> =
        files("config").into_iter().filter(|p| starts(p, "policy_")).collect();
    assert!(configs.len() >= 2, "config/policy_ur5e.yaml and config/policy_fetch.yaml at least");
    for path in configs {
        let mut params = Params::new("/policy_node");
        params.merge_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let config: PolicyNodeConfig = params.deserialize().unwrap_or_else(|e| panic!("{e}"));
        config.validate().unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        let train = config.train_config().unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        let robot = format!("{:?}", config.robot).to_lowercase();
        let mut sim = Params::new("/sim_node");
        sim.merge_file(&path.with_file_name(format!("{robot}.yaml"))).unwrap();
        let sim: SimNodeConfig = sim.deserialize().unwrap();
        assert_eq!(config.joint_names, sim.joint_names, "{}", path.display());
        assert_eq!(train.task.as_deref(), Some(sim.task_file.as_str()), "{}", path.display());
    }
}

fn starts(path: &Path, prefix: &str) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix))
}

/// config/detector_*.yaml: the detector node's parameters parse and validate, its task is the
/// sim's of the same robot, and the online detector builds from them.
#[test]
fn every_detector_node_parameter_file_builds_its_detector() {
    use burn::backend::{Autodiff, Flex};
    use equigate::monitor::{DetectorNodeConfig, OnlineDetector};
    let configs: Vec<PathBuf> =
        files("config").into_iter().filter(|p| starts(p, "detector_")).collect();
    assert!(configs.len() >= 2, "config/detector_ur5e.yaml and config/detector_fetch.yaml");
    for path in configs {
        let mut params = Params::new("/detector_node");
        params.merge_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let config: DetectorNodeConfig = params.deserialize().unwrap_or_else(|e| panic!("{e}"));
        config.validate().unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        let train = config.train_config().unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        let robot = format!("{:?}", config.robot).to_lowercase();
        let mut sim = Params::new("/sim_node");
        sim.merge_file(&path.with_file_name(format!("{robot}.yaml"))).unwrap();
        let sim: SimNodeConfig = sim.deserialize().unwrap();
        assert_eq!(train.task.as_deref(), Some(sim.task_file.as_str()), "{}", path.display());
        assert_eq!(
            config.camera,
            sim.camera,
            "{}: the map must overlay the depth image",
            path.display()
        );
        OnlineDetector::<Autodiff<Flex>>::new(&config, &Default::default())
            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    }
}

/// config/record.yaml: record_node's parameters parse and validate (every topic one of the
/// graph's), and are the defaults of [`equigate::nodes::record::RecordConfig`].
#[test]
fn record_node_parameter_file_parses_and_names_graph_topics() {
    use equigate::nodes::record::{graph_topic, RecordConfig};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/record.yaml");
    let mut params = Params::new("/record_node");
    params.merge_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!params.is_empty(), "{} has no record_node parameters", path.display());
    let config: RecordConfig = params.deserialize().unwrap_or_else(|e| panic!("{e}"));
    config.validate().unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    assert_eq!(config, RecordConfig::default(), "config/record.yaml shows the defaults");
    assert!(config.topics.iter().all(|t| graph_topic(t).is_ok()));
}
