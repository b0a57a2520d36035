#!/usr/bin/env bash
# Runs a command inside a fresh user + network namespace that has only loopback, so that no
# DDS packet can leave the machine: `tests/interop/in_netns.sh python3 peer.py ...`.
set -euo pipefail
if [ "${EQUIGATE_IN_NETNS:-}" != 1 ]; then
  exec env EQUIGATE_IN_NETNS=1 unshare -rn -- "$0" "$@"
fi
ip link set lo up
ifaces=$(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
if [ "$ifaces" != "lo " ]; then
  echo "in_netns.sh: refusing to run: interfaces other than lo: $ifaces" >&2
  exit 1
fi
exec "$@"
