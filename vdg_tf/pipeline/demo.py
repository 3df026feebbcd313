"""`vdg demo`: make the sample data, run the built-in `demo` pipeline on it, report.

sample mp4s -> tf.data -> three-modality classifier -> train -> prune 50% -> PQAT
-> int8 TFLite -> run in LiteRT on the evaluation split -> report.json. It is the same
engine as `vdg run`; the demo only adds the data and a headline.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

from vdg_tf.data.sample import make_sample_data
from vdg_tf.files import claim_dir
from vdg_tf.pipeline.engine import run
from vdg_tf.pipeline.report import PipelineReport, format_report
from vdg_tf.pipeline.spec import builtin_pipeline


@dataclass
class DemoReport(PipelineReport):
    """The demo pipeline's report, with the sample data it ran on and the time it took."""

    clips: int = 0
    seed: int = 0
    seconds: float = 0.0

    def format(self) -> str:
        return format_demo(self.to_dict())


def demo_data(folder: Path, clips: int, seed: int, progress: bool = True) -> dict:
    """The sample data for `clips` and `seed` in `folder`, written unless already there."""
    info = folder / "info.json"
    if info.is_file():
        have = json.loads(info.read_text())
        if (have.get("clips"), have.get("seed")) == (clips, seed):
            return {k: str(folder / f"{k}.jsonl") for k in ("manifest_train", "manifest_eval")}
    return make_sample_data(folder, clips, seed, progress=progress)


def run_demo(
    out: str | Path = "saved_models/demo",
    *,
    clips: int = 320,
    seed: int = 0,
    epochs: int | None = None,
    progress: bool = True,
    val_split: float = 0.2,
) -> DemoReport:
    """Run the demo end to end; returns the report (also in `out/report.json`).

    `clips` and `seed` make the sample data; `epochs` overrides the training epochs (a
    quick smoke run); `val_split` of the training clips pick the checkpoint, so the
    evaluation clips are only reported.

    Example:
      report = run_demo("saved_models/demo", clips=64, epochs=2)
    """
    out = claim_dir(out)  # before the sample data goes in: the run engine claims it too
    t0 = time.time()
    manifests = demo_data(out / "data", clips, seed, progress)
    spec = builtin_pipeline("demo")
    if epochs is not None:
        spec.config = spec.config.with_overrides({"train": {"epochs": epochs}})
    report = run(
        spec,
        manifests["manifest_train"],
        out,
        val_split=val_split,
        eval_data=manifests["manifest_eval"],
        progress=progress,
    )
    fields = {f.name: getattr(report, f.name) for f in dataclasses.fields(report)}
    return DemoReport(**fields, clips=clips, seed=seed, seconds=round(time.time() - t0, 1))


def format_demo(report: dict) -> str:
    """The demo's first line (clips, time), then the run's report with its headline."""
    head = f"vdg demo: {report['clips']} sample clips, {report['seconds']:.0f} s"
    return "\n".join([head, format_report(report)])
