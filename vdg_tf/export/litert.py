"""Run `.tflite` models in LiteRT (`ai-edge-litert`), fed by signature input name."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from vdg_tf._quiet import silenced_stderr
from vdg_tf.models.serving import OUTPUT_NAME


class LiteRTModel:
    """A `.tflite` file loaded in LiteRT with its `serving_default` signature."""

    def __init__(self, path: str | Path, num_threads: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such .tflite file")
        # LiteRT warns about its own API moves and logs its delegate choice from C++
        with warnings.catch_warnings(), silenced_stderr():
            warnings.simplefilter("ignore")
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self.runner = self.interpreter.get_signature_runner("serving_default")
            self.input_details = self.runner.get_input_details()
            self._warm_up()

    def _warm_up(self) -> None:
        """One invocation on zeros: LiteRT applies (and logs) its delegate on the first run."""
        self.runner(**{n: np.zeros(d["shape"], d["dtype"]) for n, d in self.input_details.items()})

    @property
    def input_names(self) -> list[str]:
        return sorted(self.input_details)

    def predict_one(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Probabilities [C] for one sample given as {name: array without batch axis}."""
        feed = {}
        for name, detail in self.input_details.items():
            if name not in inputs:
                raise KeyError(
                    f"{self.path.name}: missing input '{name}' (needs {self.input_names})"
                )
            feed[name] = np.asarray(inputs[name])[None].astype(detail["dtype"])
        return np.asarray(self.runner(**feed)[OUTPUT_NAME])[0]

    @property
    def dynamic_batch(self) -> bool:
        """Whether the model takes any batch (exported with `batch=None`)."""
        return all(d["shape_signature"][0] == -1 for d in self.input_details.values())

    def predict_batch(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Probabilities [B, C]: one invocation for the batch when the model's batch axis
        is dynamic, else one per sample."""
        if self.dynamic_batch:
            feed = {
                n: np.asarray(inputs[n]).astype(d["dtype"]) for n, d in self.input_details.items()
            }
            return np.asarray(self.runner(**feed)[OUTPUT_NAME])
        n = len(next(iter(inputs.values())))
        return np.stack([self.predict_one({k: v[i] for k, v in inputs.items()}) for i in range(n)])
