#!/usr/bin/env bash
# Our SAC and PE-SAC update rates beside the PyTorch reference, measured side by side in one run:
# ROUNDS rounds, each running the PyTorch script (2 threads, then 1 thread for reference) and then
# our update_rate bench (SAC, PE-SAC with all networks in the paper's order and pipelined, PE-SAC
# with λ ≡ 0), so that both see the
# same machine; then the medians over the rounds and the ratios.
#
#   benches/compare_torch.sh                  # 3 rounds of 10 s per measurement (about 4 min)
#   ROUNDS=5 SECONDS_EACH=20 benches/compare_torch.sh
#
# TORCH_PYTHON is the Python with torch (default /work/venv-torch/bin/python; install with
# benches/requirements-torch.txt). Builds the bench with `cargo bench --no-run` first.
#
# Other processes distort this badly: PyTorch's 2 OpenMP threads on a 2-core machine slow down
# several-fold when anything else runs (seen: 174 → 2 updates/s beside one busy test process),
# flex's single thread hardly. So every measurement also records `other_cores`, the CPU that
# processes other than the measured one used meanwhile (from /proc/stat, in cores); the summary
# takes the medians over quiet measurements (other_cores < 0.1) when every kind has one, and says
# which it used. Every measurement line is JSON; the last lines are the summary.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(cargo bench -p equigate-learn --bench update_rate --no-run 2>&1 |
    sed -n 's/.*Executable benches\/update_rate.rs (\(.*\))/\1/p' | tail -n 1)
[[ -x "$bin" ]] || { echo "could not build the update_rate bench" >&2; exit 1; }

ROUNDS=${ROUNDS:-3} SECONDS_EACH=${SECONDS_EACH:-10} \
TORCH_PYTHON=${TORCH_PYTHON:-/work/venv-torch/bin/python} BIN="$bin" python3 - <<'EOF'
import json
import os
import resource
import statistics
import subprocess
import time

rounds, seconds = int(os.environ["ROUNDS"]), os.environ["SECONDS_EACH"]
hz = os.sysconf("SC_CLK_TCK")
cores = os.cpu_count()


def busy_seconds():
    """CPU seconds all processes have used (user, nice, system, irq, softirq)."""
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / hz


def measure(cmd):
    """Runs cmd; yields its JSON lines, each with the other processes' CPU (cores) meanwhile."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    child0, busy0, wall0 = usage.ru_utime + usage.ru_stime, busy_seconds(), time.monotonic()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = usage.ru_utime + usage.ru_stime - child0
    wall = time.monotonic() - wall0
    other = max(0.0, (busy_seconds() - busy0 - child) / wall)
    for line in out.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            row["other_cores"] = round(other, 2)
            print(json.dumps(row), flush=True)
            yield row


torch = [os.environ["TORCH_PYTHON"], "benches/torch_sac_update.py", "--seconds", seconds]
rows = []
print(f"# {cores} cores, load average before: {open('/proc/loadavg').read().split()[:3]}")
for r in range(rounds):
    rows += measure(torch + ["--threads", "2"])
    rows += measure(torch + ["--threads", "1"])
    rows += measure([os.environ["BIN"], "--seconds", seconds])
    print(f"# round {r + 1} done", flush=True)


def key(row):
    return (row["impl"], row["what"], row.get("threads"))


kinds = sorted({key(r) for r in rows}, key=str)
quiet = [r for r in rows if r["other_cores"] < 0.1]
use_quiet = all(any(key(r) == k for r in quiet) for k in kinds)
chosen = quiet if use_quiet else rows
median = {k: statistics.median(r["updates_per_s"] for r in chosen if key(r) == k) for k in kinds}
count = {k: sum(key(r) == k for r in chosen) for k in kinds}
print(json.dumps({"summary": "median updates/s", "measurements": "quiet only" if use_quiet
                  else "all (not every kind had a quiet one)",
                  **{"/".join(str(p) for p in k if p is not None): [v, count[k]] for k, v in median.items()}}))
if not use_quiet:
    print("WARNING: other processes ran during the measurements (other_cores >= 0.1); PyTorch's 2 "
          "threads suffer most from that, so the ratios below are not meaningful and no target "
          "verdict is given. Rerun on a quiet machine.")
ref = median[("pytorch", "sac_update", 2)]
ref1 = median[("pytorch", "sac_update", 1)]
for what, target in [("sac_update", 1.0), ("pesac_update", 0.5), ("pesac_update_pipelined", 0.5),
                     ("pesac_update_lambda0", None)]:
    ours = median[("equigate", what, None)]
    verdict = "" if target is None or not use_quiet else \
        f"; target >= {target}x: {'met' if ours / ref >= target else 'missed'}"
    print(f"{what:22s} {ours:7.2f}/s = {ours / ref:.2f}x PyTorch SAC 2 threads ({ref:.2f}/s), "
          f"{ours / ref1:.2f}x PyTorch 1 thread ({ref1:.2f}/s){verdict}")
ours_sac = median[("equigate", "sac_update", None)]
print(f"pesac_update / our sac_update = {median[('equigate', 'pesac_update', None)] / ours_sac:.2f}")
EOF
