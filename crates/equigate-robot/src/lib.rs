//! Robot models, kinematics, the reach task, the kinematic simulator and the depth camera.
//!
//! No ROS and no learning code lives here: the nodes in `nodes/` adapt these types to ROS 2
//! messages, and the learning crates consume the observation features and their group
//! representation declared by [`task`].

pub mod camera;
pub mod model;
pub mod scene;
pub mod sim;
pub mod task;
