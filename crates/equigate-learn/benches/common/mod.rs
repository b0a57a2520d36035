//! What the learning-core benches share: the UR5e's observation and action shapes and their
//! C_4 representations.

use equigate_symmetry::{FieldKind, Group, Representation};

/// Observation length of the UR5e reach (`2 · dof + 10`).
pub const OBS_DIM: usize = 22;
/// Action length: one joint velocity per UR5e joint.
pub const ACT_DIM: usize = 6;

/// The UR5e observation layout (as `equigate_robot::task::observation_layout(6)`: four ρ1 pairs
/// and invariants) and the invariant joint-velocity action, under C_4.
pub fn representations() -> (Representation, Representation) {
    use FieldKind::{Invariant, Rotation2};
    let g = Group::cyclic(4).expect("C_4 exists");
    let layout = [
        (Rotation2, 2),
        (Invariant, 5),
        (Invariant, 6),
        (Rotation2, 2),
        (Invariant, 1),
        (Rotation2, 2),
        (Invariant, 1),
        (Rotation2, 2),
        (Invariant, 1),
    ];
    let obs = Representation::from_layout(&g, &layout).expect("a valid layout");
    let act = Representation::from_layout(&g, &[(Invariant, ACT_DIM)]).expect("a valid layout");
    (obs, act)
}
