"""What flows between the stages of one pipeline run: the inputs, the data streams, the
models the stages made (by name), and how a stage's model is scored and recorded.

Each stage hands on the model it made under its report name (`trained`, `pruned`,
`clustered`, `qat`, `int4_aware`, `distilled`); `latest` is the float model the next
fine-tuning stage starts from. The export stage says which named model each target
exports, so nothing depends on which fields a run happened to fill.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
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
from vdg_tf.export.api import ExportResult
from vdg_tf.export.inspect import latency_ms
from vdg_tf.export.verify import agreement, predict_tflite
from vdg_tf.models.builder import inference_model
from vdg_tf.tasks import Task, get_task
from vdg_tf.training.evaluate import predict_dataset
from vdg_tf.training.progress import fit_progress
from vdg_tf.training.trainer import compile_classifier, with_head_targets

log = logging.getLogger(__name__)

LATEST = "latest"  # the float model the next stage starts from


def file_sizes(path: Path) -> dict:
    """Bytes on disk and bytes after gzip -9 (what a download or an OTA update costs)."""
    data = Path(path).read_bytes()
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, 9))}


@dataclass(frozen=True)
class RunInputs:
    """The data a run reads: `data` trains (and calibrates int8), `eval_data` scores every
    stage; `val_data` or `val_split` of the training rows picks the trained checkpoint.
    `scored_on` is "val" when no evaluation data was given and the stages are scored on
    the validation rows."""

    data: str
    eval_data: str
    val_data: str | None = None
    val_split: float = 0.0
    scored_on: str = "eval"


@dataclass
class RunData:
    """The run's streams, opened once after training from the trained bundle."""

    stream: tf.data.Dataset  # endless augmented training batches (x, y)
    steps: int  # batches in one epoch of `stream`
    eval: tf.data.Dataset
    y: np.ndarray  # evaluation targets
    reference: np.ndarray  # the trained model's outputs on `eval`


@dataclass
class RunContext:
    """One run's shared state: inputs and settings, then what the stages made, in order."""

    out: Path
    inputs: RunInputs
    config: Config
    finetune_lr_scale: float
    progress: bool = True
    bundle: Bundle | None = None  # config, labels and tokenizer of the latest model
    trained_bundle: Bundle | None = None  # the same for the trained model
    models: dict[str, keras.Model] = field(default_factory=dict)  # by the name a stage gave
    float_layers: list[str] = field(default_factory=list)  # left float by the QAT stage
    skips: SkipLog = field(default_factory=SkipLog)
    data: RunData | None = None

    # -- models ---------------------------------------------------------------------
    def hand_on(self, name: str, model: keras.Model, latest: bool = True) -> None:
        """Record the model a stage made as `name`; with `latest` later stages start from it."""
        self.models[name] = model
        if latest:
            self.models[LATEST] = model

    @property
    def latest(self) -> keras.Model:
        return self.models[LATEST]

    @property
    def trained(self) -> keras.Model:
        return self.models["trained"]

    def bundle_of(self, name: str) -> Bundle:
        """Model `name` with its config, labels and tokenizer (the trained model keeps the
        trained config; a distilled student and what follows it have the student's)."""
        if name not in self.models:
            made = ", ".join(sorted(self.models))
            raise ValueError(f"export: no model '{name}' made by the stages before (made: {made})")
        base = self.trained_bundle if name == "trained" else self.bundle
        return dataclasses.replace(base, model=self.models[name])

    # -- settings -------------------------------------------------------------------
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

    # -- data -----------------------------------------------------------------------
    def open_data(self) -> None:
        """Build the run's streams once, from the trained bundle's labels and tokenizer."""
        cfg, tok, inputs = self.config.data, self.bundle.tokenizer, self.inputs
        # rows held out for validation stay out of fine-tuning too (the same seeded choice)
        held = frozenset()
        if inputs.val_split:
            held = hold_out(inputs.data, inputs.val_split, cfg.seed, self.task).val_lines
        source = open_source(
            inputs.data, cfg, self.labels, training=True, skips=self.skips, exclude_lines=held
        )
        ev = dataset_from(inputs.eval_data, cfg, self.labels, tok, skips=self.skips)
        y, reference = predict_dataset(inference_model(self.trained), ev)
        self.data = RunData(
            # one endless stream, `steps` batches an epoch, as `vdg train` reads it: no
            # counting pass to learn an epoch's length, no new iterator per epoch
            stream=batched_features(source.decoded, cfg, tok, training=True, repeat=True),
            steps=source.steps(cfg.batch_size),
            eval=ev,
            y=y,
            reference=reference,
        )

    @property
    def fit_stream(self) -> tf.data.Dataset:
        """The training stream with a target for every output head (as training made it)."""
        vocab = self.bundle.tokenizer.vocab_size
        return with_head_targets(self.data.stream, self.trained.output_names, self.task, vocab)

    # -- fine-tuning ----------------------------------------------------------------
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
            steps_per_epoch=self.data.steps,
            callbacks=self.fit_callbacks(),
        )

    # -- report entries -------------------------------------------------------------
    def detector_entry(self, exported: ExportResult) -> dict:
        """A detection export scored in LiteRT by COCO mAP on the evaluation manifest's
        annotated frames (its outputs are boxes after NMS, not per-anchor scores)."""
        from vdg_tf.runtime.box_map import box_map

        m = box_map(exported.path, self.inputs.eval_data)
        return {
            "metric": "map", "score": m["map"],
            **{k: m[k] for k in ("map", "map_50", "map_75") if m[k] is not None},
            "path": str(exported.path), "bytes": exported.bytes,
            "gzip_bytes": exported.gzip_bytes, "deployable": True,
            "latency_ms": latency_ms(exported.path),
            "int8_op_fraction": exported.int8_op_fraction,
        }  # fmt: skip

    def scores(self, outputs: np.ndarray) -> dict:
        """The task's scalar metrics on the evaluation split, with `metric` and `score`."""
        task = self.task
        r = task.report(self.data.y, outputs, self.labels)
        return {"metric": task.primary, "score": r[task.primary], **task.figures(r)}

    def keras_entry(self, model: keras.Model, path: Path, deployable: bool = True) -> dict:
        """Score a stage's saved model on the evaluation split, with its file sizes.

        `deployable` is False for a training checkpoint (a QAT model's file holds float
        weights plus quantizer state: its size is not what a device downloads).
        """
        _, outputs = predict_dataset(inference_model(model), self.data.eval)
        return {
            **self.scores(outputs),
            "path": str(path),
            **file_sizes(path),
            "deployable": deployable,
        }

    def tflite_entry(self, exported: ExportResult) -> dict:
        """Run an exported `.tflite` in LiteRT on the evaluation split: scores, size,
        latency, agreement with the trained model."""
        from vdg_tf.export.litert_detector import is_detector

        if is_detector(exported.path):
            return self.detector_entry(exported)
        _, outputs = predict_tflite(exported.path, self.data.eval)
        return {
            **self.scores(outputs),
            "path": str(exported.path),
            "bytes": exported.bytes,
            "gzip_bytes": exported.gzip_bytes,
            "deployable": True,
            "latency_ms": latency_ms(exported.path),
            "int8_op_fraction": exported.int8_op_fraction,
            **agreement(self.data.reference, outputs, self.task),
        }
