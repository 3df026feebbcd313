"""Media: PyAV decoding of video and audio files into clips (frames + audio track).

The first stage of the flow, and free of TensorFlow: nothing here imports tensorflow,
tf_keras or keras_nlp, nor a later vdg_tf stage (only `vdg_tf.config` and
`vdg_tf.manifest`), so decode worker processes start fast and stay small.

- `decode`: `decode_clip` (one pass over a container: sampled frames + audio), `Clip`,
  `DecodeError` (the file and the problem, one line), `sample_times`, `FrameSkipper`.
- `convert`: what decoded frames and audio become in a clip (`resize`, `to_mono`,
  `audio_window`, `fit_audio`), shared by `decode` and `windows`.
- `workers`: `DecodePool` of long-lived, isolated (`python -I`) decode processes that die
  with their parent and log to `set_decode_log`'s file, `DecodeJob`, `run_or_error`; every
  decode path answers a `Clip` or a `DecodeError`.
- `wire`: the workers' message format; `heap`: freed-memory reuse for streaming processes.

Names here load their module on first use: `import vdg_tf.media.heap` pulls in neither
PyAV nor the worker pool, and `python -m vdg_tf.media.workers` finds its module unloaded.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vdg_tf.media.decode import (
        Clip,
        DecodeError,
        FrameSkipper,
        clip_bounds,
        decode_audio_file,
        decode_clip,
        probe_duration,
        require_decoder,
        sample_times,
    )
    from vdg_tf.media.heap import keep_freed_memory, pool_tensorflow_memory
    from vdg_tf.media.workers import (
        DECODE_TIMEOUT_S,
        DecodeGroup,
        DecodeJob,
        DecodePool,
        run_or_error,
        set_decode_log,
        shared_pool,
    )

_MODULE_OF = {
    "Clip": "decode",
    "DecodeError": "decode",
    "FrameSkipper": "decode",
    "clip_bounds": "decode",
    "decode_audio_file": "decode",
    "decode_clip": "decode",
    "probe_duration": "decode",
    "require_decoder": "decode",
    "sample_times": "decode",
    "keep_freed_memory": "heap",
    "pool_tensorflow_memory": "heap",
    "DECODE_TIMEOUT_S": "workers",
    "DecodeGroup": "workers",
    "DecodeJob": "workers",
    "DecodePool": "workers",
    "run_or_error": "workers",
    "set_decode_log": "workers",
    "shared_pool": "workers",
}

__all__ = [
    "DECODE_TIMEOUT_S",
    "Clip",
    "DecodeError",
    "DecodeGroup",
    "DecodeJob",
    "DecodePool",
    "FrameSkipper",
    "clip_bounds",
    "decode_audio_file",
    "decode_clip",
    "keep_freed_memory",
    "pool_tensorflow_memory",
    "probe_duration",
    "require_decoder",
    "run_or_error",
    "sample_times",
    "set_decode_log",
    "shared_pool",
]


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
