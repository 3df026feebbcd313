"""Train a multimodal model from data into a run folder, in named steps.

`train()` runs a `Trainer`: prepare (start the distribution strategy, check and split the
data, claim the folder, fit the tokenizer), build (the model under the strategy), fit
(callbacks, resume; each worker decodes its own share of the rows),
select (the best checkpoint, as float32), report (evaluation, metrics, plots), save (the
bundle and, on request, a SavedModel). The fusion loss is `L_fused + w * sum_m L_m` over
auxiliary per-modality heads; a killed run resumes from its last epoch through
`BackupAndRestore`. Under `train.strategy: multi_worker` every worker runs the same
steps; the chief writes the run folder, the others a temporary one they delete, and only
the chief reports (see `vdg_tf.training.cluster`).

Honest splits: the validation data (a manifest, or a seeded stratified fraction held out
of the training rows) picks the checkpoint and stops early; the evaluation data is only
reported, once, after training, with the chosen model, and whatever a task chooses on
data (`Task.chosen_on_validation`: anomaly's threshold) is chosen on validation, applied
to evaluation and shipped with the model.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from vdg_tf.bundle import MODEL_FILE, Bundle, save_model
from vdg_tf.config import Config
from vdg_tf.data.features import TextTokenizer, log_mel_frames
from vdg_tf.data.inputs import check_data_path, class_folders, resolve_data
from vdg_tf.data.pipeline import SkipLog, batched_features
from vdg_tf.data.service import check_service_data, service_stream
from vdg_tf.data.sources import open_source
from vdg_tf.data.splits import HeldOut, hold_out, write_rows
from vdg_tf.files import atomic_dir, claim_dir, data_identity, write_json
from vdg_tf.media.workers import set_decode_log
from vdg_tf.models.builder import build_classifier, inference_model, random_init_note
from vdg_tf.models.serving import save_serving_model
from vdg_tf.results import Result, plain
from vdg_tf.tasks import Task, get_task
from vdg_tf.training.callbacks import BestCheckpoint, EpochClock, ResumableBackup
from vdg_tf.training.cluster import Cluster, barrier, remove_worker_folder, worker_folder
from vdg_tf.training.devices import distribution_strategy, precision_policy, use_mixed_precision
from vdg_tf.training.evaluate import evaluate_model
from vdg_tf.training.finetune import fit_in_phases
from vdg_tf.training.plots import plot_curves
from vdg_tf.training.progress import fit_progress
from vdg_tf.training.schedules import make_schedule
from vdg_tf.training.sharding import (
    distributes,
    global_batch,
    sharded_stream,
    split_by_data,
    steps_per_epoch,
)

logger = logging.getLogger(__name__)

SPLIT_INFO = ("rows", "fraction", "seed", "val_rows", "train_rows")  # not figures
SPLITS = (("val", "validation"), ("eval", "evaluation"))


@dataclass
class TrainResult(Result):
    """What a training run produced; `to_dict()` is what `vdg train --json` prints."""

    out: Path
    model: keras.Model = field(metadata={"json": False})
    labels: list[str]
    tokenizer: TextTokenizer
    epochs: int
    metrics: dict = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    config: Config | None = None
    saved_model: Path | None = None
    info: dict = field(default_factory=dict)  # what the model ships with (bundle.json)

    @property
    def bundle(self) -> Bundle:
        """The trained model with its config, labels, tokenizer and shipped info."""
        return Bundle(
            self.config, self.labels, self.tokenizer, self.model, dict(self.info), path=self.out
        )

    @property
    def task(self) -> Task:
        return get_task(self.config.data)

    @property
    def stopped(self) -> dict:
        """Why training stopped: `{"reason": "patience" | "cap", "why": ...}`."""
        return self.metrics.get("stopped", {})

    def to_dict(self) -> dict:
        m = self.metrics
        out = {
            "model": str(self.out / MODEL_FILE),
            "saved_model": None if self.saved_model is None else str(self.saved_model),
            "epochs": self.epochs,
            "best_epoch": m.get("best_epoch"),
            "skipped": len(self.skipped),
            "checkpoint": m.get("checkpoint"),
            "stopped": self.stopped,
        }
        if "distribution" in m:  # where it trained: replicas, workers, global batch
            out["distribution"] = m["distribution"]
        key = self.task.primary
        # each figure under the split it comes from: validation chose the model,
        # evaluation only measures it
        for split, _ in SPLITS:
            if split in m:
                s = m[split]
                out[f"{split}_{key}"] = s[key]
                out[split] = {"data": s["data"], "rows": s["rows"], key: s[key]}
        return plain(out)

    def format(self) -> str:
        d = self.to_dict()
        rows = [("model", f"{d['model']}  (best epoch {d['best_epoch']} of {self.epochs})")]
        if self.saved_model is not None:
            rows.append(("serving", d["saved_model"]))
        rows.append((
            "history", f"{self.out / 'history.csv'}, {self.out / 'curves.png'}, "
                       f"tensorboard --logdir {self.out / 'logs'}",
        ))  # fmt: skip
        if "checkpoint" in self.metrics:
            rows.append(("checkpoint", self.metrics["checkpoint"]["why"]))
        if self.stopped:
            rows.append(("stopped", self.stopped["why"]))
        for split, name in SPLITS:
            if split in self.metrics:
                rows.append((name, _split_line(self.metrics[split])))
        if self.skipped:
            rows.append(("skipped", f"{len(self.skipped)}: {'; '.join(self.skipped[:3])}"))
        width = max(len(k) for k, _ in rows) + 2
        return "\n".join([f"trained {self.out}", *(f"  {k:<{width}}{v}" for k, v in rows)])


def _split_line(m: dict) -> str:
    """`accuracy 0.950  macro_f1 0.948  (16 clips of data/eval.jsonl)` for a split's report."""
    scalars = {
        k: v
        for k, v in m.items()
        if isinstance(v, float | int) and not isinstance(v, bool)
        and k != "skipped" and k not in SPLIT_INFO
    }  # fmt: skip
    n = scalars.pop("n", None)
    figures = "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in scalars.items())  # fmt: skip
    clips = f"{n} clips of " if n is not None else ""
    return f"{figures}  ({clips}{m['data']})"


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
    model: keras.Model,
    cfg: Config,
    steps_per_epoch: int,
    epochs: int | None = None,
    task: Task | None = None,
) -> None:
    """Adam on the configured schedule with the fusion loss (fused + weighted aux heads).

    Every head gets the task's loss (`vdg_tf/tasks/`); `task` defaults to the config's.
    """
    tc = cfg.train
    epochs = epochs or tc.epochs
    lr = make_schedule(tc.schedule, tc.learning_rate, steps_per_epoch, epochs, tc.warmup_epochs)
    keys = output_keys(model)
    task = task or get_task(cfg.data)
    loss = task.loss(tc.label_smoothing)
    if isinstance(loss, dict):  # a loss per output (detection), all weighed alike
        model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss)
        return
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss={k: loss for k in keys},
        loss_weights={k: (1.0 if k == "fused" else tc.aux_weight) for k in keys},
        metrics={"fused": task.metrics()},
        jit_compile=tc.jit_compile,
    )


def output_keys(model: keras.Model) -> list[str]:
    """The model's output names as its targets are keyed (`fused`, `<m>_head`); QAT clones
    keep the dict keys of the model they were made from."""
    if isinstance(model.output, dict):
        return list(model.output)
    return [n.removeprefix("quant_") for n in model.output_names]


def _resolved(path: str | Path | None, work: Path, flag: str) -> str | Path | None:
    """`path` as given (named so in reports), or the manifest a folder of class folders
    was imported into (in `work`)."""
    if path is None:
        return None
    resolved = resolve_data(path, work, flag)
    return path if resolved == Path(path) else resolved


def as_config(config: Config | str | Path | None) -> Config:
    """A `Config` from a Config, a YAML path, or None (the defaults)."""
    if config is None:
        return Config()
    if isinstance(config, Config):
        return config
    return Config.load(config)


def train(
    config: Config | str | Path | None,
    data: str | Path,
    out: str | Path,
    *,
    val_data: str | Path | None = None,
    val_split: float = 0.0,
    eval_data: str | Path | None = None,
    progress: bool = True,
    saved_model: bool = False,
) -> TrainResult:
    """Train on `data`, pick the checkpoint on validation data, write the run folder `out`.

    The validation data is `val_data`, or `val_split` of the training rows held out
    (seeded by `data.seed`, stratified by class, written to `out/val.jsonl` so the split
    can be read and reused); it picks the best epoch and stops training once it stops
    improving (`train.patience`; `train.epochs` is the cap). `eval_data` is never seen
    while training: it is reported once, after, with the chosen model. With no
    validation data the checkpoint follows the training metric, and `metrics.json`
    (`checkpoint`) says so. Each may be a manifest, a `vdg preprocess` folder or a folder
    of class folders (imported into `out`; `val_split` needs rows, not records). The
    task (`config.data.task`) picks the heads, loss, checkpoint metric and reports. The
    run folder is a `Bundle`; `saved_model` also writes `saved_model/` (TF Serving).

    Several workers (`train.strategy: multi_worker`, or `auto`, with `TF_CONFIG` set)
    each call this with the same arguments, as the first TensorFlow work of a fresh
    process; `out` is on storage they share, and only the chief (worker 0) writes it.

    Args:
      config: a `Config`, a YAML file, or None for the defaults.
      progress: an epoch bar on stderr (log lines go through `logging`).

    Example:
      result = train(None, "data/manifest_train.jsonl", "runs/a", val_split=0.2,
                     eval_data="data/manifest_eval.jsonl")
      table = result.format()  # what `vdg train` prints
    """
    trainer = Trainer(
        as_config(config), data, out, val_data=val_data, val_split=val_split,
        eval_data=eval_data, progress=progress, saved_model=saved_model,
    )  # fmt: skip
    return trainer.run()


class Trainer:
    """One training run, step by step: `prepare`, `build`, `fit`, `select`, `report`,
    `save` (`run` does them in order). Each step reads what the ones before it set.

    Scale-out and new tasks plug in at a step: the strategy in `build`, the task's
    hooks (`chosen_on_validation`, `plot_report`) in `report` and `save`.
    """

    def __init__(
        self,
        config: Config,
        data: str | Path,
        out: str | Path,
        *,
        val_data: str | Path | None = None,
        val_split: float = 0.0,
        eval_data: str | Path | None = None,
        progress: bool = True,
        saved_model: bool = False,
    ):
        self.config, self.progress, self.want_saved_model = config, progress, saved_model
        self.data, self.val_data, self.eval_data = data, val_data, eval_data
        self.val_split, self.out = val_split, Path(out)
        self.run_out = self.out  # the run folder; a non-chief worker writes elsewhere
        self.cluster = Cluster()  # where this process sits, read when training starts
        self.held: HeldOut | None = None
        self.info: dict = {}  # what the model ships with: the task's, chosen on validation

    @cached_property
    def task(self) -> Task:
        """The run's task, made once from the config."""
        return get_task(self.config.data)

    def run(self) -> TrainResult:
        """All the steps, in order; a worker that is not the chief stops after `select`
        (the chief reports and saves the same weights) and deletes its temporary folder."""
        try:
            self.prepare()
            self.build()
            history = self.fit()
            self.select()
            if not self.cluster.chief:
                return self.worker_result(history)
            metrics = self.report(history)
            return self.save(metrics)
        finally:
            if not self.cluster.chief and self.out != self.run_out:
                remove_worker_folder(self.out)

    def worker_result(self, history: dict[str, list[float]]) -> TrainResult:
        """What a non-chief worker returns: the chief's run folder, its epochs and where it
        trained (the weights' digest shows it ended on the chief's weights)."""
        metrics = {
            "best_epoch": self.best.best_epoch + 1,
            "epochs_run": len(history.get("loss", [])),
            "epoch_seconds": self.clock.seconds,
            "distribution": self.distribution(),
        }
        return TrainResult(
            self.run_out, self.model, self.labels, self.tokenizer, metrics["epochs_run"],
            metrics, self.skips.reasons, self.config,
        )  # fmt: skip

    def distribution(self) -> dict:
        """Where this run trained: strategy, replicas, workers, batches, and a digest of
        the chosen weights (equal on every worker of one run)."""
        return {
            "strategy": type(self.strategy).__name__,
            "replicas": self.strategy.num_replicas_in_sync,
            **self.cluster.to_dict(),
            "per_replica_batch": self.config.data.batch_size,
            "global_batch": self.global_batch,
            "steps_per_epoch": self.steps,
            "weights_sha256": weights_digest(self.model),
        }

    # -- prepare ---------------------------------------------------------------------
    def prepare(self) -> None:
        """Start the distribution strategy (before any TensorFlow op: multi-worker
        collectives are set up at process start), check the data (before anything is
        written), hold out validation rows, claim the run folder (a worker that is not the
        chief: a temporary one), open the splits and fit the tokenizer."""
        self.cluster = Cluster.from_env()
        self.strategy = distribution_strategy(self.config.train.strategy, self.cluster)
        if not self.strategy.extended._in_multi_worker_mode():
            self.cluster = Cluster()  # TF_CONFIG of one worker, or a strategy that ignores it
        self._check_inputs()
        self.info = self.task.model_info()
        if self.val_split and not class_folders(self.data):  # a bad split writes nothing
            self.held = hold_out(self.data, self.val_split, self.config.data.seed, self.task)
        self.run_out = Path(self.out)  # the run folder the chief writes (shared storage)
        if self.cluster.chief:
            self.out = claim_dir(self.out)  # a new folder, or a vdg run: never other files
        else:
            self.out = worker_folder(self.cluster)
        self.data, self.val_data, self.eval_data = (
            _resolved(path, self.out, flag) for path, flag in self._named_data()
        )
        if self.val_split and self.held is None:  # imported just now from class folders
            self.held = hold_out(self.data, self.val_split, self.config.data.seed, self.task)
        set_decode_log(self.out / "decode.log")  # decode workers started from here log there
        keras.utils.set_random_seed(self.config.data.seed)
        self._open_data()

    def _named_data(self) -> list[tuple[str | Path | None, str]]:
        return [(self.data, "training data"), (self.val_data, "validation data"),
                (self.eval_data, "evaluation data")]  # fmt: skip

    def _check_inputs(self) -> None:
        if self.val_data is not None and self.val_split:
            raise ValueError(
                "val_data and val_split: give one (a validation manifest, or the fraction of "
                "training rows to hold out)"
            )
        for path, flag in self._named_data():
            if path is not None:
                check_data_path(path, flag)
        check_service_data(self.data, self.config.data, "training data")

    def _open_data(self) -> None:
        """The training stream, the tokenizer, and the validation and evaluation splits."""
        cfg, held = self.config, self.held
        self.skips = SkipLog()
        self.source = open_source(
            self.data, cfg.data, training=True, skips=self.skips,
            exclude_lines=held.val_lines if held else frozenset(),
        )  # fmt: skip
        if held:  # the held-out rows, so the split can be read and reused
            self.val_data = write_rows(self.data, held.val_lines, self.out / "val.jsonl")
        if self.source.usable == 0:
            summary = self.skips.summary(self.source.count)
            raise ValueError(f"{self.data}: no usable clip: {summary}")
        self.labels = self.source.labels
        if len(self.labels) < self.task.min_labels:
            raise ValueError(
                f"{self.data}: need at least {self.task.min_labels} distinct labels for task "
                f"{self.task.name}, found {self.labels}"
            )
        self.tokenizer = TextTokenizer.fit(self.source.texts, cfg.data.text)
        # the metadata goes inside every saved model (one rename), then beside the final one
        self.texts = Bundle(cfg, self.labels, self.tokenizer, info=self.info).texts()
        # one stream for the whole run (see `batched_features`), `steps` batches an epoch
        if cfg.data.service:  # the same stream, made by the tf.data service's workers
            self.train_ds = service_stream(self.data, cfg.data, self.labels, self.tokenizer)
        else:
            self.train_ds = batched_features(
                self.source.decoded, cfg.data, self.tokenizer, training=True, repeat=True
            )
        self.val_ds, self.val_info = self._split(self.val_data)
        self.eval_ds, self.eval_info = self._split(self.eval_data)
        if held:
            self.val_info |= held.info()

    def _split(self, path: str | Path | None) -> tuple[tf.data.Dataset | None, dict]:
        """Batched, un-augmented inputs of a validation or evaluation split, and what a
        report says about it (`{"data": path, "rows": manifest rows}`); (None, {}) for None."""
        if path is None:
            return None, {}
        source = open_source(path, self.config.data, self.labels, skips=self.skips)
        ds = batched_features(source.decoded, self.config.data, self.tokenizer, training=False)
        return ds, {"data": str(path), "rows": source.count}

    # -- build -----------------------------------------------------------------------
    def build(self) -> None:
        """The compiled model, built under the distribution strategy and precision policy."""
        cfg = self.config
        note = random_init_note(cfg.model)
        if note:
            logger.warning(note)
        self.spec_frames = log_mel_frames(cfg.data.audio)
        self.mixed = use_mixed_precision(cfg.train.mixed_precision)
        self.global_batch = global_batch(cfg.data.batch_size, self.strategy)
        self.steps = steps_per_epoch(self.source.usable, self.global_batch)
        with self.strategy.scope(), precision_policy(self.mixed):
            self.model = build_classifier(
                cfg, len(self.labels), self.tokenizer.vocab_size, self.spec_frames,
                self.tokenizer.vocabulary, self.task,
            )  # fmt: skip
            compile_classifier(self.model, cfg, self.steps, task=self.task)
        self.task.prepare(self.model, self.train_ds)

    # -- fit -------------------------------------------------------------------------
    def fit(self) -> dict[str, list[float]]:
        """Fit (in phases when a pretrained backbone is frozen first); the history.

        A fit that fails because not one clip decoded says so instead of Keras' error.
        """
        callbacks = self._callbacks()
        verbose, shown = fit_progress(self.progress, self.task.primary)  # epoch bar
        names, validate = self.model.output_names, self.validates
        train_pairs = sharded_stream(self.strategy, self._train_pairs)
        val_pairs = with_head_targets(self.val_ds, names) if validate else None
        if val_pairs is not None and distributes(self.strategy):
            val_pairs = split_by_data(val_pairs)
        problems_before = self.skips.count
        try:
            # model.freeze_backbone_epochs: frozen backbone first, then fine-tuned slower
            history = fit_in_phases(
                self.model,
                self.config,
                lambda m, c, epochs: compile_classifier(m, c, self.steps, epochs, self.task),
                lambda **phase: self.model.fit(
                    train_pairs, steps_per_epoch=self.steps, validation_data=val_pairs,
                    callbacks=callbacks + shown, verbose=verbose, **phase,
                ),
            )  # fmt: skip
        except ValueError:
            if self.skips.count - problems_before >= self.source.usable:  # none decoded
                summary = self.skips.summary(self.source.count)
                raise ValueError(f"{self.data}: no clip could be decoded: {summary}") from None
            raise
        except tf.errors.UnavailableError as e:  # a peer died: its collectives were aborted
            if not self.cluster.multi_worker:
                raise
            raise RuntimeError(
                f"worker {self.cluster.index}: another worker of the cluster stopped "
                f"({str(e).splitlines()[0][-120:]}); restart every worker with the same "
                f"command: training resumes from {self.run_out / 'backup'}"
            ) from None
        return {k: [float(v) for v in vals] for k, vals in history.history.items()}

    def _train_pairs(self, shard: tuple[int, int] | None) -> tf.data.Dataset:
        """The training stream as Keras fits it; of input worker `shard=(n, i)`'s rows
        only (split before decoding) when the strategy has several input workers."""
        ds = self.train_ds
        if shard is not None:
            ds = batched_features(
                self.source.shard(shard), self.config.data, self.tokenizer, training=True,
                repeat=True,
            )  # fmt: skip
        names, vocab = self.model.output_names, self.tokenizer.vocab_size
        return with_head_targets(ds, names, self.task, vocab)

    @property
    def validates(self) -> bool:
        """Whether the validation split ranks epochs (some tasks only choose on it)."""
        return self.val_ds is not None and self.task.validates

    def _callbacks(self) -> list[keras.callbacks.Callback]:
        """Best checkpoint, history, TensorBoard, early stopping and the resumable backup."""
        key, mode = self.task.monitor(self.validates)
        self.checkpoint = checkpoint_rule(key, mode, self.validates, self.val_info, self.task.name)
        logger.info("checkpoint: %s", self.checkpoint["why"])
        tie = "val_loss" if self.validates else "loss"
        self.best = BestCheckpoint(
            self.out / MODEL_FILE, key, mode, tie_break=tie, texts=self.texts,
            shared=self.run_out / MODEL_FILE,
        )  # fmt: skip
        # the fusion loss keeps falling while auxiliary heads learn after the fused head
        # saturates, so early stopping watches it rather than the checkpoint metric
        self.early = keras.callbacks.EarlyStopping(monitor=tie, patience=self.config.train.patience)
        # files in the backup folder mean a killed run: resumed with its best value and
        # patience, unless it trained on other data or settings (then it starts over)
        identity = {
            "config": self.config.to_dict(), "labels": self.labels,
            "vocabulary": self.tokenizer.vocabulary, "train": data_identity(self.data),
            "val": self.held.info() if self.held else data_identity(self.val_data),
        }  # fmt: skip
        keep = {"best": self.best, "early_stopping": self.early}
        # one backup folder for every worker (Keras restores all of them from the chief's)
        backup = ResumableBackup(
            self.run_out / "backup", identity, keep, chief=self.cluster.chief,
            barrier=lambda: barrier(self.strategy),
        )  # fmt: skip
        self.clock = EpochClock()
        return [
            *self.task.epoch_callbacks(self.val_ds if self.validates else None, self.labels),
            self.clock,
            self.best,
            keras.callbacks.CSVLogger(str(self.out / "history.csv"), append=backup.resuming),
            keras.callbacks.TensorBoard(str(self.out / "logs"), profile_batch=0),
            self.early,
            backup,  # last: it backs up the state the others reached this epoch
        ]

    # -- select ----------------------------------------------------------------------
    def select(self) -> None:
        """The best epoch's weights, as float32 layers outside any strategy, saved with
        the run's metadata."""
        copy = self.mixed or distributes(self.strategy)
        if copy:
            # exports want float32 layers, and the steps after this one a model of this
            # process alone: rebuild under the float32 policy, same weights (every worker
            # reads the synchronised weights here, together)
            self.model = float32_copy(
                self.model, self.config, len(self.labels), self.tokenizer.vocab_size,
                self.spec_frames,
            )  # fmt: skip
        self.best.restore_best(self.model)
        if copy or self.best.best_epoch < 0:
            save_model(self.model, self.out / MODEL_FILE, self.texts)
        Bundle(self.config, self.labels, self.tokenizer, info=self.info).save_metadata(self.out)

    # -- report ----------------------------------------------------------------------
    def report(self, history: dict[str, list[float]]) -> dict:
        """Curves, why training stopped, the validation report (what the task chooses on
        it) and the evaluation report (with the task's plot), and the skipped clips."""
        if history:
            title = f"{self.out.name}: {self.task.name}, trained on {Path(self.data).name}"
            plot_curves(history, self.out / "curves.png", title)
        metrics: dict = {
            "best_epoch": self.best.best_epoch + 1,
            "epochs_run": len(history.get("loss", [])),
            "checkpoint": self.checkpoint,
            "stopped": stop_reason(self.early, self.config.train.epochs, self.validates),
            "epoch_seconds": self.clock.seconds,
            "distribution": self.distribution(),
        }
        logger.info("stopped: %s", metrics["stopped"]["why"])
        # validation first: what the task chooses on data (anomaly's threshold) comes from it
        validation = None
        if self.val_ds is not None:
            validation = evaluate_model(self.model, self.val_ds, self.labels, self.task)
            metrics["val"] = self.val_info | validation
            self.info |= self.task.chosen_on_validation(validation)
        if self.eval_ds is not None:
            report = evaluate_model(
                self.model, self.eval_ds, self.labels, self.task, validation=validation
            )
            if self.task.report_plot:
                path = self.out / self.task.report_plot
                self.task.plot_report(report, self.labels, path, "evaluation split")
            metrics["eval"] = self.eval_info | report
        skips = self.skips
        metrics |= {
            "skipped": skips.count, "skipped_files": skips.reasons,
            "kept_damaged": skips.damaged_count,
        }  # fmt: skip
        if skips.parts:  # parts of rows left out (detection's bad boxes), by reason
            metrics |= {"skipped_boxes": len(skips.parts), "skipped_box_reasons": skips.part_reasons,
                        "skipped_box_examples": [m for _, m in list(skips.parts.values())[:20]]}  # fmt: skip
        if skips.count or skips.damaged_count:
            logger.warning(skips.summary(self.source.count))
        return metrics

    # -- save ------------------------------------------------------------------------
    def save(self, metrics: dict) -> TrainResult:
        """The bundle (re-saved with what the task chose on validation), `metrics.json`,
        and the SavedModel when asked for."""
        if self.info:  # the model ships with the decision it was reported at
            bundle = Bundle(self.config, self.labels, self.tokenizer, info=self.info)
            save_model(self.model, self.out / MODEL_FILE, bundle.texts())
            bundle.save_metadata(self.out)
        write_json(self.out / "metrics.json", metrics)
        result = TrainResult(
            self.out, self.model, self.labels, self.tokenizer, metrics["epochs_run"], metrics,
            self.skips.reasons, self.config, info=dict(self.info),
        )  # fmt: skip
        if self.want_saved_model:
            result.saved_model = write_saved_model(result.bundle, self.out / "saved_model")
        return result


def stop_reason(early: keras.callbacks.EarlyStopping, cap: int, validates: bool) -> dict:
    """Why a fit ended, in words: `patience` (early stopping's watched loss stopped
    improving) or `cap` (`train.epochs` ran out, with whether it was still improving)."""
    watched, best = early.monitor, int(early.best_epoch) + 1
    if early.stopped_epoch > 0:
        why = (
            f"patience: {watched} did not improve for {early.patience} epochs after epoch "
            f"{best} (stopped at epoch {int(early.stopped_epoch) + 1}, cap train.epochs {cap})"
        )
        return {"reason": "patience", "why": why}
    where = "" if validates else " (training loss: no validation data ranks epochs)"
    if best >= cap:
        why = (
            f"cap reached while improving: {watched} still fell at epoch {cap}, the cap "
            f"(train.epochs){where}; more epochs may do better"
        )
    else:
        since = f"{cap - best} epoch{'s' * (cap - best > 1)}"
        why = (
            f"cap reached: train.epochs {cap} ran out {since} after {watched}'s best "
            f"(epoch {best}), within patience {early.patience}{where}"
        )
    return {"reason": "cap", "why": why}


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


def write_saved_model(bundle: Bundle, path: str | Path, model: keras.Model | None = None) -> Path:
    """`model` (default: the bundle's deployable model) as a SavedModel (`serving_default`
    by input name) with the bundle's metadata beside it, written to a temp folder and
    renamed."""
    with atomic_dir(path) as tmp:
        save_serving_model(model or inference_model(bundle.model), tmp)
        bundle.save_metadata(tmp)
    return Path(path)


def weights_digest(model: keras.Model) -> str:
    """SHA-256 of a model's weights, in order: equal on every worker of one run."""
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def float32_copy(
    model: keras.Model, cfg: Config, num_labels: int, vocab_size: int, spec_frames: int
) -> keras.Model:
    """The same model and weights with float32 layers (for saving and export)."""
    with precision_policy(False):
        copy = build_classifier(cfg, num_labels, vocab_size, spec_frames)
    copy.set_weights(model.get_weights())
    return copy
