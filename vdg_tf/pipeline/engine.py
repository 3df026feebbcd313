"""Run a checked pipeline: its stages in order, resuming finished ones, then the report.

Each finished stage leaves its model and `stages/<key>.json` (its identity, its report
entries and what a resumed run needs). A rerun reuses a stage only when its identity
(options; for `train` also the config and the data files) is unchanged and every stage
before it was reused: a stage after a changed one always runs again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

from vdg_tf.data.inputs import check_data_path, class_folders, resolve_data
from vdg_tf.data.splits import hold_out, write_rows
from vdg_tf.files import claim_dir, write_json
from vdg_tf.pipeline.context import RunContext, RunInputs
from vdg_tf.pipeline.report import PipelineReport, fastest_stage, plot_report
from vdg_tf.pipeline.spec import PipelineSpec, StageSpec
from vdg_tf.pipeline.stages import STAGES
from vdg_tf.tasks import get_task

log = logging.getLogger(__name__)


def run(
    pipeline: PipelineSpec | str | Path,
    data: str | Path,
    out: str | Path,
    *,
    val_data: str | Path | None = None,
    val_split: float | None = None,
    eval_data: str | Path | None = None,
    progress: bool = True,
) -> PipelineReport:
    """Run every stage of `pipeline` (reusing finished ones), write and return the report.

    Args:
      pipeline: a `PipelineSpec` or a pipeline YAML file (checked whole before any work).
      data: the training data: a manifest, a `vdg preprocess` folder, or a folder of
        class folders (`<label>/<video>`, imported into `out/data/` as `vdg manifest
        from-folders` does).
      out: the run folder (a new one, or an earlier run's to resume it).
      val_data: data that picks the train stage's checkpoint (same forms as `data`).
      val_split: or this fraction of the training rows, held out (seeded, stratified).
      eval_data: the data every stage is scored on. Without it every stage is scored on
        the validation rows (`val_data`, or the `val_split` rows written to
        `out/data/val.jsonl`), and the report says so (`stages_scored_on: "val"`).
      progress: show epoch bars while training and fine-tuning.

    Returns:
      The `PipelineReport` (also written to `out/report.json`).

    Example:
      report = vdg.run("pipelines/edge_int8.yaml", "videos/", "runs/edge", val_split=0.1)
      report.format()  # the table; report.to_dict() is `vdg run --json`
    """
    spec = pipeline if isinstance(pipeline, PipelineSpec) else PipelineSpec.load(pipeline)
    out = Path(out)
    inputs = _inputs(spec, data, out, val_data, val_split or 0.0, eval_data)
    ctx = RunContext(out, inputs, spec.config, spec.finetune_lr_scale, progress)
    stages = _run_stages(spec, ctx)
    return _report(spec, ctx, stages)


def run_pipeline(
    spec: PipelineSpec,
    train_data: str | Path,
    eval_data: str | Path | None,
    out_dir: str | Path,
    progress: bool = True,
    val_data: str | Path | None = None,
    val_split: float = 0.0,
) -> dict:
    """`run` under its earlier name and argument order; returns `run(...).to_dict()`."""
    return run(
        spec,
        train_data,
        out_dir,
        val_data=val_data,
        val_split=val_split,
        eval_data=eval_data,
        progress=progress,
    ).to_dict()


def _inputs(
    spec: PipelineSpec,
    data: str | Path,
    out: Path,
    val_data: str | Path | None,
    val_split: float,
    eval_data: str | Path | None,
) -> RunInputs:
    """The run's data as manifests or folders the readers take, checked before the run
    folder is made; folders of class folders are imported into `out/data/`."""
    check_data_path(data, "--data")
    if val_data is not None:
        check_data_path(val_data, "--val-data")
    if eval_data is not None:
        check_data_path(eval_data, "--eval-data")
    elif val_data is None and not val_split:
        raise ValueError(
            "vdg run: every stage is scored on held-out clips: give --eval-data, "
            "--val-data or --val-split"
        )
    claim_dir(out)  # a new folder, or an earlier vdg output: never a folder of other files
    (out / "stages").mkdir(exist_ok=True)
    work = out / "data"
    if any(class_folders(p) for p in (data, val_data, eval_data) if p is not None):
        work.mkdir(exist_ok=True)
    train = str(resolve_data(data, work, "--data"))
    val = None if val_data is None else str(resolve_data(val_data, work, "--val-data"))
    if eval_data is not None:
        return RunInputs(train, str(resolve_data(eval_data, work, "--eval-data")), val, val_split)
    if val is None:  # the rows training holds out (the same seeded choice), written out
        task = get_task(spec.config.data)
        held = hold_out(train, val_split, spec.config.data.seed, task)
        work.mkdir(exist_ok=True)
        val_rows = str(write_rows(train, held.val_lines, work / "val.jsonl"))
        return RunInputs(train, val_rows, None, val_split, scored_on="val")
    return RunInputs(train, val, val, val_split, scored_on="val")


def _run_stages(spec: PipelineSpec, ctx: RunContext) -> dict:
    """Run (or reuse) each stage in order; returns every stage's report entries."""
    stages: dict = {}
    reused_so_far = True
    for stage_spec in spec.stages:
        stage = STAGES[stage_spec.kind]()
        identity = _identity(stage_spec, spec, ctx)
        path = ctx.out / "stages" / f"{stage_spec.key}.json"
        record = json.loads(path.read_text()) if path.is_file() else None
        reuse = reused_so_far and record is not None and record.get("identity") == identity
        reused_so_far = reuse
        if reuse and stage_spec.kind != "train":
            log.info("%s: done before, loading", stage_spec.kind)
        entries = stage.run(ctx, stage_spec.options, stage_spec.key, record if reuse else None)
        write_json(path, {"identity": identity, "entries": entries, "state": stage.state_of(ctx)})
        stages.update(entries)
    return stages


def _report(spec: PipelineSpec, ctx: RunContext, stages: dict) -> PipelineReport:
    """The run's report, with its plots, written to `report.json`."""
    task, m = ctx.task, spec.config.model
    report = PipelineReport(
        pipeline=spec.name,
        task=spec.config.data.task,
        model=f"{m.fusion} fusion of {' + '.join(m.modalities)}",
        eval_data=ctx.inputs.eval_data,
        stages=stages,
        metric=task.primary,
        higher_is_better=task.higher_is_better,
        labels=ctx.labels,
        training=training_section(ctx.out / "train" / "metrics.json"),
        stages_scored_on=ctx.inputs.scored_on,
        layers_left_float_in_qat=ctx.float_layers,
        skipped=ctx.skips.count,
        skipped_files=ctx.skips.reasons,
    )
    report.pareto_front = plot_report(report.to_dict(), ctx.out).get("pareto_front")
    report.fastest = fastest_stage(stages)
    write_json(
        ctx.out / "report.json", {k: v for k, v in report.to_dict().items() if k != "report"}
    )
    report.report = str(ctx.out / "report.json")
    return report


def training_section(metrics_file: Path) -> dict | None:
    """The train stage's checkpoint rule and validation figures (`checkpoint`, `val`), so
    the report says which split picked the model that every stage compresses."""
    if not metrics_file.is_file():
        return None
    metrics = json.loads(metrics_file.read_text())
    out = {k: metrics[k] for k in ("checkpoint", "best_epoch", "epochs_run") if k in metrics}
    if "val" in metrics:
        out["val"] = {k: v for k, v in metrics["val"].items() if not isinstance(v, list | dict)}
    return out


def _identity(stage_spec: StageSpec, spec: PipelineSpec, ctx: RunContext) -> dict:
    """What a stage's result depends on, as JSON: its options; for `train` the config and
    the data files it reads, for the others the fine-tuning learning-rate scale."""
    ident: dict = {"options": dataclasses.asdict(stage_spec.options)}
    if stage_spec.kind != "train":
        ident["finetune_lr_scale"] = spec.finetune_lr_scale
        return json.loads(json.dumps(ident))
    inputs = ctx.inputs
    ident |= {
        "config": spec.config.to_dict(),
        "train_data": _file_identity(inputs.data, ctx.out),
        "eval_data": _file_identity(inputs.eval_data, ctx.out),
    }
    # only when given, so runs made before these options existed still resume
    if inputs.val_data:
        ident["val_data"] = _file_identity(inputs.val_data, ctx.out)
    if inputs.val_split:
        ident["val_split"] = inputs.val_split
    return json.loads(json.dumps(ident))


def _file_identity(path: str, out: Path) -> dict:
    """A data file's path, size and modification time; a manifest the run wrote itself
    (imported from class folders, or held-out rows) by its content instead, since every
    run writes it again."""
    p = Path(path)
    if p.is_file() and (out / "data").resolve() in p.resolve().parents and p.suffix == ".jsonl":
        return {"path": str(p.resolve()), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
    stat = (p / "index.json" if p.is_dir() else p).stat() if p.exists() else None
    return {
        "path": str(p.resolve()),
        "bytes": stat.st_size if stat else None,
        "mtime_ns": stat.st_mtime_ns if stat else None,
    }
