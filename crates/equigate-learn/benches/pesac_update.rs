//! One PE-SAC update (predictors, disagreement, pseudo-labels, both gates, gated critic, gated
//! actor, temperature, Polyak of both critic pairs) at batch 256 on the flex CPU backend, with the
//! UR5e reach sizes: observation 22 dims (C_4: four ρ1 pairs and invariants), action 6 invariant
//! joint velocities, default widths (2×256 MLPs, 2 × 256 regular features).
//!
//! `cargo bench -p equigate-learn --bench pesac_update`
//!
//! criterion's time per iteration is the time of one update. `pesac_update/warmup` runs inside
//! the gate warm-up (λ ≡ 0: only the equivariant branch trains); `pesac_update/gated` runs after
//! it with freshly initialised gates (p ≈ 0.5, so both branches run on parts of the batch: the
//! most expensive case).

mod common;

use burn::backend::{Autodiff, Flex};
use common::{random_replay, representations, ACT_DIM, OBS_DIM};
use criterion::{criterion_group, criterion_main, Criterion};
use equigate_learn::pesac::{PeSac, PeSacConfig};
use equigate_learn::replay::ReplayBuffer;
use equigate_learn::sac::SacConfig;

type B = Autodiff<Flex>;

fn learner(gate_warmup_updates: u64) -> (PeSac<B>, ReplayBuffer) {
    let config = PeSacConfig::new(SacConfig::new(OBS_DIM, ACT_DIM))
        .with_gate_warmup_updates(gate_warmup_updates);
    let (obs, act) = representations();
    let agent = PeSac::new(config, &obs, &act, &Default::default()).expect("valid sizes");
    // s' = s + 0.05 · N(0, I): small state changes, as the robot's.
    let (buffer, _) = random_replay(10_000, Some(0.05));
    (agent, buffer)
}

fn pesac_update(c: &mut Criterion) {
    let device = Default::default();
    let mut group = c.benchmark_group("pesac_update");
    group.sample_size(20);
    for (name, warmup) in [("warmup", u64::MAX), ("gated", 0)] {
        let (mut agent, mut buffer) = learner(warmup);
        let batch = buffer.sample::<B>(256, &device).expect("enough transitions");
        group.bench_function(name, |b| b.iter(|| agent.train_step(&batch)));
    }
    group.finish();
}

criterion_group!(benches, pesac_update);
criterion_main!(benches);
