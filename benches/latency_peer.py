"""/joint_states -> policy_node (run mode) -> command latency over loopback DDS, from an independent
Cyclone DDS peer. Run by benches/policy_latency.sh inside a loopback-only namespace:

    tests/interop/in_netns.sh python3 benches/latency_peer.py <policy_node> <run_dir> \
        [seconds] [-p name:=value ...]

Matching a command to the state that caused it: the peer cycles through K = 16 joint states that
differ in two joints. The policy and the safety layer are deterministic functions of (state,
goal), so a calibration phase first records each state's command (checking that the 16 are
distinct), and every command received later names its state index k. The state that caused it
is the latest one sent with index k before the command arrived (one cycle is 32 ms at 500 Hz,
far above any latency measured; a command that matches no reference is counted, not guessed).
The latency of a state is from just before its write to the reception of its first command, on
one monotonic clock; commands received by a thread blocked in a DDS waitset.

Then the stream stalls for 0.5 s: commands must keep coming (from the node's timer) and be zero
once the last state is stale. Prints one line per statistic and a final `RESULT {json}` line;
exits non-zero if the node crashed or the stalled stream got no zero commands.
"""

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "interop"))

from peer_common import (  # noqa: E402
    COMMANDS,
    JOINT_STATES,
    JOINTS,
    Float64MultiArray,
    Header,
    JointState,
    Point,
    PointStamped,
    Time,
    participant,
    reader,
    writer,
)
from cyclonedds.util import duration  # noqa: E402

HOME = [0.3, -1.4, 1.6, -1.8, -1.57, 0.0]
GOAL = Point(x=0.45, y=0.25, z=0.35)
K = 16
RATE_HZ = 500.0
WARMUP_S = 2.0


def state(k):
    q = list(HOME)
    q[0] += 0.03 * k
    q[4] -= 0.02 * k
    now = time.time()
    stamp = Time(sec=int(now), nanosec=int((now % 1) * 1e9))
    return JointState(header=Header(stamp=stamp, frame_id=""), name=list(JOINTS), position=q,
                      velocity=[0.0] * len(JOINTS))


def goal():
    now = time.time()
    stamp = Time(sec=int(now), nanosec=int((now % 1) * 1e9))
    return PointStamped(header=Header(stamp=stamp, frame_id="base_link"), point=GOAL)


class Receiver(threading.Thread):
    """Takes commands as they arrive and stamps them with time.monotonic_ns()."""

    def __init__(self, commands):
        super().__init__(daemon=True)
        self.commands, self.got, self.stop = commands, [], False
        self.lock = threading.Lock()

    def run(self):
        while not self.stop:
            for c in self.commands.take_iter(timeout=duration(milliseconds=100)):
                t = time.monotonic_ns()
                with self.lock:
                    self.got.append((t, list(c.data)))
                if self.stop:
                    break

    def drain(self):
        with self.lock:
            got, self.got = self.got, []
        return got


def cpu_s(pid):
    """User + system CPU seconds of process `pid`."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nearest(refs, cmd):
    best, k_best = math.inf, None
    for k, r in enumerate(refs):
        if len(r) != len(cmd):
            continue
        d = max(abs(a - b) for a, b in zip(r, cmd))
        if d < best:
            best, k_best = d, k
    return k_best, best


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(math.ceil(p / 100.0 * len(xs))) - 1)]


def main():
    node, run_dir = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 and not sys.argv[3].startswith("-") else 15.0
    extra = [a for a in sys.argv[3:] if a == "-p" or ":=" in a]
    dp = participant()
    states = writer(dp, JOINT_STATES, JointState)
    goals = writer(dp, "rt/goal", PointStamped)
    commands = reader(dp, COMMANDS, Float64MultiArray)
    rx = Receiver(commands)
    rx.start()
    proc = subprocess.Popen(
        [node, "--ros-args", "--params-file", "config/policy_ur5e.yaml", "-p", "mode:=run",
         "-p", f"run_dir:={run_dir}"] + extra
    )
    try:
        # Up and connected: commands arrive (zero before any state).
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and not rx.drain():
            goals.write(goal())
            time.sleep(0.05)
        # Calibration: each state for 60 ms at 500 Hz, its command = the last one received, once
        # the last three agree (a busy machine may stall either process; then try again).
        refs = []
        for k in range(K):
            for _ in range(20):
                for i in range(30):
                    if i % 10 == 0:
                        goals.write(goal())
                    states.write(state(k))
                    time.sleep(0.002)
                time.sleep(0.03)
                got = [c for _, c in rx.drain()]
                if len(got) >= 3 and got[-1] == got[-2] == got[-3]:
                    refs.append(got[-1])
                    break
            else:
                raise SystemExit(f"calibration: no steady command for state {k}")
        for i in range(K):
            for j in range(i):
                d = max(abs(a - b) for a, b in zip(refs[i], refs[j]))
                if d < 1e-6:
                    raise SystemExit(f"calibration: states {i} and {j} give the same command")
        if all(v == 0.0 for r in refs for v in r):
            raise SystemExit("calibration: all commands are zero (no goal? stale?)")
        # Measurement at 500 Hz.
        sent = []  # (t_ns, k), index = state number
        period = int(1e9 / RATE_HZ)
        start = time.monotonic_ns()
        cpu0 = cpu_s(proc.pid)
        n_total = int((WARMUP_S + seconds) * RATE_HZ)
        for i in range(n_total):
            target = start + i * period
            while True:
                d = target - time.monotonic_ns()
                if d <= 0:
                    break
                time.sleep(d / 1e9 if d > 300_000 else 0)
            k = i % K
            if i % 50 == 0:
                goals.write(goal())
            msg = state(k)
            sent.append((time.monotonic_ns(), k))
            states.write(msg)
        cpu = (cpu_s(proc.pid) - cpu0) / ((time.monotonic_ns() - start) / 1e9)
        time.sleep(0.2)
        got = rx.drain()
        # A stalled stream: once the last state is stale (0.1 s), the timer must send zeros.
        stall_start = time.monotonic_ns()
        time.sleep(0.5)
        stalled = [c for t, c in rx.drain() if t - stall_start > 0.1e9]
    finally:
        rx.stop = True
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
    # Match: a command with index k belongs to the latest state with index k sent before it.
    latest_by_k = [[] for _ in range(K)]  # state numbers per k, increasing
    for i, (_, k) in enumerate(sent):
        latest_by_k[k].append(i)
    first = {}
    unmatched = repeats = 0
    worst_dist = 0.0
    import bisect
    times_by_k = [[sent[i][0] for i in latest_by_k[k]] for k in range(K)]
    for t, cmd in got:
        k, dist = nearest(refs, cmd)
        if k is None or dist > 1e-9:
            unmatched += 1
            continue
        worst_dist = max(worst_dist, dist)
        j = bisect.bisect_right(times_by_k[k], t) - 1
        if j < 0:
            unmatched += 1
            continue
        i = latest_by_k[k][j]
        if i in first:
            repeats += 1
        else:
            first[i] = t - sent[i][0]
    warm = int(WARMUP_S * RATE_HZ)
    lat = [first[i] / 1e6 for i in sorted(first) if i >= warm]
    measured_states = n_total - warm
    send_jitter = max(sent[i][0] - (start + i * period) for i in range(n_total)) / 1e6
    out = {
        "params": extra,
        "states_sent": measured_states,
        "samples": len(lat),
        "states_without_command": measured_states - len(lat),
        "commands_received": len(got),
        "unmatched_commands": unmatched,
        "repeat_commands": repeats,
        "max_send_lateness_ms": round(send_jitter, 3),
        "p50_ms": round(percentile(lat, 50), 3),
        "p90_ms": round(percentile(lat, 90), 3),
        "p99_ms": round(percentile(lat, 99), 3),
        "max_ms": round(max(lat), 3),
        "mean_ms": round(sum(lat) / len(lat), 3),
        "node_cpu_percent_of_a_core": round(100 * cpu, 1),
        "stalled_stream_commands": len(stalled),
        "stalled_stream_all_zero": all(v == 0.0 for c in stalled for v in c),
        "node_exit_code": code,
    }
    for key, v in out.items():
        print(f"{key}: {v}", flush=True)
    print("RESULT " + json.dumps(out), flush=True)
    if code != 0 or not stalled or not out["stalled_stream_all_zero"]:
        raise SystemExit("FAIL: policy_node crashed, or sent no zero command on a stalled stream")


if __name__ == "__main__":
    main()
