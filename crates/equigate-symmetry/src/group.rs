//! The finite groups C_n (rotations by 2πk/n) and D_n (rotations and reflections), as in
//! `reference/algorithms.md` §6.
//!
//! An element is (k, m) with k ∈ 0..n the rotation step and m the reflection bit, and
//!
//! (k₁, m₁)(k₂, m₂) = (k₁ + (−1)^{m₁} k₂ mod n, m₁ ⊕ m₂).
//!
//! C_n is the subgroup m = 0. Elements are indexed `m * n + k` ([`Group::index_of`]): the
//! rotations first, in order of k, then (D_n only) the reflections; this is the order of
//! [`Group::elements`] and of the coordinates of the regular representation.

use std::f64::consts::TAU;
use std::fmt;

use crate::{Result, SymmetryError};

/// Which family a [`Group`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKind {
    /// C_n: rotations only, order n.
    Cyclic,
    /// D_n: rotations and reflections, order 2n.
    Dihedral,
}

/// A group C_n or D_n (n ≥ 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Group {
    kind: GroupKind,
    n: usize,
}

/// A group element (k, m): the rotation by 2πk/n after the reflection diag(1, −1) if `m`.
///
/// As a matrix (the standard representation) it is R(2πk/n)·diag(1,−1)^m.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Element {
    /// Rotation step, in 0..n.
    pub k: usize,
    /// Reflection bit (always false in C_n).
    pub m: bool,
}

impl Element {
    /// The rotation (k, 0).
    pub fn rotation(k: usize) -> Self {
        Element { k, m: false }
    }

    /// The reflection (k, 1).
    pub fn reflection(k: usize) -> Self {
        Element { k, m: true }
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.k, u8::from(self.m))
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            GroupKind::Cyclic => write!(f, "C_{}", self.n),
            GroupKind::Dihedral => write!(f, "D_{}", self.n),
        }
    }
}

impl Group {
    /// C_n, the rotations by multiples of 2π/n. Errors if n = 0.
    pub fn cyclic(n: usize) -> Result<Self> {
        Self::new(GroupKind::Cyclic, n)
    }

    /// D_n, the symmetries of the regular n-gon (order 2n). Errors if n = 0.
    pub fn dihedral(n: usize) -> Result<Self> {
        Self::new(GroupKind::Dihedral, n)
    }

    /// C_n or D_n by kind. Errors if n = 0.
    pub fn new(kind: GroupKind, n: usize) -> Result<Self> {
        if n == 0 {
            return Err(SymmetryError::ZeroOrder);
        }
        Ok(Group { kind, n })
    }

    /// Cyclic or dihedral.
    pub fn kind(&self) -> GroupKind {
        self.kind
    }

    /// The n of C_n or D_n (number of rotations).
    pub fn n(&self) -> usize {
        self.n
    }

    /// |G|: n for C_n, 2n for D_n.
    pub fn order(&self) -> usize {
        match self.kind {
            GroupKind::Cyclic => self.n,
            GroupKind::Dihedral => 2 * self.n,
        }
    }

    /// Whether `g` is an element of this group (k < n, and m = 0 in C_n).
    pub fn contains(&self, g: Element) -> bool {
        g.k < self.n && (!g.m || self.kind == GroupKind::Dihedral)
    }

    /// The identity (0, 0).
    pub fn identity(&self) -> Element {
        Element::rotation(0)
    }

    /// gh = (k₁ + (−1)^{m₁} k₂ mod n, m₁ ⊕ m₂).
    pub fn compose(&self, g: Element, h: Element) -> Element {
        self.assert_contains(g);
        self.assert_contains(h);
        let k2 = if g.m { (self.n - h.k) % self.n } else { h.k };
        Element { k: (g.k + k2) % self.n, m: g.m ^ h.m }
    }

    /// g⁻¹: (−k mod n, 0) for a rotation; a reflection is its own inverse.
    pub fn inverse(&self, g: Element) -> Element {
        self.assert_contains(g);
        if g.m {
            g
        } else {
            Element::rotation((self.n - g.k) % self.n)
        }
    }

    /// All elements in index order: (0,0), (1,0), …, (n−1,0), then (D_n) (0,1), …, (n−1,1).
    pub fn elements(&self) -> Vec<Element> {
        (0..self.order()).map(|i| self.element(i)).collect()
    }

    /// The element with index `i` (`i < order()`), the inverse of [`Group::index_of`].
    pub fn element(&self, i: usize) -> Element {
        assert!(i < self.order(), "element index {i} out of range for {self}");
        Element { k: i % self.n, m: i >= self.n }
    }

    /// The index `m * n + k` of `g` in [`Group::elements`].
    pub fn index_of(&self, g: Element) -> usize {
        self.assert_contains(g);
        usize::from(g.m) * self.n + g.k
    }

    /// Generators: r = (1, 0), and for D_n also the reflection f = (0, 1). (For n = 1 the rotation
    /// is the identity and is still listed, so that the list is never empty.)
    pub fn generators(&self) -> Vec<Element> {
        match self.kind {
            GroupKind::Cyclic => vec![Element::rotation(1 % self.n)],
            GroupKind::Dihedral => vec![Element::rotation(1 % self.n), Element::reflection(0)],
        }
    }

    /// The rotation angle of `g`, 2πk/n (rad).
    pub fn angle(&self, g: Element) -> f64 {
        self.assert_contains(g);
        TAU * g.k as f64 / self.n as f64
    }

    fn assert_contains(&self, g: Element) {
        assert!(
            self.contains(g),
            "element {g} is not in {self}: callers pass elements of the group"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> Vec<Group> {
        let mut gs: Vec<Group> = [1, 2, 3, 4, 8].map(|n| Group::cyclic(n).unwrap()).to_vec();
        gs.extend([1, 2, 3, 4, 8].map(|n| Group::dihedral(n).unwrap()));
        gs
    }

    #[test]
    fn zero_order_is_an_error() {
        assert_eq!(Group::cyclic(0), Err(SymmetryError::ZeroOrder));
        assert_eq!(Group::dihedral(0), Err(SymmetryError::ZeroOrder));
    }

    #[test]
    fn group_axioms_hold_for_every_element() {
        for g in groups() {
            let els = g.elements();
            assert_eq!(els.len(), g.order());
            let e = g.identity();
            for (i, &a) in els.iter().enumerate() {
                assert_eq!(g.index_of(a), i);
                assert_eq!(g.element(i), a);
                assert_eq!(g.compose(e, a), a);
                assert_eq!(g.compose(a, e), a);
                assert_eq!(g.compose(a, g.inverse(a)), e, "{g}: {a}");
                assert_eq!(g.compose(g.inverse(a), a), e, "{g}: {a}");
                // Left multiplication by a permutes the group (Cayley table is a Latin square).
                let mut row: Vec<usize> =
                    els.iter().map(|&b| g.index_of(g.compose(a, b))).collect();
                row.sort_unstable();
                assert_eq!(row, (0..g.order()).collect::<Vec<_>>());
                for &b in &els {
                    for &c in &els {
                        assert_eq!(
                            g.compose(g.compose(a, b), c),
                            g.compose(a, g.compose(b, c)),
                            "{g}: associativity at {a} {b} {c}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn composition_law_of_algorithms_md() {
        let d4 = Group::dihedral(4).unwrap();
        // (1,1)(1,0) = (1 - 1, 1) = (0, 1); (1,0)(1,1) = (2, 1).
        assert_eq!(
            d4.compose(Element::reflection(1), Element::rotation(1)),
            Element::reflection(0)
        );
        assert_eq!(
            d4.compose(Element::rotation(1), Element::reflection(1)),
            Element::reflection(2)
        );
        // f r f = r⁻¹.
        let f = Element::reflection(0);
        let r = Element::rotation(1);
        assert_eq!(d4.compose(d4.compose(f, r), f), Element::rotation(3));
        assert!(!Group::cyclic(4).unwrap().contains(f));
    }

    #[test]
    fn generators_generate() {
        for g in groups() {
            let mut seen = vec![g.identity()];
            let mut frontier = seen.clone();
            while let Some(a) = frontier.pop() {
                for s in g.generators() {
                    let b = g.compose(a, s);
                    if !seen.contains(&b) {
                        seen.push(b);
                        frontier.push(b);
                    }
                }
            }
            assert_eq!(seen.len(), g.order(), "{g}");
        }
    }
}
