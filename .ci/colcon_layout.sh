#!/usr/bin/env bash
# Builds equigate as an ament package with colcon (colcon-core + colcon-cargo + colcon-ros-cargo
# from PyPI, no ROS installation needed) and checks the install space holds what `ros2 run` and
# `ros2 launch` look for: lib/equigate/<node>, share/equigate/{launch,config,urdf,package.xml}
# and the ament index marker. The crates in crates/ are built as part of the root workspace, so only
# the root package is selected.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${COLCON_WS:-}" ]; then
  ws=$COLCON_WS
else
  # A throwaway workspace holds a whole release build: remove it on exit, or every run leaves
  # gigabytes in /tmp (that is how a CI disk filled up).
  ws=$(mktemp -d /tmp/equigate-colcon.XXXXXX)
  trap 'rm -rf "$ws"' EXIT
fi
mkdir -p "$ws/src"
ln -sfn "$repo" "$ws/src/equigate"
cd "$ws"
colcon build --packages-select equigate 2>&1 | grep -vE "^\{" | tail -n 20

prefix="$ws/install/equigate"
missing=0
for path in \
  lib/equigate/sim_node \
  lib/equigate/policy_node \
  lib/equigate/detector_node \
  lib/equigate/equigate \
  share/equigate/package.xml \
  share/equigate/launch/sim.launch.py \
  share/equigate/launch/train.launch.py \
  share/equigate/launch/robot.launch.py \
  share/equigate/launch/monitor.launch.py \
  share/equigate/launch/record.launch.py \
  share/equigate/config/record.yaml \
  share/equigate/config/detector_ur5e.yaml \
  share/equigate/config/policy_ur5e.yaml \
  share/equigate/config/train/ur5e_reach_obstacles.yaml \
  share/equigate/config/ur5e.yaml \
  share/equigate/config/fetch.yaml \
  share/equigate/config/tasks/ur5e_reach_obstacles.yaml \
  share/equigate/urdf/ur5e.urdf \
  share/equigate/urdf/fetch.urdf \
  share/ament_index/resource_index/packages/equigate; do
  if [ -e "$prefix/$path" ]; then echo "ok      $path"; else echo "MISSING $path"; missing=1; fi
done
[ -x "$prefix/lib/equigate/sim_node" ] || { echo "lib/equigate/sim_node is not executable"; missing=1; }
[ $missing = 0 ] || exit 1

# The installed node finds its URDF and task file through share/equigate, from any directory.
cd /tmp
out=$("$repo/tests/interop/in_netns.sh" timeout -s INT 3 "$prefix/lib/equigate/sim_node" \
  --ros-args --params-file "$prefix/share/equigate/config/fetch.yaml" 2>&1 || true)
echo "$out" | tail -n 3
echo "$out" | grep -q "sim_node running" || { echo "installed sim_node did not start"; exit 1; }
echo "ok      installed sim_node starts with share/equigate/config/fetch.yaml"
