#!/usr/bin/env python3
"""Sorts the failed episodes of an `equigate eval --trace` CSV by how they failed.

Usage: benches/eval_failures.py TRACE.csv [TRACE.csv ...]

An episode fails when the time limit ends it (no `terminated` row). Each failure falls in the
first category that fits:
  blocked     at least 10 of its steps were blocked by a collision;
  near_stall  it ends within 10 cm of the goal (twice the default 5 cm success distance);
  drifted     it came within 10 cm at some step, then ended farther away;
  never_near  it never came within 10 cm.
For each category: the count, the mean final distance, and the mean norm of the scaled action
over the last 20 steps (0: the mean action stalls; large: the arm still moves, or presses on a
limit or an obstacle). With a `q` column (joint positions after each step), also the number of
episodes that end with a joint within 0.05 rad of ±2π (the UR5e's wrist and shoulder limits).
Over all episodes, the mean distance after the first step and the RMS of its three components:
about the size of the goal error at the start, which `goal_error_range_m` in the task config
should cover.
Standard library only; the numbers in BENCHMARKS.md came from it.
"""
import csv
import math
import sys
from collections import defaultdict

NEAR_M = 0.10
LIMIT_RAD = 2.0 * math.pi


def episodes(path):
    eps = defaultdict(list)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            eps[int(row["episode"])].append(row)
    return eps


def category(rows):
    dist = [float(r["distance_m"]) for r in rows]
    if sum(r["collided"] == "true" for r in rows) >= 10:
        return "blocked"
    if dist[-1] < NEAR_M:
        return "near_stall"
    if min(dist) < NEAR_M:
        return "drifted"
    return "never_near"


def at_limit(row):
    q = [float(x) for x in row.get("q", "").split()]
    return any(abs(abs(x) - LIMIT_RAD) < 0.05 for x in q)


def main(paths):
    for path in paths:
        eps = episodes(path)
        failed = {e: rows for e, rows in eps.items() if rows[-1]["terminated"] != "true"}
        print(f"{path}: {len(eps)} episodes, {len(failed)} failed")
        first = [float(rows[0]["distance_m"]) for rows in eps.values()]
        rms = math.sqrt(sum(d * d for d in first) / (3 * len(first)))
        print(
            f"  distance after the first step: mean {sum(first) / len(first):.3f} m, "
            f"RMS per component {rms:.3f} m"
        )
        groups = defaultdict(list)
        for rows in failed.values():
            groups[category(rows)].append(rows)
        for name in ["blocked", "near_stall", "drifted", "never_near"]:
            rows_list = groups.get(name, [])
            if not rows_list:
                print(f"  {name:10s}  0")
                continue
            final = sum(float(r[-1]["distance_m"]) for r in rows_list) / len(rows_list)
            tail = [sum(float(x["action_norm"]) for x in r[-20:]) / len(r[-20:]) for r in rows_list]
            limit = sum(at_limit(r[-1]) for r in rows_list)
            print(
                f"  {name:10s} {len(rows_list):2d}  final distance {final:.3f} m, "
                f"|a| over the last 20 steps {sum(tail) / len(tail):.2f}, "
                f"ending at a ±2π joint limit {limit}"
            )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
