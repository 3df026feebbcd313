"""Model builders: contracted inputs, one training step, save/load with identical outputs."""

import numpy as np
import pytest

from tests.helpers import tiny_config
from vdg_tf.bundle import load_model, save_model
from vdg_tf.compression import PruneConfig, quantize_aware
from vdg_tf.compression.prune import wrap_for_pruning
from vdg_tf.models import FUSIONS, build_classifier, get_fusion, inference_model, model_inputs
from vdg_tf.models.layers import MaskedWeightedSum, ModalityDropout
from vdg_tf.training.train import compile_classifier


def random_batch(cfg, n=4, vocab=50, spec_frames=101):
    rng = np.random.default_rng(0)
    v, a, t = cfg.data.video, cfg.data.audio, cfg.data.text
    x = {
        "video": rng.random((n, v.frames, v.size, v.size, 3), dtype=np.float32),
        "audio": rng.standard_normal((n, spec_frames, a.mels, 1)).astype(np.float32),
        "text": rng.integers(0, vocab, (n, t.max_tokens)).astype(np.int32),
    }
    for m in ("video", "audio", "text"):
        x[f"{m}_mask"] = np.ones((n, 1), np.float32)
    return x, rng.integers(0, 3, n).astype(np.int32)


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_builds_trains_a_step_and_round_trips(fusion, tmp_path):
    cfg = tiny_config()
    cfg.model.fusion = fusion
    model = build_classifier(cfg, num_classes=3, vocab_size=50, spec_frames=101)
    assert sorted(model.input_names) == [
        "audio",
        "audio_mask",
        "text",
        "text_mask",
        "video",
        "video_mask",
    ]
    assert sorted(model.output_names) == ["audio_head", "fused", "text_head", "video_head"]
    x, y = random_batch(cfg)
    compile_classifier(model, cfg, steps_per_epoch=1)
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, {n: y for n in model.output_names}, epochs=1, verbose=0)
    assert any(not np.allclose(b, a) for b, a in zip(before, model.get_weights(), strict=True))

    save_model(model, tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again(x)["fused"], model(x)["fused"], atol=1e-6)
    probs = inference_model(model)(x).numpy()
    assert probs.shape == (4, 3)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_mask_zeroes_a_modality(fusion):
    cfg = tiny_config()
    cfg.model.fusion = fusion
    model = build_classifier(cfg, num_classes=3, vocab_size=50, spec_frames=101)
    x, _ = random_batch(cfg)
    x["audio_mask"][:] = 0.0
    noisy = dict(x, audio=x["audio"] * 5.0)
    np.testing.assert_allclose(model(x)["fused"], model(noisy)["fused"], atol=1e-6)


def test_unknown_fusion_lists_the_known_ones():
    with pytest.raises(
        ValueError,
        match="model.fusion: unknown 'late' \\(known: serial, parallel, hybrid, gated, attention, lowrank\\)",
    ):
        get_fusion("late")


def test_video_size_must_fit_the_strides():
    cfg = tiny_config()
    cfg.data.video.size = 36
    with pytest.raises(ValueError, match="data.video.size: 36"):
        build_classifier(cfg, 3, 50, 101)


def test_parallel_fusion_ignores_missing_modality():
    """With a modality masked, the mean is over the others: not dragged towards zero."""
    cfg = tiny_config()
    cfg.model.fusion = "parallel"
    model = build_classifier(cfg, num_classes=3, vocab_size=50, spec_frames=101)
    x, _ = random_batch(cfg)
    x["text_mask"][:] = 0.0
    layer = model.get_layer("fusion_mean")
    probe = type(model)(model.inputs, layer.output)
    total = type(model)(model.inputs, model.get_layer("fusion_sum").output)(x).numpy()
    np.testing.assert_allclose(probe(x).numpy(), total / 2.0, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_every_fusion_is_compressible(fusion):
    """tfmot accepts every configuration: QAT lists what it leaves float, pruning wraps."""
    cfg = tiny_config()
    cfg.model.fusion = fusion
    model = build_classifier(cfg, num_classes=3, vocab_size=50, spec_frames=101)
    result = quantize_aware(model)
    assert "text_embed (Embedding)" in result.float_layers
    if fusion == "serial":
        assert not any(n.startswith("fusion") for n in result.float_layers)
    wrapped = wrap_for_pruning(model, 4, PruneConfig(min_weights=256))
    assert any(type(layer).__name__ == "PruneLowMagnitude" for layer in wrapped.layers)


def test_hybrid_fixed_weights_ignore_zero_weighted_modalities():
    cfg = tiny_config()
    cfg.model.fusion, cfg.model.fusion_weights = "hybrid", (1.0, 0.0, 0.0)
    model = build_classifier(cfg, num_classes=3, vocab_size=50, spec_frames=101)
    x, _ = random_batch(cfg)
    other = dict(x, audio=x["audio"] * 3.0, text=(x["text"] + 1) % 50)
    np.testing.assert_allclose(model(x)["fused"], model(other)["fused"], atol=1e-6)


def test_masked_weighted_sum_renormalises_over_present_modalities():
    layer = MaskedWeightedSum([0.5, 0.25, 0.25])
    feats = np.array([[[1.0], [3.0], [5.0]]], np.float32)
    out = layer([feats, np.array([[1.0, 0.0, 1.0]], np.float32)]).numpy()
    np.testing.assert_allclose(out, [[(0.5 * 1 + 0.25 * 5) / 0.75]], rtol=1e-6)


def test_modality_dropout_keeps_one_modality_and_is_off_at_inference():
    layer = ModalityDropout(0.9, seed=1)
    masks = [np.ones((512, 1), np.float32) for _ in range(3)]
    masks[2][:256] = 0.0  # text absent in half the samples
    kept = np.concatenate([m.numpy() for m in layer(masks, training=True)], -1)
    present = np.concatenate(masks, -1)
    assert np.all(kept <= present) and np.all(kept.sum(-1) >= 1)
    assert 0.2 < kept.sum() / present.sum() < 0.6  # most were dropped, none invented
    same = np.concatenate([np.asarray(m) for m in layer(masks, training=False)], -1)
    np.testing.assert_array_equal(same, present)


def test_modality_dropout_model_round_trips(tmp_path):
    cfg = tiny_config()
    cfg.model.modality_dropout = 0.3
    model = build_classifier(cfg, num_classes=3, vocab_size=50, spec_frames=101)
    assert model.get_layer("modality_dropout").rate == 0.3
    x, _ = random_batch(cfg)
    save_model(model, tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again(x)["fused"], model(x)["fused"], atol=1e-6)


ENCODER_OPTIONS = [
    (temporal, text)
    for temporal in ("conv", "pool", "gru", "attention")
    for text in ("conv", "transformer")
]


@pytest.mark.parametrize(("temporal", "text"), ENCODER_OPTIONS)
def test_encoder_options_train_round_trip_and_compress(temporal, text, tmp_path):
    """Every temporal x text encoder: one step, identical outputs after reload, tfmot accepts it."""
    cfg = tiny_config()
    cfg.model.temporal, cfg.model.text_encoder = temporal, text
    model = build_classifier(cfg, num_classes=3, vocab_size=50, spec_frames=101)
    x, y = random_batch(cfg)
    compile_classifier(model, cfg, steps_per_epoch=1)
    model.fit(x, {n: y for n in model.output_names}, epochs=1, verbose=0)
    save_model(model, tmp_path / "m.keras")
    np.testing.assert_allclose(
        load_model(tmp_path / "m.keras")(x)["fused"], model(x)["fused"], atol=1e-5
    )
    float_layers = quantize_aware(model).float_layers
    assert ("video_gru (GRU)" in float_layers) == (temporal == "gru")
    assert any("MultiHeadAttention" in n for n in float_layers) == (
        "attention" in (temporal, text) or text == "transformer"
    )
    assert any(
        type(la).__name__ == "PruneLowMagnitude"
        for la in wrap_for_pruning(model, 4, PruneConfig(min_weights=64)).layers
    )


def test_transformer_text_ignores_padding():
    cfg = tiny_config()
    cfg.model.text_encoder = "transformer"
    model = build_classifier(cfg, num_classes=3, vocab_size=50, spec_frames=101)
    x, _ = random_batch(cfg)
    x["text"][:, 6:] = 0  # the last tokens are padding
    probe = type(model)(model.inputs, model.get_layer("text_pool").output)
    moved = dict(x, text=x["text"].copy())
    moved["text"][:, 6:] = 0
    base = probe(x).numpy()
    np.testing.assert_allclose(probe(moved).numpy(), base, atol=1e-6)
    changed = dict(x, text=x["text"].copy())
    changed["text"][:, 2] = (changed["text"][:, 2] % 49) + 1  # a real token changes the output
    assert not np.allclose(probe(changed).numpy(), base, atol=1e-4)


TASKS = ["multilabel", "regression", "ordinal", "vqa", "anomaly"]
TASK_WIDTH = {"regression": 1, "ordinal": 3}  # anomaly: softmax over its 4 normal classes


def task_config(task, fusion):
    cfg = tiny_config()
    cfg.data.task, cfg.model.fusion = task, fusion
    cfg.data.normal_labels = ("a", "b", "c", "d")  # anomaly's classes are its normal labels
    return cfg


@pytest.mark.parametrize("task", TASKS)
def test_every_task_head_builds_on_every_fusion(task):
    for fusion in sorted(FUSIONS):
        cfg = task_config(task, fusion)
        model = build_classifier(cfg, num_classes=4, vocab_size=50, spec_frames=101)
        x, _ = random_batch(cfg)
        assert inference_model(model)(x).shape == (4, TASK_WIDTH.get(task, 4)), fusion


@pytest.mark.parametrize(("task", "fusion"), zip(TASKS, sorted(FUSIONS), strict=False))
def test_task_head_trains_a_step(task, fusion):
    cfg = task_config(task, fusion)
    model = build_classifier(cfg, num_classes=4, vocab_size=50, spec_frames=101)
    x, y = random_batch(cfg)
    targets = {
        "multilabel": np.eye(4, dtype=np.float32)[y],
        "regression": y[:, None].astype(np.float32),
    }.get(task, y)
    compile_classifier(model, cfg, steps_per_epoch=1)
    head = model.get_layer("fused")
    before = head.get_weights()[0].copy()
    history = model.fit(x, {n: targets for n in model.output_names}, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = head.get_weights()[0]
    assert not np.allclose(before, after)


def test_fusion_rank_sets_the_low_rank_factors():
    """`model.fusion_rank` is the number of rank-1 factors of lowrank fusion, per modality."""
    cfg = tiny_config()
    cfg.model.fusion, cfg.model.fusion_rank = "lowrank", 3
    model = build_classifier(cfg, num_classes=3, vocab_size=50, spec_frames=101)
    for m in ("video", "audio", "text"):
        kernel = model.get_layer(f"fusion_lmf_{m}").kernel
        assert kernel.shape[-1] == 3 * cfg.model.fused_dim, (m, kernel.shape)
    cfg.model.fusion_rank = 1
    smaller = build_classifier(cfg, num_classes=3, vocab_size=50, spec_frames=101)
    assert smaller.count_params() < model.count_params()


@pytest.mark.parametrize("modalities", [("video",), ("audio", "text"), ("video", "text")])
def test_a_subset_of_modalities_builds_only_those_inputs_and_heads(modalities, tmp_path):
    """`model.modalities` drops the other encoders, inputs and auxiliary heads; the model
    still trains a step and round-trips."""
    cfg = tiny_config()
    cfg.model.modalities = modalities
    model = build_classifier(cfg, num_classes=3, vocab_size=50, spec_frames=101)
    assert sorted(model.input_names) == sorted([*modalities, *(f"{m}_mask" for m in modalities)])
    assert sorted(model.output_names) == sorted(["fused", *(f"{m}_head" for m in modalities)])
    absent = {"video", "audio", "text"} - set(modalities)
    assert not [layer.name for layer in model.layers if layer.name.split("_")[0] in absent]
    x, y = random_batch(cfg)
    x = {k: v for k, v in x.items() if k.split("_")[0] in modalities}
    compile_classifier(model, cfg, steps_per_epoch=1)
    history = model.fit(x, {n: y for n in model.output_names}, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    save_model(model, tmp_path / "m.keras")
    np.testing.assert_allclose(
        load_model(tmp_path / "m.keras")(x)["fused"], model(x)["fused"], atol=1e-6
    )


def test_each_modality_is_encoded_by_its_registry_entry_and_unknown_names_list_the_known():
    from vdg_tf.models.builder import MODALITIES
    from vdg_tf.models.encoders.registry import ENCODERS, get_encoder

    assert tuple(ENCODERS) == MODALITIES
    cfg = tiny_config()
    for m in MODALITIES:
        inputs = {k: v for k, v in model_inputs(cfg, 40).items() if k == m}
        f = get_encoder(m)(inputs[m], cfg, 50)
        assert tuple(f.shape) == (None, cfg.model.fused_dim), m
    with pytest.raises(
        ValueError, match=r"model.modalities: unknown 'smell' \(known: video, audio, text\)"
    ):
        get_encoder("smell")
