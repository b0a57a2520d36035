#!/usr/bin/env bash
# Issue 5 results: record scripted datasets of 1k and 10k transitions on the default obstacle task
# (config/train/ur5e_reach_obstacles.yaml), train CQL, IQL, Equi-CQL and Equi-IQL offline on each,
# and evaluate every policy on 100 simulator episodes. Prints one table row per run.
#
#   benches/offline_experiment.sh          # IQL_UPDATES=10000 CQL_UPDATES=2000 SEED=0 SIZES="1000 10000"
#   SIZES=1000 benches/offline_experiment.sh & SIZES=10000 benches/offline_experiment.sh   # 2 cores
#   CONFIG=config/train/ur5e_reach.yaml OUT=runs/offline_reach benches/offline_experiment.sh  # no boxes
#
# CQL gets fewer updates: with 10 actions from each of its 3 proposals it runs the critics on 31x
# the batch, about 5 updates/s here against IQL's 90-120. No DDS: `equigate collect` writes the
# bags in process. BENCHMARKS.md has the numbers and the time taken.
set -euo pipefail
cd "$(dirname "$0")/.."
IQL_UPDATES=${IQL_UPDATES:-10000}
CQL_UPDATES=${CQL_UPDATES:-2000}
SIZES=${SIZES:-1000 10000}
ALGOS=${ALGOS:-cql iql}
CQL_ARGS=${CQL_ARGS:-}        # e.g. "--cql-alpha 1 --lr 1e-4" (Equi-CQL's paper settings)
TAG=${TAG:-}                  # appended to the run names
SEED=${SEED:-0}
OUT=${OUT:-runs/offline_experiment}
CONFIG=${CONFIG:-config/train/ur5e_reach_obstacles.yaml}   # robot and task of the data and the evaluation
EPISODES=${EPISODES:-100}
[ -n "${NO_BUILD:-}" ] || cargo build --release --locked --bin equigate
BIN=target/release/equigate
mkdir -p "$OUT/bags"
for n in $SIZES; do
  bag="$OUT/bags/scripted_$n"
  [ -d "$bag" ] || "$BIN" collect --config "$CONFIG" --steps "$n" --seed "$SEED" --out "$bag"
done
printf '%-8s %-10s %8s %10s %10s %12s\n' dataset algo updates success return updates/s
for n in $SIZES; do
  for algo in $ALGOS; do
    if [ "$algo" = cql ]; then UPDATES=$CQL_UPDATES; else UPDATES=$IQL_UPDATES; fi
    for equi in "" "--equivariant"; do
      name="$algo${equi:+-equi}-$n$TAG"
      extra=""
      [ "$algo" = cql ] && extra=$CQL_ARGS
      run="$OUT/$name"
      if [ ! -f "$run/checkpoint/run_state.json" ]; then
        "$BIN" offline --algo "$algo" $equi $extra --config "$CONFIG" --bag "$OUT/bags/scripted_$n" --updates "$UPDATES" \
          --eval-every "$UPDATES" --seed "$SEED" --out "$run" >"$OUT/$name.log" 2>&1
      fi
      rate=$(grep -o '[0-9.]* updates/s' "$OUT/$name.log" | tail -1 | cut -d' ' -f1)
      line=$("$BIN" eval "$run" --episodes "$EPISODES" 2>/dev/null | grep '^trained')
      success=$(sed -E 's/.*success ([0-9.]+)%.*/\1/' <<<"$line")
      ret=$(sed -E 's/.*mean return (-?[0-9.]+).*/\1/' <<<"$line")
      printf '%-8s %-10s %8s %9s%% %10s %12s\n' "$n" "$algo${equi:+-equi}$TAG" "$UPDATES" "$success" "$ret" "$rate"
    done
  done
done
