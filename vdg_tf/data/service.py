"""The training input pipeline run by a tf.data service (`data.service: grpc://HOST:PORT`).

tf.data service workers cannot run `tf.py_function`, `numpy_function` or
`from_generator`, so the PyAV decode cannot move there: training through the service reads
the TFRecord shards of `vdg preprocess`. The dispatcher hands out the shard files with
DYNAMIC sharding (each file to one worker, as workers ask for work); each worker parses
its records and runs the features and augmentation, and the trainer receives batches.
A manifest given with the service set is refused before anything starts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import tensorflow as tf

from vdg_tf.config import DataConfig
from vdg_tf.data.features import TextTokenizer
from vdg_tf.data.inputs import INDEX
from vdg_tf.data.pipeline import batched_features
from vdg_tf.data.records import records_dataset


def check_service_data(path: str | Path, cfg: DataConfig, flag: str = "--data") -> None:
    """Refuse training data the service cannot read: anything but a `vdg preprocess` folder."""
    if cfg.service and not (Path(path) / INDEX).is_file():
        raise ValueError(
            f"{flag} {path}: data.service ({cfg.service}) reads TFRecord shards, not a "
            f"manifest; run `vdg preprocess {path} SHARDS` first and train with {flag} SHARDS"
        )


def worker_pipeline(
    folder: str | Path, cfg: DataConfig, labels: list[str], tokenizer: TextTokenizer
) -> tf.data.Dataset:
    """What the service's workers run (also run in-process: `vdg benchmark service`'s
    baseline): shard files -> parse -> shuffle -> features -> repeat -> batch -> augment."""
    local = dataclasses.replace(cfg, cache=False)
    ds = records_dataset(Path(folder).resolve(), local, labels, training=True)
    ds = ds.shuffle(cfg.shuffle_buffer, seed=cfg.seed, reshuffle_each_iteration=True)
    return batched_features(ds, local, tokenizer, training=True, repeat=True)


def service_stream(
    folder: str | Path, cfg: DataConfig, labels: list[str], tokenizer: TextTokenizer
) -> tf.data.Dataset:
    """Endless batches of augmented model inputs, made by the service's workers.

    The whole pipeline (shard files -> parse -> shuffle -> features -> repeat -> batch ->
    augment) runs on the workers; the epochs repeat there too, as one job: a new job per
    epoch cost ~5 s of the service's start-up every epoch. Nothing is cached (the workers
    read decoded clips already). Read it with `steps_per_epoch`, as the local stream.

    Args:
      folder: a `vdg preprocess` folder, on storage every service worker can read.
      cfg: the data section; `cfg.service` names the dispatcher.
      labels: class names (the target vocabulary).
      tokenizer: the fitted text tokenizer (its tables travel in the dataset graph).
    """
    if not cfg.service:
        raise ValueError("data.service: not set (grpc://HOST:PORT of the dispatcher)")
    ds = worker_pipeline(folder, cfg, labels, tokenizer)
    service = tf.data.experimental.service
    ds = ds.apply(
        service.distribute(processing_mode=service.ShardingPolicy.DYNAMIC, service=cfg.service)
    )
    return ds.prefetch(tf.data.AUTOTUNE)
