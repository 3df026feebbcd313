"""`vdg run PIPELINE.yaml`: train -> compress -> export -> verify, as stages named in a file.

A pipeline file names its config overrides and its stages, in order:

    name: edge_int8
    config: {train: {epochs: 24}}
    stages:
      - train: {}
      - prune: {target_sparsity: 0.5, epochs: 6}
      - cluster: {clusters: 16, preserve_sparsity: true}
      - qat: {epochs: 4, preserve_sparsity: true, preserve_clusters: true}
      - export: {targets: [float32, edge-int8]}

Each finished stage leaves its model and a `stages/<key>.json` record under the output
folder, so a rerun (after a crash or a kill) skips what is done. `report.json` holds one
entry per stage (`keras_float`, `pruned`, `qat`, `tflite_int8`, ...) with the task's
metrics (`accuracy` for classification; `score` names the primary one),
bytes, gzip bytes, path and, for `.tflite` stages, LiteRT latency and int8 op coverage.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import tf_keras as keras
import yaml

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
from vdg_tf.config import Config
from vdg_tf.data.pipeline import SkipLog, batched_features
from vdg_tf.data.sources import dataset_from, open_source
from vdg_tf.export.inspect import inspect_tflite, latency_ms
from vdg_tf.export.tflite import ExportConfig, convert
from vdg_tf.export.verify import agreement, predict_tflite, representative_inputs
from vdg_tf.files import atomic_write_bytes, write_json
from vdg_tf.models.builder import inference_model
from vdg_tf.training.artifacts import (
    load_metadata,
    load_model,
    save_model_atomic,
    save_run_metadata,
)
from vdg_tf.training.evaluate import predict_dataset
from vdg_tf.training.metrics import PRIMARY, task_report
from vdg_tf.training.plots import plot_size_accuracy
from vdg_tf.training.train import compile_classifier, fit_verbosity, train, with_head_targets

STAGES = ("train", "prune", "cluster", "qat", "export", "sweep")
TFLITE_NAMES = {"float32": "tflite_float32", "gpu-fp16": "tflite_fp16", "cpu-dynamic": "tflite_dynamic",
                "edge-int8": "tflite_int8", "int8-fallback": "tflite_int8_fallback"}  # fmt: skip
INT8_TARGETS = ("edge-int8", "int8-fallback")
SHORT = {"float32": "f32", "gpu-fp16": "fp16", "cpu-dynamic": "dyn", "edge-int8": "int8",
         "int8-fallback": "int8fb"}  # fmt: skip


@dataclass
class SweepConfig:
    """Grid of sparsity x export target, each pruned from the trained model and verified.

    `prune` and `qat` hold PruneConfig / QATConfig options for every point (the target
    sparsity is the point's); int8 targets get (pruning-preserving) QAT first.
    """

    sparsity: list[float] = field(default_factory=lambda: [0.0, 0.5, 0.75, 0.9])
    targets: list[str] = field(default_factory=lambda: ["edge-int8", "gpu-fp16"])
    prune: dict = field(default_factory=dict)
    qat: dict = field(default_factory=lambda: {"epochs": 2})


@dataclass
class Pipeline:
    """A parsed pipeline file."""

    name: str
    config: Config
    stages: list[tuple[str, dict]]
    finetune_lr_scale: float = 0.05

    @classmethod
    def from_dict(cls, d: dict, where: str = "pipeline") -> Pipeline:
        unknown = set(d) - {"name", "config", "stages", "finetune_lr_scale"}
        if unknown:
            raise ValueError(
                f"{where}: unknown key(s) {sorted(unknown)} (known: name, config, stages, finetune_lr_scale)"
            )
        stages = []
        for i, item in enumerate(d.get("stages") or []):
            if not isinstance(item, dict) or len(item) != 1:
                raise ValueError(
                    f"{where}: stage {i + 1} must be one mapping like {{prune: {{...}}}}"
                )
            (kind, params), = item.items()  # fmt: skip
            if kind not in STAGES:
                raise ValueError(
                    f"{where}: stage {i + 1}: unknown '{kind}' (known: {', '.join(STAGES)})"
                )
            stages.append((kind, params or {}))
        if not stages or stages[0][0] != "train":
            raise ValueError(f"{where}: the first stage must be 'train'")
        return cls(
            d.get("name", "pipeline"),
            Config.from_dict(d.get("config")),
            stages,
            d.get("finetune_lr_scale", 0.05),
        )

    @classmethod
    def load(cls, path: str | Path) -> Pipeline:
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as e:
            raise ValueError(f"{path}: cannot read pipeline: {e}") from None
        return cls.from_dict(raw or {}, str(path))


def _stage_file(out: Path, key: str, kind: str) -> Path:
    """Where a stage keeps its model. QAT models go to HDF5: the `.keras` format cannot
    reload tfmot's QuantizeLayer (its variables are built twice, and loading fails);
    they are read back onto a QAT clone of the stage before (`load_qat`)."""
    return out / f"{key}.{'h5' if kind == 'qat' else 'keras'}"


def _options(cls, params: dict, where: str):
    known = {f.name for f in fields(cls)}
    unknown = set(params) - known
    if unknown:
        raise ValueError(
            f"{where}: unknown option(s) {sorted(unknown)} (known: {', '.join(sorted(known))})"
        )
    return cls(**params)


def _file_sizes(path: Path) -> dict:
    data = path.read_bytes()
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, 9))}


@dataclass
class _State:
    """What flows between stages."""

    model: keras.Model | None = None  # latest float-deployable model (train/prune/cluster)
    trained: keras.Model | None = None  # the trained float model: the float32 reference
    qat_model: keras.Model | None = None
    reference: np.ndarray | None = None  # keras_float probabilities on eval, for agreement
    labels: list[str] = field(default_factory=list)
    task: str = "classification"
    float_layers: list[str] = field(default_factory=list)


def run_pipeline(
    pipeline: Pipeline,
    train_data: str | Path,
    eval_data: str | Path,
    out_dir: str | Path,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Run every stage (skipping finished ones), write and return the report."""
    log = log or (lambda m: print(f"[vdg run] {m}", file=sys.stderr, flush=True))
    out = Path(out_dir)
    (out / "stages").mkdir(parents=True, exist_ok=True)
    cfg = pipeline.config
    verbose = fit_verbosity(progress)
    state = _State()
    report: dict = {"pipeline": pipeline.name, "stages": {}}
    ctx: dict = {}

    def done(key: str) -> dict | None:
        p = out / "stages" / f"{key}.json"
        return json.loads(p.read_text()) if p.is_file() else None

    def finish(key: str, names: dict) -> None:
        report["stages"].update({k: v for k, v in names.items() if not k.startswith("_")})
        write_json(out / "stages" / f"{key}.json", names)

    for i, (kind, params) in enumerate(pipeline.stages):
        key = f"{i:02d}_{kind}"
        record = done(key)
        if kind == "train":
            if record is None:
                log("train")
                result = train(cfg, train_data, out / "train", eval_data, progress)
                save_model_atomic(result.model, out / "train" / "model.keras")
            cfg, state.labels, tokenizer = load_metadata(out / "train")
            state.task = cfg.data.task
            state.model = state.trained = load_model(out / "train" / "model.keras")
            ctx = _context(
                cfg, train_data, eval_data, state.labels, tokenizer, state.model.output_names
            )
            y, state.reference = predict_dataset(inference_model(state.model), ctx["eval"])
            ctx["y"] = y
            if record is None:
                record = {
                    "keras_float": _keras_entry(
                        out / "train" / "model.keras", y, state.reference, state.labels, state.task
                    )
                }
                finish(key, record)
            report["stages"].update(record)
            continue
        if record is not None and kind not in ("export", "sweep"):
            log(f"{kind}: done before, loading")
            if kind == "qat":
                qc = _options(QATConfig, params, f"stage {key}")
                state.qat_model = load_qat(state.model, _stage_file(out, key, kind), qc)
                state.float_layers = record.get("_float_layers", [])
            else:
                state.model = load_model(_stage_file(out, key, kind))
            report["stages"].update({k: v for k, v in record.items() if not k.startswith("_")})
            continue
        ft = replace(
            cfg,
            train=replace(
                cfg.train,
                learning_rate=cfg.train.learning_rate * pipeline.finetune_lr_scale,
                schedule="constant",
            ),
        )

        def compile_fn(m, steps, ft=ft):
            compile_classifier(m, ft, steps)

        if kind == "prune":
            pc = _options(PruneConfig, params, f"stage {key}")
            log(f"prune to {pc.target_sparsity:.0%} ({pc.schedule}, {pc.epochs} epochs)")
            state.model = _fine_tune(prune, state.model, pc, ctx, compile_fn, verbose)
            entry = _saved_entry(state.model, out / f"{key}.keras", ctx, state.labels)
            entry |= {
                "sparsity": overall_sparsity(state.model, pc),
                "sparsity_by_layer": sparsity_table(state.model),
                "sparsity_by_branch": sparsity_by_branch(state.model, pc),
            }
            finish(key, {"pruned": entry})
        elif kind == "cluster":
            cc = _options(ClusterConfig, params, f"stage {key}")
            log(f"cluster to {cc.clusters} values per kernel ({cc.epochs} epochs)")
            state.model = _fine_tune(cluster, state.model, cc, ctx, compile_fn, verbose)
            entry = _saved_entry(state.model, out / f"{key}.keras", ctx, state.labels)
            entry |= {"distinct_values": distinct_values(state.model, cc)}
            finish(key, {"clustered": entry})
        elif kind == "qat":
            qc = _options(QATConfig, params, f"stage {key}")
            kind_name = ("P" if qc.preserve_sparsity else "") + (
                "C" if qc.preserve_clusters else ""
            )
            log(f"quantization-aware training ({kind_name or 'plain '}QAT, {qc.epochs} epochs)")
            result = _fine_tune(qat, state.model, qc, ctx, compile_fn, verbose)
            state.qat_model, state.float_layers = result.model, result.float_layers
            entry = _saved_entry(state.qat_model, _stage_file(out, key, kind), ctx, state.labels)
            entry["layers_left_float"] = result.float_layers
            finish(key, {"qat": entry, "_float_layers": result.float_layers})
        elif kind == "export":
            targets = params.get("targets", ["float32", "edge-int8"])
            entries = {}
            for target in targets:
                name = _tflite_name(target, f"stage {key}")
                path = out / "export" / f"model_{target}.tflite"
                if record and name in record and path.is_file():
                    entries[name] = record[name]
                    continue
                source = state.model
                if target in INT8_TARGETS and state.qat_model is not None:
                    source = state.qat_model
                elif target == "float32":
                    source = state.trained  # the uncompressed reference every ratio divides by
                log(f"export {target} and verify in LiteRT")
                entries[name] = _export_verified(source, target, path, ctx, state)
            save_run_metadata(out / "export", cfg, state.labels, ctx["tokenizer"])
            finish(key, entries)
        elif kind == "sweep":
            sc = _options(SweepConfig, params, f"stage {key}")
            entries = _sweep(sc, out / key, state, ctx, compile_fn, verbose, log)
            front = plot_size_accuracy(
                {n: _size_score(e) for n, e in entries.items()},
                out / "pareto.png",
                f"{pipeline.name}: sparsity x target",
                _score_label(entries),
            )
            finish(key, entries)
            report["pareto_front"] = front
    tflite = {n: e for n, e in report["stages"].items() if n.startswith("tflite_")}
    if tflite:
        plot_size_accuracy(
            {n: _size_score(e) for n, e in tflite.items()},
            out / "report.png",
            f"{pipeline.name}: exports verified in LiteRT",
            _score_label(tflite),
        )
    report["labels"] = state.labels
    report["layers_left_float_in_qat"] = state.float_layers
    report["skipped"] = ctx.get("skips", SkipLog()).count
    write_json(out / "report.json", report)
    report["report"] = str(out / "report.json")
    return report


def _tflite_name(target: str, where: str) -> str:
    if target not in TFLITE_NAMES:
        raise ValueError(f"{where}: unknown target '{target}' (known: {', '.join(TFLITE_NAMES)})")
    return TFLITE_NAMES[target]


def _export_verified(source: keras.Model, target: str, path: Path, ctx: dict, state) -> dict:
    """Convert `source` for `target`, write it atomically, run it in LiteRT on eval data."""
    rep = (
        (lambda ds=ctx["train_plain"]: representative_inputs(ds, 64))
        if target in INT8_TARGETS
        else None
    )
    atomic_write_bytes(path, convert(inference_model(source), ExportConfig(target, rep)))
    return _tflite_entry(path, ctx, state)


def _sweep(sc: SweepConfig, folder: Path, state, ctx, compile_fn, verbose, log) -> dict:
    """Every sparsity x target point, each resumable from its own record under `folder`."""
    entries = {}
    for s in sc.sparsity:
        tag = f"s{round(s * 100):02d}"
        pdir = folder / tag
        pdir.mkdir(parents=True, exist_ok=True)
        model, qat_model = state.model, None
        if s > 0:
            pfile = pdir / "pruned.keras"
            if pfile.is_file():
                model = load_model(pfile)
            else:
                pc = _options(PruneConfig, {**sc.prune, "target_sparsity": s}, f"sweep {tag}")
                log(f"sweep: prune to {s:.0%}")
                model = _fine_tune(prune, state.model, pc, ctx, compile_fn, verbose)
                save_model_atomic(model, pfile)
        for target in sc.targets:
            name = (
                f"sweep_{tag}_{SHORT[target] if target in SHORT else _tflite_name(target, 'sweep')}"
            )
            rec = pdir / f"{target}.json"
            if rec.is_file():
                entries[name] = json.loads(rec.read_text())
                continue
            source = model
            if target in INT8_TARGETS:
                if qat_model is None:
                    qfile = pdir / "qat.h5"
                    if qfile.is_file():
                        qat_model = load_model(qfile)
                    else:
                        qc = _options(
                            QATConfig, {"preserve_sparsity": s > 0, **sc.qat}, f"sweep {tag}"
                        )
                        log(f"sweep: QAT at sparsity {s:.0%}")
                        qat_model = _fine_tune(qat, model, qc, ctx, compile_fn, verbose).model
                        save_model_atomic(qat_model, qfile)
                source = qat_model
            log(f"sweep: export {target} at sparsity {s:.0%}, verify in LiteRT")
            entry = _export_verified(source, target, pdir / f"model_{target}.tflite", ctx, state)
            entry["sparsity"] = s
            write_json(rec, entry)
            entries[name] = entry
    return entries


def _fine_tune(stage, model, stage_cfg, ctx: dict, compile_fn, verbose: int):
    """Run a compression stage (`prune`, `cluster`, `qat`) on the run's training stream:
    `steps` batches an epoch of the one repeated stream `_context` built."""
    return stage(
        model, ctx["fit"], stage_cfg, compile_fn, verbose=verbose, steps_per_epoch=ctx["steps"]
    )


def _context(cfg: Config, train_data, eval_data, labels, tokenizer, output_names) -> dict:
    skips = SkipLog()
    source = open_source(train_data, cfg.data, labels, training=True, skips=skips)
    # one endless stream, read `steps` batches an epoch (as `vdg train` reads it): no
    # counting pass to learn an epoch's length, no new iterator per fine-tuning epoch
    train_ds = batched_features(source.decoded, cfg.data, tokenizer, training=True, repeat=True)
    plain = dataset_from(train_data, cfg.data, labels, tokenizer, training=False)
    return {
        "fit": with_head_targets(train_ds, output_names),
        "steps": source.steps(cfg.data.batch_size),
        "train_plain": plain,  # un-augmented: representative data for int8 calibration
        "eval": dataset_from(eval_data, cfg.data, labels, tokenizer, skips=skips),
        "tokenizer": tokenizer,
        "skips": skips,
        "task": cfg.data.task,
    }


def _probs(model: keras.Model, ctx: dict) -> np.ndarray:
    return predict_dataset(inference_model(model), ctx["eval"])[1]


def _saved_entry(model: keras.Model, path: Path, ctx: dict, labels: list[str]) -> dict:
    """Save a stage's model atomically, then score it on the eval data."""
    save_model_atomic(model, path)
    return _keras_entry(path, ctx["y"], _probs(model, ctx), labels, ctx["task"])


def _scores(task: str, y: np.ndarray, outputs: np.ndarray, labels: list[str]) -> dict:
    """The task's scalar metrics, plus `metric` (the primary one's name) and its `score`."""
    r = task_report(task, y, outputs, labels)
    scalars = {k: v for k, v in r.items() if isinstance(v, float) and k != "threshold"}
    return {"metric": PRIMARY[task], "score": r[PRIMARY[task]], **scalars}


def _keras_entry(
    path: Path, y: np.ndarray, probs: np.ndarray, labels: list[str], task: str
) -> dict:
    return {**_scores(task, y, probs, labels), "path": str(path), **_file_sizes(path)}


def _tflite_entry(path: Path, ctx: dict, state: _State) -> dict:
    y, probs = predict_tflite(path, ctx["eval"])
    info = inspect_tflite(path)
    return {
        **_scores(state.task, y, probs, state.labels),
        "path": str(path),
        "bytes": info["bytes"],
        "gzip_bytes": info["gzip_bytes"],
        "latency_ms": latency_ms(path),
        "int8_op_fraction": info["int8_op_fraction"],
        **agreement(state.reference, probs, state.task),
    }


def _size_score(entry: dict) -> tuple[float, float]:
    """(gzip bytes, score) with higher always better (an error such as MAE is negated)."""
    sign = -1.0 if entry["metric"] in ("mae",) else 1.0
    return entry["gzip_bytes"], sign * entry["score"]


def _score_label(entries: dict) -> str:
    metric = next(iter(entries.values()))["metric"] if entries else "accuracy"
    return f"-{metric}" if metric in ("mae",) else metric


def format_report(report: dict) -> str:
    """One line per stage: score (the task's metric), size, gzip size, latency, and notes."""
    metric = next(iter(report["stages"].values()), {}).get("metric", "accuracy")
    lines = [
        f"pipeline {report['pipeline']}",
        f"  {'stage':<22}{metric[:9]:>9}{'bytes':>11}{'gzip':>10}{'ms':>8}  notes",
    ]
    for name, s in report["stages"].items():
        notes = []
        if "sparsity" in s:
            notes.append(f"sparsity {s['sparsity']:.2f}")
        if "top1_agreement" in s:
            notes.append(f"agree {s['top1_agreement']:.3f}")
        if "int8_op_fraction" in s and s["int8_op_fraction"]:
            notes.append(f"int8 ops {s['int8_op_fraction']:.2f}")
        ms = f"{s['latency_ms']:.2f}" if "latency_ms" in s else "-"
        lines.append(
            f"  {name:<22}{s['score']:>9.3f}{s['bytes']:>11,}{s['gzip_bytes']:>10,}{ms:>8}  {', '.join(notes)}"
        )
    lines.append(f"  report: {report.get('report', '')}")
    return "\n".join(lines)
