"""Measurement on top of the flow: `pipeline` (`vdg benchmark pipeline`: tf.data vs a
sequential loop vs the raw decode-only limit), `decode_limit` (PyAV alone), and
`decode_cost` (where a clip's CPU goes, `python -m vdg_tf.bench.decode_cost`).

Built on the stages' public APIs. This file imports nothing: decode worker processes
import `decode_limit`, which must not pull TensorFlow in with the package.
"""
