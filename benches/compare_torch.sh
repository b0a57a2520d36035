#!/usr/bin/env bash
# Our SAC and PE-SAC update rates beside the PyTorch reference, measured side by side in one run:
# ROUNDS rounds, each running the PyTorch script and then our update_rate bench (SAC, PE-SAC with
# all networks, PE-SAC with λ ≡ 0), so that both see the same machine load; then the medians over
# the rounds and the ratios.
#
#   benches/compare_torch.sh                  # 3 rounds of 10 s per measurement (about 3 min)
#   ROUNDS=5 SECONDS_EACH=20 benches/compare_torch.sh
#
# TORCH_PYTHON is the Python with torch (default /work/venv-torch/bin/python; install with
# benches/requirements-torch.txt). Builds the bench with `cargo bench --no-run` first. Every
# measurement line is JSON; the last lines are the summary.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SECONDS_EACH=${SECONDS_EACH:-10}
TORCH_PYTHON=${TORCH_PYTHON:-/work/venv-torch/bin/python}
THREADS=${TORCH_THREADS:-2}

bin=$(cargo bench -p equigate-learn --bench update_rate --no-run 2>&1 |
    sed -n 's/.*Executable benches\/update_rate.rs (\(.*\))/\1/p' | tail -n 1)
[[ -x "$bin" ]] || { echo "could not build the update_rate bench" >&2; exit 1; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "# $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    "$TORCH_PYTHON" benches/torch_sac_update.py --seconds "$SECONDS_EACH" --threads "$THREADS" |
        tee -a "$log"
    "$bin" --seconds "$SECONDS_EACH" | tee -a "$log"
    echo "# round $round done, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
done

python3 - "$log" <<'EOF'
import json
import statistics
import sys

rates = {}
for line in open(sys.argv[1]):
    row = json.loads(line)
    rates.setdefault((row["impl"], row["what"]), []).append(row["updates_per_s"])
median = {key: statistics.median(values) for key, values in rates.items()}
torch = median[("pytorch", "sac_update")]
ours = {what: rate for (impl, what), rate in median.items() if impl == "equigate"}
print(json.dumps({"summary": "median updates/s over rounds", "rounds": len(rates[("pytorch", "sac_update")]),
                  "pytorch_sac_update": torch, **{f"equigate_{k}": v for k, v in ours.items()}}))
for what, target in [("sac_update", 1.0), ("pesac_update", 0.5), ("pesac_update_lambda0", None)]:
    if what in ours:
        ratio = ours[what] / torch
        verdict = "" if target is None else f"; target >= {target}x: {'met' if ratio >= target else 'missed'}"
        print(f"{what:22s} {ours[what]:8.2f}/s = {ratio:.2f}x PyTorch SAC ({torch:.2f}/s){verdict}")
if "sac_update" in ours and "pesac_update" in ours:
    print(f"pesac_update / our sac_update = {ours['pesac_update'] / ours['sac_update']:.2f}")
EOF
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
