"""Feeds policy_node (run mode) bad joint states from an independent DDS peer (Cyclone DDS) and
checks that every command it sends meanwhile is zero velocity and that it never crashes. Run by
tests/policy_node_interop.rs inside a loopback-only namespace:

    tests/interop/in_netns.sh python3 tests/interop/policy_peer.py <policy_node> <run_dir>

Phases (each ~1 s, joint_states at 100 Hz, the goal at 10 Hz): good states (the policy must move),
NaN positions, a missing joint, arrays of the wrong length, an empty velocity array, an infinite
velocity, good again (it must recover), then a stalled stream (no joint_states at all). Commands
received in the first 0.3 s of a phase are not judged (they may answer the previous phase).
Exits 0 when every check passes and prints one line per check.
"""

import math
import signal
import subprocess
import sys
import time

from peer_common import (
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

HOME = [0.3, -1.4, 1.6, -1.8, -1.57, 0.0]
GOAL = Point(x=0.45, y=0.25, z=0.35)
SETTLE_S = 0.3


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        raise SystemExit(1)


def good_state():
    return JointState(name=list(JOINTS), position=list(HOME), velocity=[0.0] * len(JOINTS))


def nan_positions():
    s = good_state()
    s.position[2] = math.nan
    return s


def missing_joint():
    s = good_state()
    s.name, s.position, s.velocity = s.name[:-1], s.position[:-1], s.velocity[:-1]
    return s


def wrong_lengths():
    s = good_state()
    s.velocity = s.velocity[:4]
    return s


def empty_velocity():
    s = good_state()
    s.velocity = []
    return s


def inf_velocity():
    s = good_state()
    s.velocity[0] = math.inf
    return s


def run_phase(states, goals, commands, make_state, seconds=1.0):
    """Publishes for `seconds` (make_state None: nothing on joint_states); returns the commands
    received after the settling time."""
    start = time.monotonic()
    judged, k = [], 0
    while time.monotonic() - start < seconds:
        now = time.time()
        stamp = Time(sec=int(now), nanosec=int((now % 1) * 1e9))
        if make_state is not None:
            s = make_state()
            s.header = Header(stamp=stamp, frame_id="")
            states.write(s)
        if k % 10 == 0:
            goals.write(PointStamped(header=Header(stamp=stamp, frame_id="base_link"), point=GOAL))
        k += 1
        for c in commands.take(N=100):
            if time.monotonic() - start > SETTLE_S:
                judged.append(list(c.data))
        time.sleep(0.01)
    return judged


def main():
    node, run_dir = sys.argv[1], sys.argv[2]
    dp = participant()
    states = writer(dp, JOINT_STATES, JointState)
    goals = writer(dp, "rt/goal", PointStamped)
    commands = reader(dp, COMMANDS, Float64MultiArray)
    proc = subprocess.Popen(
        [node, "--ros-args", "--params-file", "config/policy_ur5e.yaml", "-p", "mode:=run",
         "-p", f"run_dir:={run_dir}", "-p", "control_rate_hz:=50.0"]
    )
    try:
        # Before any joint state: zeros (the node holds still), and it is up.
        first, deadline = [], time.monotonic() + 20.0
        while not first and time.monotonic() < deadline:
            first = run_phase(states, goals, commands, None, seconds=1.0)
        check(len(first) > 0, f"commands arrive before any joint state ({len(first)})")
        check(all(v == 0.0 for c in first for v in c), "they are zero velocity")
        phases = [
            ("good joint states", good_state, False),
            ("NaN position", nan_positions, True),
            ("missing joint", missing_joint, True),
            ("velocity array of the wrong length", wrong_lengths, True),
            ("empty velocity array", empty_velocity, True),
            ("infinite velocity", inf_velocity, True),
            ("good joint states again", good_state, False),
            ("stalled joint_states stream", None, True),
        ]
        for what, make, expect_zero in phases:
            cmds = run_phase(states, goals, commands, make)
            check(len(cmds) >= 20, f"{what}: commands keep coming ({len(cmds)} in 0.7 s)")
            check(all(len(c) == len(JOINTS) for c in cmds), f"{what}: 6 values each")
            check(all(math.isfinite(v) for c in cmds for v in c), f"{what}: all finite")
            if expect_zero:
                check(all(v == 0.0 for c in cmds for v in c), f"{what}: zero velocity")
            else:
                check(any(v != 0.0 for c in cmds for v in c), f"{what}: the policy moves the arm")
            check(proc.poll() is None, f"{what}: policy_node still running")
    finally:
        proc.send_signal(signal.SIGINT)  # what ros2 launch sends first
        code = proc.wait(timeout=10)
    check(code == 0, f"policy_node exits cleanly on SIGINT (code {code})")
    print("all policy_node bad-input checks passed", flush=True)


if __name__ == "__main__":
    main()
