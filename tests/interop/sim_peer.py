"""Checks sim_node from an independent DDS peer (Cyclone DDS): what it publishes and how the arm
answers velocity commands. Run by tests/sim_node_interop.rs inside a loopback-only namespace:

    tests/interop/in_netns.sh python3 tests/interop/sim_peer.py <path to sim_node> [realtime|lockstep]

Starts sim_node (UR5e defaults) in the given mode and checks it. Exits 0 when every check passes and
prints one line per check.
"""

import math
import struct
import subprocess
import sys
import time

from peer_common import (
    COMMANDS,
    DEPTH_IMAGE,
    JOINT_STATES,
    JOINTS,
    CameraInfo,
    Clock,
    Float64MultiArray,
    Image,
    JointState,
    PointStamped,
    participant,
    reader,
    sensor_reader,
    writer,
)

UR5E = JOINTS  # the UR5e joints in ur_robot_driver's controller order
FX_64 = 32.0 / math.tan(math.radians(30.0))  # (W/2) / tan(FOV/2), REP 104 pinhole


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        raise SystemExit(1)


def wait_for(rd, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        samples = rd.take(N=100)
        if samples:
            return samples[-1]
        time.sleep(0.01)
    check(False, f"received {what} within {timeout_s} s")


def latest_state(rd):
    """The newest joint state after draining what has queued up."""
    return wait_for(rd, 2.0, "joint_states")


def hold(wr, data, seconds, rate_hz=50.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        wr.write(Float64MultiArray(data=list(data)))
        time.sleep(1.0 / rate_hz)


def main():
    mode = sys.argv[2] if len(sys.argv) > 2 else "realtime"
    sim = subprocess.Popen([sys.argv[1], "--ros-args", "-p", "robot:=ur5e", "-p", f"mode:={mode}"])
    try:
        run_lockstep() if mode == "lockstep" else run()
    finally:
        sim.terminate()
        sim.wait(timeout=10)


def run():
    dp = participant()
    states = reader(dp, JOINT_STATES, JointState)
    depth = sensor_reader(dp, DEPTH_IMAGE, Image)
    info = reader(dp, "rt/camera/depth/camera_info", CameraInfo)
    goal = reader(dp, "rt/goal", PointStamped)
    commands = writer(dp, COMMANDS, Float64MultiArray)

    js = wait_for(states, 30.0, "joint_states")
    check(list(js.name) == UR5E, f"joint names in controller order: {list(js.name)}")
    check(len(js.position) == 6 and all(math.isfinite(p) for p in js.position), "6 finite positions")
    check(all(v == 0.0 for v in js.velocity), "at rest before any command")
    check(abs(js.position[1] + math.pi / 2) < 0.11, "shoulder_lift near its home -pi/2")

    img = wait_for(depth, 10.0, "a depth image")
    check((img.width, img.height, img.encoding, img.is_bigendian, img.step) == (64, 64, "32FC1", 0, 256),
          f"depth image 64x64 32FC1 step 256: {img.width}x{img.height} {img.encoding} {img.step}")
    values = struct.unpack("<4096f", bytes(img.data))
    check(all(0.0 < v <= 2.0 + 1e-6 for v in values), "depths in (0, 2] m: floor 2 m below the camera")
    check(sum(v < 1.9 for v in values) > 10, "the arm shows above the floor")
    cam = wait_for(info, 10.0, "camera_info")
    check(cam.header.frame_id == img.header.frame_id != "", f"same optical frame {cam.header.frame_id!r}")
    check(abs(cam.k[0] - FX_64) < 1e-3 and abs(cam.k[2] - 31.5) < 1e-9, f"K: fx {cam.k[0]:.4f}, cx {cam.k[2]}")
    check(cam.distortion_model == "plumb_bob" and list(cam.d) == [0.0] * 5, "plumb_bob, no distortion")

    g = wait_for(goal, 5.0, "goal")
    r = math.hypot(g.point.x, g.point.y)
    check(g.header.frame_id == "base_link" and 0.3 - 1e-9 <= r <= 0.7 + 1e-9, f"goal in base_link, radius {r:.3f} m")

    # Velocity command: the pan joint turns at 0.5 rad/s for 1 s.
    q0 = latest_state(states).position[0]
    hold(commands, [0.5, 0, 0, 0, 0, 0], 1.0)
    moving = latest_state(states)
    check(abs(moving.velocity[0] - 0.5) < 1e-9, f"pan velocity follows the command: {moving.velocity[0]}")
    dq = moving.position[0] - q0
    check(0.35 < dq < 0.65, f"pan turned {dq:.3f} rad in about 1 s at 0.5 rad/s")

    # Stream stops: after the 0.1 s timeout the arm holds still.
    time.sleep(0.3)
    s1 = latest_state(states)
    time.sleep(0.3)
    s2 = latest_state(states)
    check(all(v == 0.0 for v in s2.velocity), "zero velocity after the command timeout")
    check(s2.position == s1.position, "the arm holds still without commands")

    # Bad commands are rejected: wrong length, NaN, Inf.
    for bad, label in ([[0.5] * 5, "5 values"], [[math.nan, 0, 0, 0, 0, 0], "NaN"],
                       [[math.inf, 0, 0, 0, 0, 0], "Inf"]):
        hold(commands, bad, 0.3)
        s3 = latest_state(states)
        check(s3.position == s2.position and all(v == 0.0 for v in s3.velocity), f"command with {label} rejected")
    print("sim_peer: all checks passed", flush=True)


def run_lockstep():
    """Each command advances the simulator by one control period (0.04 s) and publishes the new
    state stamped with simulated time, which /clock carries too."""
    dp = participant()
    states = reader(dp, JOINT_STATES, JointState)
    clock = reader(dp, "rt/clock", Clock)
    commands = writer(dp, COMMANDS, Float64MultiArray)
    js = wait_for(states, 30.0, "joint_states (idle heartbeat)")
    check((js.header.stamp.sec, js.header.stamp.nanosec) == (0, 0), "idle: simulated time stays 0")
    q0 = js.position[0]
    for k in range(1, 11):
        commands.write(Float64MultiArray(data=[1.0, 0, 0, 0, 0, 0]))
        deadline = time.monotonic() + 5.0
        while True:
            got = [s for s in states.take(N=100) if stamp_ns(s.header.stamp) == 40_000_000 * k]
            if got:
                break
            if time.monotonic() > deadline:
                check(False, f"state for command {k} within 5 s")
            time.sleep(0.001)
    dq = got[-1].position[0] - q0
    check(abs(dq - 0.4) < 1e-9, f"10 commands of 1 rad/s x 0.04 s turned the pan {dq:.12f} rad")
    c = wait_for(clock, 2.0, "/clock")
    check(stamp_ns(c.clock) == 400_000_000, f"/clock at 0.4 s: {stamp_ns(c.clock)} ns")
    print("sim_peer: all lockstep checks passed", flush=True)


def stamp_ns(t):
    return t.sec * 1_000_000_000 + t.nanosec


if __name__ == "__main__":
    main()
