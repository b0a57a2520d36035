//! Bases of the equivariant linear maps Hom_G(ρ_in, ρ_out) = {W : ρ_out(g) W = W ρ_in(g) ∀g}.
//!
//! The generic method is group averaging (`reference/algorithms.md` §6, "Generic layer"): project
//! every elementary matrix E_ab with the Reynolds operator
//!
//! Π(E) = (1/|G|) Σ_g ρ_out(g) E ρ_in(g⁻¹)
//!
//! and orthonormalise the projections (Gram–Schmidt, Frobenius inner product). Because Hom of a
//! direct sum is the direct sum of the Homs of its blocks, this is done per pair of blocks (and
//! once per distinct pair of block kinds), and [`EquivariantBasis`] keeps that structure.
//!
//! The explicit forms (§6, "Explicit sharing") are [`regular_shared_basis`] / [`regular_weight`]
//! (group convolution W\[g,h\] = ψ(g⁻¹h); circulant ψ((h − g) mod n) for C_n),
//! [`broadcast_basis`] (trivial → regular), [`mean_basis`] (regular → trivial),
//! [`standard_to_regular_basis`] and [`regular_to_standard_basis`].

use std::sync::Arc;

use nalgebra::{DMatrix, DVector};

use crate::group::Group;
use crate::rep::{Block, Representation};
use crate::{Result, SymmetryError};

/// Relative tolerance of the Gram–Schmidt rank decision: a projection whose component orthogonal
/// to the basis so far is below `RANK_TOL` times its own norm is taken as dependent.
pub const RANK_TOL: f64 = 1e-8;

/// A block-pair basis shared by every block pair of the same two kinds.
pub type SharedBasis = Arc<Vec<DMatrix<f64>>>;

/// The orthonormal basis of Hom_G between two blocks, at the blocks' place in the full matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockBasis {
    /// First row (output coordinate) of the block.
    pub out_offset: usize,
    /// First column (input coordinate) of the block.
    pub in_offset: usize,
    /// Orthonormal (Frobenius) basis of the block's equivariant maps, each `[out_dim, in_dim]` of
    /// the two blocks; shared between block pairs of the same kinds.
    pub basis: SharedBasis,
}

/// An orthonormal basis {B_k} of Hom_G(ρ_in, ρ_out) (Frobenius inner product), kept block-sparse.
///
/// Element k of the basis is numbered block pair by block pair (output block major, input block
/// minor, pairs with no equivariant map skipped), then in the order of [`BlockBasis::basis`].
#[derive(Debug, Clone, PartialEq)]
pub struct EquivariantBasis {
    dim_out: usize,
    dim_in: usize,
    blocks: Vec<BlockBasis>,
    len: usize,
}

impl EquivariantBasis {
    /// Number of basis elements, dim Hom_G(ρ_in, ρ_out).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the only equivariant map is 0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// dim ρ_in (columns of every B_k).
    pub fn dim_in(&self) -> usize {
        self.dim_in
    }

    /// dim ρ_out (rows of every B_k).
    pub fn dim_out(&self) -> usize {
        self.dim_out
    }

    /// The non-empty block pairs, in basis order.
    pub fn blocks(&self) -> &[BlockBasis] {
        &self.blocks
    }

    /// Every B_k as a dense matrix.
    ///
    /// # Shapes
    /// `len()` matrices `[dim_out, dim_in]`.
    pub fn to_dense(&self) -> Vec<DMatrix<f64>> {
        let mut out = Vec::with_capacity(self.len);
        for b in &self.blocks {
            for m in b.basis.iter() {
                let mut full = DMatrix::zeros(self.dim_out, self.dim_in);
                full.slice_mut((b.out_offset, b.in_offset), m.shape()).copy_from(m);
                out.push(full);
            }
        }
        out
    }

    /// W = Σ_k β_k B_k. Errors if `coeffs.len() != len()`.
    ///
    /// # Shapes
    /// `coeffs: [len]` -> `[dim_out, dim_in]`.
    pub fn combine(&self, coeffs: &[f64]) -> Result<DMatrix<f64>> {
        if coeffs.len() != self.len {
            return Err(SymmetryError::CoefficientCount { len: coeffs.len(), expected: self.len });
        }
        let mut w = DMatrix::zeros(self.dim_out, self.dim_in);
        let mut coeffs = coeffs.iter();
        for b in &self.blocks {
            let mut view = w.slice_mut((b.out_offset, b.in_offset), b.basis[0].shape());
            for (m, &c) in b.basis.iter().zip(&mut coeffs) {
                view += m * c;
            }
        }
        Ok(w)
    }

    /// β_k = ⟨B_k, W⟩, the coordinates of the orthogonal projection of `w` onto the span.
    /// Errors if `w` is not `[dim_out, dim_in]`.
    ///
    /// # Shapes
    /// `w: [dim_out, dim_in]` -> `[len]`.
    pub fn coefficients(&self, w: &DMatrix<f64>) -> Result<Vec<f64>> {
        if w.shape() != (self.dim_out, self.dim_in) {
            return Err(SymmetryError::ShapeMismatch {
                rows: w.nrows(),
                cols: w.ncols(),
                expected_rows: self.dim_out,
                expected_cols: self.dim_in,
            });
        }
        let mut out = Vec::with_capacity(self.len);
        for b in &self.blocks {
            let view = w.slice((b.out_offset, b.in_offset), b.basis[0].shape());
            out.extend(b.basis.iter().map(|m| m.dot(&view)));
        }
        Ok(out)
    }

    /// The orthogonal projection of `w` onto the equivariant maps. For the orthogonal
    /// representations of this crate it equals the Reynolds projection Π(w) (the initialisation
    /// W = Π(W₀) of §6). Errors if `w` is not `[dim_out, dim_in]`.
    ///
    /// # Shapes
    /// `w: [dim_out, dim_in]` -> `[dim_out, dim_in]`.
    pub fn project(&self, w: &DMatrix<f64>) -> Result<DMatrix<f64>> {
        self.combine(&self.coefficients(w)?)
    }
}

fn check_same_group(a: &Representation, b: &Representation) -> Result<Group> {
    if a.group() != b.group() {
        return Err(SymmetryError::GroupMismatch { left: *a.group(), right: *b.group() });
    }
    Ok(*a.group())
}

/// The Reynolds projection Π(E) = (1/|G|) Σ_g ρ_out(g) E ρ_in(g⁻¹). Errors if the groups differ
/// or `e` is not `[dim_out, dim_in]`.
///
/// # Shapes
/// `e: [rho_out.dim(), rho_in.dim()]` -> `[rho_out.dim(), rho_in.dim()]`.
pub fn reynolds(
    rho_in: &Representation,
    rho_out: &Representation,
    e: &DMatrix<f64>,
) -> Result<DMatrix<f64>> {
    let group = check_same_group(rho_in, rho_out)?;
    if e.shape() != (rho_out.dim(), rho_in.dim()) {
        return Err(SymmetryError::ShapeMismatch {
            rows: e.nrows(),
            cols: e.ncols(),
            expected_rows: rho_out.dim(),
            expected_cols: rho_in.dim(),
        });
    }
    let mut sum = DMatrix::zeros(rho_out.dim(), rho_in.dim());
    for g in group.elements() {
        sum += rho_out.matrix(g) * e * rho_in.matrix(group.inverse(g));
    }
    Ok(sum / group.order() as f64)
}

/// Orthonormal basis of Hom_G(b_in, b_out) by averaging every E_ab, then Gram–Schmidt.
fn block_pair_basis(group: &Group, b_in: &Block, b_out: &Block) -> Vec<DMatrix<f64>> {
    let (d_in, d_out) = (b_in.dim(group), b_out.dim(group));
    let out_mats: Vec<DMatrix<f64>> =
        group.elements().into_iter().map(|g| b_out.matrix(group, g)).collect();
    let in_inv_mats: Vec<DMatrix<f64>> =
        group.elements().into_iter().map(|g| b_in.matrix(group, group.inverse(g))).collect();
    let scale = 1.0 / group.order() as f64;
    let mut basis: Vec<DMatrix<f64>> = Vec::new();
    for a in 0..d_out {
        for b in 0..d_in {
            // Π(E_ab) = (1/|G|) Σ_g ρ_out(g)[:, a] ρ_in(g⁻¹)[b, :]  ([d_out, d_in]).
            let mut p = DMatrix::zeros(d_out, d_in);
            for (ro, ri) in out_mats.iter().zip(&in_inv_mats) {
                p.ger(scale, &ro.column(a), &ri.row(b).transpose(), 1.0);
            }
            let norm0 = p.norm();
            if norm0 < 1e-14 {
                continue;
            }
            // Two passes of modified Gram–Schmidt keep the basis orthonormal to rounding.
            for _ in 0..2 {
                for q in &basis {
                    let c = q.dot(&p);
                    p -= q * c;
                }
            }
            let norm = p.norm();
            if norm > RANK_TOL * norm0 {
                basis.push(p / norm);
            }
        }
    }
    basis
}

/// An orthonormal basis of Hom_G(ρ_in, ρ_out) by group averaging. Errors if the groups differ.
///
/// # Shapes
/// Each B_k is `[rho_out.dim(), rho_in.dim()]`.
pub fn equivariant_basis(
    rho_in: &Representation,
    rho_out: &Representation,
) -> Result<EquivariantBasis> {
    let group = check_same_group(rho_in, rho_out)?;
    let mut cache: Vec<(&Block, &Block, SharedBasis)> = Vec::new();
    let mut blocks = Vec::new();
    let mut len = 0;
    let in_offsets = rho_in.block_offsets();
    for (b_out, out_offset) in rho_out.blocks().iter().zip(rho_out.block_offsets()) {
        for (b_in, &in_offset) in rho_in.blocks().iter().zip(&in_offsets) {
            let cached = cache.iter().find(|(i, o, _)| *i == b_in && *o == b_out);
            let basis = match cached {
                Some((_, _, basis)) => basis.clone(),
                None => {
                    let basis = Arc::new(block_pair_basis(&group, b_in, b_out));
                    cache.push((b_in, b_out, basis.clone()));
                    basis
                }
            };
            if !basis.is_empty() {
                len += basis.len();
                blocks.push(BlockBasis { out_offset, in_offset, basis });
            }
        }
    }
    Ok(EquivariantBasis { dim_out: rho_out.dim(), dim_in: rho_in.dim(), blocks, len })
}

/// An orthonormal basis of the equivariant biases: the invariant vectors of ρ_out (the columns
/// of Hom_G(trivial, ρ_out), i.e. the Π-projections of the coordinate vectors).
///
/// # Shapes
/// Each vector is `[rho_out.dim()]`.
pub fn bias_basis(rho_out: &Representation) -> Vec<DVector<f64>> {
    let trivial = Representation::trivial(rho_out.group());
    equivariant_basis(&trivial, rho_out)
        .expect("the trivial representation is built on rho_out's own group")
        .to_dense()
        .into_iter()
        .map(|m| m.column(0).into_owned())
        .collect()
}

/// dim Hom_G(ρ_in, ρ_out) by character theory: (1/|G|) Σ_g χ_in(g⁻¹) χ_out(g), the trace of the
/// Reynolds projector. Errors if the groups differ.
pub fn hom_dim(rho_in: &Representation, rho_out: &Representation) -> Result<usize> {
    let group = check_same_group(rho_in, rho_out)?;
    let sum: f64 = group
        .elements()
        .into_iter()
        .map(|g| rho_in.character(group.inverse(g)) * rho_out.character(g))
        .sum();
    Ok((sum / group.order() as f64).round() as usize)
}

/// The group-convolution weight W\[g,h\] = ψ(g⁻¹h) (regular → regular; rows are outputs g, columns
/// inputs h, both in element order). For C_n it is the circulant W\[g,h\] = ψ((h − g) mod n).
/// Errors if `psi.len() != |G|`.
///
/// # Shapes
/// `psi: [|G|]` (indexed by element) -> `[|G|, |G|]`.
pub fn regular_weight(group: &Group, psi: &[f64]) -> Result<DMatrix<f64>> {
    let n = group.order();
    if psi.len() != n {
        return Err(SymmetryError::CoefficientCount { len: psi.len(), expected: n });
    }
    Ok(DMatrix::from_fn(n, n, |g, h| {
        let (g, h) = (group.element(g), group.element(h));
        psi[group.index_of(group.compose(group.inverse(g), h))]
    }))
}

/// The explicit shared basis of regular → regular: B_u\[g,h\] = \[g⁻¹h = u\] / √|G| for u in element
/// order, so that Σ_u ψ(u) √|G| B_u = [`regular_weight`]`(ψ)`. Orthonormal.
///
/// # Shapes
/// `|G|` matrices `[|G|, |G|]`.
pub fn regular_shared_basis(group: &Group) -> Vec<DMatrix<f64>> {
    let n = group.order();
    let scale = 1.0 / (n as f64).sqrt();
    (0..n)
        .map(|u| {
            let mut psi = vec![0.0; n];
            psi[u] = scale;
            regular_weight(group, &psi).expect("psi has one entry per element")
        })
        .collect()
}

/// trivial → regular: the broadcast x ↦ x·(1, …, 1), normalised (entries 1/√|G|).
///
/// # Shapes
/// `[|G|, 1]`.
pub fn broadcast_basis(group: &Group) -> DMatrix<f64> {
    DMatrix::from_element(group.order(), 1, 1.0 / (group.order() as f64).sqrt())
}

/// regular → trivial: proportional to the mean over G, normalised (entries 1/√|G|).
///
/// # Shapes
/// `[1, |G|]`.
pub fn mean_basis(group: &Group) -> DMatrix<f64> {
    DMatrix::from_element(1, group.order(), 1.0 / (group.order() as f64).sqrt())
}

/// ρ1 → regular: y(g) = (ρ1(g)u)·x for u = e1, e2, normalised (dimension 2 for every C_n, D_n).
///
/// # Shapes
/// 2 matrices `[|G|, 2]`.
pub fn standard_to_regular_basis(group: &Group) -> [DMatrix<f64>; 2] {
    let rho1 = Representation::standard(group);
    let scale = 1.0 / (group.order() as f64).sqrt();
    [0, 1].map(|u| {
        let mut w = DMatrix::zeros(group.order(), 2);
        for (i, g) in group.elements().into_iter().enumerate() {
            w.set_row(i, &(rho1.matrix(g).column(u).transpose() * scale));
        }
        w
    })
}

/// regular → ρ1: y = Σ_g x(g) ρ1(g)u for u = e1, e2, normalised.
///
/// # Shapes
/// 2 matrices `[2, |G|]`.
pub fn regular_to_standard_basis(group: &Group) -> [DMatrix<f64>; 2] {
    standard_to_regular_basis(group).map(|w| w.transpose())
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::rep::FieldKind;

    fn max_abs(m: &DMatrix<f64>) -> f64 {
        m.iter().fold(0.0, |a, &x| a.max(x.abs()))
    }

    fn c(n: usize) -> Group {
        Group::cyclic(n).unwrap()
    }

    fn d(n: usize) -> Group {
        Group::dihedral(n).unwrap()
    }

    fn polygon(group: &Group) -> Representation {
        let n = group.n();
        Representation::permutation(group, n, |g| {
            (0..n).map(|i| (g.k + if g.m { n - i } else { i }) % n).collect()
        })
        .unwrap()
    }

    fn kinds(group: &Group) -> Vec<(String, Representation)> {
        let mut reps = vec![
            ("trivial".to_owned(), Representation::trivial(group)),
            ("standard".to_owned(), Representation::standard(group)),
            ("regular".to_owned(), Representation::regular(group)),
            ("polygon".to_owned(), polygon(group)),
        ];
        if let Ok(s) = Representation::sign(group) {
            reps.push(("sign".to_owned(), s));
        }
        let t = Representation::trivial(group);
        let s = Representation::standard(group);
        let r = Representation::regular(group);
        let mixed = Representation::direct_sum(&[s.clone(), t, r.clone(), s]).unwrap();
        reps.push(("standard+trivial+regular+standard".to_owned(), mixed));
        reps.push(("2 regular".to_owned(), r.repeat(2)));
        reps
    }

    fn groups() -> Vec<Group> {
        vec![c(2), c(3), c(4), c(8), d(2), d(4)]
    }

    /// The five checks of one basis: dimension by characters, orthonormality, commutation with
    /// every group element, random combinations equivariant on random x, Π fixes each B_k.
    fn check_basis(rho_in: &Representation, rho_out: &Representation, what: &str) {
        let group = *rho_in.group();
        let basis = equivariant_basis(rho_in, rho_out).unwrap();
        assert_eq!(basis.len(), hom_dim(rho_in, rho_out).unwrap(), "{group} {what}: dimension");
        let dense = basis.to_dense();
        assert_eq!(dense.len(), basis.len());
        for (i, bi) in dense.iter().enumerate() {
            assert_eq!(bi.shape(), (rho_out.dim(), rho_in.dim()));
            for (j, bj) in dense.iter().enumerate() {
                let expected = if i == j { 1.0 } else { 0.0 };
                let err = (bi.dot(bj) - expected).abs();
                assert!(err <= 1e-9, "{group} {what}: <B{i}, B{j}> off by {err}");
            }
            for g in group.elements() {
                let err = max_abs(&(rho_out.matrix(g) * bi - bi * rho_in.matrix(g)));
                assert!(err <= 1e-9, "{group} {what}: B{i} does not commute with {g}: {err}");
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let coeffs: Vec<f64> = (0..basis.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
        let w = basis.combine(&coeffs).unwrap();
        let dense_sum = dense
            .iter()
            .zip(&coeffs)
            .fold(DMatrix::zeros(w.nrows(), w.ncols()), |a, (b, &k)| a + b * k);
        assert!(max_abs(&(&w - dense_sum)) <= 1e-12);
        let back = basis.coefficients(&w).unwrap();
        assert!(back.iter().zip(&coeffs).all(|(a, b)| (a - b).abs() <= 1e-9));
        for _ in 0..3 {
            let x = DVector::from_fn(rho_in.dim(), |_, _| rng.random_range(-1.0..1.0));
            for g in group.elements() {
                let lhs = &w * (rho_in.matrix(g) * &x);
                let rhs = rho_out.matrix(g) * (&w * &x);
                let err = (lhs - rhs).amax();
                assert!(err <= 1e-9, "{group} {what}: W rho_in({g}) x != rho_out({g}) W x: {err}");
            }
        }
        // The orthogonal projection onto the span is the Reynolds projection.
        let w0 = DMatrix::from_fn(rho_out.dim(), rho_in.dim(), |_, _| rng.random_range(-1.0..1.0));
        let err = max_abs(&(basis.project(&w0).unwrap() - reynolds(rho_in, rho_out, &w0).unwrap()));
        assert!(err <= 1e-9, "{group} {what}: projection != Reynolds: {err}");
    }

    #[test]
    fn every_pair_of_kinds_gives_a_correct_basis() {
        for group in groups() {
            let reps = kinds(&group);
            for (name_in, rho_in) in &reps {
                for (name_out, rho_out) in &reps {
                    check_basis(rho_in, rho_out, &format!("{name_in} -> {name_out}"));
                }
            }
        }
    }

    fn dim(rho_in: &Representation, rho_out: &Representation) -> usize {
        let basis = equivariant_basis(rho_in, rho_out).unwrap();
        assert_eq!(basis.len(), hom_dim(rho_in, rho_out).unwrap());
        basis.len()
    }

    /// The table of algorithms.md §6, and dimensions derived from the characters.
    #[test]
    fn dimensions_match_algorithms_md_table() {
        for n in [2, 3, 4, 8] {
            let g = c(n);
            let (t, s1, reg) = (
                Representation::trivial(&g),
                Representation::standard(&g),
                Representation::regular(&g),
            );
            assert_eq!(dim(&reg, &reg), n, "C_{n} reg->reg");
            assert_eq!(dim(&s1, &reg), 2, "C_{n} rho1->reg");
            assert_eq!(dim(&reg, &s1), 2, "C_{n} reg->rho1");
            assert_eq!(dim(&t, &reg), 1, "C_{n} trivial->reg");
            assert_eq!(dim(&reg, &t), 1, "C_{n} reg->trivial");
            // ρ1 of C_2 is −I = sign ⊕ sign; for n ≥ 3 it is irreducible of complex type.
            assert_eq!(dim(&s1, &t), 0, "C_{n} rho1->trivial");
            assert_eq!(dim(&s1, &s1), if n == 2 { 4 } else { 2 }, "C_{n} rho1->rho1");
            if n % 2 == 0 {
                let sign = Representation::sign(&g).unwrap();
                assert_eq!(dim(&sign, &reg), 1, "C_{n} sign->reg");
                assert_eq!(dim(&sign, &t), 0, "C_{n} sign->trivial");
                assert_eq!(dim(&s1, &sign), if n == 2 { 2 } else { 0 }, "C_{n} rho1->sign");
            }
        }
        for n in [2, 4] {
            let g = d(n);
            let (t, s1, reg, sign) = (
                Representation::trivial(&g),
                Representation::standard(&g),
                Representation::regular(&g),
                Representation::sign(&g).unwrap(),
            );
            assert_eq!(dim(&reg, &reg), 2 * n, "D_{n} reg->reg");
            assert_eq!(dim(&sign, &reg), 1, "D_{n} sign->reg");
            assert_eq!(dim(&t, &reg), 1, "D_{n} trivial->reg");
            assert_eq!(dim(&s1, &reg), 2, "D_{n} rho1->reg");
            assert_eq!(dim(&reg, &s1), 2, "D_{n} reg->rho1");
            assert_eq!(dim(&s1, &t), 0, "D_{n} rho1->trivial");
            assert_eq!(dim(&sign, &t), 0, "D_{n} sign->trivial");
            // D_4: ρ1 absolutely irreducible; D_2: ρ1 splits into two distinct characters.
            assert_eq!(dim(&s1, &s1), if n == 2 { 2 } else { 1 }, "D_{n} rho1->rho1");
            assert_eq!(dim(&polygon(&g), &polygon(&g)), if n == 2 { 2 } else { 3 }, "D_{n} poly");
        }
    }

    /// EMLP's formulation: the nullspace of the stacked [ρ_in(h)^{-T} ⊗ ρ_out(h) − I] over the
    /// generators h (column-major vec(W)) has the same dimension as the averaged basis.
    #[test]
    fn nullspace_over_generators_has_the_same_dimension() {
        for group in [c(4), c(8), d(2), d(4)] {
            let reps = kinds(&group);
            for (name_in, rho_in) in reps.iter().filter(|(n, _)| !n.contains("2 regular")) {
                for (name_out, rho_out) in reps.iter().filter(|(n, _)| !n.contains("2 regular")) {
                    let size = rho_in.dim() * rho_out.dim();
                    let gens = group.generators();
                    let mut c = DMatrix::zeros(gens.len() * size, size);
                    for (i, &h) in gens.iter().enumerate() {
                        let inv_t = rho_in.matrix(group.inverse(h)).transpose();
                        let k = inv_t.kronecker(&rho_out.matrix(h)) - DMatrix::identity(size, size);
                        c.slice_mut((i * size, 0), (size, size)).copy_from(&k);
                    }
                    let rank = c.singular_values().iter().filter(|&&s| s > 1e-8).count();
                    let basis = equivariant_basis(rho_in, rho_out).unwrap();
                    assert_eq!(size - rank, basis.len(), "{group} {name_in} -> {name_out}");
                }
            }
        }
    }

    /// `span` ⊆ span(dense basis) and both have the same dimension.
    fn assert_same_span(explicit: &[DMatrix<f64>], averaged: &EquivariantBasis, what: &str) {
        assert_eq!(explicit.len(), averaged.len(), "{what}: dimension");
        for (i, e) in explicit.iter().enumerate() {
            let residual = e - averaged.project(e).unwrap();
            assert!(max_abs(&residual) <= 1e-9, "{what}: explicit element {i} outside the span");
            for (j, f) in explicit.iter().enumerate() {
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((e.dot(f) - expected).abs() <= 1e-9, "{what}: not orthonormal");
            }
        }
    }

    #[test]
    fn explicit_forms_span_the_averaged_spaces() {
        for group in groups() {
            let t = Representation::trivial(&group);
            let s1 = Representation::standard(&group);
            let reg = Representation::regular(&group);
            let rr = equivariant_basis(&reg, &reg).unwrap();
            assert_same_span(&regular_shared_basis(&group), &rr, &format!("{group} reg->reg"));
            // Gram–Schmidt of Π(E_{e,u}) gives exactly the shared basis, in the same order.
            for (a, b) in rr.to_dense().iter().zip(regular_shared_basis(&group)) {
                assert!(max_abs(&(a - b)) <= 1e-12, "{group}: averaged reg->reg differs");
            }
            let tr = equivariant_basis(&t, &reg).unwrap();
            assert_same_span(&[broadcast_basis(&group)], &tr, &format!("{group} trivial->reg"));
            let rt = equivariant_basis(&reg, &t).unwrap();
            assert_same_span(&[mean_basis(&group)], &rt, &format!("{group} reg->trivial"));
            let sr = equivariant_basis(&s1, &reg).unwrap();
            assert_same_span(&standard_to_regular_basis(&group), &sr, &format!("{group} r1->reg"));
            let rs = equivariant_basis(&reg, &s1).unwrap();
            assert_same_span(&regular_to_standard_basis(&group), &rs, &format!("{group} reg->r1"));
        }
    }

    #[test]
    fn regular_weight_is_the_circulant_for_cyclic_groups() {
        for n in [2, 3, 4, 8] {
            let g = c(n);
            let psi: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
            let w = regular_weight(&g, &psi).unwrap();
            for a in 0..n {
                for b in 0..n {
                    assert_eq!(w[(a, b)], psi[(b + n - a) % n]);
                }
            }
        }
        assert!(matches!(
            regular_weight(&c(4), &[1.0]),
            Err(SymmetryError::CoefficientCount { len: 1, expected: 4 })
        ));
    }

    #[test]
    fn bias_space_is_the_invariant_vectors() {
        for group in groups() {
            let reg = Representation::regular(&group);
            let s1 = Representation::standard(&group);
            let t = Representation::trivial(&group);
            assert_eq!(bias_basis(&t).len(), 1);
            assert_eq!(bias_basis(&reg).len(), 1);
            assert_eq!(bias_basis(&s1).len(), if group.n() <= 1 { 2 } else { 0 });
            if let Ok(sign) = Representation::sign(&group) {
                assert!(bias_basis(&sign).is_empty());
            }
            let rho = Representation::direct_sum(&[reg.repeat(3), s1, t]).unwrap();
            let biases = bias_basis(&rho);
            assert_eq!(biases.len(), 4);
            for b in &biases {
                for g in group.elements() {
                    assert!((rho.matrix(g) * b - b).amax() <= 1e-9);
                }
            }
        }
    }

    /// The UR5e observation (22 dims) into an invariant 6-dim output (the actor's mean) and into
    /// 4 regular channels of C_4 / C_8: only the 14 invariant inputs feed an invariant output.
    #[test]
    fn ur5e_observation_maps() {
        use FieldKind::{Invariant, Rotation2};
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
        for n in [4, 8] {
            let group = c(n);
            let obs = Representation::from_layout(&group, &layout).unwrap();
            let act = Representation::from_layout(&group, &[(Invariant, 6)]).unwrap();
            assert_eq!(dim(&obs, &act), 14 * 6);
            let hidden = Representation::regular(&group).repeat(4);
            // Each invariant input feeds each channel by broadcast (1), each pair by 2.
            assert_eq!(dim(&obs, &hidden), 4 * (14 + 4 * 2));
            check_basis(&obs, &hidden, &format!("C_{n} ur5e obs -> 4 regular"));
            check_basis(&hidden, &obs, &format!("C_{n} 4 regular -> ur5e obs"));
            check_basis(&obs, &obs, &format!("C_{n} ur5e obs -> obs"));
        }
    }

    #[test]
    fn errors() {
        let a = Representation::regular(&c(4));
        let b = Representation::regular(&d(4));
        assert!(matches!(equivariant_basis(&a, &b), Err(SymmetryError::GroupMismatch { .. })));
        assert!(matches!(hom_dim(&a, &b), Err(SymmetryError::GroupMismatch { .. })));
        let basis = equivariant_basis(&a, &a).unwrap();
        assert_eq!(
            basis.combine(&[1.0]),
            Err(SymmetryError::CoefficientCount { len: 1, expected: 4 })
        );
        assert!(matches!(
            basis.coefficients(&DMatrix::zeros(2, 4)),
            Err(SymmetryError::ShapeMismatch { rows: 2, cols: 4, .. })
        ));
        let e = DMatrix::zeros(3, 3);
        assert!(matches!(reynolds(&a, &a, &e), Err(SymmetryError::ShapeMismatch { .. })));
    }
}
