#!/usr/bin/env bash
# Builds equigate as an ament package with colcon (colcon-core + colcon-cargo + colcon-ros-cargo
# from PyPI, no ROS installation needed) and checks the install space holds what `ros2 run` and
# `ros2 launch` look for: lib/equigate/<node>, share/equigate/{launch,config,urdf,package.xml}
# and the ament index marker.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ws=${COLCON_WS:-$(mktemp -d /tmp/equigate-colcon.XXXXXX)}
mkdir -p "$ws/src"
ln -sfn "$repo" "$ws/src/equigate"
cd "$ws"
colcon build 2>&1 | tail -n 20

prefix="$ws/install/equigate"
missing=0
for path in \
  lib/equigate/sim_node \
  share/equigate/package.xml \
  share/equigate/launch/sim.launch.py \
  share/equigate/config/ur5e.yaml \
  share/equigate/config/fetch.yaml \
  share/equigate/urdf/ur5e.urdf \
  share/equigate/urdf/fetch.urdf \
  share/ament_index/resource_index/packages/equigate; do
  if [ -e "$prefix/$path" ]; then echo "ok      $path"; else echo "MISSING $path"; missing=1; fi
done
[ -x "$prefix/lib/equigate/sim_node" ] || { echo "lib/equigate/sim_node is not executable"; missing=1; }
exit $missing
