"""Keras per-frame latency of a detection run: `python tools/bench_detection.py RUN [--json]`.

A thin shell over `vdg_tf.bench.detection` (see there for what is measured and how).
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a detection run folder")
    parser.add_argument("--runs", type=int, default=20, help="timed calls per figure")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args(argv)
    from vdg_tf._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from vdg_tf.bench.detection import bench_detection

    row = bench_detection(args.model, runs=args.runs)
    if args.json:
        print(json.dumps(row))
    else:
        width = max(map(len, row)) + 2
        print("\n".join(f"{k:<{width}}{v}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
