//! equigate's ROS 2 layer: message types with CDR serde ([`msg`]), `--ros-args` parsing and name
//! resolution ([`args`]), ROS parameter files ([`params`], YAML through [`yaml`]), and the DDS
//! transport on ros2-client / RustDDS with localhost-only discovery by default ([`transport`]).
//!
//! No learning code and no robot code live here (DESIGN.md, "Parts").

pub mod args;
pub mod msg;
pub mod params;
pub mod yaml;
