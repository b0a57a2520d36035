//! Learning core of equigate: equivariant layers and networks, the SAC family with PE-SAC, offline
//! CQL and IQL (standard and equivariant), and the replay buffer. Generic over the burn backend; only binaries pick one. No ROS types here.

pub mod checkpoint;
pub mod cql;
pub mod detector;
pub mod iql;
pub mod layers;
pub mod nets;
pub mod offline;
pub mod pesac;
pub mod replay;
pub mod sac;
pub mod scaling;
