#!/usr/bin/env python3
"""compare_traces.py A B [N]: where two timelines of the same model differ.

A and B are directories (or single files) of the trace-rank<r>.json files that
`mpifit train` or `mpifit bench` write with [output] trace = true, e.g. a
bench with [dist] overlap off (A) and on (B). For every layer: its forward and
backward time per step, averaged over the steps and ranks of each side, and
the difference B - A; the N (default 20) largest differences first, then the
totals. Standard library only.
"""
import glob
import json
import os
import sys
from collections import defaultdict


def load(where):
    """(ms per step by (phase, layer), steps) over every rank's file of where."""
    files = sorted(glob.glob(os.path.join(where, "trace-rank*.json"))) if os.path.isdir(where) else [where]
    if not files:
        sys.exit("compare_traces.py: no trace-rank*.json in %s" % where)
    total, steps = defaultdict(float), 0
    for path in files:
        with open(path) as f:
            events = json.load(f)["traceEvents"]
        spans = [e for e in events if e.get("ph") == "X"]
        layers = [e["name"] for e in spans if e.get("cat") == "backward"]
        # the steps of this file: how often its last layer's backward ran
        # (train has "step" spans too, bench does not)
        n = sum(1 for name in layers if name == layers[0]) if layers else 0
        if n == 0:
            sys.exit("compare_traces.py: %s has no backward spans (was it a training run?)" % path)
        for e in spans:
            if e.get("cat") in ("forward", "backward"):
                total[(e["cat"], e["name"])] += e["dur"] / 1000.0
        steps += n
    return {k: v / steps for k, v in total.items()}, steps


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    a, na = load(argv[0])
    b, nb = load(argv[1])
    top = int(argv[2]) if len(argv) == 3 else 20
    rows = [(b.get(k, 0.0) - a.get(k, 0.0), k) for k in set(a) | set(b)]
    rows.sort(key=lambda r: -abs(r[0]))
    print("A: %s (%d rank-steps)   B: %s (%d rank-steps); ms per step" % (argv[0], na, argv[1], nb))
    print("%-9s %-32s %9s %9s %9s" % ("phase", "layer", "A", "B", "B - A"))
    for d, (phase, name) in rows[:top]:
        print("%-9s %-32s %9.2f %9.2f %+9.2f" % (phase, name, a.get((phase, name), 0.0), b.get((phase, name), 0.0), d))
    for phase in ("forward", "backward"):
        ta = sum(v for (p, _), v in a.items() if p == phase)
        tb = sum(v for (p, _), v in b.items() if p == phase)
        print("%-9s %-32s %9.2f %9.2f %+9.2f" % (phase, "(all layers)", ta, tb, tb - ta))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
