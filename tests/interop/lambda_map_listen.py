"""Listens to /equigate/lambda_map (sensor_msgs/Image, 32FC1) with Cyclone DDS and writes the
latest map as JSON, for tests/detector_node.rs:
`lambda_map_listen.py <out.json> <seconds>`; the JSON holds width, height, encoding, frame_id,
the number of maps received and the row-major values (null where the map has no data, NaN).
Run only inside a loopback-only namespace (tests/interop/in_netns.sh).
"""

import json
import math
import os
import struct
import sys
import time

from peer_common import Image, participant, reader


def main():
    out, seconds = sys.argv[1], float(sys.argv[2])
    rd = reader(participant(), "rt/equigate/lambda_map", Image)
    end, count = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        for img in rd.take(N=10):
            count += 1
            n = img.width * img.height
            fmt = (">" if img.is_bigendian else "<") + f"{n}f"
            values = struct.unpack(fmt, bytes(img.data)) if len(img.data) == 4 * n else []
            latest = {
                "width": img.width,
                "height": img.height,
                "encoding": img.encoding,
                "frame_id": img.header.frame_id,
                "count": count,
                "values": [None if math.isnan(v) else v for v in values],
            }
            with open(out + ".tmp", "w") as f:  # replaced atomically below
                json.dump(latest, f)
            os.replace(out + ".tmp", out)
        time.sleep(0.05)


if __name__ == "__main__":
    main()
