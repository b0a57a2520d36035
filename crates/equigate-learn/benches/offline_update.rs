//! Updates per second of offline CQL, IQL, Equi-CQL and Equi-IQL (`crate::cql`, `crate::iql`) at
//! batch 256 with the UR5e reach shapes (observation 22, action 6; C_4 representations from
//! `benches/common`), 2×256 MLPs or 2 × 256-dim regular-feature equivariant trunks, CORL's
//! defaults otherwise (CQL: 10 uniform + 10 π(s) + 10 π(s') actions per state, so each critic
//! step scores 256 · 31 = 7936 state-action pairs), on the flex CPU backend. Each timed update
//! samples its batch from a 10,000-transition dataset. One JSON line per learner.
//!
//! ```sh
//! cargo bench -p equigate-learn --bench offline_update --locked
//! cargo bench -p equigate-learn --bench offline_update --locked -- --seconds 10 --only cql
//! ```

mod common;

use common::{random_replay, representations, Options, ACT_DIM, OBS_DIM};
use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use equigate_learn::cql::{self, CqlConfig};
use equigate_learn::iql::{self, IqlConfig};
use equigate_learn::replay::{Batch, ReplayBuffer};

type B = Autodiff<Flex>;

const BATCH: usize = 256;
const DATASET: usize = 10_000;

fn sample(buffer: &mut ReplayBuffer) -> Batch<B> {
    buffer.sample::<B>(BATCH, &Default::default()).expect("a filled dataset")
}

/// Runs `step` `warmup` times untimed, then for `seconds`; prints updates/s.
fn rate(o: &Options, what: &str, mut step: impl FnMut()) {
    if o.only.as_deref().is_some_and(|w| w != what) {
        return;
    }
    for _ in 0..o.warmup {
        step();
    }
    let start = Instant::now();
    let mut updates = 0u64;
    loop {
        step();
        updates += 1;
        let t = start.elapsed().as_secs_f64();
        if t >= o.seconds {
            println!(
                "{{\"what\": \"{what}\", \"batch\": {BATCH}, \"updates\": {updates}, \"seconds\": {t:.2}, \"updates_per_s\": {:.2}}}",
                updates as f64 / t
            );
            return;
        }
    }
}

fn main() {
    let o = Options::parse(5.0, 5, "cql|iql|equi_cql|equi_iql", false);
    let device = Default::default();
    // s, s' ~ N(0, I), a = tanh(N(0, I)), r = −|s₀|.
    let (mut data, _) = random_replay(DATASET, None);
    let (obs, act) = representations();

    let mut learner = cql::build_mlp::<B>(CqlConfig::new(OBS_DIM, ACT_DIM), &device).unwrap();
    rate(&o, "cql", || {
        learner.train_step(&sample(&mut data));
    });
    drop(learner);
    let mut learner = iql::build_mlp::<B>(IqlConfig::new(OBS_DIM, ACT_DIM), &device).unwrap();
    rate(&o, "iql", || {
        learner.train_step(&sample(&mut data));
    });
    drop(learner);
    let config = CqlConfig::new(OBS_DIM, ACT_DIM);
    let mut learner = cql::build_equi::<B>(config, &obs, &act, &device).unwrap();
    rate(&o, "equi_cql", || {
        learner.train_step(&sample(&mut data));
    });
    drop(learner);
    let config = IqlConfig::new(OBS_DIM, ACT_DIM);
    let mut learner = iql::build_equi::<B>(config, &obs, &act, &device).unwrap();
    rate(&o, "equi_iql", || {
        learner.train_step(&sample(&mut data));
    });
}
