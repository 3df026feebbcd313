"""The serving signature: the deployable model called by input name, at batch 1.

A SavedModel's `serving_default` (what TF Serving loads, and what TFLite conversion
starts from) takes the model inputs by their contract names (`video`, `audio`, `text`,
`*_mask`) and returns `probs` (a detection model: `box_encodings` and `class_scores`),
so callers feed by name, never by position.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
import tf_keras as keras

OUTPUT_NAME = "probs"


def serving_function(
    model: keras.Model, batch: int | None = 1
) -> tf.types.experimental.ConcreteFunction:
    """A concrete function taking the model inputs by name, returning `probs`.

    `batch` fixes the batch axis (1: what an edge runtime feeds), or None leaves it
    dynamic (any batch; in TFLite this costs SHAPE/PACK ops and an unfolded dilated conv,
    measured in BENCHMARKS.md, so `.tflite` exports keep batch 1 unless asked).
    """
    specs = {
        inp.name.split(":")[0]: tf.TensorSpec(
            [batch, *inp.shape[1:]], inp.dtype, name=inp.name.split(":")[0]
        )
        for inp in model.inputs
    }

    @tf.function(input_signature=[specs])
    def serve(inputs):
        out = model(inputs, training=False)
        if isinstance(out, dict):
            if "fused" not in out:  # named per-frame outputs (detection) keep their names
                return dict(out)
            out = out["fused"]
        return {OUTPUT_NAME: out}

    return serve.get_concrete_function()


def save_serving_model(model: keras.Model, path: str | Path, batch: int | None = None) -> Path:
    """SavedModel with a named `serving_default` signature (what TF Serving loads); the
    batch axis is dynamic unless `batch` fixes it."""
    path = Path(path)
    signature = serving_function(model, batch)
    tf.saved_model.save(model, str(path), signatures={"serving_default": signature})
    return path
