#!/usr/bin/env bash
# Proof that equigate's default DDS settings keep all traffic on loopback.
#
#   tests/interop/no_leak_capture.sh [PATH_TO_TALKER]     (default: target/debug/examples/talker)
#
# Inside a fresh network namespace (`unshare -n` as root, else `unshare -rn`) it creates a non-loopback interface
# (dummy0, 10.200.0.1/24, MULTICAST on; a veth end named dummy0 where `dummy` is unavailable; default and multicast routes through it), captures UDP on
# dummy0 and on lo with tcpdump, runs the Rust talker with default settings and a Cyclone DDS
# peer (tests/interop/peer.py, confined to lo) for a few seconds, then prints the counts.
# Exits non-zero if any RTPS packet appeared on dummy0, or if nothing RTPS appeared on lo / the
# peer received nothing (the capture would then prove nothing).
#
# Needs: tcpdump (Debian: apt-get install -y tcpdump), python3 with cyclonedds
# (python3 -m pip install -r tests/interop/requirements.txt), util-linux unshare, iproute2.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
talker="${1:-$root/target/debug/examples/talker}"

if [[ "${EQUIGATE_LEAK_NETNS:-}" != "1" ]]; then
  for tool in tcpdump unshare ip python3; do
    command -v "$tool" >/dev/null || { echo "no_leak_capture: missing $tool" >&2; exit 2; }
  done
  [[ -x "$talker" ]] || { echo "no_leak_capture: talker not built: $talker (cargo build -p equigate-ros --examples)" >&2; exit 2; }
  # As root a plain network namespace (`unshare -n`): Debian's tcpdump drops privileges to the
  # `tcpdump` user, which setgroups-denied user namespaces (`unshare -rn`) do not allow.
  if [[ "$(id -u)" == "0" ]]; then ns=(unshare -n); else ns=(unshare -rn); fi
  exec "${ns[@]}" env EQUIGATE_LEAK_NETNS=1 bash "${BASH_SOURCE[0]}" "$talker"
fi

# ---- inside the namespace ----
ip link set lo up
# A dummy interface where the kernel has the module; otherwise a veth pair whose far end
# (veth1, no address) stays in this namespace and drops what it gets.
if ip link add dummy0 type dummy 2>/dev/null; then
  want="dummy0 lo "
else
  ip link add dummy0 type veth peer name veth1
  ip link set veth1 up
  want="dummy0@veth1 lo veth1@dummy0 "
fi
ip addr add 10.200.0.1/24 dev dummy0
ip link set dummy0 up multicast on
ip route add default dev dummy0
ip route add 224.0.0.0/4 dev dummy0 2>/dev/null || true
ifaces="$(ip -o link show | awk -F': ' '{print $2}' | sort | tr '\n' ' ')"
if [[ "$ifaces" != "$want" ]]; then
  echo "no_leak_capture: unexpected interfaces in the namespace: $ifaces" >&2
  exit 2
fi
echo "namespace interfaces: $ifaces"
ip -br addr

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
tcpdump -i dummy0 -n -U -w "$tmp/dummy0.pcap" udp 2>"$tmp/tcpdump_dummy0.log" &
td_dummy=$!
tcpdump -i lo -n -U -w "$tmp/lo.pcap" udp 2>"$tmp/tcpdump_lo.log" &
td_lo=$!
sleep 1

unset ROS_AUTOMATIC_DISCOVERY_RANGE ROS_LOCALHOST_ONLY
(cd "$here" && python3 peer.py listen --count 20 --timeout 20 >"$tmp/peer.log" 2>&1) &
peer=$!
sleep 0.5
"$talker" --count 100 --rate 20 --image 64 >"$tmp/talker.log" 2>&1 || true   # 5 s, default settings
peer_rc=0
wait "$peer" || peer_rc=$?
sleep 0.5
kill -INT "$td_dummy" "$td_lo" 2>/dev/null || true
wait "$td_dummy" "$td_lo" 2>/dev/null || true

count() { # pcap filter
  { tcpdump -r "$1" -n "$2" 2>/dev/null || true; } | wc -l | tr -d ' '
}
for f in dummy0 lo; do
  if [[ ! -s "$tmp/$f.pcap" ]] || grep -q "Couldn't" "$tmp/tcpdump_$f.log"; then
    echo "no_leak_capture: tcpdump on $f failed:" >&2; cat "$tmp/tcpdump_$f.log" >&2; exit 2
  fi
done
rtps='udp and udp[8:4] = 0x52545053'   # payload starts with "RTPS"
dummy_udp="$(count "$tmp/dummy0.pcap" udp)"
dummy_rtps="$(count "$tmp/dummy0.pcap" "$rtps")"
lo_rtps="$(count "$tmp/lo.pcap" "$rtps")"
received="$(grep -c '^ok ' "$tmp/peer.log" || true)"

echo "talker: $(tail -n 1 "$tmp/talker.log")"
echo "peer:   $(tail -n 1 "$tmp/peer.log") (exit $peer_rc)"
echo "RTPS packets on lo: $lo_rtps"
echo "UDP packets on dummy0: $dummy_udp"
echo "RTPS packets on dummy0: $dummy_rtps"
echo "messages the Cyclone peer received and checked: $received"

if [[ "$dummy_rtps" != "0" || "$dummy_udp" != "0" ]]; then
  echo "FAIL: DDS traffic left loopback" >&2
  tcpdump -r "$tmp/dummy0.pcap" -n 2>/dev/null | head -n 20 >&2
  exit 1
fi
if [[ "$lo_rtps" == "0" || "$peer_rc" != "0" ]]; then
  echo "FAIL: no DDS traffic on lo / peer received nothing: the capture proves nothing" >&2
  cat "$tmp/peer.log" "$tmp/tcpdump_lo.log" "$tmp/tcpdump_dummy0.log" >&2
  exit 1
fi
echo "PASS: 0 RTPS packets outside loopback"
