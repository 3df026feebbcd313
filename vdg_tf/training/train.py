"""Train a multimodal classifier from manifests into a run folder.

The fusion loss is `L_fused + w * sum_m L_m` over auxiliary per-modality heads; the
best epoch (by fused validation accuracy) is kept, and a killed run resumes from
its last epoch through `BackupAndRestore`.

Honest splits: the validation data (a manifest, or a seeded stratified fraction held out
of the training rows) picks the checkpoint and stops early; the evaluation data is only
reported, once, after training, with the chosen model, and whatever a report chooses on
data (anomaly's threshold) is chosen on validation and applied to evaluation.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from vdg_tf.bundle import MODEL_FILE, Bundle, save_model
from vdg_tf.config import Config
from vdg_tf.data.features import TextTokenizer, log_mel_frames
from vdg_tf.data.inputs import check_data_path
from vdg_tf.data.pipeline import SkipLog, batched_features
from vdg_tf.data.sources import open_source
from vdg_tf.data.splits import hold_out, write_rows
from vdg_tf.files import atomic_dir, claim_dir, data_identity, write_json
from vdg_tf.media.workers import set_decode_log
from vdg_tf.models.builder import build_classifier, inference_model
from vdg_tf.models.serving import save_serving_model
from vdg_tf.tasks import Task, get_task
from vdg_tf.training.callbacks import BestCheckpoint, ResumableBackup
from vdg_tf.training.devices import distribution_strategy, precision_policy, use_mixed_precision
from vdg_tf.training.evaluate import evaluate_model
from vdg_tf.training.finetune import fit_in_phases
from vdg_tf.training.plots import plot_confusion, plot_curves
from vdg_tf.training.progress import fit_progress
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
    config: Config | None = None

    @property
    def bundle(self) -> Bundle:
        """The trained model with its config, labels and tokenizer."""
        return Bundle(self.config, self.labels, self.tokenizer, self.model, path=self.out)


def with_head_targets(
    ds: tf.data.Dataset,
    output_names: list[str],
    task: Task | None = None,
    vocab_size: int | None = None,
) -> tf.data.Dataset:
    """The label as Keras wants it for multi-output losses: one target per output, made by
    `task` when it is a training stream (see `Task.fit_pairs`), else the label repeated."""
    if task is not None:
        return task.fit_pairs(ds, output_names, vocab_size)
    return ds.map(lambda x, y: (x, {name: y for name in output_names}))


def compile_classifier(
    model: keras.Model, cfg: Config, steps_per_epoch: int, epochs: int | None = None
) -> None:
    """Adam on the configured schedule with the fusion loss (fused + weighted aux heads).

    Every head gets the task's loss (`vdg_tf/tasks/`).
    """
    tc = cfg.train
    epochs = epochs or tc.epochs
    lr = make_schedule(tc.schedule, tc.learning_rate, steps_per_epoch, epochs, tc.warmup_epochs)
    keys = output_keys(model)
    task = get_task(cfg.data)
    loss = task.loss(tc.label_smoothing)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss={k: loss for k in keys},
        loss_weights={k: (1.0 if k == "fused" else tc.aux_weight) for k in keys},
        metrics={"fused": task.metrics()},
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
    *,
    val_data: str | Path | None = None,
    val_split: float = 0.0,
    eval_data: str | Path | None = None,
    progress: bool = True,
    saved_model: bool = False,
) -> TrainResult:
    """Train on `train_manifest`, pick the checkpoint on validation data, write `out_dir`.

    The validation data is `val_data`, or `val_split` of the training rows held out
    (seeded by `data.seed`, stratified by class, written to `out_dir/val.jsonl` so the
    split can be read and reused); it picks the best epoch and stops early. `eval_data`
    is never seen while training: it is reported once, after, with the chosen model.
    With no validation data the checkpoint follows the training metric, and
    `metrics.json` (`checkpoint`) says so. Each may be a manifest or a `vdg preprocess`
    folder (`val_split` needs a manifest). The task (`cfg.data.task`) picks the heads,
    loss, checkpoint metric and reports. The run folder is a `Bundle`; `saved_model` also
    writes `saved_model/` (TF Serving).

    Example:
      result = train(Config(), "data/manifest_train.jsonl", "runs/a", val_split=0.2,
                     eval_data="data/manifest_eval.jsonl")
    """
    if val_data is not None and val_split:
        raise ValueError(
            "val_data and val_split: give one (a validation manifest, or the fraction of "
            "training rows to hold out)"
        )
    named = ((train_manifest, "training data"), (val_data, "validation data"),
             (eval_data, "evaluation data"))  # fmt: skip
    for data, what in named:
        if data is not None:
            check_data_path(data, what)  # before anything is written
    task = get_task(cfg.data)
    held = hold_out(train_manifest, val_split, cfg.data.seed, task) if val_split else None
    out = claim_dir(out_dir)  # a new folder, or a vdg run: never a folder of other files
    set_decode_log(out / "decode.log")  # decode workers started from here log there
    keras.utils.set_random_seed(cfg.data.seed)
    skips = SkipLog()
    held_lines = held.val_lines if held else frozenset()
    source = open_source(
        train_manifest, cfg.data, training=True, skips=skips, exclude_lines=held_lines
    )
    if held:  # the held-out rows, so the split can be read and reused
        val_data = write_rows(train_manifest, held.val_lines, out / "val.jsonl")
    if source.usable == 0:
        raise ValueError(f"{train_manifest}: no usable clip: {skips.summary(source.count)}")
    labels = source.labels
    if len(labels) < task.min_labels:
        raise ValueError(
            f"{train_manifest}: need at least {task.min_labels} distinct labels for task "
            f"{task.name}, found {labels}"
        )
    tokenizer = TextTokenizer.fit(source.texts, cfg.data.text)
    # the metadata goes inside every saved model (one rename), then beside the final one
    texts = Bundle(cfg, labels, tokenizer).texts()

    # one stream for the whole run (see `batched_features`), read `steps` batches an epoch
    train_ds = batched_features(source.decoded, cfg.data, tokenizer, training=True, repeat=True)
    val_ds, val_info = split_data(val_data, cfg, labels, tokenizer, skips)
    eval_ds, eval_info = split_data(eval_data, cfg, labels, tokenizer, skips)
    if held:
        val_info |= held.info()

    spec_frames = log_mel_frames(cfg.data.audio)
    mixed = use_mixed_precision(cfg.train.mixed_precision)
    with distribution_strategy(cfg.train.strategy).scope(), precision_policy(mixed):
        model = build_classifier(
            cfg, len(labels), tokenizer.vocab_size, spec_frames, tokenizer.vocabulary
        )
        steps = source.steps(cfg.data.batch_size)
        compile_classifier(model, cfg, steps)
    task.prepare(model, train_ds)
    names = model.output_names
    validate = val_ds is not None and task.validates
    key, mode = task.monitor(validate)
    checkpoint = checkpoint_rule(key, mode, validate, val_info, task.name)
    if progress:
        print(f"checkpoint: {checkpoint['why']}", file=sys.stderr)
    tie = "val_loss" if validate else "loss"
    best = BestCheckpoint(out / MODEL_FILE, key, mode, tie_break=tie, texts=texts)
    # the fusion loss keeps falling while auxiliary heads learn after the fused head
    # saturates, so early stopping watches it rather than the checkpoint metric
    early = keras.callbacks.EarlyStopping(monitor=tie, patience=cfg.train.patience)
    # files in the backup folder mean a killed run: resumed with its best value and
    # patience, unless it trained on other data or settings (then it starts over)
    identity = {
        "config": cfg.to_dict(), "labels": labels, "vocabulary": tokenizer.vocabulary,
        "train": data_identity(train_manifest),
        "val": held.info() if held else data_identity(val_data),
    }  # fmt: skip
    backup = ResumableBackup(out / "backup", identity, {"best": best, "early_stopping": early})
    callbacks = [
        best,
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=backup.resuming),
        keras.callbacks.TensorBoard(str(out / "logs"), profile_batch=0),
        early,
        backup,  # last: it backs up the state the others reached this epoch
    ]
    # a bar per epoch with loss and the task's metric; the rest goes to history.csv
    verbose, shown = fit_progress(progress, task.primary)
    problems_before = skips.count
    try:
        # model.freeze_backbone_epochs: frozen backbone first, then fine-tuned slower
        history = fit_in_phases(
            model,
            cfg,
            lambda m, c, epochs: compile_classifier(m, c, steps, epochs),
            lambda **phase: model.fit(
                with_head_targets(train_ds, names, task, tokenizer.vocab_size),
                steps_per_epoch=steps,
                validation_data=with_head_targets(val_ds, names) if validate else None,
                callbacks=callbacks + shown,
                verbose=verbose,
                **phase,
            ),
        )
    except ValueError:
        if skips.count - problems_before >= source.usable:  # not one clip decoded
            summary = skips.summary(source.count)
            raise ValueError(f"{train_manifest}: no clip could be decoded: {summary}") from None
        raise
    best.restore_best(model)
    if mixed or best.best_epoch < 0:
        # exports want float32 layers: rebuild under the float32 policy, same weights
        if mixed:
            model = float32_copy(model, cfg, len(labels), tokenizer.vocab_size, spec_frames)
        save_model(model, out / MODEL_FILE, texts)
    Bundle(cfg, labels, tokenizer).save_metadata(out)  # readable copies beside the model
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    if hist:
        title = f"{out.name}: {task.name}, trained on {Path(train_manifest).name}"
        plot_curves(hist, out / "curves.png", title)

    metrics: dict = {
        "best_epoch": best.best_epoch + 1,
        "epochs_run": len(hist.get("loss", [])),
        "checkpoint": checkpoint,
    }
    # validation first: what a report chooses on data (anomaly's threshold) comes from it
    validation = None
    if val_ds is not None:
        validation = evaluate_model(model, val_ds, labels, task)
        metrics["val"] = val_info | validation
        if "threshold" in validation:  # the model ships with the decision it was reported at
            info = {"threshold": validation["threshold"], "threshold_chosen_on": "validation"}
            bundle = Bundle(cfg, labels, tokenizer, info=info)
            save_model(model, out / MODEL_FILE, bundle.texts())
            bundle.save_metadata(out)
    if eval_ds is not None:
        report = evaluate_model(model, eval_ds, labels, task, validation=validation)
        if "confusion" in report:
            plot_confusion(report["confusion"], labels, out / "confusion.png", "evaluation split")
        metrics["eval"] = eval_info | report
    metrics["skipped"] = skips.count
    metrics["skipped_files"] = skips.reasons
    metrics["kept_damaged"] = skips.damaged_count
    if skips.count or skips.damaged_count:
        print(skips.summary(source.count), file=sys.stderr)
    write_json(out / "metrics.json", metrics)
    result = TrainResult(
        out, model, labels, tokenizer, metrics["epochs_run"], metrics, skips.reasons, cfg
    )
    if saved_model:
        write_saved_model(result.bundle, out / "saved_model")
    return result


def split_data(
    path: str | Path | None,
    cfg: Config,
    labels: list[str],
    tokenizer: TextTokenizer,
    skips: SkipLog,
) -> tuple[tf.data.Dataset | None, dict]:
    """Batched, un-augmented inputs of a validation or evaluation split, and what a
    report says about it (`{"data": path, "rows": manifest rows}`); (None, {}) for None."""
    if path is None:
        return None, {}
    source = open_source(path, cfg.data, labels, skips=skips)
    ds = batched_features(source.decoded, cfg.data, tokenizer, training=False)
    return ds, {"data": str(path), "rows": source.count}


def checkpoint_rule(key: str, mode: str, validate: bool, val_info: dict, task: str) -> dict:
    """Which metric on which split picks the checkpoint, with the reason in words (for
    `metrics.json` and the run's output): never the evaluation split."""
    if validate:
        why = f"best {key} on the validation split ({val_info['data']})"
    elif val_info:
        why = (
            f"best {key} on the training data (task {task} does not rank epochs on "
            "validation data; validation sets what its report chooses, e.g. a threshold)"
        )
    else:
        why = f"best {key} on the training data: no validation data (--val-data or --val-split)"
    return {"metric": key, "mode": mode, "split": "val" if validate else "train", "why": why}


def write_saved_model(bundle: Bundle, path: str | Path) -> Path:
    """The deployable model as a SavedModel (`serving_default` by input name) with the
    bundle's metadata beside it, written to a temp folder and renamed."""
    with atomic_dir(path) as tmp:
        save_serving_model(inference_model(bundle.model), tmp)
        bundle.save_metadata(tmp)
    return Path(path)


def float32_copy(
    model: keras.Model, cfg: Config, num_labels: int, vocab_size: int, spec_frames: int
) -> keras.Model:
    """The same model and weights with float32 layers (for saving and export)."""
    with precision_policy(False):
        copy = build_classifier(cfg, num_labels, vocab_size, spec_frames)
    copy.set_weights(model.get_weights())
    return copy
