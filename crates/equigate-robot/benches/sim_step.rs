//! One internal tick of the kinematic simulator (UR5e): the 500 Hz inner loop, without obstacles
//! (the budget is 2 µs) and, for comparison, with the default table of the reach task.
//!
//! cargo bench -p equigate-robot --bench sim_step -- --quick

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use equigate_robot::model::{RobotKind, RobotModel};
use equigate_robot::sim::{KinematicSim, SimConfig};
use equigate_robot::task::{TableConfig, TaskConfig};

fn sim_step(c: &mut Criterion) {
    let model = RobotModel::ur5e().expect("the shipped UR5e URDF loads");
    let mut sim = KinematicSim::new(model.clone(), SimConfig::default()).expect("default config");
    sim.set_state(&RobotKind::Ur5e.home(), &[0.0; 6]).expect("home is within limits");
    // Alternate the sign so the arm oscillates around home and never reaches a limit.
    let cmd = [[0.3, -0.2, 0.1, 0.4, -0.5, 0.6], [-0.3, 0.2, -0.1, -0.4, 0.5, -0.6]];
    let mut k = 0usize;
    c.bench_function("ur5e_sim_step_no_obstacles", |b| {
        b.iter(|| {
            k ^= 1;
            black_box(sim.step(black_box(&cmd[k])).expect("valid command"))
        })
    });
    let with_table = TaskConfig { table: Some(TableConfig::default()), ..TaskConfig::default() };
    sim.set_scene(with_table.scene());
    c.bench_function("ur5e_sim_step_table", |b| {
        b.iter(|| {
            k ^= 1;
            black_box(sim.step(black_box(&cmd[k])).expect("valid command"))
        })
    });
    let q = RobotKind::Ur5e.home();
    c.bench_function("ur5e_fk_ee", |b| b.iter(|| black_box(model.fk_ee(black_box(&q)))));
}

criterion_group!(benches, sim_step);
criterion_main!(benches);
