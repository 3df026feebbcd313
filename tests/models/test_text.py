"""Text encoders: recurrent ones train and stay float under QAT; word vectors fill the
Embedding for the tokens a GloVe / word2vec file has, and a damaged file names its line."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import tiny_config
from tests.models.test_builder import random_batch
from vdg_tf.bundle import load_model, save_model
from vdg_tf.compression import quantize_aware
from vdg_tf.models import build_classifier
from vdg_tf.models.word_vectors import apply_word_vectors, read_word_vectors
from vdg_tf.training.trainer import compile_classifier

VOCAB = ["[PAD]", "[UNK]", "dog", "cat", "##s", "up", "down"] + [f"w{i}" for i in range(43)]


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_recurrent_text_encoder_trains_and_is_listed_float(kind, tmp_path):
    cfg = tiny_config()
    cfg.model.modalities, cfg.model.text_encoder = ("video", "text"), kind
    model = build_classifier(cfg, 3, 50, 101)
    x, y = random_batch(cfg)
    x = {k: v for k, v in x.items() if not k.startswith("audio")}
    x["text"][:, 6:] = 0  # padding must not change the encoding
    compile_classifier(model, cfg, steps_per_epoch=1)
    before = model.get_layer(f"text_{kind}").get_weights()[0].copy()
    model.fit(x, {n: y for n in model.output_names}, epochs=1, verbose=0)
    assert not np.allclose(before, model.get_layer(f"text_{kind}").get_weights()[0])
    longer = dict(x, text=x["text"].copy())
    longer["text"][:, 8:] = 0
    np.testing.assert_allclose(model(longer)["fused"], model(x)["fused"], atol=1e-5)
    save_model(model, tmp_path / "m.keras")
    np.testing.assert_allclose(
        load_model(tmp_path / "m.keras")(x)["fused"], model(x)["fused"], atol=1e-5
    )
    float_layers = quantize_aware(model).float_layers
    assert f"text_{kind} ({kind.upper()})" in float_layers


def test_word_vectors_fill_the_rows_the_file_has(tmp_path):
    path = tmp_path / "vectors.txt"
    rows = {"dog": np.full(16, 0.5), "cat": np.arange(16) / 10.0, "zebra": np.ones(16)}
    path.write_text(
        "3 16\n" + "".join(f"{w} {' '.join(f'{v:g}' for v in vec)}\n" for w, vec in rows.items())
    )
    cfg = tiny_config()
    cfg.model.word_vectors = str(path)
    model = build_classifier(cfg, 3, len(VOCAB), 101, vocabulary=VOCAB)
    table = model.get_layer("text_embed").get_weights()[0]
    np.testing.assert_allclose(table[2], rows["dog"])
    np.testing.assert_allclose(table[3], rows["cat"], rtol=1e-6)
    report = apply_word_vectors(model, path, VOCAB)
    assert (report.found, report.vocabulary) == (2, len(VOCAB))
    assert str(report) == f"word vectors: 2 of {len(VOCAB)} vocabulary tokens found in vectors.txt"


@pytest.mark.parametrize(
    "line, error",
    [
        ("dog 0.1 0.2\n", r"vectors.txt line 2: expected a word and 16 numbers .*got 2"),
        ("dog " + " ".join(["0.1"] * 15) + " x1\n", r"vectors.txt line 2: 'x1' is not a number"),
    ],
)
def test_a_malformed_vectors_file_names_the_line(tmp_path, line, error):
    path = tmp_path / "vectors.txt"
    path.write_text("cat " + " ".join(["0.5"] * 16) + "\n" + line)
    with pytest.raises(ValueError, match=error):
        read_word_vectors(path, VOCAB, 16)
