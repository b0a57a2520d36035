//! The equigate package's node layer: what sits between the ROS 2 messages of
//! `equigate-ros` and the simulator, tasks and (later) learners of the other crates.
//! Node executables in `nodes/` stay about a screen long and call into here.

pub mod agent;
pub mod collect;
pub mod command;
pub mod convert;
pub mod dataset;
pub mod detect;
pub mod export;
pub mod lambda_map;
pub mod logging;
pub mod metrics;
pub mod monitor;
pub mod nodes;
pub mod observe;
pub mod offline;
pub mod online;
pub mod plot;
pub mod policy;
pub mod policy_loop;
pub mod resources;
pub mod run_dir;
pub mod safety;
pub mod sim_server;
pub mod train;
