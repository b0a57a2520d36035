#!/usr/bin/env python3
"""Write a rosbag2 bag with known values using PyPI `rosbags` (an independent writer).

    python3 tests/interop/rosbags_write.py OUTDIR --storage mcap|sqlite3 [--count N]
        [--compression none|message|file|storage]

OUTDIR must not exist. Metadata version 9, rosbags' Jazzy type store. For i in 0..N
(default 20), at log time t_i = (100 + i) s + 1000 i ns:
- /joint_states sensor_msgs/msg/JointState: stamp t_i, frame_id "base_link", name
  ["shoulder", "elbow"], position [0.5 i, -i], velocity [1.0, 2.0], effort [];
- /commands std_msgs/msg/Float64MultiArray (even i only): data [i, -0.25 i], empty layout;
- /goal geometry_msgs/msg/PointStamped (i % 5 == 0 only): stamp t_i, frame_id "world",
  point (1.0, i, -3.5).
--compression: rosbag2 compression mode, zstd (default none; `storage` is MCAP chunk
compression in rosbags, `message` compresses each message, `file` each storage file).
The Rust interop test (crates/equigate-bag/tests/rosbags_interop.rs) checks these values.

Install: python3 -m pip install -r tests/requirements.txt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore


def qos(depth: int, reliability: QosReliability) -> Qos:
    never = QosTime(0, 0)
    return Qos(
        QosHistory.KEEP_LAST,
        depth,
        reliability,
        QosDurability.VOLATILE,
        never,
        never,
        QosLiveliness.AUTOMATIC,
        never,
        False,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('outdir', type=Path)
    parser.add_argument('--storage', choices=['mcap', 'sqlite3'], required=True)
    parser.add_argument('--count', type=int, default=20)
    parser.add_argument(
        '--compression', choices=['none', 'message', 'file', 'storage'], default='none')
    args = parser.parse_args()

    store = get_typestore(Stores.ROS2_JAZZY)
    Time = store.types['builtin_interfaces/msg/Time']
    Header = store.types['std_msgs/msg/Header']
    JointState = store.types['sensor_msgs/msg/JointState']
    Float64MultiArray = store.types['std_msgs/msg/Float64MultiArray']
    MultiArrayLayout = store.types['std_msgs/msg/MultiArrayLayout']
    PointStamped = store.types['geometry_msgs/msg/PointStamped']
    Point = store.types['geometry_msgs/msg/Point']

    plugin = StoragePlugin.MCAP if args.storage == 'mcap' else StoragePlugin.SQLITE3
    writer = Writer(args.outdir, version=9, storage_plugin=plugin)
    if args.compression != 'none':
        writer.set_compression(
            CompressionMode[args.compression.upper()], CompressionFormat.ZSTD)
    with writer:
        js = writer.add_connection(
            '/joint_states', JointState.__msgtype__, typestore=store,
            offered_qos_profiles=[qos(10, QosReliability.RELIABLE)])
        cmd = writer.add_connection(
            '/commands', Float64MultiArray.__msgtype__, typestore=store,
            offered_qos_profiles=[qos(10, QosReliability.RELIABLE)])
        goal = writer.add_connection(
            '/goal', PointStamped.__msgtype__, typestore=store,
            offered_qos_profiles=[qos(5, QosReliability.BEST_EFFORT)])
        for i in range(args.count):
            sec, nanosec = 100 + i, 1000 * i
            t = sec * 1_000_000_000 + nanosec
            stamp = Time(sec=sec, nanosec=nanosec)
            msg = JointState(
                header=Header(stamp=stamp, frame_id='base_link'),
                name=['shoulder', 'elbow'],
                position=np.array([0.5 * i, -float(i)], dtype=np.float64),
                velocity=np.array([1.0, 2.0], dtype=np.float64),
                effort=np.array([], dtype=np.float64),
            )
            writer.write(js, t, store.serialize_cdr(msg, JointState.__msgtype__))
            if i % 2 == 0:
                msg = Float64MultiArray(
                    layout=MultiArrayLayout(dim=[], data_offset=0),
                    data=np.array([float(i), -0.25 * i], dtype=np.float64),
                )
                writer.write(cmd, t, store.serialize_cdr(msg, Float64MultiArray.__msgtype__))
            if i % 5 == 0:
                msg = PointStamped(
                    header=Header(stamp=stamp, frame_id='world'),
                    point=Point(x=1.0, y=float(i), z=-3.5),
                )
                writer.write(goal, t, store.serialize_cdr(msg, PointStamped.__msgtype__))
    return 0


if __name__ == '__main__':
    sys.exit(main())
