"""Run `.tflite` models in LiteRT (`ai-edge-litert`), fed by signature input name."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from vdg_tf._quiet import silenced_stderr
from vdg_tf.models.serving import OUTPUT_NAME

PREDICT_BATCH = 16  # windows in one model call when predicting (a dynamic-batch export, Keras)


def open_signature(path: Path, num_threads: int | None = None) -> tuple:
    """(interpreter, `serving_default` runner) of the `.tflite` at `path`, LiteRT's own
    warnings and C++ delegate log kept quiet; a missing file is a one-line error."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .tflite file")
    with warnings.catch_warnings(), silenced_stderr():
        warnings.simplefilter("ignore")
        interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        return interpreter, interpreter.get_signature_runner("serving_default")


class LiteRTModel:
    """A `.tflite` file loaded in LiteRT with its `serving_default` signature."""

    def __init__(self, path: str | Path, num_threads: int | None = None):
        self.path = Path(path)
        self.interpreter, self.runner = open_signature(self.path, num_threads)
        self.input_details = self.runner.get_input_details()
        with warnings.catch_warnings(), silenced_stderr():
            warnings.simplefilter("ignore")
            self._warm_up()

    def _warm_up(self) -> None:
        """One invocation on zeros: LiteRT applies (and logs) its delegate on the first run."""
        self.runner(**{n: np.zeros(d["shape"], d["dtype"]) for n, d in self.input_details.items()})

    @property
    def input_names(self) -> list[str]:
        return sorted(self.input_details)

    @property
    def raw_media(self) -> bool:
        """Whether the model preprocesses in its graph (`vdg export --preprocess`): it takes
        uint8 frames at any H, W and the raw waveform, not the pipeline's features. The
        signature runner resizes the dynamic H, W to the frames each call gives."""
        video = self.input_details.get("video")
        return video is not None and video["dtype"] == np.uint8

    def _check(self, name: str, value: np.ndarray, batched: bool) -> np.ndarray:
        """`value` as the input's dtype; features fed to a --preprocess export (float frames,
        a log-mel for the waveform) raise one line instead of a silent cast or a crash."""
        detail = self.input_details[name]
        rank = len(detail["shape_signature"]) - (0 if batched else 1)
        if np.ndim(value) != rank or (
            detail["dtype"] == np.uint8 and np.issubdtype(np.asarray(value).dtype, np.floating)
        ):
            shape = [int(d) for d in detail["shape_signature"]]
            kind = " (a --preprocess export: decoded uint8 frames and the raw waveform)"
            raise ValueError(
                f"{self.path.name}: input '{name}' takes {detail['dtype'].__name__} {shape}"
                f"{kind if self.raw_media else ''}; got {np.asarray(value).dtype} "
                f"{list(np.shape(value))}"
            )
        return np.asarray(value).astype(detail["dtype"])

    def predict_one(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Probabilities [C] for one sample given as {name: array without batch axis}."""
        for name in self.input_details:
            if name not in inputs:
                raise KeyError(
                    f"{self.path.name}: missing input '{name}' (needs {self.input_names})"
                )
        feed = {n: self._check(n, inputs[n], batched=False)[None] for n in self.input_details}
        return np.asarray(self.runner(**feed)[OUTPUT_NAME])[0]

    @property
    def dynamic_batch(self) -> bool:
        """Whether the model takes any batch (exported with `batch=None`)."""
        return all(d["shape_signature"][0] == -1 for d in self.input_details.values())

    def predict_batch(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Probabilities [B, C]: one invocation for the batch when the model's batch axis
        is dynamic, else one per sample."""
        if self.dynamic_batch:
            feed = {n: self._check(n, inputs[n], batched=True) for n in self.input_details}
            return np.asarray(self.runner(**feed)[OUTPUT_NAME])
        n = len(next(iter(inputs.values())))
        return np.stack([self.predict_one({k: v[i] for k, v in inputs.items()}) for i in range(n)])
