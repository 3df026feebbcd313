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
