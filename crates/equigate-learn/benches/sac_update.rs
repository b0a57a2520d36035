//! One plain SAC update (critic, actor, temperature, Polyak) at batch 256 on the flex CPU backend:
//! actor 22 → 256 → 256 → 2×6 (mean, log-std), twin critics 28 → 256 → 256 → 1 (the UR5e reach
//! sizes), Adam, global-norm clipping 0.5.
//!
//! `cargo bench -p equigate-learn --bench sac_update`
//!
//! criterion's time per iteration is the time of one update; updates/s = 1 / that time.
//! `sac_update/train_step` updates on a pre-sampled batch; `sac_update/sample_and_train_step`
//! includes sampling the batch from a replay buffer, as the training loop does.

mod common;

use burn::backend::{Autodiff, Flex};
use common::{random_replay, ACT_DIM, OBS_DIM};
use criterion::{criterion_group, criterion_main, Criterion};
use equigate_learn::nets::{MlpActor, MlpCritic};
use equigate_learn::replay::ReplayBuffer;
use equigate_learn::sac::{Sac, SacConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

type B = Autodiff<Flex>;

fn learner() -> (Sac<B, MlpCritic<B>, MlpActor<B>>, ReplayBuffer) {
    let config = SacConfig::new(OBS_DIM, ACT_DIM);
    let device = Default::default();
    let (q, actor) = config.mlp_networks(&mut ChaCha8Rng::seed_from_u64(0), &device).unwrap();
    let sac = Sac::new(config, q, actor, &device);
    (sac, random_replay(10_000, None).0)
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
