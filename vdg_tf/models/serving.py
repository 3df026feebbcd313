"""The serving signature: the deployable model called by input name, at batch 1.

A SavedModel's `serving_default` (what TF Serving loads, and what TFLite conversion
starts from) takes the model inputs by their contract names (`video`, `audio`, `text`,
`*_mask`) and returns `probs`, so callers feed by name, never by position.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
import tf_keras as keras

OUTPUT_NAME = "probs"


def serving_function(model: keras.Model) -> tf.types.experimental.ConcreteFunction:
    """A batch-1 concrete function taking the model inputs by name, returning `probs`."""
    specs = {
        inp.name.split(":")[0]: tf.TensorSpec(
            [1, *inp.shape[1:]], inp.dtype, name=inp.name.split(":")[0]
        )
        for inp in model.inputs
    }

    @tf.function(input_signature=[specs])
    def serve(inputs):
        out = model(inputs, training=False)
        if isinstance(out, dict):
            out = out["fused"]
        return {OUTPUT_NAME: out}

    return serve.get_concrete_function()


def save_serving_model(model: keras.Model, path: str | Path) -> Path:
    """SavedModel with a named `serving_default` signature (also what TF Serving loads)."""
    path = Path(path)
    tf.saved_model.save(model, str(path), signatures={"serving_default": serving_function(model)})
    return path
