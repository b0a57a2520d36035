//! What the offline learners ([`crate::cql`], [`crate::iql`]) share: their error type, the check
//! that a config's dimensions match the symmetry representations, and small tensor helpers.
//!
//! An offline dataset is a [`crate::replay::ReplayBuffer`] whose capacity is the number of
//! transitions: it is filled once and then only sampled (uniformly, seeded), which is what CORL's
//! `ReplayBuffer.sample` does with a D4RL dataset.

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use equigate_symmetry::Representation;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::layers::LayerError;
use crate::sac::{act_deterministic, Actor, Critic};

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

/// Where an offline actor stands relative to the dataset, as its critic sees it: the
/// diagnostics that tell an actor exploiting its critic off the data (large `action_mse`,
/// `q_pi_minus_data` > 0) from one the critic cannot steer (`q_uniform_minus_data` near 0).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PolicyDataStats {
    /// mean over states and action dimensions of (tanh μ(s) − a)², a the dataset action
    /// (actions in [−1, 1]; 0 is behaviour cloning, 2/3 the distance of a uniform guess from 0).
    pub action_mse: f32,
    /// mean[min_j Q_j(s, tanh μ(s)) − min_j Q_j(s, a)]: how much better than the dataset action
    /// the critic scores the actor's deterministic action.
    pub q_pi_minus_data: f32,
    /// mean[min_j Q_j(s, u) − min_j Q_j(s, a)], u ~ U(−1, 1)^|A|: how far the critic holds a
    /// random action below the dataset action.
    pub q_uniform_minus_data: f32,
    /// Fraction of states where min_j Q_j(s, a) > min_j Q_j(s, u).
    pub data_above_uniform: f32,
}

/// [`PolicyDataStats`] of critic `q` and actor `actor` on dataset rows `obs`, `actions`; the
/// uniform actions come from a generator seeded with `seed`, so that calling this leaves the
/// learner's own noise alone.
///
/// # Shapes
/// `obs: [batch, obs_dim]`, `actions: [batch, act_dim]`.
pub fn policy_data_stats<B: Backend, C: Critic<B>, A: Actor<B>>(
    q: &C,
    actor: &A,
    obs: Tensor<B, 2>,
    actions: Tensor<B, 2>,
    seed: u64,
) -> PolicyDataStats {
    let [batch, act_dim] = actions.dims();
    let device = actions.device();
    let pi = act_deterministic(actor, obs.clone());
    let action_mse = scalar((pi.clone() - actions.clone()).square().mean());
    let u = uniform::<B>(&mut ChaCha8Rng::seed_from_u64(seed), [batch, act_dim], &device);
    let min_q = |a: Tensor<B, 2>| q.q(obs.clone(), a).min_dim(1); // [batch, 1]
    let (q_data, q_pi, q_u) = (min_q(actions), min_q(pi), min_q(u));
    PolicyDataStats {
        action_mse,
        q_pi_minus_data: scalar((q_pi - q_data.clone()).mean()),
        q_uniform_minus_data: scalar((q_u.clone() - q_data.clone()).mean()),
        data_above_uniform: scalar(q_data.greater(q_u).float().mean()),
    }
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
    fn policy_data_stats_measure_the_actor_against_the_dataset_actions() {
        use crate::nets::{ActorConfig, MlpActor, MlpConfig, MlpCritic};
        let device = Default::default();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mlp = MlpConfig::new().with_hidden(vec![16; 2]);
        let q = MlpCritic::<Flex>::new(&mlp, 3, 2, &mut rng, &device).unwrap();
        let actor =
            MlpActor::<Flex>::new(&mlp, &ActorConfig::new(), 3, 2, &mut rng, &device).unwrap();
        let obs = uniform::<Flex>(&mut rng, [64, 3], &device);
        let stats =
            |actions: Tensor<Flex, 2>| policy_data_stats(&q, &actor, obs.clone(), actions, 0);

        // The actor's own actions as the dataset: no distance, no advantage over the data.
        let own = stats(act_deterministic(&actor, obs.clone()));
        assert!(own.action_mse < 1e-12, "{own:?}");
        assert!(own.q_pi_minus_data.abs() < 1e-6, "{own:?}");

        // Constant dataset actions at (1, −1): the distance is the mean of (π − a)², and the
        // two Q differences are consistent with each other.
        let a = Tensor::<Flex, 2>::ones([64, 2], &device)
            * Tensor::<Flex, 2>::from_floats([[1.0, -1.0]], &device);
        let far = stats(a.clone());
        let pi = act_deterministic(&actor, obs.clone());
        let expected = scalar((pi - a.clone()).square().mean());
        assert!((far.action_mse - expected).abs() < 1e-6, "{far:?} vs {expected}");
        assert!(far.action_mse > 0.1, "{far:?}");
        assert_eq!(far, stats(a.clone()), "the uniform actions come from the seed alone");
        // The two comparisons with uniform actions, from the seed's actions directly.
        let u = uniform::<Flex>(&mut ChaCha8Rng::seed_from_u64(0), [64, 2], &device);
        let min_q = |x: Tensor<Flex, 2>| {
            q.q(obs.clone(), x).min_dim(1).into_data().to_vec::<f32>().unwrap()
        };
        let (q_u, q_a) = (min_q(u), min_q(a));
        let gap = q_u.iter().zip(&q_a).map(|(u, a)| u - a).sum::<f32>() / 64.0;
        let above = q_u.iter().zip(&q_a).filter(|(u, a)| a > u).count() as f32 / 64.0;
        assert!((far.q_uniform_minus_data - gap).abs() < 1e-5, "{far:?} vs {gap}");
        assert_eq!(far.data_above_uniform, above, "{far:?}");
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
