//! What the offline integration tests share.

pub mod point_reach;
