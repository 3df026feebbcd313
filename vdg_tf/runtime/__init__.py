"""Use a trained or exported model: evaluate it on a manifest (predict and streaming next)."""

from vdg_tf.runtime.evaluate import evaluate, load_for_inference

__all__ = ["evaluate", "load_for_inference"]
