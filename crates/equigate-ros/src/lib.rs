//! equigate's ROS 2 layer: message types with CDR serde ([`msg`]), `--ros-args` parsing and name
//! resolution ([`args`]), ROS parameter files ([`params`], YAML through [`yaml`]), and the DDS
//! transport on ros2-client / RustDDS with localhost-only discovery by default ([`transport`]).
//!
//! No learning code and no robot code live here (DESIGN.md, "Parts").
//!
//! A node, end to end (arguments, parameters, publisher, subscription, service, loop):
//!
//! ```no_run
//! use equigate_ros::msg::{Float64MultiArray, JointState, TriggerResponse, TriggerSrv};
//! use equigate_ros::{qos_reliable, Ros, RosArgs};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Settings {
//!     #[serde(default = "rate")]
//!     rate_hz: f64,
//! }
//! fn rate() -> f64 { 50.0 }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let args = RosArgs::from_env()?; // args.user_args go to clap
//!     let mut ros = Ros::new("policy_node", "/", &args)?; // __node/__ns remaps applied
//!     let settings: Settings = ros.load_params()?.deserialize()?;
//!     let cmd = ros.publisher::<Float64MultiArray>("forward_velocity_controller/commands", qos_reliable())?;
//!     let states = ros.subscription::<JointState>("joint_states", qos_reliable())?;
//!     let reset = ros.service_server::<TriggerSrv>("~/reset")?;
//!     loop {
//!         while let Some((js, _info)) = states.take()? {
//!             cmd.publish(Float64MultiArray::flat(vec![0.0; js.name.len()])).ok();
//!         }
//!         if let Some((id, _)) = reset.receive_request()? {
//!             reset.send_response(id, TriggerResponse { success: true, message: "reset".into() }).ok();
//!         }
//!         std::thread::sleep(std::time::Duration::from_secs_f64(1.0 / settings.rate_hz));
//!     }
//! }
//! ```

#![warn(missing_docs)]

pub mod args;
pub mod msg;
pub mod params;
pub mod transport;
pub mod yaml;

pub use args::{ArgsError, RosArgs};
pub use params::{ParamSource, ParamValue, Params, ParamsError};
pub use transport::{
    qos_latched, qos_reliable, qos_sensor_data, DiscoveryConfig, DiscoveryRange, Ros,
    TransportError,
};

/// ros2-client, re-exported at the version this crate uses (Publisher, Subscription, Server, ...).
pub use ros2_client;
