"""Helpers the tests share: the tiny config, the in-process `vdg` runner, random inputs.

Fixtures live in `conftest.py`; plain functions live here, imported by name.
"""

from __future__ import annotations

import numpy as np

from vdg_tf.config import Config, DataConfig, ModelConfig, TextSpec, TrainConfig, VideoSpec


def tiny_config(epochs: int = 6) -> Config:
    """Small enough to train in seconds on 2 cores, big enough to learn the sample task."""
    return Config(
        data=DataConfig(
            video=VideoSpec(frames=4, size=32),
            text=TextSpec(max_tokens=12, vocab_size=120),
            batch_size=8,
        ),
        model=ModelConfig(width=16, embed_dim=16, fused_dim=32),
        train=TrainConfig(epochs=epochs, learning_rate=5e-3, patience=50),
    )


def vdg(capfd, *args) -> tuple[int, str, str]:
    """Run `vdg ARGS...` in this process: (exit code, stdout, stderr).

    A usage error (argparse) exits 2 like the command does; a subprocess per call would
    cost a TensorFlow start. `capfd` reads what reached file descriptors 1 and 2.
    """
    from vdg_tf.cli import main

    capfd.readouterr()
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    out, err = capfd.readouterr()
    return rc, out, err


def random_inputs(model, n: int, seed: int = 0, vocab: int = 50) -> dict[str, np.ndarray]:
    """`n` random examples for every input of `model`, keyed by input name (masks all on)."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in model.inputs:
        name, shape = i.name.split(":")[0], (n, *i.shape[1:])
        if i.dtype.name == "int32":
            out[name] = rng.integers(0, vocab, shape).astype(np.int32)
        elif name.endswith("_mask"):
            out[name] = np.ones(shape, np.float32)
        else:
            out[name] = rng.random(shape).astype(np.float32)
    return out


def run_layer_saving_test(layer, inputs, tmp_path, seed: int = 0) -> None:
    """What every custom layer must do, checked the same way for each (as keras-hub's
    `run_layer_test`): `from_config(get_config())` gives the same config, and a model around
    the layer, its weights drawn at random (so a weight that is not saved shows), saves to
    `.keras`, passes vdg_tf's safety walk and loads with the same class, config and outputs.

    `inputs` is one array or a list of arrays (the layer's call takes a list).
    """
    import tensorflow as tf
    import tf_keras as keras

    from vdg_tf.safety import check_keras_file

    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    symbolic = tf.nest.map_structure(lambda a: keras.Input(a.shape[1:], dtype=a.dtype.name), inputs)
    model = keras.Model(symbolic, layer(symbolic))
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype(w.dtype.as_numpy_dtype))
    expected = tf.nest.map_structure(np.asarray, model(inputs))
    path = tmp_path / f"{layer.name}.keras"
    model.save(path)
    check_keras_file(path)
    loaded = keras.models.load_model(path)
    again = loaded.get_layer(layer.name)
    assert type(again) is type(layer) and again.get_config() == config
    got = tf.nest.map_structure(np.asarray, loaded(inputs))
    tf.nest.map_structure(np.testing.assert_array_equal, got, expected)
