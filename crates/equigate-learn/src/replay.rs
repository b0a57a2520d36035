//! Replay buffer: a fixed-capacity ring of transitions with seeded uniform sampling.
//!
//! Transitions are stored flat in `f32` vectors (one per field), so sampling a batch copies
//! `batch` rows into one `Vec<f32>` per field and builds one tensor per field with
//! [`Tensor::from_data`]. `terminated` and `truncated` are kept apart: only `terminated` (a true
//! end of the MDP) stops the bootstrap in the TD target; a time-limit `truncated` does not
//! (Pardo et al., "Time Limits in Reinforcement Learning", arXiv:1712.00378; Gymnasium's API).

use burn::tensor::{backend::Backend, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Errors of the replay buffer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// A pushed field does not have the buffer's declared length.
    #[error("replay field `{field}` has length {got}, the buffer expects {expected}")]
    LengthMismatch {
        /// Name of the field (`obs`, `action`, `next_obs`).
        field: &'static str,
        /// Length the buffer was built with.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// Sampling from a buffer that holds no transition (or, sampling behind, none older than
    /// the newest skipped).
    #[error("cannot sample from an empty replay buffer")]
    Empty,
    /// A capacity, dimension or batch size of zero.
    #[error("replay buffer `{what}` must be at least 1")]
    Zero {
        /// Which size was zero.
        what: &'static str,
    },
}

/// One transition (s, a, r, s', terminated, truncated), borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct Transition<'a> {
    /// Observation s, `[obs_dim]` (already scaled, see [`crate::scaling`]).
    pub obs: &'a [f32],
    /// Action a as the policy produced it, `[act_dim]` in [-1, 1].
    pub action: &'a [f32],
    /// Reward r.
    pub reward: f32,
    /// Next observation s', `[obs_dim]`.
    pub next_obs: &'a [f32],
    /// The episode ended inside the MDP (goal reached, failure): no bootstrap from s'.
    pub terminated: bool,
    /// The episode was cut by a time limit: s' is still bootstrapped from.
    pub truncated: bool,
}

/// A sampled batch, as tensors on one device.
///
/// # Shapes
/// - `obs`, `next_obs`: `[batch, obs_dim]`
/// - `actions`: `[batch, act_dim]`
/// - `rewards`, `terminated`, `truncated`: `[batch, 1]` (flags as 0.0 / 1.0)
#[derive(Debug, Clone)]
pub struct Batch<B: Backend> {
    /// Observations s, `[batch, obs_dim]`.
    pub obs: Tensor<B, 2>,
    /// Actions a in [-1, 1], `[batch, act_dim]`.
    pub actions: Tensor<B, 2>,
    /// Rewards r, `[batch, 1]`.
    pub rewards: Tensor<B, 2>,
    /// Next observations s', `[batch, obs_dim]`.
    pub next_obs: Tensor<B, 2>,
    /// 1.0 where the transition ended the MDP, `[batch, 1]`.
    pub terminated: Tensor<B, 2>,
    /// 1.0 where a time limit cut the episode, `[batch, 1]` (informational; not used in targets).
    pub truncated: Tensor<B, 2>,
}

impl<B: Backend> Batch<B> {
    /// Number of transitions in the batch.
    pub fn len(&self) -> usize {
        self.obs.dims()[0]
    }

    /// Whether the batch holds no transition (never, for batches from [`ReplayBuffer::sample`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A fixed-capacity ring buffer of transitions with uniform sampling from a seeded ChaCha8 RNG.
///
/// When full, each push overwrites the oldest transition. Two buffers built with the same seed
/// and fed the same transitions sample the same batches.
#[derive(Debug, Clone)]
pub struct ReplayBuffer {
    capacity: usize,
    obs_dim: usize,
    act_dim: usize,
    /// Number of stored transitions (≤ capacity).
    len: usize,
    /// Slot the next push writes.
    next: usize,
    obs: Vec<f32>,
    actions: Vec<f32>,
    rewards: Vec<f32>,
    next_obs: Vec<f32>,
    terminated: Vec<f32>,
    truncated: Vec<f32>,
    rng: ChaCha8Rng,
}

impl ReplayBuffer {
    /// An empty buffer for `capacity` transitions (default in `SacConfig`: 1e6), allocated up
    /// front (`capacity * (2 * obs_dim + act_dim + 3) * 4` bytes).
    pub fn new(
        capacity: usize,
        obs_dim: usize,
        act_dim: usize,
        seed: u64,
    ) -> Result<Self, ReplayError> {
        for (what, n) in [("capacity", capacity), ("obs_dim", obs_dim), ("act_dim", act_dim)] {
            if n == 0 {
                return Err(ReplayError::Zero { what });
            }
        }
        Ok(Self {
            capacity,
            obs_dim,
            act_dim,
            len: 0,
            next: 0,
            obs: vec![0.0; capacity * obs_dim],
            actions: vec![0.0; capacity * act_dim],
            rewards: vec![0.0; capacity],
            next_obs: vec![0.0; capacity * obs_dim],
            terminated: vec![0.0; capacity],
            truncated: vec![0.0; capacity],
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// Maximum number of transitions held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of transitions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no transition.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Observation length.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Action length.
    pub fn act_dim(&self) -> usize {
        self.act_dim
    }

    /// Stores one transition, overwriting the oldest when full. Errors (and stores nothing) if a
    /// field has the wrong length.
    pub fn push(&mut self, t: Transition<'_>) -> Result<(), ReplayError> {
        let (o, a) = (self.obs_dim, self.act_dim);
        for (field, expected, got) in [
            ("obs", o, t.obs.len()),
            ("action", a, t.action.len()),
            ("next_obs", o, t.next_obs.len()),
        ] {
            if got != expected {
                return Err(ReplayError::LengthMismatch { field, expected, got });
            }
        }
        let i = self.next;
        self.obs[i * o..(i + 1) * o].copy_from_slice(t.obs);
        self.actions[i * a..(i + 1) * a].copy_from_slice(t.action);
        self.rewards[i] = t.reward;
        self.next_obs[i * o..(i + 1) * o].copy_from_slice(t.next_obs);
        self.terminated[i] = f32::from(u8::from(t.terminated));
        self.truncated[i] = f32::from(u8::from(t.truncated));
        self.next = (i + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
        Ok(())
    }

    /// `batch_size` slot indices drawn uniformly with replacement from the stored transitions.
    pub fn sample_indices(&mut self, batch_size: usize) -> Result<Vec<usize>, ReplayError> {
        self.sample_indices_before(batch_size, 0)
    }

    /// `batch_size` slot indices drawn uniformly with replacement from the stored transitions
    /// except the newest `behind`: the draw [`Self::sample_indices`] made (same RNG stream) when
    /// the buffer was `behind` pushes younger. Exact while the buffer has not wrapped; once it
    /// has, the transitions overwritten since are missing from the draw. `behind = 0` is
    /// [`Self::sample_indices`].
    ///
    /// A learner that falls behind its data (the detector node owes updates while messages keep
    /// arriving) samples what it would have sampled on time, so that its result does not depend
    /// on how fast the machine is.
    ///
    /// # Errors
    /// [`ReplayError::Empty`] when fewer than `behind + 1` transitions are stored;
    /// [`ReplayError::Zero`] for `batch_size = 0`.
    pub fn sample_indices_before(
        &mut self,
        batch_size: usize,
        behind: usize,
    ) -> Result<Vec<usize>, ReplayError> {
        if self.len <= behind {
            return Err(ReplayError::Empty);
        }
        if batch_size == 0 {
            return Err(ReplayError::Zero { what: "batch_size" });
        }
        let n = self.len - behind;
        // Slots hold pushes oldest first from `oldest`; the newest `behind` are skipped. Before
        // the buffer wraps `oldest` is 0, so slot j is the j-th push, as in `sample_indices`.
        let oldest = if behind == 0 || self.len < self.capacity { 0 } else { self.next };
        let capacity = self.capacity;
        Ok((0..batch_size).map(|_| (oldest + self.rng.random_range(0..n)) % capacity).collect())
    }

    /// A batch of `batch_size` transitions drawn uniformly with replacement, as tensors on
    /// `device` (see [`Batch`] for shapes).
    pub fn sample<B: Backend>(
        &mut self,
        batch_size: usize,
        device: &B::Device,
    ) -> Result<Batch<B>, ReplayError> {
        self.sample_before(batch_size, 0, device)
    }

    /// A batch drawn as [`Self::sample`] drew it when the buffer was `behind` pushes younger
    /// (see [`Self::sample_indices_before`]).
    ///
    /// # Errors
    /// As [`Self::sample_indices_before`].
    pub fn sample_before<B: Backend>(
        &mut self,
        batch_size: usize,
        behind: usize,
        device: &B::Device,
    ) -> Result<Batch<B>, ReplayError> {
        let indices = self.sample_indices_before(batch_size, behind)?;
        Ok(self.gather(&indices, device))
    }

    /// The transitions at `indices` (slots from [`Self::sample_indices`]) as a [`Batch`].
    ///
    /// # Panics
    /// If an index is not below [`Self::len`].
    pub fn gather<B: Backend>(&self, indices: &[usize], device: &B::Device) -> Batch<B> {
        assert!(
            indices.iter().all(|&i| i < self.len),
            "replay gather: every index must be below len = {}",
            self.len
        );
        let n = indices.len();
        let rows = |data: &[f32], width: usize| -> Tensor<B, 2> {
            let mut flat = Vec::with_capacity(n * width);
            for &i in indices {
                flat.extend_from_slice(&data[i * width..(i + 1) * width]);
            }
            Tensor::from_data(TensorData::new(flat, [n, width]), device)
        };
        Batch {
            obs: rows(&self.obs, self.obs_dim),
            actions: rows(&self.actions, self.act_dim),
            rewards: rows(&self.rewards, 1),
            next_obs: rows(&self.next_obs, self.obs_dim),
            terminated: rows(&self.terminated, 1),
            truncated: rows(&self.truncated, 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    type B = Flex;

    /// Transition number `k`: obs = [k, k+0.5], action = [-k], reward k, next_obs = [k+1, k+1.5].
    fn push_numbered(buf: &mut ReplayBuffer, k: usize) {
        let x = k as f32;
        buf.push(Transition {
            obs: &[x, x + 0.5],
            action: &[-x],
            reward: x,
            next_obs: &[x + 1.0, x + 1.5],
            terminated: k.is_multiple_of(3),
            truncated: k.is_multiple_of(5),
        })
        .unwrap();
    }

    fn to_vec(t: Tensor<B, 2>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    #[test]
    fn batch_rows_are_whole_transitions_with_flags_apart() {
        let mut buf = ReplayBuffer::new(100, 2, 1, 7).unwrap();
        for k in 0..40 {
            push_numbered(&mut buf, k);
        }
        let batch = buf.sample::<B>(64, &Default::default()).unwrap();
        assert_eq!(batch.obs.dims(), [64, 2]);
        assert_eq!(batch.actions.dims(), [64, 1]);
        assert_eq!(batch.rewards.dims(), [64, 1]);
        assert_eq!(batch.next_obs.dims(), [64, 2]);
        assert_eq!(batch.terminated.dims(), [64, 1]);
        assert_eq!(batch.truncated.dims(), [64, 1]);
        let (obs, act, rew) = (to_vec(batch.obs), to_vec(batch.actions), to_vec(batch.rewards));
        let (next, term, trunc) =
            (to_vec(batch.next_obs), to_vec(batch.terminated), to_vec(batch.truncated));
        for r in 0..64 {
            let k = rew[r];
            assert_eq!(k.fract(), 0.0);
            assert_eq!(&obs[2 * r..2 * r + 2], &[k, k + 0.5]);
            assert_eq!(act[r], -k);
            assert_eq!(&next[2 * r..2 * r + 2], &[k + 1.0, k + 1.5]);
            let k = k as usize;
            assert_eq!(term[r], if k.is_multiple_of(3) { 1.0 } else { 0.0 });
            assert_eq!(trunc[r], if k.is_multiple_of(5) { 1.0 } else { 0.0 });
        }
    }

    #[test]
    fn ring_overwrites_oldest_when_full() {
        let mut buf = ReplayBuffer::new(10, 2, 1, 0).unwrap();
        for k in 0..25 {
            push_numbered(&mut buf, k);
        }
        assert_eq!(buf.len(), 10);
        let all: Vec<usize> = (0..10).collect();
        let mut rewards = to_vec(buf.gather::<B>(&all, &Default::default()).rewards);
        rewards.sort_by(f32::total_cmp);
        assert_eq!(rewards, (15..25).map(|k| k as f32).collect::<Vec<_>>());
    }

    #[test]
    fn sampling_is_uniform_and_seeded() {
        let mut a = ReplayBuffer::new(1000, 2, 1, 42).unwrap();
        let mut b = ReplayBuffer::new(1000, 2, 1, 42).unwrap();
        for k in 0..20 {
            push_numbered(&mut a, k);
            push_numbered(&mut b, k);
        }
        let ia = a.sample_indices(20_000).unwrap();
        assert_eq!(ia, b.sample_indices(20_000).unwrap());
        let mut counts = [0usize; 20];
        for i in ia {
            counts[i] += 1;
        }
        // Expected 1000 each; 5 standard deviations is about 155.
        assert!(counts.iter().all(|&c| (845..=1155).contains(&c)), "{counts:?}");
        let mut c = ReplayBuffer::new(1000, 2, 1, 43).unwrap();
        push_numbered(&mut c, 0);
        push_numbered(&mut c, 1);
        assert_ne!(a.sample_indices(64).unwrap(), c.sample_indices(64).unwrap());
    }

    #[test]
    fn sampling_behind_draws_what_sampling_on_time_drew() {
        // One buffer samples after every push; the other gets all pushes first and then
        // samples `behind` each: the same batches, drawn only from what had arrived.
        let (late_from, total) = (5, 30);
        let mut on_time = ReplayBuffer::new(100, 2, 1, 9).unwrap();
        let mut late = ReplayBuffer::new(100, 2, 1, 9).unwrap();
        let mut expected = Vec::new();
        for k in 0..total {
            push_numbered(&mut on_time, k);
            push_numbered(&mut late, k);
            if k >= late_from {
                expected.push(on_time.sample_indices(16).unwrap());
            }
        }
        for (i, want) in expected.iter().enumerate() {
            let behind = expected.len() - 1 - i;
            let got = late.sample_indices_before(16, behind).unwrap();
            assert_eq!(&got, want, "update {i}, {behind} behind");
            assert!(got.iter().all(|&s| s < total - behind));
        }
        assert_eq!(late.sample_indices_before(1, total), Err(ReplayError::Empty));
    }

    #[test]
    fn sampling_behind_a_wrapped_buffer_skips_the_newest() {
        let mut buf = ReplayBuffer::new(10, 2, 1, 3).unwrap();
        for k in 0..25 {
            push_numbered(&mut buf, k);
        }
        // Held: pushes 15..25; 4 behind leaves 15..21, the only ones drawn.
        let indices = buf.sample_indices_before(2000, 4).unwrap();
        let mut rewards = to_vec(buf.gather::<B>(&indices, &Default::default()).rewards);
        rewards.sort_by(f32::total_cmp);
        rewards.dedup();
        assert_eq!(rewards, (15..21).map(|k| k as f32).collect::<Vec<_>>());
    }

    #[test]
    fn errors_name_the_field() {
        let mut buf = ReplayBuffer::new(4, 3, 2, 0).unwrap();
        assert_eq!(buf.sample_indices(1), Err(ReplayError::Empty));
        let err = buf
            .push(Transition {
                obs: &[0.0; 3],
                action: &[0.0; 3],
                reward: 0.0,
                next_obs: &[0.0; 3],
                terminated: false,
                truncated: false,
            })
            .unwrap_err();
        assert_eq!(err, ReplayError::LengthMismatch { field: "action", expected: 2, got: 3 });
        assert!(buf.is_empty());
        assert_eq!(
            ReplayBuffer::new(0, 1, 1, 0).unwrap_err(),
            ReplayError::Zero { what: "capacity" }
        );
    }
}
