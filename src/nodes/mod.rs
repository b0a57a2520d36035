//! The nodes as library functions: `nodes/<name>_node.rs` are the executables of the three graph
//! nodes, and `equigate node <name>` (what `equigate graph` starts) runs the same code; the
//! recorder runs as `equigate record`.
//!
//! | node | topics | module |
//! |---|---|---|
//! | sim_node | joint_states, camera/depth/*, goal, /clock; commands; ~/reset | [`sim`] |
//! | policy_node | joint_states, goal, /clock; commands, /diagnostics | [`policy`] |
//! | detector_node | joint_states, goal, commands, camera/depth/image_raw; /equigate/lambda* | [`detector`] |
//! | record_node | the configured graph topics, into a rosbag2 bag | [`record`] |

pub mod detector;
pub mod policy;
pub mod record;
pub mod sim;
