//! What the offline learners ([`crate::cql`], [`crate::iql`]) share: their error type, the check
//! that a config's dimensions match the symmetry representations, and small tensor helpers.
//!
//! An offline dataset is a [`crate::replay::ReplayBuffer`] whose capacity is the number of
//! transitions: it is filled once and then only sampled (uniformly, seeded), which is what CORL's
//! `ReplayBuffer.sample` does with a D4RL dataset.

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use equigate_symmetry::Representation;
use rand::Rng;

use crate::layers::LayerError;

/// Errors of building an offline learner.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// A network could not be built (a width of 0, no equivariant map, …).
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The config's `obs_dim` or `act_dim` differs from the representation's dimension.
    #[error("{what}: the config says {config}, the representation has dimension {representation}")]
    LengthMismatch {
        /// `obs_dim` or `act_dim`.
        what: &'static str,
        /// The config's value.
        config: usize,
        /// dim ρ.
        representation: usize,
    },
}

/// Errors unless `obs_dim = dim ρ_s` and `act_dim = dim ρ_a`.
pub(crate) fn check_dims(
    obs_dim: usize,
    act_dim: usize,
    obs: &Representation,
    act: &Representation,
) -> Result<(), OfflineError> {
    for (what, config, representation) in
        [("obs_dim", obs_dim, obs.dim()), ("act_dim", act_dim, act.dim())]
    {
        if config != representation {
            return Err(OfflineError::LengthMismatch { what, config, representation });
        }
    }
    Ok(())
}

/// Each row repeated `n` times in place (CORL's `extend_and_repeat` then a reshape): row i of the
/// input becomes rows i·n … i·n + n − 1.
///
/// # Shapes
/// `x: [batch, dim]` -> `[batch · n, dim]`.
pub fn repeat_rows<B: Backend>(x: Tensor<B, 2>, n: usize) -> Tensor<B, 2> {
    let [batch, dim] = x.dims();
    x.unsqueeze_dim::<3>(1).repeat_dim(1, n).reshape([batch * n, dim])
}

/// log Σ exp along `dim`, with the maximum (detached) subtracted first so that nothing overflows.
///
/// # Shapes
/// `[d0, d1, d2]` -> the same with `dim` reduced to 1.
pub fn logsumexp<B: Backend>(x: Tensor<B, 3>, dim: usize) -> Tensor<B, 3> {
    let max = x.clone().max_dim(dim).detach();
    (x - max.clone()).exp().sum_dim(dim).log() + max
}

/// U(−1, 1) of `shape` from `rng`.
pub(crate) fn uniform<B: Backend>(
    rng: &mut impl Rng,
    shape: [usize; 2],
    device: &B::Device,
) -> Tensor<B, 2> {
    let u: Vec<f32> = (0..shape[0] * shape[1]).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_data(TensorData::new(u, shape), device)
}

/// The single value of a `[1]` tensor as f32.
pub(crate) fn scalar<B: Backend>(t: Tensor<B, 1>) -> f32 {
    t.into_scalar().elem::<f32>()
}

/// The column means of a `[batch, 2]` tensor (the twin critics' means).
pub(crate) fn column_means<B: Backend>(q: Tensor<B, 2>) -> [f32; 2] {
    q.mean_dim(0).into_data().to_vec::<f32>().map_or([f32::NAN; 2], |v| [v[0], v[1]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn repeat_rows_keeps_copies_of_a_row_together() {
        let x = Tensor::<Flex, 2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &Default::default());
        let y = repeat_rows(x, 3).into_data().to_vec::<f32>().unwrap();
        assert_eq!(y, [1., 2., 1., 2., 1., 2., 3., 4., 3., 4., 3., 4.]);
    }

    #[test]
    fn logsumexp_is_stable() {
        let x = Tensor::<Flex, 3>::from_floats(
            [[[1000.0], [1000.0]], [[0.0], [1.0]]],
            &Default::default(),
        );
        let y = logsumexp(x, 1).into_data().to_vec::<f32>().unwrap();
        assert!((y[0] - (1000.0 + 2f32.ln())).abs() < 1e-3, "{y:?}");
        assert!((y[1] - (1f32.exp() + 1.0).ln()).abs() < 1e-6, "{y:?}");
    }
}
