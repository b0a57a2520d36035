//! Single-observation deterministic actor inference, a = tanh(μ(s)), on the flex CPU backend
//! (no autodiff), from an observation slice to an action vector, as a policy node acts: batch 1,
//! observation 22 (the UR5e C_4 layout), action 6, 2×256 hidden. Target: ≤ 20 µs.
//!
//! `cargo bench -p equigate-learn --bench actor_inference`
//!
//! - `actor_inference/mlp`: the MLP actor (plain SAC, PE-SAC's π_N).
//! - `actor_inference/equi_frozen`: the equivariant actor π_E as its dense [`EquiActor::frozen`]
//!   copy, which acting uses (weights built once per update, not per call).
//! - `actor_inference/equi_rebuilt`: π_E itself, rebuilding W = Σ β_k B_k on every call; for
//!   comparison only.

mod common;

use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use common::{representations, ACT_DIM, OBS_DIM};
use criterion::{criterion_group, criterion_main, Criterion};
use equigate_learn::nets::{ActorConfig, EquiActor, EquiConfig};
use equigate_learn::sac::{act_deterministic, standard_normal, Actor, SacConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

type B = Flex;

/// tanh(μ(s)) for one observation slice, as a `Vec` (tensor in, data out).
fn act<Bk: Backend, A: Actor<Bk>>(actor: &A, obs: &[f32], device: &Bk::Device) -> Vec<f32> {
    let obs = Tensor::<Bk, 2>::from_data(TensorData::new(obs.to_vec(), [1, OBS_DIM]), device);
    act_deterministic(actor, obs).into_data().to_vec::<f32>().expect("f32 actions")
}

fn actor_inference(c: &mut Criterion) {
    let device = Default::default();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let obs = standard_normal(&mut rng, OBS_DIM);
    let (_, mlp) =
        SacConfig::new(OBS_DIM, ACT_DIM).mlp_networks::<B>(&mut rng, &device).expect("widths");
    let (obs_rep, act_rep) = representations();
    let equi = EquiActor::<B>::new(
        &EquiConfig::new(),
        &ActorConfig::new(),
        &obs_rep,
        &act_rep,
        &mut rng,
        &device,
    )
    .expect("an equivariant actor for the UR5e layout");
    let frozen = equi.frozen();
    assert_eq!(act(&mlp, &obs, &device).len(), ACT_DIM);

    let mut group = c.benchmark_group("actor_inference");
    group.bench_function("mlp", |b| b.iter(|| act(&mlp, &obs, &device)));
    group.bench_function("equi_frozen", |b| b.iter(|| act(&frozen, &obs, &device)));
    group.bench_function("equi_rebuilt", |b| b.iter(|| act(&equi, &obs, &device)));
    group.finish();
}

criterion_group!(benches, actor_inference);
criterion_main!(benches);
