//! One plain SAC update (critic, actor, temperature, Polyak) at batch 256 on the flex CPU backend:
//! actor 22 → 256 → 256 → 2×6 (mean, log-std), twin critics 28 → 256 → 256 → 1 (the UR5e reach
//! sizes), Adam, global-norm clipping 0.5.
//!
//! `cargo bench -p equigate-learn --bench sac_update`
//!
//! criterion's time per iteration is the time of one update; updates/s = 1 / that time.
//! `sac_update/train_step` updates on a pre-sampled batch; `sac_update/sample_and_train_step`
//! includes sampling the batch from a replay buffer, as the training loop does.

use burn::backend::{Autodiff, Flex};
use criterion::{criterion_group, criterion_main, Criterion};
use equigate_learn::nets::{MlpActor, MlpCritic};
use equigate_learn::replay::{ReplayBuffer, Transition};
use equigate_learn::sac::{standard_normal, Sac, SacConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

type B = Autodiff<Flex>;

const OBS_DIM: usize = 22;
const ACT_DIM: usize = 6;

fn learner() -> (Sac<B, MlpCritic<B>, MlpActor<B>>, ReplayBuffer) {
    let config = SacConfig::new(OBS_DIM, ACT_DIM);
    let device = Default::default();
    let (q, actor) = config.mlp_networks(&mut ChaCha8Rng::seed_from_u64(0), &device).unwrap();
    let sac = Sac::new(config, q, actor, &device);
    let mut buffer = ReplayBuffer::new(10_000, OBS_DIM, ACT_DIM, 1).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for _ in 0..10_000 {
        let obs = standard_normal(&mut rng, OBS_DIM);
        let next = standard_normal(&mut rng, OBS_DIM);
        let act: Vec<f32> = standard_normal(&mut rng, ACT_DIM).iter().map(|a| a.tanh()).collect();
        let reward = -obs[0].abs();
        buffer
            .push(Transition {
                obs: &obs,
                action: &act,
                reward,
                next_obs: &next,
                terminated: false,
                truncated: false,
            })
            .unwrap();
    }
    (sac, buffer)
}

fn sac_update(c: &mut Criterion) {
    let device = Default::default();
    let mut group = c.benchmark_group("sac_update");
    group.sample_size(30);

    let (mut sac, mut buffer) = learner();
    let batch = buffer.sample::<B>(256, &device).unwrap();
    group.bench_function("train_step", |b| b.iter(|| sac.train_step(&batch)));

    let (mut sac, mut buffer) = learner();
    group.bench_function("sample_and_train_step", |b| {
        b.iter(|| {
            let batch = buffer.sample::<B>(256, &device).unwrap();
            sac.train_step(&batch)
        })
    });
    group.finish();
}

criterion_group!(benches, sac_update);
criterion_main!(benches);
