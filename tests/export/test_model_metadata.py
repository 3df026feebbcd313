"""Every export carries standard TFLite Model Metadata beside our sidecars: the trained
sample classifier's float32 export says its labels (on the probabilities output), that
`video` takes frames normalised from 0-255 pixels, and still runs in LiteRT by name."""

from __future__ import annotations

import numpy as np

from vdg_tf.bundle import Bundle
from vdg_tf.export import export
from vdg_tf.export.litert import LiteRTModel
from vdg_tf.export.tflite import read_metadata as read_vdg_metadata
from vdg_tf.export.tflite_metadata import read_metadata


def test_a_classifier_export_has_model_metadata(trained_run, tmp_path):
    r = export(trained_run.out, "float32", tmp_path / "m.tflite", embed_metadata=True)
    meta = read_metadata(r.path.read_bytes())
    labels = Bundle.load(trained_run.out, model=False).labels
    assert meta["name"] == "vdg_tf classification" and meta["labels"] == labels
    (probs,) = meta["outputs"]
    assert probs["name"] == "probability" and probs["label_type"] == "axis"
    by_name = {i["name"]: i for i in meta["inputs"]}
    assert by_name["video"]["mean"] == [0.0] and by_name["video"]["std"] == [255.0]
    assert by_name["text"]["mean"] is None  # token ids: no normalisation
    assert "labels.txt" in read_vdg_metadata(r.path)  # our own entries are kept
    model = LiteRTModel(r.path)
    x = {n: np.zeros(d["shape"][1:], d["dtype"]) for n, d in model.input_details.items()}
    assert model.predict_one(x).shape == (len(labels),)
