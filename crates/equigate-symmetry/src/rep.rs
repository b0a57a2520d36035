//! Real orthogonal representations ρ: G → O(d) of C_n and D_n, as direct sums of [`Block`]s.
//!
//! The blocks follow `reference/algorithms.md` §6:
//! - trivial: ρ(g) = 1;
//! - sign: ρ(k, m) = (−1)^m on D_n, (−1)^k on C_n (n even only);
//! - standard (ρ1): ρ(k, m) = R(2πk/n)·diag(1, −1)^m;
//! - regular: ρ(g)e_h = e_{gh}, coordinates in [`Group::elements`] order;
//! - permutation: ρ(g)e_i = e_{σ_g(i)} for a given action σ of G on 0..d.
//!
//! A [`Representation`] is a list of blocks on consecutive coordinates; its matrix is block
//! diagonal. [`Representation::from_layout`] builds one from a task's declared feature layout.

use std::f64::consts::FRAC_1_SQRT_2;
use std::sync::Arc;

use nalgebra::DMatrix;

use crate::group::{Element, Group, GroupKind};
use crate::{Result, SymmetryError};

/// How the group acts on one field of a feature layout; mirrors `equigate_robot::task::FieldKind`
/// (an adapter maps one onto the other, so that this crate does not depend on the robot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// A 2-vector turned by the standard representation ρ1 (length 2).
    Rotation2,
    /// Unchanged entries (copies of the trivial representation), any length.
    Invariant,
}

/// A validated permutation action σ of a group on 0..degree (σ_{gh} = σ_g ∘ σ_h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermutationRep {
    group: Group,
    degree: usize,
    /// `sigma[index_of(g)][i] = σ_g(i)`.
    sigma: Arc<Vec<Vec<usize>>>,
}

impl PermutationRep {
    /// Number of points permuted (the dimension of the representation).
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// σ_g as a list: entry i is σ_g(i).
    pub fn sigma(&self, g: Element) -> &[usize] {
        &self.sigma[self.group.index_of(g)]
    }
}

/// One direct summand of a [`Representation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// ρ(g) = 1 (dim 1).
    Trivial,
    /// (−1)^m on D_n, (−1)^k on C_n with n even (dim 1).
    Sign,
    /// ρ1(k, m) = R(2πk/n)·diag(1, −1)^m (dim 2).
    Standard,
    /// ρ(g)e_h = e_{gh} (dim |G|).
    Regular,
    /// ρ(g)e_i = e_{σ_g(i)} (dim = degree).
    Permutation(PermutationRep),
}

impl Block {
    /// Dimension of this block for `group`.
    pub fn dim(&self, group: &Group) -> usize {
        match self {
            Block::Trivial | Block::Sign => 1,
            Block::Standard => 2,
            Block::Regular => group.order(),
            Block::Permutation(p) => p.degree,
        }
    }

    /// ρ(g) of this block.
    ///
    /// # Shapes
    /// `[dim, dim]`.
    pub fn matrix(&self, group: &Group, g: Element) -> DMatrix<f64> {
        let d = self.dim(group);
        let mut m = DMatrix::zeros(d, d);
        for j in 0..d {
            let mut e = vec![0.0; d];
            e[j] = 1.0;
            let mut col = vec![0.0; d];
            self.act(group, g, &e, &mut col);
            m.set_column(j, &nalgebra::DVector::from_vec(col));
        }
        m
    }

    /// `out = ρ(g) x` for this block, without building the matrix.
    ///
    /// # Shapes
    /// `x: [dim]`, `out: [dim]`.
    pub fn act(&self, group: &Group, g: Element, x: &[f64], out: &mut [f64]) {
        match self {
            Block::Trivial => out[0] = x[0],
            Block::Sign => out[0] = sign_of(group, g) * x[0],
            Block::Standard => {
                let (c, s) = cos_sin(group, g);
                let (x0, x1) = (x[0], if g.m { -x[1] } else { x[1] });
                out[0] = c * x0 - s * x1;
                out[1] = s * x0 + c * x1;
            }
            Block::Regular => {
                for (i, &xi) in x.iter().enumerate() {
                    out[group.index_of(group.compose(g, group.element(i)))] = xi;
                }
            }
            Block::Permutation(p) => {
                for (&target, &xi) in p.sigma(g).iter().zip(x) {
                    out[target] = xi;
                }
            }
        }
    }

    /// The character χ(g) = tr ρ(g) of this block.
    pub fn character(&self, group: &Group, g: Element) -> f64 {
        match self {
            Block::Trivial => 1.0,
            Block::Sign => sign_of(group, g),
            // tr R(θ) = 2 cos θ; tr R(θ)·diag(1,−1) = cos θ − cos θ = 0.
            Block::Standard => {
                if g.m {
                    0.0
                } else {
                    2.0 * cos_sin(group, g).0
                }
            }
            Block::Regular => {
                if g == group.identity() {
                    group.order() as f64
                } else {
                    0.0
                }
            }
            Block::Permutation(p) => {
                p.sigma(g).iter().enumerate().filter(|&(i, &s)| i == s).count() as f64
            }
        }
    }
}

/// The value of the sign representation at `g` (callers have checked it exists for `group`).
fn sign_of(group: &Group, g: Element) -> f64 {
    let odd = match group.kind() {
        GroupKind::Dihedral => g.m,
        GroupKind::Cyclic => g.k % 2 == 1,
    };
    if odd {
        -1.0
    } else {
        1.0
    }
}

/// (cos, sin) of 2πk/n, exact at multiples of π/4.
fn cos_sin(group: &Group, g: Element) -> (f64, f64) {
    let n = group.n();
    if (8 * g.k).is_multiple_of(n) {
        let h = FRAC_1_SQRT_2;
        return [
            (1.0, 0.0),
            (h, h),
            (0.0, 1.0),
            (-h, h),
            (-1.0, 0.0),
            (-h, -h),
            (0.0, -1.0),
            (h, -h),
        ][8 * g.k / n];
    }
    let (s, c) = group.angle(g).sin_cos();
    (c, s)
}

/// A representation of a [`Group`]: a direct sum of [`Block`]s on consecutive coordinates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Representation {
    group: Group,
    blocks: Vec<Block>,
    dim: usize,
}

impl Representation {
    fn from_blocks(group: Group, blocks: Vec<Block>) -> Self {
        let dim = blocks.iter().map(|b| b.dim(&group)).sum();
        Representation { group, blocks, dim }
    }

    /// The trivial representation, dim 1.
    pub fn trivial(group: &Group) -> Self {
        Self::from_blocks(*group, vec![Block::Trivial])
    }

    /// The sign representation, dim 1: (−1)^m on D_n, (−1)^k on C_n. Errors for C_n with n odd.
    pub fn sign(group: &Group) -> Result<Self> {
        if group.kind() == GroupKind::Cyclic && group.n() % 2 == 1 {
            return Err(SymmetryError::SignOfOddCyclic { n: group.n() });
        }
        Ok(Self::from_blocks(*group, vec![Block::Sign]))
    }

    /// The standard representation ρ1(k, m) = R(2πk/n)·diag(1, −1)^m, dim 2.
    pub fn standard(group: &Group) -> Self {
        Self::from_blocks(*group, vec![Block::Standard])
    }

    /// The regular representation ρ(g)e_h = e_{gh}, dim |G|, coordinates in element order.
    pub fn regular(group: &Group) -> Self {
        Self::from_blocks(*group, vec![Block::Regular])
    }

    /// The permutation representation ρ(g)e_i = e_{σ_g(i)} of the action `sigma` (called once per
    /// element, returning σ_g as a list of `degree` images). Errors if some σ_g is not a
    /// permutation of 0..degree or if σ_{gh} ≠ σ_g ∘ σ_h for some pair.
    pub fn permutation(
        group: &Group,
        degree: usize,
        mut sigma: impl FnMut(Element) -> Vec<usize>,
    ) -> Result<Self> {
        let elements = group.elements();
        let table: Vec<Vec<usize>> = elements.iter().map(|&g| sigma(g)).collect();
        for (&element, s) in elements.iter().zip(&table) {
            if s.len() != degree {
                return Err(SymmetryError::PermutationLength {
                    element,
                    len: s.len(),
                    expected: degree,
                });
            }
            let mut hit = vec![false; degree];
            for &t in s {
                if t >= degree || hit[t] {
                    return Err(SymmetryError::NotAPermutation { element, degree });
                }
                hit[t] = true;
            }
        }
        for &g in &elements {
            for &h in &elements {
                let sg = &table[group.index_of(g)];
                let sh = &table[group.index_of(h)];
                let sgh = &table[group.index_of(group.compose(g, h))];
                if (0..degree).any(|i| sgh[i] != sg[sh[i]]) {
                    return Err(SymmetryError::NotAHomomorphism { g, h });
                }
            }
        }
        let p = PermutationRep { group: *group, degree, sigma: Arc::new(table) };
        Ok(Self::from_blocks(*group, vec![Block::Permutation(p)]))
    }

    /// ρ_1 ⊕ ρ_2 ⊕ … in order. Errors if `parts` is empty or mixes groups.
    pub fn direct_sum(parts: &[Representation]) -> Result<Self> {
        let first = parts.first().ok_or(SymmetryError::EmptySum)?;
        let mut blocks = Vec::new();
        for p in parts {
            if p.group != first.group {
                return Err(SymmetryError::GroupMismatch { left: first.group, right: p.group });
            }
            blocks.extend(p.blocks.iter().cloned());
        }
        Ok(Self::from_blocks(first.group, blocks))
    }

    /// self ⊕ other. Errors if the groups differ.
    pub fn oplus(&self, other: &Representation) -> Result<Self> {
        Self::direct_sum(&[self.clone(), other.clone()])
    }

    /// `copies` copies of self, ρ ⊕ … ⊕ ρ (a hidden layer of `c` regular channels is
    /// `regular(g).repeat(c)`). Zero copies give the zero-dimensional representation.
    pub fn repeat(&self, copies: usize) -> Self {
        let blocks = (0..copies).flat_map(|_| self.blocks.iter().cloned()).collect();
        Self::from_blocks(self.group, blocks)
    }

    /// The representation of a declared feature layout, field by field in order: a
    /// [`FieldKind::Rotation2`] field is ρ1, an [`FieldKind::Invariant`] field of length L is L
    /// copies of the trivial representation. Errors if a Rotation2 field does not have length 2.
    ///
    /// Under C_n the element k turns every Rotation2 pair by 2πk/n counter-clockwise, as
    /// `equigate_robot::task::act_on_obs` does for θ = 2πk/n.
    pub fn from_layout(group: &Group, fields: &[(FieldKind, usize)]) -> Result<Self> {
        let mut blocks = Vec::new();
        for (index, &(kind, len)) in fields.iter().enumerate() {
            match kind {
                FieldKind::Rotation2 if len != 2 => {
                    return Err(SymmetryError::RotationFieldLength { index, len });
                }
                FieldKind::Rotation2 => blocks.push(Block::Standard),
                FieldKind::Invariant => blocks.extend((0..len).map(|_| Block::Trivial)),
            }
        }
        Ok(Self::from_blocks(*group, blocks))
    }

    /// The group represented.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// Dimension d of the represented space.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The direct summands, in coordinate order.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// First coordinate of each block.
    ///
    /// # Shapes
    /// `[blocks().len()]`.
    pub fn block_offsets(&self) -> Vec<usize> {
        let mut offset = 0;
        self.blocks
            .iter()
            .map(|b| {
                let o = offset;
                offset += b.dim(&self.group);
                o
            })
            .collect()
    }

    /// ρ(g), block diagonal. Panics if `g` is not in the group.
    ///
    /// # Shapes
    /// `[dim, dim]`.
    pub fn matrix(&self, g: Element) -> DMatrix<f64> {
        let mut m = DMatrix::zeros(self.dim, self.dim);
        for (b, o) in self.blocks.iter().zip(self.block_offsets()) {
            let d = b.dim(&self.group);
            m.slice_mut((o, o), (d, d)).copy_from(&b.matrix(&self.group, g));
        }
        m
    }

    /// ρ(g) for every g, in [`Group::elements`] order.
    ///
    /// # Shapes
    /// `|G|` matrices `[dim, dim]`.
    pub fn matrices(&self) -> Vec<DMatrix<f64>> {
        self.group.elements().into_iter().map(|g| self.matrix(g)).collect()
    }

    /// ρ(g) x, block by block without building the matrix. Errors if `x` has the wrong length.
    ///
    /// # Shapes
    /// `x: [dim]` -> `[dim]`.
    pub fn act(&self, g: Element, x: &[f64]) -> Result<Vec<f64>> {
        if x.len() != self.dim {
            return Err(SymmetryError::ShapeMismatch {
                rows: x.len(),
                cols: 1,
                expected_rows: self.dim,
                expected_cols: 1,
            });
        }
        let mut out = vec![0.0; self.dim];
        for (b, o) in self.blocks.iter().zip(self.block_offsets()) {
            let d = b.dim(&self.group);
            b.act(&self.group, g, &x[o..o + d], &mut out[o..o + d]);
        }
        Ok(out)
    }

    /// The character χ(g) = tr ρ(g).
    pub fn character(&self, g: Element) -> f64 {
        self.blocks.iter().map(|b| b.character(&self.group, g)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_abs(m: &DMatrix<f64>) -> f64 {
        m.iter().fold(0.0, |a, &x| a.max(x.abs()))
    }

    /// D_n (or C_n) acting on the n vertices of the n-gon: (k, m)·i = k + (−1)^m i mod n.
    fn polygon(group: &Group) -> Representation {
        let n = group.n();
        Representation::permutation(group, n, |g| {
            (0..n).map(|i| (g.k + if g.m { n - i } else { i }) % n).collect()
        })
        .unwrap()
    }

    /// Every representation kind for `group`, plus a direct sum of all of them.
    fn all_kinds(group: &Group) -> Vec<(&'static str, Representation)> {
        let mut reps = vec![
            ("trivial", Representation::trivial(group)),
            ("standard", Representation::standard(group)),
            ("regular", Representation::regular(group)),
            ("polygon", polygon(group)),
        ];
        if let Ok(s) = Representation::sign(group) {
            reps.push(("sign", s));
        }
        let parts: Vec<Representation> = reps.iter().map(|(_, r)| r.clone()).collect();
        reps.push(("sum", Representation::direct_sum(&parts).unwrap()));
        reps
    }

    fn test_groups() -> Vec<Group> {
        let mut gs: Vec<Group> = [2, 3, 4, 8].map(|n| Group::cyclic(n).unwrap()).to_vec();
        gs.extend([2, 4].map(|n| Group::dihedral(n).unwrap()));
        gs
    }

    #[test]
    fn every_kind_is_a_homomorphism_for_every_pair() {
        for group in test_groups() {
            let kinds = all_kinds(&group);
            let has_sign = kinds.iter().any(|(name, _)| *name == "sign");
            assert_eq!(has_sign, group.kind() == GroupKind::Dihedral || group.n() % 2 == 0);
            for (name, rho) in kinds {
                let e = rho.matrix(group.identity());
                assert!(max_abs(&(e - DMatrix::identity(rho.dim(), rho.dim()))) == 0.0);
                let mats = rho.matrices();
                for g in group.elements() {
                    let rg = &mats[group.index_of(g)];
                    assert_eq!(rg, &rho.matrix(g));
                    for h in group.elements() {
                        let gh = group.index_of(group.compose(g, h));
                        let err = max_abs(&(rg * &mats[group.index_of(h)] - &mats[gh]));
                        assert!(err <= 1e-12, "{group} {name}: rho({g}) rho({h}) off by {err}");
                    }
                    // Orthogonal, so ρ(g⁻¹) = ρ(g)ᵀ.
                    let err = max_abs(&(rg.transpose() - rho.matrix(group.inverse(g))));
                    assert!(err <= 1e-12, "{group} {name}: rho({g}) not orthogonal");
                    assert!((rg.trace() - rho.character(g)).abs() <= 1e-12);
                }
            }
        }
    }

    #[test]
    fn act_matches_matrix() {
        for group in test_groups() {
            for (name, rho) in all_kinds(&group) {
                let x: Vec<f64> = (0..rho.dim()).map(|i| (i as f64 * 0.37).sin() + 0.1).collect();
                for g in group.elements() {
                    let y = rho.matrix(g) * nalgebra::DVector::from_column_slice(&x);
                    let z = rho.act(g, &x).unwrap();
                    let err = y.iter().zip(&z).fold(0.0f64, |a, (p, q)| a.max((p - q).abs()));
                    assert!(err <= 1e-12, "{group} {name} at {g}");
                }
            }
        }
    }

    #[test]
    fn conventions_of_algorithms_md() {
        let d4 = Group::dihedral(4).unwrap();
        // Standard: R(2πk/n)·diag(1,−1)^m; (1,1) maps e1 to (0,1) and e2 to (1,0).
        let m = Representation::standard(&d4).matrix(Element::reflection(1));
        assert_eq!(m, DMatrix::from_row_slice(2, 2, &[0.0, 1.0, 1.0, 0.0]));
        let r = Representation::standard(&d4).matrix(Element::rotation(1));
        assert_eq!(r, DMatrix::from_row_slice(2, 2, &[0.0, -1.0, 1.0, 0.0]));
        // Regular: ρ(g)e_h = e_{gh}.
        let reg = Representation::regular(&d4);
        for g in d4.elements() {
            let m = reg.matrix(g);
            for h in d4.elements() {
                let gh = d4.index_of(d4.compose(g, h));
                assert_eq!(m[(gh, d4.index_of(h))], 1.0);
            }
        }
        // Sign: (−1)^m on D_n, (−1)^k on C_n.
        assert_eq!(Representation::sign(&d4).unwrap().character(Element::rotation(1)), 1.0);
        assert_eq!(Representation::sign(&d4).unwrap().character(Element::reflection(0)), -1.0);
        let c4 = Group::cyclic(4).unwrap();
        assert_eq!(Representation::sign(&c4).unwrap().character(Element::rotation(1)), -1.0);
    }

    #[test]
    fn errors() {
        let c3 = Group::cyclic(3).unwrap();
        assert_eq!(Representation::sign(&c3), Err(SymmetryError::SignOfOddCyclic { n: 3 }));
        let c4 = Group::cyclic(4).unwrap();
        // σ_(1,0) = reversal, σ_(2,0) = σ_(3,0) = id: σ_(3,0) should be σ_(1,0) ∘ σ_(2,0).
        let bad = Representation::permutation(&c4, 4, |g| match g.k {
            1 => vec![3, 2, 1, 0],
            2 => vec![0, 1, 2, 3],
            _ => vec![0, 1, 2, 3],
        });
        assert!(matches!(bad, Err(SymmetryError::NotAHomomorphism { .. })), "{bad:?}");
        let not_perm = Representation::permutation(&c4, 2, |_| vec![0, 0]);
        assert!(matches!(not_perm, Err(SymmetryError::NotAPermutation { .. })));
        let short = Representation::permutation(&c4, 2, |_| vec![0]);
        assert!(matches!(short, Err(SymmetryError::PermutationLength { len: 1, .. })));
        let d4 = Group::dihedral(4).unwrap();
        let mixed = Representation::trivial(&c4).oplus(&Representation::trivial(&d4));
        assert!(matches!(mixed, Err(SymmetryError::GroupMismatch { .. })));
        assert_eq!(Representation::direct_sum(&[]), Err(SymmetryError::EmptySum));
        let layout = Representation::from_layout(&c4, &[(FieldKind::Rotation2, 3)]);
        assert_eq!(layout, Err(SymmetryError::RotationFieldLength { index: 0, len: 3 }));
    }

    /// The UR5e observation layout of `equigate_robot::task::observation_layout(6)`, mirrored
    /// here (this crate does not depend on the robot): pan (cos, sin), q2..q6, q̇1..q̇6, ee xy, ee z,
    /// goal xy, goal z, goal − ee xy, goal − ee z.
    fn ur5e_layout() -> Vec<(FieldKind, usize)> {
        use FieldKind::{Invariant, Rotation2};
        vec![
            (Rotation2, 2),
            (Invariant, 5),
            (Invariant, 6),
            (Rotation2, 2),
            (Invariant, 1),
            (Rotation2, 2),
            (Invariant, 1),
            (Rotation2, 2),
            (Invariant, 1),
        ]
    }

    #[test]
    fn ur5e_observation_layout_rotates_exactly_its_pairs() {
        let pairs = [0usize, 13, 16, 19];
        for n in [4, 8] {
            let group = Group::cyclic(n).unwrap();
            let rho = Representation::from_layout(&group, &ur5e_layout()).unwrap();
            assert_eq!(rho.dim(), 2 * 6 + 10);
            for g in group.elements() {
                let m = rho.matrix(g);
                let err = max_abs(&(m.transpose() * &m - DMatrix::identity(22, 22)));
                assert!(err <= 1e-12, "C_{n} at {g}: not orthogonal ({err})");
                let (s, c) = group.angle(g).sin_cos();
                let mut expected = DMatrix::identity(22, 22);
                for &p in &pairs {
                    expected[(p, p)] = c;
                    expected[(p, p + 1)] = -s;
                    expected[(p + 1, p)] = s;
                    expected[(p + 1, p + 1)] = c;
                }
                let err = max_abs(&(m - expected));
                assert!(err <= 1e-12, "C_{n} at {g}: off by {err}");
            }
            // For k = n/4 (a quarter turn) the pairs turn exactly: (x, y) -> (-y, x).
            let quarter = rho.matrix(Element::rotation(n / 4));
            assert_eq!(quarter[(13, 14)], -1.0);
            assert_eq!(quarter[(14, 13)], 1.0);
            assert_eq!(quarter[(13, 13)], 0.0);
        }
    }
}
