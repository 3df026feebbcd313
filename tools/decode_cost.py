"""Where a clip's CPU goes: `python tools/decode_cost.py MANIFEST [--json]` runs
`vdg_tf.bench.decode_cost` (the same as `python -m vdg_tf.bench.decode_cost`)."""

from vdg_tf.bench.decode_cost import main

if __name__ == "__main__":
    main()
