"""The `Task` base class: everything that depends on what a manifest row teaches.

A task says which manifest keys it reads and how they become a target tensor, which head
and loss the model gets, which metric picks the best checkpoint, what the evaluation
report holds, and how a model output reads as a prediction (label + score, labels, a
value, an anomaly score). The rest of vdg_tf asks the task and never branches on its name.

Example (a new task is one module plus its registration):

    @register_task
    class Binary(Task):
        name = "binary"
        key = "label"
        primary = "accuracy"
        ...
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf.manifest import ClipRow

if TYPE_CHECKING:
    from pathlib import Path

    from vdg_tf.config import DataConfig

TargetEncoder = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


class Task:
    """What a manifest row teaches and how the model's output is read back.

    Subclasses set the class attributes and override what differs; one instance is made
    per run from the data config (`get_task` -> `from_config`), so a task that has
    settings (anomaly's normal labels) takes them there.
    """

    name: ClassVar[str] = ""
    key: ClassVar[str] = "label"  # the manifest key the target comes from (for messages)
    primary: ClassVar[str] = "accuracy"  # the metric a run is judged and checkpointed by
    higher_is_better: ClassVar[bool] = True
    min_labels: ClassVar[int] = 0  # distinct labels a training manifest must define
    # whether the evaluation split's loss and metrics can pick the best epoch
    validates: ClassVar[bool] = True
    # whether the fused output is a distribution over classes (what distillation's soft
    # targets need)
    distills: ClassVar[bool] = False
    # the name of the task's one score series (`series`), or None where there is one per
    # label: what `--watch` with no label watches (anomaly: "anomaly")
    only_series: ClassVar[str | None] = None
    # the file name of the plot `plot_report` draws in a run folder (None: no plot)
    report_plot: ClassVar[str | None] = None
    # whether a row is a whole untrimmed video that `clips` cuts into training windows
    # and `segment_report` scores by the segments found along it
    untrimmed: ClassVar[bool] = False
    # whether the model answers per frame (detection: boxes on every frame, built by
    # `models/detector.py`) rather than once per clip from the fused embedding
    per_frame: ClassVar[bool] = False

    @classmethod
    def from_config(cls, data: DataConfig) -> Task:
        """The task for a run's data config (a task with settings reads them here)."""
        return cls()

    # -- manifest rows ---------------------------------------------------------------
    def labels(self, rows: list[ClipRow]) -> list[str]:
        """The output vocabulary a training manifest defines ([] for a value target)."""
        return []

    def text(self, row: ClipRow) -> str:
        """The text the model reads for `row`."""
        return row.text

    def names(self, row: ClipRow) -> list[str]:
        """The class names `row` carries (looked up by the target encoder)."""
        return []

    def value(self, row: ClipRow) -> float:
        """The number `row` carries (NaN when it has none)."""
        return float(row.target) if row.target is not None else math.nan

    def problem(self, row: ClipRow, labels: list[str]) -> str | None:
        """Why `row` cannot be an example of this task, or None."""
        names = self.names(row)
        if not names:
            return f"{row.where}: missing key '{self.key}'"
        unknown = [n for n in names if n not in set(labels)]
        if unknown:
            shown = ", ".join(labels[:8]) + (" ..." if len(labels) > 8 else "")
            return f"{row.where}: {self.key} '{unknown[0]}' not in labels (known: {shown})"
        return None

    def trains_on(self, row: ClipRow) -> bool:
        """Whether a usable row is a training example (anomaly detection keeps normal rows)."""
        return True

    # -- targets inside tf.data ------------------------------------------------------
    def clips(self, row: ClipRow, duration: float, window: float) -> list[ClipRow]:
        """The clips a row trains and is scored on: the row itself, or (an `untrimmed`
        task) labelled windows of `window` seconds over the `duration` of its video."""
        return [row]

    def parts(
        self, row: ClipRow, duration: float, window: float, labels: list[str] | None
    ) -> tuple[list[ClipRow], list[tuple[str, str]]]:
        """`clips` of an untrimmed row, and each part of the row left out of them as
        (reason, message) (detection: a bad box), counted by reason in the skip log."""
        return self.clips(row, duration, window), []

    def row_targets(self, rows: list[ClipRow], labels: list[str]) -> tf.Tensor | None:
        """Every row's target at once, for a task whose target is not one made from
        names and a value (detection: each frame's padded boxes); None: `target_encoder`."""
        return None

    def segment_report(self, truth: list[dict], found: list[dict]) -> dict:
        """An `untrimmed` task's figures of the segments `found` along whole videos
        against the rows' `truth` ({} for a task whose rows are clips)."""
        return {}

    def target_encoder(self, labels: list[str], training: bool = False) -> TargetEncoder:
        """A tf function `(names [k] string, value float32 []) -> target`."""
        raise NotImplementedError

    def keeps_record(self, target: tf.Tensor, names: tf.Tensor, training: bool) -> tf.Tensor:
        """Whether a preprocessed record with this target is an example (a tf bool)."""
        return tf.constant(True)

    # -- the model -------------------------------------------------------------------
    def head(
        self,
        x: tf.Tensor,
        num_labels: int,
        name: str,
        regularizer: keras.regularizers.Regularizer | None = None,
    ) -> tf.Tensor:
        """The output tensor named `name` on features `x`."""
        raise NotImplementedError

    def loss(self, label_smoothing: float = 0.0):
        """The loss of every head (the fused one and each modality's)."""
        raise NotImplementedError

    def metrics(self) -> list:
        """Metrics Keras tracks on the fused head while training (`fused_<name>` in logs)."""
        return []

    def monitor(self, validation: bool) -> tuple[str, str]:
        """(log key, 'max' or 'min') that picks the best checkpoint."""
        key = f"fused_{self.primary}"
        return (f"val_{key}" if validation else key), ("max" if self.higher_is_better else "min")

    def epoch_callbacks(self, val_ds: tf.data.Dataset | None, labels: list[str]) -> list:
        """Callbacks that put the task's validation figures into the epoch logs before
        the checkpoint reads them (detection's mAP); none by default."""
        return []

    def model_info(self) -> dict:
        """What a run's bundle stores for the model to be read back (detection's anchor
        layout), beside what it chose on validation; {} by default."""
        return {}

    def prepare(self, model: keras.Model, ds: tf.data.Dataset) -> None:
        """Set up a freshly built model before training (nothing by default)."""

    def fit_pairs(
        self,
        ds: tf.data.Dataset,
        output_names: list[str],
        vocab_size: int | None = None,
        seed: int = 0,
    ) -> tf.data.Dataset:
        """A training stream of `(inputs, target)` as Keras fits it: a target per output.

        The target is repeated for every head; a task that makes its own training
        examples (one-class anomaly: tampered copies) rewrites the batch here.
        """
        return ds.map(lambda x, y: (x, {name: y for name in output_names}))

    # -- evaluation and predictions --------------------------------------------------
    def report(self, y: np.ndarray, outputs: np.ndarray, labels: list[str]) -> dict:
        """The metrics that define the task on targets `y` and fused outputs."""
        raise NotImplementedError

    def held_out_report(
        self, y: np.ndarray, outputs: np.ndarray, labels: list[str], validation: dict
    ) -> dict:
        """The report on held-out data with every value a report chooses on its data (a
        decision threshold) taken from `validation`, the same model's report on the
        validation split, so the held-out split chooses nothing it is then scored on."""
        return self.report(y, outputs, labels)

    def decisions(self, outputs: np.ndarray) -> np.ndarray | None:
        """What two models of this task must agree on (top-1 class, label set, level), or
        None where the output is a value with nothing discrete to agree on."""
        return None

    def predictions(self, outputs: np.ndarray, labels: list[str], top: int = 3) -> list[dict]:
        """Each output row as the prediction a user reads."""
        raise NotImplementedError

    def series(self, outputs: np.ndarray, labels: list[str]) -> dict[str, np.ndarray]:
        """Named scores per output row, for timelines and events (`--watch LABEL`)."""
        raise NotImplementedError

    def watched_series(self, name: str | None, labels: list[str]) -> str:
        """The series `--watch NAME` follows: `name`, or the task's only series for None.

        Raises:
          ValueError: no name, and the task has a series per label.
        """
        if name:
            return name
        if self.only_series is None:
            shown = ", ".join(labels[:8]) + (" ..." if len(labels) > 8 else "")
            raise ValueError(f"--watch: name a label for task {self.name} (one of {shown})")
        return self.only_series

    # -- what a run keeps of a report ------------------------------------------------
    def chosen_on_validation(self, validation: dict) -> dict:
        """What the model ships with from its validation report (`bundle.json` info):
        values the report chose on data, such as a decision threshold ({} by default)."""
        return {}

    def decision_threshold(self, info: dict) -> float | None:
        """The decision threshold a model shipped with (`chosen_on_validation`), or None."""
        return None

    def figures(self, report: dict) -> dict[str, float]:
        """The report's scalar figures, without the settings it chose on data (a
        threshold is a setting, not a score)."""
        return {k: v for k, v in report.items() if isinstance(v, float)}

    def plot_report(self, report: dict, labels: list[str], path: Path, title: str) -> str | None:
        """Draw the task's plot of `report` to `path` (a PNG; a run folder names it
        `report_plot`) and say what it is ("confusion matrix"); None when it has none."""
        return None

    def score(self, report: dict) -> float:
        """The primary metric of a report, signed so that higher is always better."""
        value = float(report[self.primary])
        return value if self.higher_is_better else -value


def top_labels(probs: np.ndarray, labels: list[str], top: int) -> list[list[dict]]:
    """The `top` most probable labels of each row as `[{"label", "score"}]`."""
    probs = np.asarray(probs, float)
    order = np.argsort(-probs, axis=-1, kind="stable")[:, :top]
    return [
        [{"label": labels[j], "score": round(float(p[j]), 6)} for j in row]
        for p, row in zip(probs, order, strict=True)
    ]


def lookup_table(labels: list[str]) -> tf.lookup.StaticHashTable:
    """name -> index into `labels`, -1 for a name not in it."""
    n = len(labels)
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(labels or [""]), tf.range(max(n, 1))), -1
    )
