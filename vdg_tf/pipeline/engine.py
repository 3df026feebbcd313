"""Run a checked pipeline: its stages in order, resuming finished ones, then the report.

Each finished stage leaves its model and `stages/<key>.json` (its identity, its report
entries and what a resumed run needs). A rerun reuses a stage only when its identity
(options; for `train` also the config and the data files) is unchanged and every stage
before it was reused: a stage after a changed one always runs again.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from vdg_tf.data.inputs import check_data_path
from vdg_tf.files import claim_dir, write_json
from vdg_tf.pipeline.context import RunContext
from vdg_tf.pipeline.report import plot_report
from vdg_tf.pipeline.spec import PipelineSpec, StageSpec
from vdg_tf.pipeline.stages import STAGES


def run_pipeline(
    spec: PipelineSpec,
    train_data: str | Path,
    eval_data: str | Path,
    out_dir: str | Path,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    val_data: str | Path | None = None,
    val_split: float = 0.0,
) -> dict:
    """Run every stage of `spec` (reusing finished ones), write and return the report.

    `val_data` (a manifest) or `val_split` (a fraction of the training rows) picks the
    train stage's checkpoint; every stage is reported on `eval_data`.

    Example:
      report = run_pipeline(PipelineSpec.load("pipelines/edge_int8.yaml"),
                            "data/manifest_train.jsonl", "data/manifest_eval.jsonl", "runs/edge")
    """
    check_data_path(train_data, "training data")  # before the run folder is made
    check_data_path(eval_data, "evaluation data")
    if val_data is not None:
        check_data_path(val_data, "validation data")
    out = Path(out_dir)
    claim_dir(out)  # a new folder, or an earlier vdg output: never a folder of other files
    (out / "stages").mkdir(exist_ok=True)
    ctx = RunContext(
        out, str(train_data), str(eval_data), spec.config, spec.finetune_lr_scale, progress
    )
    ctx.val_data = None if val_data is None else str(val_data)
    ctx.val_split = val_split
    if log is not None:
        ctx.log = log
    m = spec.config.model
    report: dict = {
        "pipeline": spec.name,
        "task": spec.config.data.task,
        "model": f"{m.fusion} fusion of {' + '.join(m.modalities)}",  # for plot titles
        "eval_data": str(eval_data),
        "stages": {},
    }
    reused_so_far = True
    for stage_spec in spec.stages:
        stage = STAGES[stage_spec.kind]()
        identity = _identity(stage_spec, spec, ctx)
        path = out / "stages" / f"{stage_spec.key}.json"
        record = json.loads(path.read_text()) if path.is_file() else None
        reuse = reused_so_far and record is not None and record.get("identity") == identity
        reused_so_far = reuse
        if reuse and stage_spec.kind != "train":
            ctx.log(f"{stage_spec.kind}: done before, loading")
        entries = stage.run(ctx, stage_spec.options, stage_spec.key, record if reuse else None)
        write_json(path, {"identity": identity, "entries": entries, "state": stage.state_of(ctx)})
        report["stages"].update(entries)
    task = ctx.task
    report["metric"], report["higher_is_better"] = task.primary, task.higher_is_better
    report |= plot_report(report, out)
    report["labels"] = ctx.labels
    report |= training_sections(out / "train" / "metrics.json")
    report["layers_left_float_in_qat"] = ctx.float_layers
    report["skipped"] = ctx.skips.count
    report["skipped_files"] = ctx.skips.reasons
    write_json(out / "report.json", report)
    report["report"] = str(out / "report.json")
    return report


def training_sections(metrics_file: Path) -> dict:
    """The train stage's checkpoint rule and validation figures (`checkpoint`, `val`), so
    the report says which split picked the model that every stage compresses; the stages
    themselves are all scored on the evaluation split."""
    if not metrics_file.is_file():
        return {}
    metrics = json.loads(metrics_file.read_text())
    out = {k: metrics[k] for k in ("checkpoint", "best_epoch", "epochs_run") if k in metrics}
    if "val" in metrics:
        out["val"] = {k: v for k, v in metrics["val"].items() if not isinstance(v, list | dict)}
    return {"training": out, "stages_scored_on": "eval"}


def _identity(stage_spec: StageSpec, spec: PipelineSpec, ctx: RunContext) -> dict:
    """What a stage's result depends on, as JSON: its options; for `train` the config and
    the data files it reads (path, size, modification time), for the others the
    fine-tuning learning-rate scale."""
    ident: dict = {"options": dataclasses.asdict(stage_spec.options)}
    if stage_spec.kind == "train":
        ident |= {
            "config": spec.config.to_dict(),
            "train_data": _file_identity(ctx.train_data),
            "eval_data": _file_identity(ctx.eval_data),
        }
        # only when given, so runs made before these options existed still resume
        if ctx.val_data:
            ident["val_data"] = _file_identity(ctx.val_data)
        if ctx.val_split:
            ident["val_split"] = ctx.val_split
    else:
        ident["finetune_lr_scale"] = spec.finetune_lr_scale
    return json.loads(json.dumps(ident))


def _file_identity(path: str) -> dict:
    p = Path(path)
    stat = (p / "index.json" if p.is_dir() else p).stat() if p.exists() else None
    return {
        "path": str(p.resolve()),
        "bytes": stat.st_size if stat else None,
        "mtime_ns": stat.st_mtime_ns if stat else None,
    }
