"""What flows between the stages of one pipeline run: the data streams, the models so far,
the float reference, and how a stage's model is scored and recorded."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf.bundle import Bundle
from vdg_tf.config import Config
from vdg_tf.data.pipeline import SkipLog, batched_features
from vdg_tf.data.sources import dataset_from, open_source
from vdg_tf.data.splits import hold_out
from vdg_tf.export.inspect import inspect_tflite, latency_ms
from vdg_tf.export.verify import agreement, predict_tflite
from vdg_tf.models.builder import inference_model
from vdg_tf.tasks import Task, get_task
from vdg_tf.training.evaluate import predict_dataset
from vdg_tf.training.progress import fit_progress
from vdg_tf.training.trainer import compile_classifier, with_head_targets


def file_sizes(path: Path) -> dict:
    """Bytes on disk and bytes after gzip -9 (what a download or an OTA update costs)."""
    data = Path(path).read_bytes()
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, 9))}


@dataclass
class RunContext:
    """One run's shared state; stages read and update it in order."""

    out: Path
    train_data: str
    eval_data: str
    config: Config
    finetune_lr_scale: float
    progress: bool = True
    # picks the trained model's checkpoint (`vdg train`'s --val-data / --val-split); the
    # compression stages fine-tune for set epochs and report on `eval_data`
    val_data: str | None = None
    val_split: float = 0.0
    log: Callable[[str], None] = lambda m: print(f"[vdg run] {m}", file=sys.stderr, flush=True)
    bundle: Bundle | None = None  # the trained model's config, labels and tokenizer
    model: keras.Model | None = None  # the latest float-deployable model
    trained: keras.Model | None = None  # the trained float model: every ratio's reference
    qat_model: keras.Model | None = None
    int4_model: keras.Model | None = None  # int4-aware fine-tuned (edge-int4 exports from it)
    float_layers: list[str] = field(default_factory=list)
    skips: SkipLog = field(default_factory=SkipLog)
    stream: tf.data.Dataset | None = None  # endless augmented training batches (x, y)
    steps: int = 1  # batches in one epoch of `stream`
    calibration: tf.data.Dataset | None = None  # un-augmented training batches (int8 calibration)
    eval: tf.data.Dataset | None = None
    y: np.ndarray | None = None  # evaluation targets
    reference: np.ndarray | None = None  # the trained model's outputs on `eval`

    @property
    def task(self) -> Task:
        return get_task(self.config.data)

    @property
    def labels(self) -> list[str]:
        return self.bundle.labels if self.bundle else []

    @property
    def verbose(self) -> int:
        return fit_progress(self.progress, self.task.primary)[0]

    def fit_callbacks(self) -> list:
        """The epoch bar of a fine-tuning `fit` (none under `--verbose` or without progress)."""
        return fit_progress(self.progress, self.task.primary)[1]

    def open_data(self) -> None:
        """Build the run's streams once, from the trained bundle's labels and tokenizer."""
        cfg, tok = self.config.data, self.bundle.tokenizer
        # rows held out for validation stay out of fine-tuning too (the same seeded choice)
        held = frozenset()
        if self.val_split:
            held = hold_out(self.train_data, self.val_split, cfg.seed, self.task).val_lines
        source = open_source(
            self.train_data, cfg, self.labels, training=True, skips=self.skips, exclude_lines=held
        )
        # one endless stream, `steps` batches an epoch, as `vdg train` reads it: no counting
        # pass to learn an epoch's length, no new iterator per fine-tuning epoch
        self.stream = batched_features(source.decoded, cfg, tok, training=True, repeat=True)
        self.steps = source.steps(cfg.batch_size)
        self.calibration = dataset_from(self.train_data, cfg, self.labels, tok)
        self.eval = dataset_from(self.eval_data, cfg, self.labels, tok, skips=self.skips)
        self.y, self.reference = predict_dataset(inference_model(self.trained), self.eval)

    @property
    def fit_stream(self) -> tf.data.Dataset:
        """The training stream with a target for every output head (as training made it)."""
        vocab = self.bundle.tokenizer.vocab_size
        return with_head_targets(self.stream, self.trained.output_names, self.task, vocab)

    def compile_fn(self, model: keras.Model, steps: int) -> None:
        """Fine-tuning compile: the training loss at a constant, scaled-down learning rate."""
        train = replace(
            self.config.train,
            learning_rate=self.config.train.learning_rate * self.finetune_lr_scale,
            schedule="constant",
        )
        compile_classifier(model, replace(self.config, train=train), steps)

    def fine_tune(self, stage_fn, model: keras.Model, options):
        """Run a compression stage (`prune`, `cluster`, `qat`) on the training stream."""
        return stage_fn(
            model,
            self.fit_stream,
            options,
            self.compile_fn,
            verbose=self.verbose,
            steps_per_epoch=self.steps,
            callbacks=self.fit_callbacks(),
        )

    def scores(self, outputs: np.ndarray) -> dict:
        """The task's scalar metrics on the evaluation split, with `metric` and `score`."""
        task = self.task
        r = task.report(self.y, outputs, self.labels)
        scalars = {k: v for k, v in r.items() if isinstance(v, float) and k != "threshold"}
        return {"metric": task.primary, "score": r[task.primary], **scalars}

    def keras_entry(self, model: keras.Model, path: Path, deployable: bool = True) -> dict:
        """Score a stage's saved model on the evaluation split, with its file sizes.

        `deployable` is False for a training checkpoint (a QAT model's file holds float
        weights plus quantizer state: its size is not what a device downloads).
        """
        _, outputs = predict_dataset(inference_model(model), self.eval)
        return {
            **self.scores(outputs),
            "path": str(path),
            **file_sizes(path),
            "deployable": deployable,
        }

    def tflite_entry(self, path: Path) -> dict:
        """Run a `.tflite` in LiteRT on the evaluation split: scores, size, latency, agreement."""
        _, outputs = predict_tflite(path, self.eval)
        info = inspect_tflite(path)
        return {
            **self.scores(outputs),
            "path": str(path),
            "bytes": info["bytes"],
            "gzip_bytes": info["gzip_bytes"],
            "deployable": True,
            "latency_ms": latency_ms(path),
            "int8_op_fraction": info["int8_op_fraction"],
            **agreement(self.reference, outputs, self.task),
        }
