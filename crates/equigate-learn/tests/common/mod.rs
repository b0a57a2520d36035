//! What the point-reach integration tests share. Each test binary uses a part of it.
#![allow(dead_code)]

pub mod point_reach;
