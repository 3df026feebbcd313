"""The stages a pipeline can name, in one table: their options and what each one does.

Each stage class has `Options` (a dataclass, checked at load by the config loader),
`check` (what the loader cannot see alone, also at load) and `run`, which either reuses
the stage's finished record or does the work, and returns the report entries it adds.
A stage's record is reused only when its options are the same and every stage before it
was reused too; otherwise it and all later stages run again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from vdg_tf.bundle import Bundle, load_model, save_model
from vdg_tf.compression import (
    PruneConfig,
    QATConfig,
    load_qat,
    overall_sparsity,
    prune,
    qat,
    sparsity_by_branch,
    sparsity_table,
)
from vdg_tf.compression.cluster import ClusterConfig, cluster, distinct_values
from vdg_tf.compression.distill import DistillConfig, distill
from vdg_tf.compression.quantize_int4 import Int4QATConfig, int4_qat
from vdg_tf.config import Config, ConfigError, load_dataclass
from vdg_tf.data.features import log_mel_frames
from vdg_tf.export.api import export
from vdg_tf.export.targets import TARGETS
from vdg_tf.files import claim_dir, write_json
from vdg_tf.models.builder import build_classifier
from vdg_tf.pipeline.context import LATEST, RunContext
from vdg_tf.tasks import get_task
from vdg_tf.training.trainer import train

log = logging.getLogger(__name__)

QAT_SUFFIX = ".h5"  # QAT models keep weights only: the .keras format cannot reload tfmot's
# QuantizeLayer (its variables are built twice); `load_qat` rebuilds the QAT clone instead


class Stage:
    """A kind of pipeline stage."""

    name: ClassVar[str] = ""
    Options: ClassVar[type] = dict

    @classmethod
    def check(cls, options, where: str, config: Config) -> None:
        """Refuse, at load time, options that are well-typed but cannot work together."""

    def run(self, ctx: RunContext, options, key: str, record: dict | None) -> dict:
        """Do the stage (or reuse `record`), update `ctx`; returns `{report key: entry}`."""
        raise NotImplementedError

    @staticmethod
    def state(record: dict | None) -> dict:
        """What a finished stage kept for a resumed run (not shown in the report)."""
        return (record or {}).get("state", {})

    def state_of(self, ctx: RunContext) -> dict:
        """What this stage keeps in its record for a resumed run."""
        return {}


STAGES: dict[str, type[Stage]] = {}


def register_stage(cls: type[Stage]) -> type[Stage]:
    """Class decorator: make `cls` available as a pipeline stage named `cls.name`."""
    STAGES[cls.name] = cls
    return cls


@dataclass
class TrainOptions:
    """Overrides of the config's `train:` section for this run (e.g. `{epochs: 30}`)."""

    epochs: int | None = field(default=None, metadata={"min": 1})
    learning_rate: float | None = field(default=None, metadata={"above": 0.0})
    patience: int | None = field(default=None, metadata={"min": 0})

    def apply(self, config: Config) -> Config:
        """`config` with these overrides in its `train:` section."""
        over = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        return config.with_overrides({"train": over}) if over else config


@register_stage
class Train(Stage):
    """Train the float model (`vdg train`); its bundle sets labels and tokenizer for the run."""

    name = "train"
    Options = TrainOptions

    def run(self, ctx, options, key, record):
        folder = ctx.out / "train"
        if record is None:
            log.info("train")
            train(
                options.apply(ctx.config),
                ctx.inputs.data,
                folder,
                val_data=ctx.inputs.val_data,
                val_split=ctx.inputs.val_split,
                # scored once after training; not when it is the validation data itself
                eval_data=ctx.inputs.eval_data if ctx.inputs.scored_on == "eval" else None,
                progress=ctx.progress,
            )
        bundle = Bundle.load(folder)
        ctx.config = bundle.config
        ctx.bundle = ctx.trained_bundle = dataclasses.replace(bundle, model=None)
        ctx.hand_on("trained", bundle.model)
        ctx.open_data()
        if record is not None:
            return record["entries"]
        return {"keras_float": ctx.keras_entry(ctx.trained, folder / "model.keras")}


class FineTuneStage(Stage):
    """A stage that fine-tunes the latest model into a new float model, saved as
    `<key>.keras`, reported and handed on under `entry`: pruning, clustering, int4-aware
    fine-tuning. With `hands_on_latest` later stages start from it."""

    entry: ClassVar[str] = ""
    hands_on_latest: ClassVar[bool] = True

    def fit(self, ctx: RunContext, options):
        """The fine-tuned copy of `ctx.latest`."""
        raise NotImplementedError

    def extra(self, model, options) -> dict:
        """What the report adds to the model's scores (sparsity, distinct values)."""
        return {}

    def run(self, ctx, options, key, record):
        path = ctx.out / f"{key}.keras"
        if record is not None:
            ctx.hand_on(self.entry, load_model(path), self.hands_on_latest)
            return record["entries"]
        model = self.fit(ctx, options)
        save_model(model, path)
        ctx.hand_on(self.entry, model, self.hands_on_latest)
        return {self.entry: ctx.keras_entry(model, path) | self.extra(model, options)}


@register_stage
class Prune(FineTuneStage):
    """Magnitude pruning with fine-tuning (tfmot), per branch or 2:4 structured."""

    name, entry = "prune", "pruned"
    Options = PruneConfig

    def fit(self, ctx, options):
        log.info(
            "prune to %.0f%% (%s, %d epochs)",
            100 * options.target_sparsity,
            options.schedule,
            options.epochs,
        )
        return ctx.fine_tune(prune, ctx.latest, options)

    def extra(self, model, options):
        return {
            "sparsity": overall_sparsity(model, options),
            "sparsity_by_layer": sparsity_table(model),
            "sparsity_by_branch": sparsity_by_branch(model, options),
        }


@register_stage
class Cluster(FineTuneStage):
    """Weight clustering (k-means per kernel), optionally keeping pruned zeros."""

    name, entry = "cluster", "clustered"
    Options = ClusterConfig

    def fit(self, ctx, options):
        log.info("cluster to %d values per kernel (%d epochs)", options.clusters, options.epochs)
        return ctx.fine_tune(cluster, ctx.latest, options)

    def extra(self, model, options):
        return {"distinct_values": distinct_values(model, options)}


@register_stage
class QAT(Stage):
    """Quantization-aware training: plain, PQAT, CQAT or PCQAT; int8 exports start from it."""

    name = "qat"
    Options = QATConfig

    def run(self, ctx, options, key, record):
        path = ctx.out / f"{key}{QAT_SUFFIX}"
        if record is not None:
            # a QAT model is what int8 targets export, not a float start for later stages
            ctx.hand_on("qat", load_qat(ctx.latest, path, options), latest=False)
            ctx.float_layers = self.state(record).get("float_layers", [])
            return record["entries"]
        kind = ("P" if options.preserve_sparsity else "") + (
            "C" if options.preserve_clusters else ""
        )
        log.info("quantization-aware training (%sQAT, %d epochs)", kind or "plain ", options.epochs)
        result = ctx.fine_tune(qat, ctx.latest, options)
        ctx.hand_on("qat", result.model, latest=False)
        ctx.float_layers = result.float_layers
        save_model(result.model, path)
        entry = ctx.keras_entry(result.model, path, deployable=False)
        entry["layers_left_float"] = result.float_layers
        return {"qat": entry}

    def state_of(self, ctx):
        return {"float_layers": ctx.float_layers}


@register_stage
class Int4QAT(FineTuneStage):
    """int4-aware fine-tuning (kernels rounded to edge-int4's grid); edge-int4 exports
    start from it, the other targets from the model before it."""

    name, entry = "int4_qat", "int4_aware"
    Options = Int4QATConfig
    hands_on_latest = False

    def fit(self, ctx, options):
        log.info("int4-aware fine-tuning (%d epochs)", options.epochs)
        return ctx.fine_tune(int4_qat, ctx.latest, options)


@dataclass
class DistillOptions:
    """A smaller student learns from a teacher's soft targets (Hinton et al.).

    `teacher`: `train` (the trained model), `latest` (the model the stages before made)
    or a run folder. `student`: overrides of the `model:` config section (e.g.
    `{width: 16, fused_dim: 32}`); later stages compress the student.
    """

    teacher: str = "train"
    student: dict = field(default_factory=dict)
    alpha: float = field(default=0.3, metadata={"min": 0.0, "max": 1.0})
    temperature: float = field(default=3.0, metadata={"above": 0.0})
    epochs: int = field(default=10, metadata={"min": 1})


@register_stage
class Distill(Stage):
    """Knowledge distillation into a student model built from the run's config."""

    name = "distill"
    Options = DistillOptions

    @classmethod
    def check(cls, options, where, config):
        config.with_overrides({"model": options.student}, where=f"{where}.student")
        if not get_task(config.data).distills:
            raise ConfigError(
                f"{where}: task {config.data.task} has no class probabilities to distill"
            )
        if options.teacher not in ("train", "latest") and not Path(options.teacher).is_dir():
            raise ConfigError(
                f"{where}.teacher: '{options.teacher}' is not train, latest or a run folder"
            )

    def run(self, ctx, options, key, record):
        path = ctx.out / f"{key}.keras"
        student_cfg = ctx.config.with_overrides({"model": options.student})
        if record is not None:
            student = load_model(path)
        else:
            student = self._fit(ctx, options, student_cfg)
            save_model(student, path)
        ctx.hand_on("distilled", student)
        ctx.config = student_cfg
        ctx.bundle = dataclasses.replace(ctx.bundle, config=student_cfg, model=None)
        if record is not None:
            return record["entries"]
        entry = ctx.keras_entry(student, path)
        entry["weights"] = int(student.count_params())
        entry["teacher_weights"] = int(ctx.trained.count_params())
        return {"distilled": entry}

    @staticmethod
    def _fit(ctx: RunContext, options, student_cfg: Config):
        """A student built from `student_cfg`, distilled from the teacher the options name."""
        teacher = {"train": "trained", "latest": LATEST}.get(options.teacher)
        teacher = ctx.models[teacher] if teacher else Bundle.load(options.teacher).model
        log.info("distill into a student (%d epochs)", options.epochs)
        student = build_classifier(
            student_cfg,
            len(ctx.labels),
            ctx.bundle.tokenizer.vocab_size,
            log_mel_frames(student_cfg.data.audio),
        )
        lr = ctx.config.train.learning_rate
        dc = DistillConfig(options.alpha, options.temperature, options.epochs, lr)
        return distill(
            student,
            teacher,
            ctx.data.stream,
            dc,
            ctx.task,
            verbose=ctx.verbose,
            steps_per_epoch=ctx.data.steps,
            callbacks=ctx.fit_callbacks(),
        )


# the models a stage hands on, by name (`latest`: the float model the stages made last)
MODEL_NAMES = ("trained", LATEST, "pruned", "clustered", "qat", "int4_aware", "distilled")


def default_source(target: str, models: dict) -> str:
    """The model a target exports unless the export stage names one: float32 is the
    trained model (every ratio's reference); int8 targets the QAT model, int4 ones the
    int4-aware model, when a stage made them; anything else the latest float model."""
    t = TARGETS[target]
    if target == "float32":
        return "trained"
    if t.calibrated and "qat" in models:
        return "qat"
    if t.int4 and "int4_aware" in models:
        return "int4_aware"
    return LATEST


@dataclass
class ExportOptions:
    """TFLite targets to write and verify in LiteRT, the int8 calibration sample count,
    and (`sources`, e.g. `{gpu-fp16: pruned}`) which model a target exports where it is
    not `default_source`'s choice."""

    targets: list[str] = field(
        default_factory=lambda: ["float32", "edge-int8"],
        metadata={"registry": "vdg_tf.export.targets:TARGETS", "nonempty": True, "unique": True},
    )
    calibration_samples: int = field(default=64, metadata={"min": 1})
    sources: dict[str, str] = field(default_factory=dict, metadata={"choices": MODEL_NAMES})


def export_verified(ctx: RunContext, target: str, path: Path, calibration: int, model: str) -> dict:
    """Export the run's model `model` (a name `ctx.hand_on` gave it) for `target` through
    `vdg.export` (the file and its sidecar metadata), then verify it in LiteRT."""
    exported = export(
        ctx.bundle_of(model),
        target,
        path,
        data=ctx.inputs.data,
        calibration_samples=calibration,
        force=True,  # the run folder is this run's own (claimed): its exports are redone
    )
    return ctx.tflite_entry(exported)


@register_stage
class Export(Stage):
    """TFLite files per target, each run in LiteRT on the evaluation split."""

    name = "export"
    Options = ExportOptions

    @classmethod
    def check(cls, options, where, config):
        for target in options.sources:
            if target not in options.targets:
                raise ConfigError(
                    f"{where}.sources: '{target}' is not one of the targets "
                    f"({', '.join(options.targets)})"
                )

    def run(self, ctx, options, key, record):
        done = (record or {}).get("entries", {})
        claim_dir(ctx.out / "export")  # each model's metadata sits beside it, named after it
        entries = {}
        for target in options.targets:
            name = TARGETS[target].stage
            path = ctx.out / "export" / f"model_{target}.tflite"
            if name in done and path.is_file():
                entries[name] = done[name]
                continue
            source = options.sources.get(target) or default_source(target, ctx.models)
            log.info("export %s (from the %s model) and verify in LiteRT", target, source)
            entries[name] = export_verified(ctx, target, path, options.calibration_samples, source)
        return entries


@dataclass
class SweepOptions:
    """Sparsity x target grid, each point pruned from the trained model and verified.

    `prune` and `qat` hold prune / QAT stage options for every point (the target sparsity
    is the point's); int8 targets get (pruning-preserving) QAT first. `int4_qat` (stage
    options, e.g. `{epochs: 2}`) gives int4 targets int4-aware fine-tuning first; without
    it they are post-training.
    """

    sparsity: list[float] = field(
        default_factory=lambda: [0.0, 0.5, 0.75, 0.9],
        metadata={"min": 0.0, "max": 0.99, "nonempty": True, "unique": True},
    )
    targets: list[str] = field(
        default_factory=lambda: ["edge-int8", "gpu-fp16"],
        metadata={"registry": "vdg_tf.export.targets:TARGETS", "nonempty": True, "unique": True},
    )
    prune: dict = field(default_factory=dict)
    qat: dict = field(default_factory=lambda: {"epochs": 2})
    int4_qat: dict | None = None
    calibration_samples: int = field(default=64, metadata={"min": 1})

    def prune_options(self, sparsity: float, where: str = "sweep") -> PruneConfig:
        return load_dataclass(
            PruneConfig, {**self.prune, "target_sparsity": sparsity}, f"{where}.prune"
        )

    def qat_options(self, sparsity: float, where: str = "sweep") -> QATConfig:
        return load_dataclass(
            QATConfig, {"preserve_sparsity": sparsity > 0, **self.qat}, f"{where}.qat"
        )

    def int4_options(self, sparsity: float, where: str = "sweep") -> Int4QATConfig | None:
        if self.int4_qat is None:
            return None
        return load_dataclass(
            Int4QATConfig,
            {"preserve_sparsity": sparsity > 0, **self.int4_qat},
            f"{where}.int4_qat",
        )


@register_stage
class Sweep(Stage):
    """Size against the task's metric over sparsity x target; `pareto.png` draws the front.

    Each point's models live in the point's own folder and are exported through a
    `RunContext` of their own (`_point_context`), so the run's named models are untouched.
    """

    name = "sweep"
    Options = SweepOptions

    @classmethod
    def check(cls, options, where, config):
        for s in options.sparsity:
            options.prune_options(s, where)
            options.qat_options(s, where)
            options.int4_options(s, where)

    def run(self, ctx, options, key, record):
        folder = ctx.out / key
        if record is None and folder.is_dir():
            shutil.rmtree(folder)  # points of an earlier run with other inputs
        entries = {}
        for s in options.sparsity:
            entries |= self._point(ctx, options, folder, s)
        return entries

    def _point(self, ctx, options, folder: Path, s: float) -> dict:
        """Every target at sparsity `s`, each resumable from its own record."""
        tag = f"s{round(s * 100):02d}"
        pdir = folder / tag
        point = dataclasses.replace(ctx, models={"trained": ctx.trained})
        point.hand_on("pruned", self._pruned(ctx, options, pdir, s))
        entries = {}
        for target in options.targets:
            t = TARGETS[target]
            name, rec = f"sweep_{tag}_{t.short}", pdir / f"{target}.json"
            if rec.is_file():
                entries[name] = json.loads(rec.read_text())
                continue
            if t.calibrated and "qat" not in point.models:
                point.hand_on("qat", self._qat(point, options, pdir, s), latest=False)
            if t.int4 and options.int4_qat is not None and "int4_aware" not in point.models:
                point.hand_on("int4_aware", self._int4(point, options, pdir, s), latest=False)
            log.info("sweep: export %s at sparsity %.0f%%, verify in LiteRT", target, 100 * s)
            path = pdir / f"model_{target}.tflite"
            # float32 too is the point's own (pruned) model here, not the trained reference
            source = default_source(target, point.models) if target != "float32" else LATEST
            entry = export_verified(point, target, path, options.calibration_samples, source)
            entry["sparsity"] = s
            write_json(rec, entry)
            entries[name] = entry
        return entries

    @staticmethod
    def _pruned(ctx, options, pdir: Path, s: float):
        """The point's pruned model (the latest model itself at sparsity 0), made once."""
        if s == 0:
            return ctx.latest
        path = pdir / "pruned.keras"
        if path.is_file():
            return load_model(path)
        log.info("sweep: prune to %.0f%%", 100 * s)
        model = ctx.fine_tune(prune, ctx.latest, options.prune_options(s))
        save_model(model, path)
        return model

    @staticmethod
    def _qat(point, options, pdir: Path, s: float):
        """The point's QAT model, fine-tuned once (or reloaded)."""
        qc, path = options.qat_options(s), pdir / f"qat{QAT_SUFFIX}"
        if path.is_file():
            return load_qat(point.latest, path, qc)
        log.info("sweep: QAT at sparsity %.0f%%", 100 * s)
        model = point.fine_tune(qat, point.latest, qc).model
        save_model(model, path)
        return model

    @staticmethod
    def _int4(point, options, pdir: Path, s: float):
        """The point's int4-aware model, fine-tuned once (or reloaded)."""
        path = pdir / "int4_aware.keras"
        if path.is_file():
            return load_model(path)
        log.info("sweep: int4-aware fine-tuning at sparsity %.0f%%", 100 * s)
        model = point.fine_tune(int4_qat, point.latest, options.int4_options(s))
        save_model(model, path)
        return model
