#!/usr/bin/env bash
# /joint_states -> policy_node (run mode) -> command latency over loopback DDS, measured by an
# independent Cyclone DDS peer (benches/latency_peer.py: joint states at 500 Hz, each command
# matched to the state that caused it) with default-size PE-SAC and SAC runs (300 random steps:
# the networks' size is what matters here). Cases: act_on_state (a command per joint state) for
# PE-SAC and SAC, and for comparison the timer mode at 500 Hz.
#   cargo build --release --bin equigate --bin policy_node
#   pip install -r tests/interop/requirements.txt
#   benches/policy_latency.sh [seconds per case, default 15]
# The DDS part runs inside a loopback-only namespace (tests/interop/in_netns.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${EQUIGATE_IN_NETNS:-}" != 1 ]; then
  dir=$(mktemp -d /tmp/equigate-latency-bench.XXXXXX)
  for agent in pe-sac sac; do
    target/release/equigate train --agent "$agent" --steps 300 --out "$dir/$agent" >/dev/null 2>&1
  done
  exec tests/interop/in_netns.sh env DIR="$dir" "$0" "$@"
fi
secs=${1:-15}
node=target/release/policy_node
run_case() {
  echo "== $1"
  python3 benches/latency_peer.py "$node" "$DIR/$2" "$secs" "${@:3}" 2>"$DIR/$1.log" | grep -v RESULT
}
run_case "pe-sac act_on_state" pe-sac -p act_on_state:=true
run_case "sac act_on_state" sac -p act_on_state:=true
run_case "pe-sac timer 500 Hz" pe-sac -p control_rate_hz:=500.0
