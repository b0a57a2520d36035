//! Learning core of equigate: equivariant layers and networks, the SAC family with PE-SAC, and the
//! replay buffer. Generic over the burn backend; only binaries pick one. No ROS types here.

pub mod checkpoint;
pub mod detector;
pub mod layers;
pub mod nets;
pub mod pesac;
pub mod replay;
pub mod sac;
pub mod scaling;
