//! The three nodes as library functions: `nodes/<name>_node.rs` are their executables, and
//! `equigate node <name>` (what `equigate graph` starts) runs the same code.
//!
//! | node | topics | module |
//! |---|---|---|
//! | sim_node | joint_states, camera/depth/*, goal, /clock; commands; ~/reset | [`sim`] |
//! | policy_node | joint_states, goal, /clock; commands, /diagnostics | [`policy`] |
//! | detector_node | joint_states, goal, commands, camera/depth/image_raw; /equigate/lambda* | [`detector`] |

pub mod detector;
pub mod policy;
pub mod record;
pub mod sim;
