//! equigate's ROS 2 layer: message types with CDR serde ([`msg`]), `--ros-args` parsing and name
//! resolution ([`args`]), ROS parameter files ([`params`], YAML through [`yaml`]), and the DDS
//! transport on ros2-client / RustDDS with localhost-only discovery by default ([`transport`]).
//!
//! No learning code and no robot code live here (DESIGN.md, "Parts").

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
