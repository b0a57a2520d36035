#!/usr/bin/env bash
# The recorded graph, end to end: `equigate record` beside `equigate graph` (lockstep sim_node and
# policy_node over DDS, 2000 steps of SAC's random phase), then the dataset `equigate offline`
# builds from the bag (transitions vs commands, what was dropped). Run once with wall-clock log
# times and once with `use_sim_time:=true`. DDS stays inside a loopback-only namespace.
#
#   benches/recorded_graph_dataset.sh        # after cargo build --release --bin equigate
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${EQUIGATE_IN_NETNS:-}" != 1 ]; then
  exec tests/interop/in_netns.sh "$0" "$@"
fi
BIN=$PWD/target/release/equigate
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for sim_time in false true; do
  dir="$work/$sim_time"
  mkdir -p "$dir"
  "$BIN" record --ros-args -p output:="$dir/bag" -p use_sim_time:=$sim_time >"$dir/record.log" 2>&1 &
  rec=$!
  sleep 2
  "$BIN" graph --steps 2000 --no-detector --agent sac --out "$dir/run" >"$dir/graph.log" 2>&1
  kill -INT $rec
  wait $rec
  echo "== use_sim_time $sim_time"
  "$BIN" offline --algo iql --bag "$dir/bag" --updates 10 --eval-every 10 --out "$dir/iql" 2>&1 \
    | sed -n '/^dataset/,/^\//p' | grep -v '^/'
done
