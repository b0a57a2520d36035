#!/usr/bin/env bash
# Bag read throughput, equigate-bag against PyPI rosbags on the same bag, in one run: the criterion
# bench writes a 100k-message bag (500 Hz joint states, 250 Hz commands, MCAP, zstd chunks), times
# reading every raw message in log-time order and keeps the bag; rosbags then reads the same bag
# the same way (tests/interop/rosbags_read.py --bench). Needs `pip install -r tests/requirements.txt`.
#
#   benches/bag_read_vs_rosbags.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
EQUIGATE_BAG_BENCH_KEEP="$work/bag" cargo bench --locked -p equigate-bag --bench bag_read 2>&1 \
  | grep -E "bag_read|time:|thrpt:"
python3 tests/interop/rosbags_read.py "$work/bag" --bench
