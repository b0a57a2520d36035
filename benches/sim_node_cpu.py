"""CPU use of sim_node while a Cyclone DDS peer subscribes to its joint states and depth images.

    cargo build --release --bin sim_node
    tests/interop/in_netns.sh env PYTHONPATH=tests/interop \
        python3 benches/sim_node_cpu.py target/release/sim_node [seconds] [js_hz] [camera_hz]

Defaults: 10 s, 500 Hz joint states, 30 Hz depth (64x64). Prints the received rates and the
node's CPU time (user + system, from /proc/<pid>/stat) as a percentage of one core.
Run it only inside a loopback-only namespace (in_netns.sh does that).
"""

import os
import subprocess
import sys
import time

from peer_common import DEPTH_IMAGE, JOINT_STATES, Image, JointState, participant, reader, sensor_reader


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main():
    exe = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    js_hz = sys.argv[3] if len(sys.argv) > 3 else "500.0"
    cam_hz = sys.argv[4] if len(sys.argv) > 4 else "30.0"
    sim = subprocess.Popen([exe, "--ros-args", "-p", f"joint_states_rate_hz:={js_hz}",
                            "-p", f"camera_rate_hz:={cam_hz}"])
    try:
        dp = participant()
        states = reader(dp, JOINT_STATES, JointState)
        depth = sensor_reader(dp, DEPTH_IMAGE, Image)
        deadline = time.monotonic() + 30
        while not states.take(N=100):  # wait for discovery and the first message
            if time.monotonic() > deadline:
                raise SystemExit("no joint_states within 30 s")
            time.sleep(0.01)
        n_js = n_img = 0
        c0, t0 = cpu_seconds(sim.pid), time.monotonic()
        while time.monotonic() - t0 < seconds:
            n_js += len(states.take(N=1000))
            n_img += len(depth.take(N=100))
            time.sleep(0.005)
        c1, t1 = cpu_seconds(sim.pid), time.monotonic()
        wall = t1 - t0
        print(f"sim_node: joint_states {n_js / wall:.1f} Hz received, depth {n_img / wall:.1f} Hz "
              f"received, CPU {100 * (c1 - c0) / wall:.1f}% of one core over {wall:.1f} s")
    finally:
        sim.terminate()
        sim.wait(timeout=10)


if __name__ == "__main__":
    main()
