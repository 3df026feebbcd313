"""A training progress bar a person reads: one bar per epoch with the three figures that
matter.

Keras' own per-epoch line holds every output head's loss and metric (14 figures for a
three-modality model), with the one a user watches at its end. The epoch bar shows the
loss, the task's primary metric and its validation value; the rest still goes to
`history.csv` and TensorBoard, and `--verbose` brings Keras' full lines back. Bars for
the other long steps (calibration, LiteRT passes, clip writing) are in `vdg_tf._progress`.
"""

from __future__ import annotations

import sys
import time

import tf_keras as keras
from tqdm import tqdm

from vdg_tf._progress import interactive, seconds
from vdg_tf._quiet import is_verbose


class EpochProgress(keras.callbacks.Callback):
    """A bar per epoch showing `loss`, the task's primary metric and its validation value.

    Reads the epoch count and steps per epoch from Keras (`self.params`), so the same
    callback serves training and every fine-tuning stage.

    Args:
      metric: the task's primary metric (`accuracy`, `mae`, `map`, `auroc`); its log key
        is `fused_<metric>` (the fused head), `val_fused_<metric>` on validation.
      stream: where to draw (stderr).
    """

    def __init__(self, metric: str, stream=None):
        super().__init__()
        self.metric = metric
        self.stream = stream or sys.stderr
        self.bar: tqdm | None = None
        self.lines: list[str] = []  # one summary per finished epoch

    def figures(self, logs: dict | None) -> str:
        """`loss 0.412  accuracy 0.812  val_loss 0.520  val_accuracy 0.750` from Keras logs."""
        logs = logs or {}
        keys = [
            ("loss", "loss"),
            (f"fused_{self.metric}", self.metric),
            ("val_loss", "val_loss"),
            (f"val_fused_{self.metric}", f"val_{self.metric}"),
        ]
        return "  ".join(f"{name} {float(logs[k]):.3f}" for k, name in keys if k in logs)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.started = epoch, time.time()
        epochs, steps = self.params.get("epochs"), self.params.get("steps")
        self.desc = f"epoch {epoch + 1}/{epochs}"
        if interactive(self.stream):
            self.bar = tqdm(
                total=steps,
                desc=self.desc,
                unit="step",
                file=self.stream,
                leave=True,
                dynamic_ncols=True,
                bar_format="{desc} {bar:20} {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}",
            )

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(self.figures(logs), refresh=False)

    def on_test_begin(self, logs=None):
        if self.bar is not None:
            self.bar.set_description_str(f"{self.desc} validating")

    def on_epoch_end(self, epoch, logs=None):
        line = f"{self.desc}  {self.figures(logs)}  ({seconds(time.time() - self.started)})"
        self.lines.append(line)
        if self.bar is not None:
            self.bar.set_description_str(self.desc)
            self.bar.set_postfix_str(self.figures(logs))
            self.bar.close()
            self.bar = None
        else:
            print(line, file=self.stream, flush=True)


def fit_progress(progress: bool, metric: str) -> tuple[int, list[keras.callbacks.Callback]]:
    """(Keras `verbose`, extra callbacks) for a `fit`: nothing when `progress` is off,
    Keras' own lines under `--verbose`, else the epoch bar of `metric`."""
    if not progress:
        return 0, []
    if is_verbose():
        return (1 if interactive(sys.stderr) else 2), []
    return 0, [EpochProgress(metric)]
