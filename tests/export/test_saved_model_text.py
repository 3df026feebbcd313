"""`vdg export --saved-model DIR --preprocess` serves raw captions: the SavedModel tokenizes
in its graph with the run's own vocabulary, and a process that cannot import vdg_tf gets,
from uint8 frames, a waveform and caption strings, what the Keras model gives on the
pipeline's token ids."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from vdg_tf.bundle import Bundle
from vdg_tf.config import VideoSpec
from vdg_tf.data.pipeline import fixed_features, model_inputs
from vdg_tf.export.api import export_model
from vdg_tf.export.preprocess import raw_inputs
from vdg_tf.manifest import read_manifest
from vdg_tf.media.decode import decode_clip
from vdg_tf.models.builder import inference_model

# run by a python that cannot import vdg_tf (isolated mode, and an import hook refusing
# it, since the venv holds an editable install): only TensorFlow and TF Text's ops
SERVE = """
import sys
class NoVdg:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "vdg_tf":
            raise ImportError("vdg_tf is not installed here")
sys.meta_path.insert(0, NoVdg())
try:
    import vdg_tf
except ImportError:
    pass
else:
    raise SystemExit("vdg_tf was importable")
import numpy as np, tensorflow as tf, tensorflow_text  # noqa: F401 (the tokenizer's ops)
feed = dict(np.load(sys.argv[2]))
feed["text"] = tf.constant([str(t) for t in feed.pop("captions")])
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
np.save(sys.argv[3], serve(**{k: tf.constant(v) for k, v in feed.items()})["probs"].numpy())
print(",".join(sorted(serve.structured_input_signature[1])))
"""


def _clips(sample_data, bundle, count=4):
    """The first eval clips decoded at the model's size (the in-graph resize is then the
    identity), as raw inputs, and their captions, the last one blanked."""
    rows, _ = read_manifest(sample_data["manifest_eval"])
    cfg = bundle.config.data
    raw, captions = [], []
    for i, row in enumerate(rows[:count]):
        spec = VideoSpec(frames=cfg.video.frames, size=cfg.video.size)
        clip = decode_clip(row.video, spec, cfg.audio)
        text = "  " if i == count - 1 else row.text  # blank: text_mask 0
        raw.append(raw_inputs(clip.frames, clip.audio, clip.has_audio, np.zeros(1), text))
        captions.append(text)
    return raw, captions


def _keras_on_token_ids(bundle, raw, captions) -> np.ndarray:
    """The Keras model fed as the pipeline feeds it: tokens, text mask, log-mel."""
    clip = {
        "frames": tf.constant(np.stack([r["video"] for r in raw])),
        "samples": tf.constant(np.stack([r["audio"] for r in raw])),
        "audio_mask": tf.constant([float(r["audio_mask"][0]) for r in raw]),
        "text": tf.constant(captions),
    }
    cfg = bundle.config.data
    x = model_inputs(fixed_features(clip, cfg, bundle.tokenizer, mel=True), cfg)
    return inference_model(bundle.model)(x, training=False).numpy()


@pytest.fixture(scope="module")
def bundle(trained_run):
    return Bundle.load(trained_run.out)


# 40-100 s on 2 shared cores: a --preprocess conversion, a SavedModel, a second TensorFlow start
@pytest.mark.slow
def test_saved_model_serves_raw_captions_without_vdg_tf(bundle, sample_data, tmp_path):
    saved = tmp_path / "saved"
    r = export_model(bundle, "float32", tmp_path / "pre.tflite", saved_model=saved,
                     preprocess=True)  # fmt: skip
    assert r.saved_model == saved and (saved / "labels.txt").is_file()
    raw, captions = _clips(sample_data, bundle)
    names = ("video", "audio", "video_mask", "audio_mask")
    feed = {k: np.stack([x[k] for x in raw]) for k in names}
    np.savez(tmp_path / "feed.npz", captions=np.array(captions), **feed)
    out = tmp_path / "probs.npy"
    done = subprocess.run(
        [sys.executable, "-I", "-c", SERVE, str(saved), str(tmp_path / "feed.npz"), str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "audio,audio_mask,text,video,video_mask"
    expected = _keras_on_token_ids(bundle, raw, captions)
    np.testing.assert_allclose(np.load(out), expected, atol=1e-4)
    # the token-id signature (what the .tflite takes) is kept beside it, in this process
    ids = tf.saved_model.load(str(saved)).signatures["serving_token_ids"]
    tokens = bundle.tokenizer(tf.constant(captions))
    mask = tf.constant([[1.0]] * (len(captions) - 1) + [[0.0]])
    got = ids(**{k: tf.constant(v) for k, v in feed.items()}, text=tokens, text_mask=mask)
    np.testing.assert_allclose(got["probs"].numpy(), expected, atol=1e-4)
