#!/usr/bin/env bash
# policy_node run mode at 500 Hz against the real-time sim_node: commands per second and the
# node's CPU (user + system from /proc/<pid>/stat) over 10 s, with a default-size PE-SAC run
# (C8, 256 wide; 300 random steps, the networks' size is what matters here).
#   cargo build --release --bin equigate --bin sim_node --bin policy_node
#   benches/policy_node_cpu.sh [rate_hz]
# The DDS part runs inside a loopback-only namespace (tests/interop/in_netns.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${EQUIGATE_IN_NETNS:-}" != 1 ]; then
  run=$(mktemp -d /tmp/equigate-policy-bench.XXXXXX)/run
  target/release/equigate train --agent pe-sac --steps 300 --out "$run" >/dev/null 2>&1
  exec tests/interop/in_netns.sh env RUN="$run" "$0" "$@"
fi
rate=${1:-500.0}
log=$(dirname "$RUN")
target/release/sim_node --ros-args --params-file config/ur5e.yaml \
  -p task_file:=config/tasks/ur5e_reach_obstacles.yaml 2>"$log/sim.log" & sim=$!
sleep 0.5
target/release/policy_node --ros-args --params-file config/policy_ur5e.yaml -p mode:=run \
  -p run_dir:="$RUN" -p control_rate_hz:="$rate" 2>"$log/policy.log" & policy=$!
sleep 3
sent() { grep "commands:" "$log/policy.log" | tail -1 | sed 's/.*commands: \([0-9]*\) sent.*/\1/'; }
cpu() { awk '{print $14 + $15}' "/proc/$policy/stat"; }
c0=$(cpu); n0=$(sent); sleep 10; c1=$(cpu); n1=$(sent)
hz=$(getconf CLK_TCK)
kill -INT $policy; wait $policy; kill -INT $sim; wait $sim
echo "policy_node run mode at $rate Hz: $(( (n1 - n0) / 10 )) commands/s, CPU $(( 100 * (c1 - c0) / hz / 10 ))% of a core"
