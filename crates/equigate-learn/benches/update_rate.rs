//! Updates per second of plain SAC and of the full PE-SAC update, with the shapes of
//! `benches/torch_sac_update.py` (observation 22, action 6, batch 256, 2×256 MLPs), on the flex
//! CPU backend; one JSON line per learner, for `benches/compare_torch.sh`. Each timed update
//! samples its batch from a 10,000-transition replay buffer, as the PyTorch reference does.
//!
//! ```sh
//! cargo bench -p equigate-learn --bench update_rate --no-run   # prints the binary's path
//! target/release/deps/update_rate-<hash> [--seconds 10] [--warmup 50] [--only sac|pesac|pesac_pipelined|pesac_pipelined_all|pesac_e]
//! target/release/deps/update_rate-<hash> --breakdown           # where the time goes
//! ```
//!
//! `pesac_update` runs every network each update (two critic pairs, two actors, two predictors,
//! two gates): its gate warm-up lasts the `--warmup` untimed updates, so the timed ones take the
//! gated path, and the gates stay at their initialisation (gate learning rate 0; their Adam steps
//! still run), where p ≈ 0.5 sends part of each batch to each branch. A trained gate on random
//! data soon sends every sample to the equivariant branch, and a branch that no sample uses is
//! not evaluated, so that is measured apart: `pesac_update_lambda0` (inside the warm-up, λ ≡ 0).
//! The mean λ (action gate) and λζ (state gate) of the timed updates are printed with the rate.
//! `pesac_update_pipelined` is `pesac_update` with steps 1–4 (predictors, disagreement, labels,
//! gates) on a second thread beside the critic and actor steps (`PeSacConfig::pipelined`);
//! `pesac_update_pipelined_pi_n_all_states` adds π_N's actor loss on every state
//! (`PeSacConfig::pi_n_all_states`).
//!
//! `--breakdown` times each step of one update (mean ms over 30 updates after the warm-up) and
//! one forward and forward + backward pass of each network at batch 256, and of an equivariant
//! twin critic with a 256-wide invariant embedding (`EquiConfig::invariant_embedding`).

mod common;

use common::{random_replay, representations, Options, ACT_DIM, OBS_DIM};
use std::hint::black_box;
use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::tensor::Tensor;
use equigate_learn::nets::{EquiConfig, EquiCritic, MlpActor, MlpCritic};
use equigate_learn::pesac::{PeSac, PeSacConfig};
use equigate_learn::replay::{Batch, ReplayBuffer};
use equigate_learn::sac::{Sac, SacConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

type B = Autodiff<Flex>;

const BATCH: usize = 256;
const BUFFER: usize = 10_000;

/// A replay buffer of random transitions: s, s' ~ N(0, I), a = tanh(N(0, I)), r = −|s₀|.
fn buffer() -> ReplayBuffer {
    random_replay(BUFFER, None).0
}

fn sac() -> Sac<B, MlpCritic<B>, MlpActor<B>> {
    let config = SacConfig::new(OBS_DIM, ACT_DIM);
    let device = Default::default();
    let (q, actor) =
        config.mlp_networks(&mut ChaCha8Rng::seed_from_u64(0), &device).expect("non-zero widths");
    Sac::new(config, q, actor, &device)
}

fn pesac(gate_warmup_updates: u64, gate_lr: f64, pipelined: bool) -> PeSac<B> {
    pesac_with(
        PeSacConfig::new(SacConfig::new(OBS_DIM, ACT_DIM)),
        gate_warmup_updates,
        gate_lr,
        pipelined,
    )
}

fn pesac_with(
    config: PeSacConfig,
    gate_warmup_updates: u64,
    gate_lr: f64,
    pipelined: bool,
) -> PeSac<B> {
    let config = config
        .with_gate_warmup_updates(gate_warmup_updates)
        .with_gate_lr(gate_lr)
        .with_pipelined(pipelined);
    let (obs, act) = representations();
    PeSac::new(config, &obs, &act, &Default::default()).expect("valid sizes")
}

fn sample(buffer: &mut ReplayBuffer) -> Batch<B> {
    buffer.sample::<B>(BATCH, &Default::default()).expect("a filled buffer")
}

/// Runs `step` `warmup` times untimed, then for `seconds`; returns (updates, elapsed s).
fn rate(warmup: u64, seconds: f64, mut step: impl FnMut()) -> (u64, f64) {
    for _ in 0..warmup {
        step();
    }
    let start = Instant::now();
    let mut updates = 0;
    loop {
        step();
        updates += 1;
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= seconds {
            return (updates, elapsed);
        }
    }
}

fn print_rate(what: &str, updates: u64, elapsed: f64, extra: &str) {
    println!(
        "{{\"impl\": \"equigate\", \"what\": \"{what}\", \"updates_per_s\": {:.2}, \"updates\": {updates}, \"seconds\": {elapsed:.3}, \"backend\": \"flex\"{extra}}}",
        updates as f64 / elapsed
    );
}

fn run_rates(o: &Options) {
    let mut replay = buffer();
    if o.only.as_deref().is_none_or(|w| w == "sac") {
        let mut learner = sac();
        let (n, t) = rate(o.warmup, o.seconds, || {
            let batch = sample(&mut replay);
            learner.train_step(&batch);
        });
        print_rate("sac_update", n, t, "");
    }
    // All networks every update: gates frozen at their initialisation (gate_lr 0; their Adam
    // steps still run), where p ≈ 0.5 sends parts of each batch to each branch.
    if o.only.as_deref().is_none_or(|w| w == "pesac") {
        pesac_rate(o, "pesac_update", pesac(o.warmup, 0.0, false), &mut replay);
    }
    // The same with steps 1–4 on a second thread (`PeSacConfig::pipelined`).
    if o.only.as_deref().is_none_or(|w| w == "pesac_pipelined") {
        pesac_rate(o, "pesac_update_pipelined", pesac(o.warmup, 0.0, true), &mut replay);
    }
    // The same with π_N's actor loss on every state (`PeSacConfig::pi_n_all_states`): π_N
    // also samples and is scored on the λζ = 0 rows.
    if o.only.as_deref().is_none_or(|w| w == "pesac_pipelined_all") {
        let config = PeSacConfig::new(SacConfig::new(OBS_DIM, ACT_DIM)).with_pi_n_all_states(true);
        let learner = pesac_with(config, o.warmup, 0.0, true);
        pesac_rate(o, "pesac_update_pipelined_pi_n_all_states", learner, &mut replay);
    }
    // Every λ ≡ 0 (inside the gate warm-up): Q_N and π_N are neither evaluated nor stepped, the
    // state a trained gate reaches on a symmetric task.
    if o.only.as_deref().is_none_or(|w| w == "pesac_e") {
        pesac_rate(o, "pesac_update_lambda0", pesac(u64::MAX, 3e-4, false), &mut replay);
    }
}

fn pesac_rate(o: &Options, what: &str, mut learner: PeSac<B>, replay: &mut ReplayBuffer) {
    let (mut lambda, mut lambda_zeta, mut timed) = (0.0f64, 0.0f64, 0u64);
    let (n, t) = rate(o.warmup, o.seconds, || {
        let batch = sample(replay);
        let m = learner.train_step(&batch);
        if learner.updates() > o.warmup {
            lambda += f64::from(m.lambda_fraction);
            lambda_zeta += f64::from(m.lambda_zeta_fraction);
            timed += 1;
        }
    });
    let timed = timed.max(1) as f64;
    let extra = format!(
        ", \"gate_warmup_updates\": {}, \"gate_lr\": {}, \"mean_lambda\": {:.3}, \"mean_lambda_zeta\": {:.3}",
        learner.config.gate_warmup_updates,
        learner.config.gate_lr,
        lambda / timed,
        lambda_zeta / timed
    );
    print_rate(what, n, t, &extra);
}

/// Mean milliseconds of `f` over `reps` calls, after 3 untimed ones.
fn mean_ms<R>(reps: u32, mut f: impl FnMut() -> R) -> f64 {
    for _ in 0..3 {
        black_box(f());
    }
    let start = Instant::now();
    for _ in 0..reps {
        black_box(f());
    }
    start.elapsed().as_secs_f64() * 1e3 / f64::from(reps)
}

/// Reads a forward pass's outputs back (so that nothing is left pending).
trait ReadBack {
    fn sync(self) -> Vec<burn::tensor::TensorData>;
}
impl ReadBack for Tensor<Flex, 2> {
    fn sync(self) -> Vec<burn::tensor::TensorData> {
        vec![self.into_data()]
    }
}
impl ReadBack for (Tensor<Flex, 2>, Tensor<Flex, 2>) {
    fn sync(self) -> Vec<burn::tensor::TensorData> {
        vec![self.0.into_data(), self.1.into_data()]
    }
}
fn sync(outputs: impl ReadBack) -> Vec<burn::tensor::TensorData> {
    outputs.sync()
}

fn print_ms(learner: &str, part: &str, ms: f64) {
    println!("{{\"what\": \"breakdown\", \"learner\": \"{learner}\", \"part\": \"{part}\", \"ms\": {ms:.3}}}");
}

/// Per-step and per-network times of both learners after the warm-up.
fn run_breakdown(o: &Options) {
    const REPS: u32 = 30;
    let mut replay = buffer();

    let mut s = sac();
    for _ in 0..o.warmup {
        s.train_step(&sample(&mut replay));
    }
    let batch = sample(&mut replay);
    print_ms("sac", "train_step", mean_ms(REPS, || s.train_step(&batch)));
    let alpha = s.alpha();
    print_ms("sac", "update_critic", mean_ms(REPS, || s.update_critic(&batch, alpha)));
    print_ms("sac", "update_actor", mean_ms(REPS, || s.update_actor(&batch, alpha)));
    let (_, log_pi) = s.update_actor(&batch, alpha);
    print_ms("sac", "update_alpha", mean_ms(REPS, || s.update_alpha(log_pi.clone())));
    print_ms("sac", "soft_update_targets", mean_ms(REPS, || s.soft_update_targets()));

    let mut p = pesac(o.warmup, 0.0, false);
    for _ in 0..o.warmup {
        p.train_step(&sample(&mut replay));
    }
    let m = p.train_step(&batch);
    println!(
        "{{\"what\": \"breakdown\", \"learner\": \"pesac\", \"lambda\": {}, \"lambda_zeta\": {}}}",
        m.lambda_fraction, m.lambda_zeta_fraction
    );
    print_ms("pesac", "train_step", mean_ms(REPS, || p.train_step(&batch)));
    let alpha = p.alpha();
    print_ms("pesac", "update_predictors", mean_ms(REPS, || p.update_predictors(&batch)));
    print_ms("pesac", "disagreement", mean_ms(REPS, || p.disagreement(&batch)));
    let dis = p.disagreement(&batch);
    print_ms("pesac", "pseudo_labels", mean_ms(REPS, || p.pseudo_labels(&dis)));
    let (y, _) = p.pseudo_labels(&dis);
    print_ms("pesac", "update_gates", mean_ms(REPS, || p.update_gates(&batch, &y)));
    print_ms("pesac", "update_critic", mean_ms(REPS, || p.update_critic(&batch, alpha)));
    print_ms("pesac", "update_actor", mean_ms(REPS, || p.update_actor(&batch, alpha)));
    let (_, log_pi, _) = p.update_actor(&batch, alpha);
    print_ms("pesac", "update_alpha", mean_ms(REPS, || p.update_alpha(log_pi.clone())));
    print_ms("pesac", "soft_update_targets", mean_ms(REPS, || p.soft_update_targets()));

    // One network at batch 256: forward on the inner backend (no graph), and forward + backward
    // of the sum of its outputs on the autodiff backend (graph, gradients of every parameter).
    let (obs, act) = (batch.obs.clone(), batch.actions.clone());
    let (obs_i, act_i) = (obs.clone().inner(), act.clone().inner());
    let backward = |y: Tensor<B, 2>| y.sum().backward();
    macro_rules! critic {
        ($name:expr, $net:expr) => {{
            let (net, inner) = ($net.clone(), $net.valid());
            print_ms(
                "nets",
                concat!($name, " forward"),
                mean_ms(REPS, || sync(inner.forward(obs_i.clone(), act_i.clone()))),
            );
            print_ms(
                "nets",
                concat!($name, " forward+backward"),
                mean_ms(REPS, || backward(net.forward(obs.clone(), act.clone()))),
            );
        }};
    }
    macro_rules! actor {
        ($name:expr, $net:expr) => {{
            let (net, inner) = ($net.clone(), $net.valid());
            print_ms(
                "nets",
                concat!($name, " forward"),
                mean_ms(REPS, || sync(inner.forward(obs_i.clone()))),
            );
            print_ms(
                "nets",
                concat!($name, " forward+backward"),
                mean_ms(REPS, || {
                    let (mean, log_std) = net.forward(obs.clone());
                    backward(mean + log_std)
                }),
            );
        }};
    }
    critic!("q_n MlpCritic (twin)", p.q_n);
    critic!("q_e EquiCritic (twin)", p.q_e);
    let q_e_embedded = {
        let (obs_rep, act_rep) = representations();
        let config = EquiConfig::new().with_invariant_embedding(256);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        EquiCritic::<B>::new(&config, &obs_rep, &act_rep, &mut rng, &Default::default())
            .expect("valid representations")
    };
    critic!("q_e EquiCritic (twin), invariant embedding 256", q_e_embedded);
    print_ms("nets", "q_e EquiCritic frozen (dense) forward", {
        let frozen = p.q_e.valid().frozen();
        mean_ms(REPS, || frozen.forward(obs_i.clone(), act_i.clone()).into_data())
    });
    actor!("pi_n MlpActor", p.pi_n);
    actor!("pi_e EquiActor", p.pi_e);
    macro_rules! predictor {
        ($name:expr, $net:expr) => {{
            let (net, inner) = ($net.clone(), $net.valid());
            print_ms(
                "nets",
                concat!($name, " forward"),
                mean_ms(REPS, || sync(inner.forward(obs_i.clone(), act_i.clone()))),
            );
            print_ms(
                "nets",
                concat!($name, " forward+backward"),
                mean_ms(REPS, || {
                    let (delta, reward) = net.forward(obs.clone(), act.clone());
                    backward(Tensor::cat(vec![delta, reward], 1))
                }),
            );
        }};
    }
    predictor!("p_n MlpPredictor", p.p_n);
    predictor!("p_e EquiPredictor", p.p_e);
    critic!("gate_omega ActionGate", p.gate_omega);
    actor_gate(&p, &obs, &obs_i, REPS);
}

/// The state gate has one input, so it does not fit the macros above.
fn actor_gate(p: &PeSac<B>, obs: &Tensor<B, 2>, obs_i: &Tensor<Flex, 2>, reps: u32) {
    let (net, inner) = (p.gate_zeta.clone(), p.gate_zeta.valid());
    print_ms(
        "nets",
        "gate_zeta StateGate forward",
        mean_ms(reps, || inner.forward(obs_i.clone()).into_data()),
    );
    print_ms(
        "nets",
        "gate_zeta StateGate forward+backward",
        mean_ms(reps, || net.forward(obs.clone()).sum().backward()),
    );
}

fn main() {
    let o = Options::parse(10.0, 50, "sac|pesac|pesac_pipelined|pesac_pipelined_all|pesac_e", true);
    if o.breakdown {
        run_breakdown(&o);
    } else {
        run_rates(&o);
    }
}
