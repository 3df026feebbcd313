"""Shared fixtures: real generated clips and one tiny trained run, built once per session."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

from vdg_tf._quiet import import_tensorflow_quietly  # noqa: E402
from vdg_tf.media.heap import pool_tensorflow_memory  # noqa: E402

pool_tensorflow_memory()  # as the `vdg` entry point does, before TensorFlow starts
import_tensorflow_quietly()

from tests.helpers import tiny_config  # noqa: E402
from vdg_tf.data.sample import make_sample_data  # noqa: E402


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory):
    """64 real mp4 clips (H.264 + AAC) with train/eval manifests (48 / 16)."""
    return make_sample_data(tmp_path_factory.mktemp("sample"), clips=64, seed=3)


@pytest.fixture(scope="session")
def trained_run(sample_data, tmp_path_factory):
    """A tiny model trained on the sample data (TrainResult)."""
    from vdg_tf.training.trainer import train

    out = tmp_path_factory.mktemp("run")
    # a model for the tests that use one, not a measured figure: the small evaluation split
    # picks its epoch (validation) and is also reported, so metrics.json has both sections
    return train(
        tiny_config(10),
        sample_data["manifest_train"],
        out,
        val_data=sample_data["manifest_eval"],
        eval_data=sample_data["manifest_eval"],
        progress=False,
    )


@pytest.fixture(scope="session")
def eval_ds(trained_run, sample_data):
    """The evaluation split as the trained run's batched, un-augmented inputs."""
    from vdg_tf.data.sources import dataset_from

    return dataset_from(
        sample_data["manifest_eval"], tiny_config().data, trained_run.labels, trained_run.tokenizer
    )
