"""`vdg demo`: make the sample data, run the built-in `demo` pipeline on it, report.

sample mp4s -> tf.data -> three-modality classifier -> train -> prune 50% -> PQAT
-> int8 TFLite -> run in LiteRT on the evaluation split -> report.json. It is the same
engine as `vdg run`; the demo only adds the data and a headline.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from vdg_tf.data.sample import make_sample_data
from vdg_tf.files import claim_dir
from vdg_tf.pipeline.engine import run_pipeline
from vdg_tf.pipeline.report import format_report
from vdg_tf.pipeline.spec import builtin_pipeline


def demo_data(folder: Path, clips: int, seed: int, progress: bool = True) -> dict:
    """The sample data for `clips` and `seed` in `folder`, written unless already there."""
    info = folder / "info.json"
    if info.is_file():
        have = json.loads(info.read_text())
        if (have.get("clips"), have.get("seed")) == (clips, seed):
            return {k: str(folder / f"{k}.jsonl") for k in ("manifest_train", "manifest_eval")}
    return make_sample_data(folder, clips, seed, progress=progress)


def run_demo(
    out_dir: str | Path = "saved_models/demo",
    clips: int = 320,
    seed: int = 0,
    epochs: int | None = None,
    progress: bool = True,
    log=None,
    val_split: float = 0.2,
) -> dict:
    """Run the demo end to end; returns the report (also in `out_dir/report.json`).

    `clips` and `seed` make the sample data; `epochs` overrides the training epochs (a
    quick smoke run); `val_split` of the training clips pick the checkpoint, so the
    evaluation clips are only reported.

    Example:
      report = run_demo("saved_models/demo", clips=64, epochs=2)
    """
    out = claim_dir(out_dir)  # before the sample data goes in: the run engine claims it too
    t0 = time.time()
    manifests = demo_data(out / "data", clips, seed, progress)
    spec = builtin_pipeline("demo")
    if epochs is not None:
        spec.config = spec.config.with_overrides({"train": {"epochs": epochs}})
    # a fifth of the training clips pick the checkpoint: the evaluation split is only reported
    report = run_pipeline(
        spec, manifests["manifest_train"], manifests["manifest_eval"], out, progress, log,
        val_split=val_split,
    )  # fmt: skip
    report["clips"], report["seed"] = clips, seed
    report["seconds"] = round(time.time() - t0, 1)
    return report


def format_demo(report: dict) -> str:
    """The demo's first line (clips, time), then the run's report with its headline."""
    head = f"vdg demo: {report['clips']} sample clips, {report['seconds']:.0f} s"
    return "\n".join([head, format_report(report)])
