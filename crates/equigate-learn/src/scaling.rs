//! Observation and action scaling from a task's declared ranges.
//!
//! **Observations** are mapped affinely, `xn = (x − offset) · scale`, so that each feature lies
//! roughly in [-1, 1]. For an invariant feature with declared range (low, high):
//! `offset = (low + high) / 2`, `scale = 2 / (high − low)`.
//!
//! **Equivariance.** The scaling must commute with the group action ρ(g), or the networks behind
//! it stop being equivariant in the raw observation. A diagonal affine map D(x − o) commutes with
//! the rotation R(θ) on a 2D-rotation (ρ1) pair only if both coordinates of the pair share one
//! scale (D = s·I on the pair) and the pair's offset is zero (R(θ)o = o for all θ ⇒ o = 0). So every
//! [`FieldKind::Rotation2`] pair gets `offset = 0` and one scale `1 / r`, with
//! `r = max(|low_x|, |high_x|, |low_y|, |high_y|)`: the declared box is inscribed in the disc of
//! radius r, which is mapped into the unit disc. (A rotated point of the box may leave the box, but
//! it stays in the disc, so rotated pairs stay within [-1, 1] too; an axis-aligned box only fills
//! part of it, hence "roughly".) Invariant features carry the trivial representation, so any
//! per-feature affine map commutes with the group on them.
//!
//! **Actions.** The actor's tanh output a ∈ [-1, 1] per joint is mapped to a joint-velocity
//! command `q̇ = a · q̇_max` (rad/s for revolute joints, m/s for prismatic), with the joint's
//! velocity limit `q̇_max` from the robot model. The map is linear with no offset: a = 0 is "stand
//! still", and the joint-space action is invariant under the base rotation (algorithms.md §4).

use equigate_symmetry::FieldKind;

/// Errors of the scaling constructors.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScalingError {
    /// The fields' total length differs from the number of declared ranges.
    #[error("scaling layout covers {layout} features but {ranges} (low, high) ranges were given")]
    LengthMismatch {
        /// Sum of the field lengths.
        layout: usize,
        /// Number of `low` / `high` entries.
        ranges: usize,
    },
    /// A feature range is empty, reversed or not finite.
    #[error("feature {index}: declared range ({low}, {high}) must be finite with low < high")]
    BadRange {
        /// Index of the feature in the observation.
        index: usize,
        /// Declared lower bound.
        low: f64,
        /// Declared upper bound.
        high: f64,
    },
    /// A [`FieldKind::Rotation2`] field whose length is not 2.
    #[error("field {field}: a Rotation2 field has length 2, got {len}")]
    RotationFieldLength {
        /// Index of the field in the layout.
        field: usize,
        /// Its declared length.
        len: usize,
    },
    /// A velocity limit that is not finite and positive.
    #[error("joint {joint}: velocity limit {limit} must be finite and > 0")]
    BadLimit {
        /// Joint index.
        joint: usize,
        /// Declared limit (rad/s or m/s).
        limit: f64,
    },
}

/// Affine observation scaling `xn = (x − offset) · scale` that commutes with the group action.
#[derive(Debug, Clone, PartialEq)]
pub struct ObsScaler {
    offset: Vec<f32>,
    scale: Vec<f32>,
}

impl ObsScaler {
    /// The scaling of a layout of fields `(kind, len)` (the observation order, as in
    /// [`equigate_symmetry::Representation::from_layout`]) with declared per-feature ranges
    /// `low[i] < high[i]`. Rotation2 pairs get zero offset and one shared scale (module docs).
    pub fn new(
        layout: &[(FieldKind, usize)],
        low: &[f64],
        high: &[f64],
    ) -> Result<Self, ScalingError> {
        let dim: usize = layout.iter().map(|&(_, len)| len).sum();
        if low.len() != dim || high.len() != dim {
            return Err(ScalingError::LengthMismatch {
                layout: dim,
                ranges: low.len().min(high.len()),
            });
        }
        for (index, (&l, &h)) in low.iter().zip(high).enumerate() {
            if !(l.is_finite() && h.is_finite() && l < h) {
                return Err(ScalingError::BadRange { index, low: l, high: h });
            }
        }
        let (mut offset, mut scale) = (Vec::with_capacity(dim), Vec::with_capacity(dim));
        let mut i = 0;
        for (field, &(kind, len)) in layout.iter().enumerate() {
            match kind {
                FieldKind::Rotation2 if len != 2 => {
                    return Err(ScalingError::RotationFieldLength { field, len });
                }
                FieldKind::Rotation2 => {
                    let r = [low[i], high[i], low[i + 1], high[i + 1]]
                        .iter()
                        .fold(0.0_f64, |m, v| m.max(v.abs()));
                    offset.extend([0.0, 0.0]);
                    scale.extend([(1.0 / r) as f32; 2]);
                }
                FieldKind::Invariant => {
                    for j in i..i + len {
                        offset.push((0.5 * (low[j] + high[j])) as f32);
                        scale.push((2.0 / (high[j] - low[j])) as f32);
                    }
                }
            }
            i += len;
        }
        Ok(Self { offset, scale })
    }

    /// The identity scaling of `dim` features.
    pub fn identity(dim: usize) -> Self {
        Self { offset: vec![0.0; dim], scale: vec![1.0; dim] }
    }

    /// Number of features.
    pub fn dim(&self) -> usize {
        self.scale.len()
    }

    /// Per-feature offsets (0 on every Rotation2 pair), `[dim]`.
    pub fn offset(&self) -> &[f32] {
        &self.offset
    }

    /// Per-feature scales (equal within every Rotation2 pair), `[dim]`.
    pub fn scale(&self) -> &[f32] {
        &self.scale
    }

    /// `xn = (x − offset) · scale` for one observation or a row-major batch `[n, dim]`.
    ///
    /// # Panics
    /// If `obs.len()` is not a multiple of [`Self::dim`].
    pub fn normalize(&self, obs: &[f64]) -> Vec<f32> {
        let d = self.dim();
        assert!(
            d > 0 && obs.len().is_multiple_of(d),
            "normalize: obs length {} must be a multiple of dim {d}",
            obs.len()
        );
        obs.chunks_exact(d)
            .flat_map(|row| {
                row.iter()
                    .zip(self.offset.iter().zip(&self.scale))
                    .map(|(&x, (&o, &s))| (x as f32 - o) * s)
            })
            .collect()
    }

    /// The inverse map `x = xn / scale + offset`, `[n · dim]` as for [`Self::normalize`].
    ///
    /// # Panics
    /// If `obs.len()` is not a multiple of [`Self::dim`].
    pub fn denormalize(&self, obs: &[f32]) -> Vec<f64> {
        let d = self.dim();
        assert!(
            d > 0 && obs.len().is_multiple_of(d),
            "denormalize: obs length {} must be a multiple of dim {d}",
            obs.len()
        );
        obs.chunks_exact(d)
            .flat_map(|row| {
                row.iter()
                    .zip(self.offset.iter().zip(&self.scale))
                    .map(|(&x, (&o, &s))| f64::from(x / s + o))
            })
            .collect()
    }
}

/// Maps the actor's tanh output a ∈ [-1, 1] to joint-velocity commands `q̇ = a · q̇_max`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionScaler {
    limits: Vec<f64>,
}

impl ActionScaler {
    /// One velocity limit per joint, rad/s (revolute) or m/s (prismatic), finite and > 0.
    pub fn new(velocity_limits: &[f64]) -> Result<Self, ScalingError> {
        for (joint, &limit) in velocity_limits.iter().enumerate() {
            if !(limit.is_finite() && limit > 0.0) {
                return Err(ScalingError::BadLimit { joint, limit });
            }
        }
        Ok(Self { limits: velocity_limits.to_vec() })
    }

    /// Number of joints.
    pub fn dim(&self) -> usize {
        self.limits.len()
    }

    /// The velocity limits, `[dim]`, rad/s or m/s.
    pub fn limits(&self) -> &[f64] {
        &self.limits
    }

    /// Joint velocities `q̇_i = clamp(a_i, −1, 1) · q̇_max,i`, `[dim]` in rad/s or m/s.
    ///
    /// # Panics
    /// If `action.len() != dim`.
    pub fn to_velocity(&self, action: &[f32]) -> Vec<f64> {
        assert_eq!(action.len(), self.dim(), "to_velocity: one action entry per joint");
        action.iter().zip(&self.limits).map(|(&a, &l)| f64::from(a.clamp(-1.0, 1.0)) * l).collect()
    }

    /// The inverse `a_i = clamp(q̇_i / q̇_max,i, −1, 1)`, `[dim]` (e.g. to store demonstrations).
    ///
    /// # Panics
    /// If `velocity.len() != dim`.
    pub fn to_action(&self, velocity: &[f64]) -> Vec<f32> {
        assert_eq!(velocity.len(), self.dim(), "to_action: one velocity entry per joint");
        velocity.iter().zip(&self.limits).map(|(&v, &l)| (v / l).clamp(-1.0, 1.0) as f32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use equigate_symmetry::{Group, Representation};
    use FieldKind::{Invariant, Rotation2};

    /// A UR5e-like observation layout (22 features) with asymmetric declared ranges.
    fn ur5e_like() -> (Vec<(FieldKind, usize)>, Vec<f64>, Vec<f64>) {
        let layout = vec![
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
        let dim = 22;
        let low: Vec<f64> = (0..dim).map(|i| -1.0 - 0.1 * i as f64).collect();
        let high: Vec<f64> = (0..dim).map(|i| 0.5 + 0.3 * i as f64).collect();
        (layout, low, high)
    }

    #[test]
    fn rotation_pairs_share_scale_and_have_zero_offset() {
        let (layout, low, high) = ur5e_like();
        let s = ObsScaler::new(&layout, &low, &high).unwrap();
        for pair in [0, 13, 16, 19] {
            assert_eq!(s.offset()[pair], 0.0);
            assert_eq!(s.offset()[pair + 1], 0.0);
            assert_eq!(s.scale()[pair], s.scale()[pair + 1]);
            let r = [low[pair], high[pair], low[pair + 1], high[pair + 1]]
                .iter()
                .fold(0.0_f64, |m, v| m.max(v.abs()));
            assert!((f64::from(s.scale()[pair]) - 1.0 / r).abs() < 1e-6);
        }
        // Invariant features: the declared range maps onto [-1, 1].
        let lo = s.normalize(&low);
        let hi = s.normalize(&high);
        for i in (2..13).chain([15, 18, 21]) {
            assert!((lo[i] + 1.0).abs() < 1e-5 && (hi[i] - 1.0).abs() < 1e-5, "feature {i}");
        }
    }

    #[test]
    fn scaling_commutes_with_every_rotation_of_c8() {
        let (layout, low, high) = ur5e_like();
        let s = ObsScaler::new(&layout, &low, &high).unwrap();
        let c8 = Group::cyclic(8).unwrap();
        let rho = Representation::from_layout(&c8, &layout).unwrap();
        let x: Vec<f64> =
            (0..22).map(|i| (i as f64 * 0.37).sin() * (1.0 + 0.2 * i as f64)).collect();
        for g in c8.elements() {
            let lhs = s.normalize(&rho.act(g, &x).unwrap());
            let xn: Vec<f64> = s.normalize(&x).iter().map(|&v| f64::from(v)).collect();
            let rhs = rho.act(g, &xn).unwrap();
            for (a, b) in lhs.iter().zip(&rhs) {
                assert!((f64::from(*a) - b).abs() < 1e-5, "g = {g:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn normalize_round_trips_and_stays_in_the_unit_box() {
        let (layout, low, high) = ur5e_like();
        let s = ObsScaler::new(&layout, &low, &high).unwrap();
        let mid: Vec<f64> = low.iter().zip(&high).map(|(l, h)| l + 0.3 * (h - l)).collect();
        let xn = s.normalize(&mid);
        assert!(xn.iter().all(|v| v.abs() <= 1.0));
        for (a, b) in s.denormalize(&xn).iter().zip(&mid) {
            assert!((a - b).abs() < 1e-5);
        }
        assert_eq!(ObsScaler::identity(3).normalize(&[1.0, -2.0, 3.0]), vec![1.0, -2.0, 3.0]);
    }

    #[test]
    fn constructor_errors() {
        let (layout, low, high) = ur5e_like();
        assert_eq!(
            ObsScaler::new(&layout, &low[..21], &high[..21]),
            Err(ScalingError::LengthMismatch { layout: 22, ranges: 21 })
        );
        let mut bad = high.clone();
        bad[4] = low[4];
        assert!(matches!(
            ObsScaler::new(&layout, &low, &bad),
            Err(ScalingError::BadRange { index: 4, .. })
        ));
        assert_eq!(
            ObsScaler::new(&[(Rotation2, 3)], &[-1.0; 3], &[1.0; 3]),
            Err(ScalingError::RotationFieldLength { field: 0, len: 3 })
        );
        assert_eq!(
            ActionScaler::new(&[1.0, 0.0]),
            Err(ScalingError::BadLimit { joint: 1, limit: 0.0 })
        );
    }

    #[test]
    fn actions_map_to_joint_velocity_limits() {
        let a = ActionScaler::new(&[3.0, 1.5, 0.2]).unwrap();
        let v = a.to_velocity(&[1.0, -0.5, 2.0]);
        assert_eq!(v.len(), 3);
        assert!((v[0] - 3.0).abs() < 1e-9);
        assert!((v[1] + 0.75).abs() < 1e-9);
        assert!((v[2] - 0.2).abs() < 1e-9, "clamped to the limit");
        let back = a.to_action(&[1.5, -1.5, 0.0]);
        assert!((back[0] - 0.5).abs() < 1e-6 && back[1] == -1.0 && back[2] == 0.0);
    }
}
