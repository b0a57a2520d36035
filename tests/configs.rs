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

#[test]
fn every_node_parameter_file_builds_its_node() {
    let configs = files("config");
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
