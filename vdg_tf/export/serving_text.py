"""A SavedModel that reads raw captions: the run's tokenizer in the graph, for servers.

TFLite has no kernels for WordPiece, so `.tflite` exports take token ids and the app
tokenizes with the vocabulary shipped beside the model. A SavedModel can hold the
tokenizer itself: keras-nlp's `WordPieceTokenizer` (tf-text ops) with the run's own
vocabulary, lower-casing and length, exactly what the data pipeline (`fixed_features`)
runs. So `vdg export MODEL --saved-model DIR --preprocess` writes a `serving_default` that
takes what a server receives, uint8 frames, a waveform and a caption string, and returns
`probs`, with nothing of vdg_tf needed to call it: TF Serving (with the TF Text ops) or
`tf.saved_model.load` after `import tensorflow_text`.

Signatures of such a SavedModel:

- `serving_default`: `video` uint8 [B, T, H, W, 3], `audio` float32 [B, samples], `text`
  string [B], and the other masks (`video_mask`, `audio_mask`) -> `probs`; `text_mask` is
  computed from the caption (0 for an empty or blank one), as the pipeline does;
- `serving_token_ids`: the same with `text` as token ids and `text_mask` given, the form
  the `.tflite` export takes.

Example (no vdg_tf needed):

    import tensorflow as tf, tensorflow_text  # noqa: F401 (registers the tokenizer's ops)
    serve = tf.saved_model.load("exports/saved").signatures["serving_default"]
    probs = serve(video=frames_u8, audio=wave, audio_mask=[[1.0]], video_mask=[[1.0]],
                  text=tf.constant(["a dog runs left"]))["probs"]
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from vdg_tf.data.features import TextTokenizer
from vdg_tf.files import atomic_dir
from vdg_tf.models.serving import OUTPUT_NAME, serving_function

TOKEN_IDS_SIGNATURE = "serving_token_ids"


def _name(tensor) -> str:
    return tensor.name.split(":")[0]


def raw_text_function(
    model: keras.Model, tokenizer: TextTokenizer, batch: int | None = None
) -> tf.types.experimental.ConcreteFunction:
    """`model`'s serving function with `text` a string [B] tokenized in the graph and
    `text_mask` derived from it (see the module docstring)."""
    names = {_name(t): t for t in model.inputs}
    if "text" not in names:
        raise ValueError("raw-text serving: the model has no 'text' input")
    specs = {
        n: tf.TensorSpec([batch, *t.shape[1:]], t.dtype, name=n)
        for n, t in names.items()
        if n not in ("text", "text_mask")
    }
    specs["text"] = tf.TensorSpec([batch], tf.string, name="text")

    @tf.function(input_signature=[specs])
    def serve(inputs):
        text = inputs["text"]
        feed = {n: v for n, v in inputs.items() if n != "text"}
        feed["text"] = tokenizer(text)
        if "text_mask" in names:
            present = tf.strings.length(tf.strings.strip(text)) > 0
            feed["text_mask"] = tf.reshape(tf.cast(present, tf.float32), [-1, 1])
        out = model(feed, training=False)
        return {OUTPUT_NAME: out["fused"] if isinstance(out, dict) else out}

    return serve.get_concrete_function()


def save_raw_text_model(
    model: keras.Model, tokenizer: TextTokenizer, path: str | Path, batch: int | None = None
) -> Path:
    """SavedModel at `path` with `serving_default` on raw captions and `serving_token_ids`
    on token ids (module docstring); the tokenizer's vocabulary is saved in the graph."""
    holder = tf.Module()
    holder.model, holder.tokenizer = model, tokenizer._tok  # noqa: SLF001 (its tables)
    signatures = {
        "serving_default": raw_text_function(model, tokenizer, batch),
        TOKEN_IDS_SIGNATURE: serving_function(model, batch),
    }
    tf.saved_model.save(holder, str(path), signatures=signatures)
    return Path(path)


def write_raw_text_saved_model(bundle, path: str | Path, model: keras.Model) -> Path:
    """`save_raw_text_model` of `model` with `bundle`'s tokenizer, its metadata (labels,
    vocabulary, config) beside it, written to a temp folder and renamed."""
    with atomic_dir(path) as tmp:
        save_raw_text_model(model, bundle.tokenizer, tmp)
        bundle.save_metadata(tmp)
    return Path(path)
