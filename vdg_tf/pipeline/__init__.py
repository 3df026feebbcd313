"""Staged runs: a pipeline file checked whole at load, a stage registry, resume, the report.

`vdg run` and `vdg demo` are this package: `PipelineSpec.load` checks every stage and
option before any work, `run` runs the stages (reusing finished ones), writes
`report.json` and returns it as a `PipelineReport`.
"""

from vdg_tf.pipeline.demo import DemoReport, format_demo, run_demo
from vdg_tf.pipeline.engine import run, run_pipeline
from vdg_tf.pipeline.report import PipelineReport, format_report
from vdg_tf.pipeline.spec import PipelineSpec, StageSpec, builtin_pipeline
from vdg_tf.pipeline.stages import STAGES, Stage, register_stage

__all__ = [
    "STAGES",
    "DemoReport",
    "PipelineReport",
    "PipelineSpec",
    "Stage",
    "StageSpec",
    "builtin_pipeline",
    "format_demo",
    "format_report",
    "register_stage",
    "run",
    "run_demo",
    "run_pipeline",
]
