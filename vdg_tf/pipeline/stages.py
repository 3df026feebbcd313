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
from vdg_tf.export.targets import TARGETS
from vdg_tf.export.tflite import ExportConfig, convert
from vdg_tf.export.verify import representative_inputs
from vdg_tf.files import atomic_write_bytes, claim_dir, write_json
from vdg_tf.models.builder import build_classifier, inference_model
from vdg_tf.pipeline.context import RunContext
from vdg_tf.tasks import get_task
from vdg_tf.training.train import train

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
            ctx.log("train")
            train(
                options.apply(ctx.config),
                ctx.train_data,
                folder,
                val_data=ctx.val_data,
                val_split=ctx.val_split,
                eval_data=ctx.eval_data,
                progress=ctx.progress,
            )
        ctx.bundle = Bundle.load(folder)
        ctx.config = ctx.bundle.config
        ctx.model = ctx.trained = ctx.bundle.model
        ctx.open_data()
        if record is not None:
            return record["entries"]
        path = folder / "model.keras"
        return {"keras_float": ctx.keras_entry(ctx.model, path)}


class FineTuneStage(Stage):
    """A stage that fine-tunes the latest model into a new float model, saved as
    `<key>.keras` and reported under `entry`: pruning, clustering."""

    entry: ClassVar[str] = ""

    def fit(self, ctx: RunContext, options):
        """The fine-tuned copy of `ctx.model`."""
        raise NotImplementedError

    def extra(self, ctx: RunContext, options) -> dict:
        """What the report adds to the model's scores (sparsity, distinct values)."""
        return {}

    def run(self, ctx, options, key, record):
        path = ctx.out / f"{key}.keras"
        if record is not None:
            ctx.model = load_model(path)
            return record["entries"]
        ctx.model = self.fit(ctx, options)
        save_model(ctx.model, path)
        return {self.entry: ctx.keras_entry(ctx.model, path) | self.extra(ctx, options)}


@register_stage
class Prune(FineTuneStage):
    """Magnitude pruning with fine-tuning (tfmot), per branch or 2:4 structured."""

    name, entry = "prune", "pruned"
    Options = PruneConfig

    def fit(self, ctx, options):
        ctx.log(
            f"prune to {options.target_sparsity:.0%} ({options.schedule}, {options.epochs} epochs)"
        )
        return ctx.fine_tune(prune, ctx.model, options)

    def extra(self, ctx, options):
        return {
            "sparsity": overall_sparsity(ctx.model, options),
            "sparsity_by_layer": sparsity_table(ctx.model),
            "sparsity_by_branch": sparsity_by_branch(ctx.model, options),
        }


@register_stage
class Cluster(FineTuneStage):
    """Weight clustering (k-means per kernel), optionally keeping pruned zeros."""

    name, entry = "cluster", "clustered"
    Options = ClusterConfig

    def fit(self, ctx, options):
        ctx.log(f"cluster to {options.clusters} values per kernel ({options.epochs} epochs)")
        return ctx.fine_tune(cluster, ctx.model, options)

    def extra(self, ctx, options):
        return {"distinct_values": distinct_values(ctx.model, options)}


@register_stage
class QAT(Stage):
    """Quantization-aware training: plain, PQAT, CQAT or PCQAT; int8 exports start from it."""

    name = "qat"
    Options = QATConfig

    def run(self, ctx, options, key, record):
        path = ctx.out / f"{key}{QAT_SUFFIX}"
        if record is not None:
            ctx.qat_model = load_qat(ctx.model, path, options)
            ctx.float_layers = self.state(record).get("float_layers", [])
            return record["entries"]
        kind = ("P" if options.preserve_sparsity else "") + (
            "C" if options.preserve_clusters else ""
        )
        ctx.log(f"quantization-aware training ({kind or 'plain '}QAT, {options.epochs} epochs)")
        result = ctx.fine_tune(qat, ctx.model, options)
        ctx.qat_model, ctx.float_layers = result.model, result.float_layers
        save_model(ctx.qat_model, path)
        entry = ctx.keras_entry(ctx.qat_model, path, deployable=False)
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

    def run(self, ctx, options, key, record):
        before = ctx.model
        entries = super().run(ctx, options, key, record)
        ctx.int4_model, ctx.model = ctx.model, before
        return entries

    def fit(self, ctx, options):
        ctx.log(f"int4-aware fine-tuning ({options.epochs} epochs)")
        return ctx.fine_tune(int4_qat, ctx.model, options)


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
            ctx.model = load_model(path)
        else:
            teacher = {"train": ctx.trained, "latest": ctx.model}.get(options.teacher)
            teacher = teacher or Bundle.load(options.teacher).model
            ctx.log(f"distill into a student ({options.epochs} epochs)")
            student = build_classifier(
                student_cfg,
                len(ctx.labels),
                ctx.bundle.tokenizer.vocab_size,
                log_mel_frames(student_cfg.data.audio),
            )
            lr = ctx.config.train.learning_rate
            dc = DistillConfig(options.alpha, options.temperature, options.epochs, lr)
            ctx.model = distill(
                student,
                teacher,
                ctx.stream,
                dc,
                ctx.task,
                verbose=ctx.verbose,
                steps_per_epoch=ctx.steps,
                callbacks=ctx.fit_callbacks(),
            )
            save_model(ctx.model, path)
        ctx.config = student_cfg
        ctx.bundle = dataclasses.replace(ctx.bundle, config=student_cfg, model=None)
        if record is not None:
            return record["entries"]
        entry = ctx.keras_entry(ctx.model, path)
        entry["weights"] = int(ctx.model.count_params())
        entry["teacher_weights"] = int(ctx.trained.count_params())
        return {"distilled": entry}


@dataclass
class ExportOptions:
    """TFLite targets to write and verify in LiteRT, and the int8 calibration sample count."""

    targets: list[str] = field(
        default_factory=lambda: ["float32", "edge-int8"],
        metadata={"registry": "vdg_tf.export.targets:TARGETS", "nonempty": True, "unique": True},
    )
    calibration_samples: int = field(default=64, metadata={"min": 1})


def export_verified(
    ctx: RunContext, target: str, path: Path, calibration: int, source=None
) -> dict:
    """Convert for `target` (from the QAT model for int8 targets, the int4-aware model for
    int4 ones, the trained model for the float32 reference), write it atomically and verify
    it in LiteRT."""
    t = TARGETS[target]
    if source is None:
        source = ctx.trained if target == "float32" else ctx.model
        if t.calibrated and ctx.qat_model is not None:
            source = ctx.qat_model
        if t.int4 and ctx.int4_model is not None:
            source = ctx.int4_model
    rep = (lambda: representative_inputs(ctx.calibration, calibration)) if t.calibrated else None
    atomic_write_bytes(path, convert(inference_model(source), ExportConfig(target, rep)))
    return ctx.tflite_entry(path)


@register_stage
class Export(Stage):
    """TFLite files per target, each run in LiteRT on the evaluation split."""

    name = "export"
    Options = ExportOptions

    def run(self, ctx, options, key, record):
        done = (record or {}).get("entries", {})
        claim_dir(ctx.out / "export")  # its metadata files sit beside the models, plain-named
        entries = {}
        for target in options.targets:
            name = TARGETS[target].stage
            path = ctx.out / "export" / f"model_{target}.tflite"
            if name in done and path.is_file():
                entries[name] = done[name]
                continue
            ctx.log(f"export {target} and verify in LiteRT")
            entries[name] = export_verified(ctx, target, path, options.calibration_samples)
        ctx.bundle.save_metadata(ctx.out / "export")  # labels, vocabulary, config beside them
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
    """Size against the task's metric over sparsity x target; `pareto.png` draws the front."""

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
        model, qat_model, int4_model = ctx.model, None, None
        if s > 0:
            pfile = pdir / "pruned.keras"
            if pfile.is_file():
                model = load_model(pfile)
            else:
                ctx.log(f"sweep: prune to {s:.0%}")
                model = ctx.fine_tune(prune, ctx.model, options.prune_options(s))
                save_model(model, pfile)
        entries = {}
        for target in options.targets:
            t = TARGETS[target]
            name, rec = f"sweep_{tag}_{t.short}", pdir / f"{target}.json"
            if rec.is_file():
                entries[name] = json.loads(rec.read_text())
                continue
            source = model
            if t.calibrated:
                if qat_model is None:
                    qc, qfile = options.qat_options(s), pdir / f"qat{QAT_SUFFIX}"
                    if qfile.is_file():
                        qat_model = load_qat(model, qfile, qc)
                    else:
                        ctx.log(f"sweep: QAT at sparsity {s:.0%}")
                        qat_model = ctx.fine_tune(qat, model, qc).model
                        save_model(qat_model, qfile)
                source = qat_model
            if t.int4 and options.int4_qat is not None:
                if int4_model is None:
                    int4_model = self._int4_model(ctx, options, model, pdir, s)
                source = int4_model
            ctx.log(f"sweep: export {target} at sparsity {s:.0%}, verify in LiteRT")
            path = pdir / f"model_{target}.tflite"
            entry = export_verified(ctx, target, path, options.calibration_samples, source)
            entry["sparsity"] = s
            write_json(rec, entry)
            entries[name] = entry
        return entries

    @staticmethod
    def _int4_model(ctx, options, model, pdir: Path, s: float):
        """The point's int4-aware model, fine-tuned once (or reloaded)."""
        path = pdir / "int4_aware.keras"
        if path.is_file():
            return load_model(path)
        ctx.log(f"sweep: int4-aware fine-tuning at sparsity {s:.0%}")
        out = ctx.fine_tune(int4_qat, model, options.int4_options(s))
        save_model(out, path)
        return out
