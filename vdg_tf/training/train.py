"""Train a multimodal classifier from manifests into a run folder.

The fusion loss is `L_fused + w * sum_m L_m` over auxiliary per-modality heads; the
best epoch (by fused validation accuracy) is kept, and a killed run resumes from
its last epoch through `BackupAndRestore`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from vdg_tf.config import Config
from vdg_tf.data.features import TextTokenizer, log_mel_frames
from vdg_tf.data.pipeline import SkipLog, batched_features
from vdg_tf.data.sources import dataset_from, open_source
from vdg_tf.files import write_json
from vdg_tf.models.builder import build_classifier
from vdg_tf.models.heads import set_svdd_centres
from vdg_tf.training.artifacts import MODEL_FILE, save_model_atomic, save_run_metadata
from vdg_tf.training.callbacks import BestCheckpoint
from vdg_tf.training.devices import distribution_strategy, precision_policy, use_mixed_precision
from vdg_tf.training.evaluate import evaluate_model
from vdg_tf.training.losses import monitor, task_loss, task_metrics
from vdg_tf.training.plots import plot_confusion, plot_curves
from vdg_tf.training.schedules import make_schedule


@dataclass
class TrainResult:
    """What a training run produced."""

    out: Path
    model: keras.Model
    labels: list[str]
    tokenizer: TextTokenizer
    epochs: int
    metrics: dict = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def with_head_targets(ds: tf.data.Dataset, output_names: list[str]) -> tf.data.Dataset:
    """Repeat the label once per model output, as Keras wants for multi-output losses."""
    return ds.map(lambda x, y: (x, {name: y for name in output_names}))


def compile_classifier(
    model: keras.Model, cfg: Config, steps_per_epoch: int, epochs: int | None = None
) -> None:
    """Adam on the configured schedule with the fusion loss (fused + weighted aux heads).

    Every head gets the task's loss (`training/losses.py`).
    """
    tc = cfg.train
    epochs = epochs or tc.epochs
    lr = make_schedule(tc.schedule, tc.learning_rate, steps_per_epoch, epochs, tc.warmup_epochs)
    keys = output_keys(model)
    fused = model.output["fused"] if isinstance(model.output, dict) else model.outputs[0]
    one_class = int(fused.shape[-1]) == 1
    loss = task_loss(cfg.data.task, tc.label_smoothing, one_class)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss={k: loss for k in keys},
        loss_weights={k: (1.0 if k == "fused" else tc.aux_weight) for k in keys},
        metrics={"fused": task_metrics(cfg.data.task, one_class)},
    )


def output_keys(model: keras.Model) -> list[str]:
    """The model's output names as its targets are keyed (`fused`, `<m>_head`); QAT clones
    keep the dict keys of the model they were made from."""
    if isinstance(model.output, dict):
        return list(model.output)
    return [n.removeprefix("quant_") for n in model.output_names]


def fit_verbosity(progress: bool) -> int:
    """Keras progbar on a terminal, one line per epoch in logs, nothing when quiet."""
    if not progress:
        return 0
    return 1 if sys.stderr.isatty() else 2


def train(
    cfg: Config,
    train_manifest: str | Path,
    out_dir: str | Path,
    eval_manifest: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train on `train_manifest`, validate on `eval_manifest`, write the run folder `out_dir`.

    Either may be a manifest or a `vdg preprocess` folder of decoded clips. The task
    (`cfg.data.task`) picks the heads, loss, checkpoint metric and evaluation report.

    Example:
      result = train(Config(), "data/manifest_train.jsonl", "runs/a", "data/manifest_eval.jsonl")
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.data.seed)
    task = cfg.data.task
    skips = SkipLog()
    source = open_source(train_manifest, cfg.data, training=True, skips=skips)
    labels = source.labels
    if task in ("classification", "vqa", "multilabel", "ordinal") and len(labels) < 2:
        raise ValueError(
            f"{train_manifest}: need at least 2 distinct labels for task {task}, found {labels}"
        )
    tokenizer = TextTokenizer.fit(source.texts, cfg.data.text)
    save_run_metadata(out, cfg, labels, tokenizer)

    # one stream for the whole run (see `batched_features`), read `steps` batches an epoch
    train_ds = batched_features(source.decoded, cfg.data, tokenizer, training=True, repeat=True)
    eval_ds = None
    if eval_manifest:
        eval_ds = dataset_from(eval_manifest, cfg.data, labels, tokenizer, skips=skips)

    spec_frames = log_mel_frames(cfg.data.audio)
    mixed = use_mixed_precision(cfg.train.mixed_precision)
    with distribution_strategy(cfg.train.strategy).scope(), precision_policy(mixed):
        model = build_classifier(cfg, len(labels), tokenizer.vocab_size, spec_frames)
        steps = source.steps(cfg.data.batch_size)
        compile_classifier(model, cfg, steps)
    if task == "anomaly":
        set_svdd_centres(model, train_ds)
    names = model.output_names
    validate = eval_ds is not None and task != "anomaly"  # anomaly validation holds anomalies
    # BackupAndRestore empties its folder after a finished fit; files there mean a killed run
    resuming = (out / "backup").is_dir() and any((out / "backup").iterdir())
    key, mode = monitor(task, validate)
    best = BestCheckpoint(out / MODEL_FILE, key, mode, tie_break="val_loss" if validate else "loss")
    callbacks = [
        best,
        keras.callbacks.BackupAndRestore(str(out / "backup")),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=resuming),
        keras.callbacks.TensorBoard(str(out / "logs"), profile_batch=0),
        # the fusion loss keeps falling while auxiliary heads learn after the fused head
        # saturates, so early stopping watches it rather than the checkpoint metric
        keras.callbacks.EarlyStopping(
            monitor="val_loss" if validate else "loss", patience=cfg.train.patience
        ),
    ]
    history = model.fit(
        with_head_targets(train_ds, names),
        steps_per_epoch=steps,
        validation_data=with_head_targets(eval_ds, names) if validate else None,
        epochs=cfg.train.epochs,
        callbacks=callbacks,
        verbose=fit_verbosity(progress),
    )
    if best.best_weights is not None:
        model.set_weights(best.best_weights)
    if mixed or best.best_epoch < 0:
        # exports want float32 layers: rebuild under the float32 policy, same weights
        if mixed:
            model = float32_copy(model, cfg, len(labels), tokenizer.vocab_size, spec_frames)
        save_model_atomic(model, out / MODEL_FILE)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    if hist:
        plot_curves(hist, out / "curves.png")

    metrics: dict = {"best_epoch": best.best_epoch + 1, "epochs_run": len(hist.get("loss", []))}
    if eval_ds is not None:
        report = evaluate_model(model, eval_ds, labels, task)
        if "confusion" in report:
            plot_confusion(report["confusion"], labels, out / "confusion.png", "evaluation split")
        metrics["eval"] = report
    metrics["skipped"] = skips.count
    metrics["skipped_files"] = skips.reasons
    if skips.count:
        print(skips.summary(source.count), file=sys.stderr)
    write_json(out / "metrics.json", metrics)
    return TrainResult(out, model, labels, tokenizer, metrics["epochs_run"], metrics, skips.reasons)


def float32_copy(
    model: keras.Model, cfg: Config, num_labels: int, vocab_size: int, spec_frames: int
) -> keras.Model:
    """The same model and weights with float32 layers (for saving and export)."""
    with precision_policy(False):
        copy = build_classifier(cfg, num_labels, vocab_size, spec_frames)
    copy.set_weights(model.get_weights())
    return copy
