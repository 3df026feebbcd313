"""Every custom layer of `vdg_tf.models` lives in `vdg_tf.models.layers`, keeps its
registered name, and round-trips through `get_config` and `.keras` save/load."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import zipfile

import numpy as np
import pytest
import tf_keras as keras

import vdg_tf.models
from tests.helpers import random_inputs, run_layer_saving_test, tiny_config
from vdg_tf.bundle import load_model
from vdg_tf.models import build_classifier
from vdg_tf.models.layers import (
    LAYERS,
    AttentionMask,
    CausalFrameStack,
    FoldFrames,
    MaskedMean,
    MaskedWeightedSum,
    ModalityDropout,
    PaddingMask,
    PositionEmbedding,
    TokenMask,
    TokenMean,
    UnfoldFrames,
)

rng = np.random.default_rng(0)
FLOATS = rng.random((2, 6, 4)).astype(np.float32)
IDS = np.array([[5, 3, 9, 0, 0, 0], [7, 0, 0, 0, 0, 0]], np.int32)
KEEP = (IDS != 0).astype(np.float32)
MASKS3 = np.array([[1, 0, 1], [1, 1, 1]], np.float32)

# (layer, inputs): every layer of LAYERS at least once, each option of a layer that has them
CASES = [
    (FoldFrames(name="fold"), rng.random((2, 3, 4, 4, 3)).astype(np.float32)),
    (UnfoldFrames(3, name="unfold"), rng.random((6, 4, 4, 3)).astype(np.float32)),
    (CausalFrameStack(3, name="stack"), rng.random((2, 5, 4, 4, 3)).astype(np.float32)),
    (ModalityDropout(0.5, seed=1, name="drop"), [np.ones((2, 1), np.float32), KEEP[:, :1]]),
    (MaskedMean(name="mean"), [FLOATS[:, 0], np.array([[2], [0]], np.float32)]),
    (MaskedWeightedSum(name="learned"), [FLOATS[:, :3], MASKS3]),
    (MaskedWeightedSum([0.5, 0.25, 0.25], name="fixed"), [FLOATS[:, :3], MASKS3]),
    (
        MaskedWeightedSum(per_sample=True, name="per_sample"),
        [FLOATS[:, :3], MASKS3, rng.normal(size=(2, 3)).astype(np.float32)],
    ),
    (PositionEmbedding(6, name="positions"), FLOATS),
    (TokenMask(name="token_mask"), IDS),
    (PaddingMask(name="padding_mask"), IDS),
    (AttentionMask(name="attention_mask"), KEEP),
    (TokenMean(name="token_mean"), [FLOATS, KEEP]),
]


@pytest.mark.parametrize(("layer", "inputs"), CASES, ids=[c[0].name for c in CASES])
def test_every_layer_round_trips_through_config_and_keras_file(layer, inputs, tmp_path):
    run_layer_saving_test(layer, inputs, tmp_path)


def test_the_cases_cover_every_layer():
    assert {type(layer) for layer, _ in CASES} == set(LAYERS)


def _custom_layers_of_vdg_tf_models() -> set[type]:
    found = set()
    for info in pkgutil.walk_packages(vdg_tf.models.__path__, "vdg_tf.models."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, keras.layers.Layer) and obj.__module__.startswith("vdg_tf."):
                found.add(obj)
    return found


def test_every_custom_layer_lives_in_the_layers_package_under_its_old_registered_name():
    assert _custom_layers_of_vdg_tf_models() == set(LAYERS)
    for cls in LAYERS:
        assert cls.__module__.startswith("vdg_tf.models.layers."), cls
        # the name saved .keras files hold: changing it stops older models from loading
        assert keras.saving.get_registered_name(cls) == f"vdg_tf>{cls.__name__}"
        assert "get_config" in vars(cls), f"{cls.__name__} defines no get_config"


# the module each layer's class named in `.keras` files saved before the move
OLD_MODULES = {
    "FoldFrames": "vdg_tf.models.frames",
    "UnfoldFrames": "vdg_tf.models.frames",
    "ModalityDropout": "vdg_tf.models.modality_dropout",
    "MaskedMean": "vdg_tf.models.fusion",
    "MaskedWeightedSum": "vdg_tf.models.fusion",
    "PositionEmbedding": "vdg_tf.models.sequence",
    "TokenMask": "vdg_tf.models.sequence",
    "PaddingMask": "vdg_tf.models.sequence",
    "AttentionMask": "vdg_tf.models.sequence",
    "TokenMean": "vdg_tf.models.sequence",
}


def _as_saved_before_the_move(path) -> int:
    """Rewrite the `.keras` file's config as a vdg_tf before the move wrote it: each custom
    layer names its old module. Returns how many layers were rewritten."""
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(members["config.json"])
    old = [layer for layer in config["config"]["layers"] if layer["class_name"] in OLD_MODULES]
    for layer in old:
        layer["module"] = OLD_MODULES[layer["class_name"]]
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return len(old)


def test_a_model_saved_before_the_move_loads_with_the_same_outputs(tmp_path):
    """Keras finds a layer of a saved model by its registered name (`vdg_tf>Name`), not
    by the module the file names: old files load though `vdg_tf.models.frames`,
    `.modality_dropout` and the old homes in `.sequence` are gone."""
    cfg = tiny_config()
    cfg.model.modality_dropout, cfg.model.fusion = 0.2, "hybrid"
    cfg.model.text_encoder, cfg.model.video_frames = "transformer", "independent"
    model = build_classifier(cfg, num_classes=3, vocab_size=50, spec_frames=40)
    inputs = random_inputs(model, 2)
    path = tmp_path / "before.keras"
    model.save(path)
    assert _as_saved_before_the_move(path) >= 7
    for gone in ("vdg_tf.models.frames", "vdg_tf.models.modality_dropout"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(gone)
    loaded = load_model(path)
    for name, out in model(inputs).items():
        np.testing.assert_array_equal(loaded(inputs)[name], out)
