#!/usr/bin/env python3
"""Read a rosbag2 bag with PyPI `rosbags` (an independent, pure-Python reader) and print JSON.

    python3 tests/interop/rosbags_read.py BAGDIR            # counts and decoded messages
    python3 tests/interop/rosbags_read.py BAGDIR --bench    # messages/s iterating raw messages

Without --bench prints {"topics": {name: {"type", "count"}}, "messages": [{"topic",
"timestamp", "fields"}], "msgdef_types": [...], "type_hashes": {name: {"bag", "rosbags"}}} in
log-time order (type_hashes: the metadata's type_description_hash and rosbags' hash_rihs01). Types are decoded with the
message definitions stored in the bag (MCAP schemas) registered into an otherwise empty type
store, so a wrong schema text fails here; topics without a stored definition fall back to
rosbags' Jazzy type store.

With --bench prints {"messages", "seconds", "messages_per_s"} for one pass over all raw
messages (no deserialisation): the same work as equigate-bag's benches/bag_read.rs.

Install: python3 -m pip install -r tests/requirements.txt
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.interfaces import MessageDefinitionFormat


def to_plain(value):
    """A deserialised rosbags message as JSON-ready Python values."""
    if dataclasses.is_dataclass(value):  # fields() leaves out constants (ClassVar)
        return {
            field.name: to_plain(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if field.name != '__msgtype__'
        }
    if hasattr(value, 'tolist'):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def bench(path: Path) -> None:
    with Reader(path) as reader:
        start = time.perf_counter()
        count = 0
        for _connection, _timestamp, _raw in reader.messages():
            count += 1
        seconds = time.perf_counter() - start
    print(json.dumps({
        'messages': count,
        'seconds': seconds,
        'messages_per_s': count / seconds if seconds > 0 else None,
    }))


def dump(path: Path) -> None:
    from_bag = get_typestore(Stores.EMPTY)
    fallback = get_typestore(Stores.ROS2_JAZZY)
    msgdef_types: set[str] = set()
    with Reader(path) as reader:
        for conn in reader.connections:
            if conn.msgdef.format == MessageDefinitionFormat.MSG and conn.msgdef.data:
                if conn.msgtype not in msgdef_types:
                    from_bag.register(get_types_from_msg(conn.msgdef.data, conn.msgtype))
                    msgdef_types.add(conn.msgtype)
        topics: dict[str, dict] = {}
        hashes: dict[str, dict] = {}
        for conn in reader.connections:
            entry = topics.setdefault(conn.topic, {'type': conn.msgtype, 'count': 0})
            entry['count'] += conn.msgcount
            # The bag's type_description_hash beside rosbags' own RIHS01 for Jazzy.
            hashes[conn.topic] = {'bag': conn.digest, 'rosbags': fallback.hash_rihs01(conn.msgtype)}
        messages = []
        for conn, timestamp, raw in reader.messages():
            store = from_bag if conn.msgtype in msgdef_types else fallback
            msg = store.deserialize_cdr(raw, conn.msgtype)
            messages.append({
                'topic': conn.topic,
                'timestamp': timestamp,
                'fields': to_plain(msg),
            })
    print(json.dumps({
        'topics': topics,
        'messages': messages,
        'msgdef_types': sorted(msgdef_types),
        'type_hashes': hashes,
    }))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('bag', type=Path)
    parser.add_argument('--bench', action='store_true')
    args = parser.parse_args()
    if args.bench:
        bench(args.bag)
    else:
        dump(args.bag)
    return 0


if __name__ == '__main__':
    sys.exit(main())
