"""Cyclone DDS peer for the interop test (crates/equigate-ros/tests/interop.rs).

    python3 tests/interop/peer.py listen --count 3 --timeout 30   # receive from the Rust talker
    python3 tests/interop/peer.py talk --duration 15              # publish to the Rust listener

Run only inside a network namespace with just `lo`. Prints one line per check and exits 0 when
every received message equals the expected one and at least --count of each type arrived.
"""


import argparse
import sys
import time

import peer_common as pc


def listen(count: int, timeout: float) -> int:
    dp = pc.participant()
    js_reader = pc.reader(dp, pc.JOINT_STATES, pc.JointState)
    cmd_reader = pc.reader(dp, pc.COMMANDS, pc.Float64MultiArray)
    got = {"joint_states": 0, "commands": 0}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for js in js_reader.take(N=50):
            want = pc.expected_joint_state(js.header.stamp.sec)
            if js != want:
                print(f"MISMATCH joint_states: got {js} want {want}", flush=True)
                return 1
            got["joint_states"] += 1
            print(f"ok joint_states k={js.header.stamp.sec} position={js.position}", flush=True)
        for cmd in cmd_reader.take(N=50):
            k = round((cmd.data[0] if cmd.data else 0.0) / 0.01)
            want = pc.expected_command(k)
            if cmd != want:
                print(f"MISMATCH commands: got {cmd} want {want}", flush=True)
                return 1
            got["commands"] += 1
            print(f"ok commands k={k} data={cmd.data}", flush=True)
        if min(got.values()) >= count:
            print(f"RECEIVED {got}", flush=True)
            return 0
        time.sleep(0.02)
    print(f"TIMEOUT after {timeout}s, received {got}", flush=True)
    return 1


def talk(duration: float, rate_hz: float) -> int:
    dp = pc.participant()
    js_writer = pc.writer(dp, pc.JOINT_STATES, pc.JointState)
    cmd_writer = pc.writer(dp, pc.COMMANDS, pc.Float64MultiArray)
    end = time.monotonic() + duration
    k = 0
    while time.monotonic() < end:
        js_writer.write(pc.expected_joint_state(k))
        cmd_writer.write(pc.expected_command(k))
        k += 1
        time.sleep(1.0 / rate_hz)
    print(f"PUBLISHED {k} of each", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    lp = sub.add_parser("listen")
    lp.add_argument("--count", type=int, default=3)
    lp.add_argument("--timeout", type=float, default=30.0)
    tp = sub.add_parser("talk")
    tp.add_argument("--duration", type=float, default=15.0)
    tp.add_argument("--rate", type=float, default=20.0)
    a = ap.parse_args()
    if a.mode == "listen":
        return listen(a.count, a.timeout)
    return talk(a.duration, a.rate)


if __name__ == "__main__":
    sys.exit(main())
