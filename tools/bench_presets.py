"""Per-preset figures for BENCHMARKS.md: `python tools/bench_presets.py [--presets ...] [--json]`.

A thin shell over `vdg_tf.bench.presets` (see there for what is measured and how).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=None, help="default: every preset")
    parser.add_argument("--runs", type=int, default=10, help="timed LiteRT runs per file")
    parser.add_argument("--json", action="store_true", help="JSON Lines, one per preset")
    args = parser.parse_args(argv)
    from vdg_tf._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from vdg_tf.bench.presets import bench_preset, format_table
    from vdg_tf.models.presets import PRESETS

    rows = []
    for name in args.presets or list(PRESETS):
        row = bench_preset(name, runs=args.runs)
        rows.append(row)
        print(
            json.dumps(row) if args.json else f"{name}: done",
            file=sys.stdout if args.json else sys.stderr,
            flush=True,
        )
    if not args.json:
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
