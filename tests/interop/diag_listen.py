"""Listens to /diagnostics (Cyclone DDS) and writes the latest status of one component as JSON,
for tests/policy_node_interop.rs: `diag_listen.py <status name> <out.json> <seconds>`.
Run only inside a loopback-only namespace (tests/interop/in_netns.sh).
"""

import json
import sys
import time
from dataclasses import dataclass, field

from peer_common import Header, participant, reader
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import sequence, uint8


@dataclass
class KeyValue(IdlStruct, typename="diagnostic_msgs::msg::dds_::KeyValue_"):
    key: str = ""
    value: str = ""


@dataclass
class DiagnosticStatus(IdlStruct, typename="diagnostic_msgs::msg::dds_::DiagnosticStatus_"):
    level: uint8 = 0
    name: str = ""
    message: str = ""
    hardware_id: str = ""
    values: sequence[KeyValue] = field(default_factory=list)


@dataclass
class DiagnosticArray(IdlStruct, typename="diagnostic_msgs::msg::dds_::DiagnosticArray_"):
    header: Header = field(default_factory=Header)
    status: sequence[DiagnosticStatus] = field(default_factory=list)


def main():
    name, out, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    rd = reader(participant(), "rt/diagnostics", DiagnosticArray)
    end, count = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        for msg in rd.take(N=100):
            for s in msg.status:
                if s.name == name:
                    count += 1
                    latest = {"level": s.level, "message": s.message, "count": count}
                    latest["values"] = {kv.key: kv.value for kv in s.values}
                    with open(out, "w") as f:
                        json.dump(latest, f)
        time.sleep(0.05)


if __name__ == "__main__":
    main()
