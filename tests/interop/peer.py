"""Cyclone DDS peer for the interop test (crates/equigate-ros/tests/interop.rs).

    python3 tests/interop/peer.py listen --count 3 --timeout 30   # receive from the Rust talker
    python3 tests/interop/peer.py listen --image 3                # ... and N depth images too
    python3 tests/interop/peer.py talk --duration 15              # publish to the Rust listener
    python3 tests/interop/peer.py talk --best-effort              # ... with best-effort writers
    python3 tests/interop/peer.py call-reset --service /talker/reset  # std_srvs/Trigger, Cyclone mapping

Run only inside a network namespace with just `lo`. Prints one line per check and exits 0 when
every received message equals the expected one and at least --count of each type arrived.
"""


import argparse
import sys
import time

import peer_common as pc


def listen(count: int, images: int, timeout: float) -> int:
    dp = pc.participant()
    js_reader = pc.reader(dp, pc.JOINT_STATES, pc.JointState)
    cmd_reader = pc.reader(dp, pc.COMMANDS, pc.Float64MultiArray)
    img_reader = pc.sensor_reader(dp, pc.DEPTH_IMAGE, pc.Image)
    got = {"joint_states": 0, "commands": 0, "images": 0}
    need = {"joint_states": count, "commands": count, "images": images}
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
        for img in img_reader.take(N=10):
            why = pc.check_depth_image(img)
            if why is not None:
                print(f"MISMATCH image: {why}", flush=True)
                return 1
            got["images"] += 1
            print(f"ok image k={img.header.stamp.sec} {img.width}x{img.height} {len(img.data)} bytes", flush=True)
        if all(got[t] >= need[t] for t in got):
            print(f"RECEIVED {got}", flush=True)
            return 0
        time.sleep(0.02)
    print(f"TIMEOUT after {timeout}s, received {got}", flush=True)
    return 1


def call_reset(service: str, timeout: float) -> int:
    """Calls a std_srvs/Trigger service the way an rmw_cyclonedds client does."""
    dp = pc.participant()
    name = service.lstrip("/")
    req_writer = pc.writer(dp, f"rq/{name}Request", pc.TriggerRequestCyclone)
    rep_reader = pc.reader(dp, f"rr/{name}Reply", pc.TriggerResponseCyclone)
    guid = [0x45, 0x51, 0x55, 0x49, 0x47, 0x41, 0x54, 0x45]
    deadline = time.monotonic() + timeout
    seq = 0
    next_send = 0.0
    while time.monotonic() < deadline:
        # Requests are volatile: resend until the server has matched and answered.
        if time.monotonic() >= next_send:
            seq += 1
            req_writer.write(pc.TriggerRequestCyclone(guid=guid, seq_high=0, seq_low=seq))
            next_send = time.monotonic() + 0.5
        for rep in rep_reader.take(N=10):
            if list(rep.guid) != guid:
                continue
            print(f"reply seq={rep.seq_low} success={rep.success} message={rep.message!r}", flush=True)
            if rep.success and rep.message.startswith("reset at") and 1 <= rep.seq_low <= seq:
                print("SERVICE OK", flush=True)
                return 0
            print("MISMATCH reply", flush=True)
            return 1
        time.sleep(0.02)
    print(f"TIMEOUT: no reply from {service} after {seq} requests", flush=True)
    return 1


def talk(duration: float, rate_hz: float, best_effort: bool) -> int:
    dp = pc.participant()
    make = pc.sensor_writer if best_effort else pc.writer
    js_writer = make(dp, pc.JOINT_STATES, pc.JointState)
    cmd_writer = make(dp, pc.COMMANDS, pc.Float64MultiArray)
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
    lp.add_argument("--image", type=int, default=0, help="depth images to require")
    lp.add_argument("--timeout", type=float, default=30.0)
    cp = sub.add_parser("call-reset")
    cp.add_argument("--service", default="/talker/reset")
    cp.add_argument("--timeout", type=float, default=30.0)
    tp = sub.add_parser("talk")
    tp.add_argument("--duration", type=float, default=15.0)
    tp.add_argument("--rate", type=float, default=20.0)
    tp.add_argument("--best-effort", action="store_true", help="sensor-data QoS writers")
    a = ap.parse_args()
    if a.mode == "listen":
        return listen(a.count, a.image, a.timeout)
    if a.mode == "call-reset":
        return call_reset(a.service, a.timeout)
    return talk(a.duration, a.rate, a.best_effort)


if __name__ == "__main__":
    sys.exit(main())
