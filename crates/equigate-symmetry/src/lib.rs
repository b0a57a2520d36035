//! The one symmetry of equigate, as pure math in f64: the finite groups C_n and D_n, their real
//! representations, and bases of the linear maps that commute with them.
//!
//! # Sources
//! - Conventions (element names, composition law, regular/standard/sign representations, the
//!   dimension table the tests check) are those of `reference/algorithms.md` §6 ("Equivariant
//!   building blocks"); the action on the UR5e/Fetch observation is §4.
//! - Bases by group averaging: each elementary matrix E_ab is projected with the Reynolds operator
//!   Π(E) = (1/|G|) Σ_g ρ_out(g) E ρ_in(g)⁻¹ and the projections are orthonormalised. This spans the
//!   same space as the nullspace of the stacked constraints [ρ_out(h) ⊗ ρ_in(h)^{-T} − I] over the
//!   generators h that EMLP solves (Finzi, Welling, Wilson 2021, "A Practical Method for
//!   Constructing Equivariant Multilayer Perceptrons for Arbitrary Matrix Groups",
//!   arXiv:2104.09459); the tests check both against character theory.
//! - The explicit shared form of regular → regular maps, W\[g,h\] = ψ(g⁻¹h), is the group convolution
//!   of Cohen & Welling 2016, "Group Equivariant Convolutional Networks" (arXiv:1602.07576).
//!
//! # What differs
//! - Bases are computed per pair of direct-sum blocks (Hom of a direct sum is the direct sum of the
//!   block Homs), and once per distinct pair of block kinds, so that wide layers stay cheap; the
//!   result keeps that block structure ([`EquivariantBasis`]) and can be made dense on request.
//! - Gram–Schmidt (two passes, relative tolerance [`RANK_TOL`]) rather than an SVD, so that the basis
//!   of a regular → regular block comes out as the normalised permutation matrices of the group
//!   convolution, in element order.
//!
//! # Layout
//! [`group`]: [`Group`] and [`Element`]. [`rep`]: [`Representation`], its [`Block`]s and the
//! observation-layout constructor ([`FieldKind`]). [`basis`]: equivariant bases, bias spaces,
//! explicit forms and the character-theory dimension [`hom_dim`].
//!
//! # Example
//! The UR5e observation under C_4 and an invariant linear map from it to the 6 joint velocities:
//! ```
//! use equigate_symmetry::{equivariant_basis, DVector, FieldKind::*, Group, Representation};
//!
//! let c4 = Group::cyclic(4)?;
//! let layout = [(Rotation2, 2), (Invariant, 11), (Rotation2, 2), (Invariant, 1),
//!               (Rotation2, 2), (Invariant, 1), (Rotation2, 2), (Invariant, 1)];
//! let obs = Representation::from_layout(&c4, &layout)?; // dim 22
//! let act = Representation::from_layout(&c4, &[(Invariant, 6)])?;
//! let basis = equivariant_basis(&obs, &act)?;
//! assert_eq!(basis.len(), 14 * 6); // only the 14 invariant inputs reach an invariant output
//! let w = basis.combine(&vec![0.1; basis.len()])?; // [6, 22]
//! let g = c4.generators()[0];
//! let x: Vec<f64> = (0..22).map(|i| i as f64).collect();
//! let wx = &w * DVector::from_vec(x.clone());
//! let wgx = &w * DVector::from_vec(obs.act(g, &x)?);
//! assert!((wx - wgx).amax() < 1e-12);
//! # Ok::<(), equigate_symmetry::SymmetryError>(())
//! ```

pub mod basis;
pub mod group;
pub mod rep;

pub use basis::{
    bias_basis, broadcast_basis, equivariant_basis, hom_dim, mean_basis, regular_shared_basis,
    regular_to_standard_basis, regular_weight, reynolds, standard_to_regular_basis, BlockBasis,
    EquivariantBasis, SharedBasis, RANK_TOL,
};
pub use group::{Element, Group, GroupKind};
/// The matrix types of the API, re-exported so that users need not pin the same nalgebra.
pub use nalgebra::{DMatrix, DVector};
pub use rep::{Block, FieldKind, PermutationRep, Representation};

/// Errors of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymmetryError {
    /// C_0 and D_0 do not exist.
    #[error("a group C_n or D_n needs n >= 1, got n = 0")]
    ZeroOrder,
    /// C_n with n odd has no element that could map to −1.
    #[error(
        "the sign representation of C_{n} needs n even (the generator r maps to -1 and r^n = e)"
    )]
    SignOfOddCyclic { n: usize },
    /// A σ_g of a permutation representation has the wrong length.
    #[error("the permutation given for {element} has length {len}, expected {expected}")]
    PermutationLength { element: Element, len: usize, expected: usize },
    /// A σ_g is not a bijection of 0..degree.
    #[error("the map given for {element} is not a permutation of 0..{degree}")]
    NotAPermutation { element: Element, degree: usize },
    /// σ_{gh} ≠ σ_g ∘ σ_h.
    #[error("the permutations are not a homomorphism: sigma(g h) != sigma(g) o sigma(h) for g = {g}, h = {h}")]
    NotAHomomorphism { g: Element, h: Element },
    /// Two representations of different groups were combined.
    #[error("representations of different groups combined: {left} and {right}")]
    GroupMismatch { left: Group, right: Group },
    /// A direct sum of nothing has no group.
    #[error("a direct sum needs at least one summand")]
    EmptySum,
    /// A [`FieldKind::Rotation2`] field must have exactly two entries.
    #[error("layout field {index} is Rotation2 with length {len}; a Rotation2 field has length 2")]
    RotationFieldLength { index: usize, len: usize },
    /// Wrong number of coefficients for a basis.
    #[error("{len} coefficients given for a basis of {expected} elements")]
    CoefficientCount { len: usize, expected: usize },
    /// A matrix or vector of the wrong shape.
    #[error("shape {rows}x{cols} given, expected {expected_rows}x{expected_cols}")]
    ShapeMismatch { rows: usize, cols: usize, expected_rows: usize, expected_cols: usize },
}

/// Result alias for this crate.
pub type Result<T, E = SymmetryError> = std::result::Result<T, E>;
