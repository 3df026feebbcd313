"""Staged runs: a pipeline file checked whole at load, a stage registry, resume, the report.

`vdg run` and `vdg demo` are this package: `PipelineSpec.load` checks every stage and
option before any work, `run_pipeline` runs the stages (reusing finished ones) and
writes `report.json`.
"""

from vdg_tf.pipeline.demo import format_demo, run_demo
from vdg_tf.pipeline.engine import run_pipeline
from vdg_tf.pipeline.report import format_report
from vdg_tf.pipeline.spec import PipelineSpec, StageSpec, builtin_pipeline
from vdg_tf.pipeline.stages import STAGES, Stage, register_stage

__all__ = [
    "STAGES",
    "PipelineSpec",
    "Stage",
    "StageSpec",
    "builtin_pipeline",
    "format_demo",
    "format_report",
    "register_stage",
    "run_demo",
    "run_pipeline",
]
