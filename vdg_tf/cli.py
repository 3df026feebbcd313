"""The `vdg` command line: parses arguments and calls one Python API function per command.

Progress goes to stderr; with `--json` one JSON object goes to stdout and nothing else
does (Keras' progress bars are sent to stderr too). Without it, stdout gets text for people.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from vdg_tf._quiet import import_tensorflow_quietly
from vdg_tf.media.heap import pool_tensorflow_memory


def cmd_make_sample_data(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.data.sample import SampleSpec, make_sample_data

    width, height = _frame_size(a.size)
    if not 0 < a.seconds[0] <= a.seconds[1]:
        raise ValueError(f"--seconds: need 0 < MIN <= MAX, got {a.seconds[0]} {a.seconds[1]}")
    spec = SampleSpec(width, height, a.fps, min_seconds=a.seconds[0], max_seconds=a.seconds[1])
    r = make_sample_data(a.out, a.clips, a.seed, spec=spec, progress=not a.json)
    return r, f"{r['clips']} clips in {a.out}: {r['manifest_train']}, {r['manifest_eval']}"


def _frame_size(text: str) -> tuple[int, int]:
    """`WIDTHxHEIGHT` (e.g. 320x240) -> (width, height); a clear error otherwise."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size: expected WIDTHxHEIGHT such as 320x240, got '{text}'") from None
    if min(width, height) < 16 or width % 2 or height % 2:
        raise ValueError(f"--size: {text}: both sides even and at least 16 pixels (H.264 4:2:0)")
    return width, height


def _config(path: str | None):
    from vdg_tf.config import Config

    return Config.load(path) if path else Config()


def cmd_train(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.bundle import MODEL_FILE
    from vdg_tf.training import train

    cfg = _config(a.config)
    if a.epochs:
        cfg = cfg.with_overrides({"train": {"epochs": a.epochs}}, where="--epochs")
    r = train(cfg, a.data, a.out, a.eval_data, progress=True, saved_model=True)
    out = {
        "model": str(Path(a.out) / MODEL_FILE),
        "saved_model": str(Path(a.out) / "saved_model"),
        "epochs": r.epochs,
        "skipped": len(r.skipped),
    }
    text = f"trained {r.epochs} epochs into {a.out}"
    if "eval" in r.metrics:
        key = r.bundle.task.primary
        out[f"eval_{key}"] = r.metrics["eval"][key]
        text += f"; evaluation {key} {out[f'eval_{key}']:.3f}"
    return out, text


def cmd_evaluate(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.runtime.evaluate import evaluate, format_evaluation

    report = evaluate(a.model, a.data, ablation=a.ablation, plot=a.plot)
    return report, format_evaluation(report)


def cmd_export(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.export.api import export_model

    r = export_model(
        a.model, a.target, a.out, a.data, a.calibration_samples, a.saved_model, a.embed_metadata
    )
    return r, f"{r['target']}: {r['path']} ({r['bytes']:,} bytes)"


def cmd_preprocess(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.data.records import preprocess

    index = preprocess(
        a.manifest, a.out, _config(a.config).data, shards=a.shards, progress=not a.json
    )
    r = {k: index[k] for k in ("clips", "shards", "skipped", "skipped_files")} | {"out": a.out}
    return r, f"{index['clips']} clips in {len(index['shards'])} shards; skipped {index['skipped']}"


def cmd_benchmark(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.bench.pipeline import format_benchmark, run_benchmark

    r = run_benchmark(
        a.data,
        _config(a.config),
        a.clips,
        a.memory_epochs,
        a.wait_steps,
        a.repeats,
        log=lambda m: print(f"[benchmark] {m}", file=sys.stderr),
    )
    return r, format_benchmark(r)


def cmd_run(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.pipeline import PipelineSpec, format_report, run_pipeline

    report = run_pipeline(PipelineSpec.load(a.pipeline), a.data, a.eval_data, a.out, progress=True)
    return {"report": report["report"], "stages": report["stages"]}, format_report(report)


def cmd_inspect(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.export.inspect import format_inspection, inspect_tflite, latency_ms

    r = inspect_tflite(a.file)
    text = format_inspection(r)
    if a.latency:
        r["latency_ms"] = latency_ms(a.file)
        text += f"\n  latency           {r['latency_ms']:.3f} ms (LiteRT, median)"
    return r, text


def cmd_demo(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.pipeline import format_demo, run_demo

    report = run_demo(a.out, clips=a.clips, seed=a.seed, epochs=a.epochs, progress=True)
    return report, format_demo(report)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vdg",
        description="Multimodal (video + audio + text) models: build, train, compress, export to TFLite.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(parent, name, fn, help_):
        sp = parent.add_parser(name, help=help_, description=help_)
        sp.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        sp.set_defaults(fn=fn)
        return sp

    sp = add(
        sub,
        "make-sample-data",
        cmd_make_sample_data,
        "write the sample dataset: mp4 clips + manifests",
    )
    sp.add_argument("out", help="output folder")
    sp.add_argument("--clips", type=int, default=240)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--size", default="96x96", help="frame WIDTHxHEIGHT (320x240: UCF101's)")
    sp.add_argument("--fps", type=int, default=12, help="frames per second (UCF101: 25)")
    sp.add_argument(
        "--seconds", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"),
        help="clip lengths, drawn uniformly between MIN and MAX",
    )  # fmt: skip

    sp = add(sub, "train", cmd_train, "train a multimodal model into a run folder (a bundle)")
    sp.add_argument(
        "--data", required=True, help="training manifest (JSON Lines) or records folder"
    )
    sp.add_argument("--eval-data", help="evaluation manifest")
    sp.add_argument("--config", help="YAML config (see vdg_tf/config.py and configs/)")
    sp.add_argument("--epochs", type=int, help="override train.epochs")
    sp.add_argument("--out", required=True, help="run folder")

    sp = add(sub, "evaluate", cmd_evaluate, "the task's metrics (and per-class table) of a model")
    sp.add_argument(
        "model", help="run folder, model.keras, or FILE.tflite (labels/vocab beside it)"
    )
    sp.add_argument("--data", required=True, help="evaluation manifest")
    sp.add_argument("--plot", help="write the confusion matrix PNG here")
    sp.add_argument(
        "--ablation", action="store_true", help="also the metric with each modality masked out"
    )

    from vdg_tf.export.targets import TARGETS

    sp = add(sub, "export", cmd_export, "export a run folder to TFLite for a target")
    sp.add_argument("model", help="run folder or its model.keras")
    sp.add_argument(
        "--target",
        required=True,
        choices=list(TARGETS),
        help="; ".join(f"{t.name}: {t.help}" for t in TARGETS.values()),
    )
    sp.add_argument("--out", required=True, help="FILE.tflite")
    sp.add_argument("--data", help="training manifest: representative data for int8 targets")
    sp.add_argument("--calibration-samples", type=int, default=64)
    sp.add_argument(
        "--saved-model", help="also write a SavedModel (serving_default by input name) here"
    )
    sp.add_argument(
        "--embed-metadata",
        action="store_true",
        help="also embed labels, vocabulary and config as TFLite metadata (vdg_tf.*)",
    )

    sp = add(
        sub,
        "preprocess",
        cmd_preprocess,
        "decode a manifest once into TFRecord shards (train --data accepts the folder)",
    )
    sp.add_argument("manifest")
    sp.add_argument("out", help="output folder")
    sp.add_argument("--config", help="YAML config: the data section sets frames, size, audio")
    sp.add_argument("--shards", type=int, default=4)

    bench = sub.add_parser(
        "benchmark",
        help="measure throughput side by side",
        description="measure throughput side by side",
    )
    bsub = bench.add_subparsers(dest="what", required=True, metavar="WHAT")
    sp = add(
        bsub,
        "pipeline",
        cmd_benchmark,
        "tf.data vs sequential loop vs decode-only, input wait, memory",
    )
    sp.add_argument("--data", required=True, help="manifest")
    sp.add_argument("--config", help="YAML config")
    sp.add_argument("--clips", type=int, help="use the first N clips")
    sp.add_argument(
        "--wait-steps", type=int, default=24, help="training steps timed for input wait (0: skip)"
    )
    sp.add_argument("--repeats", type=int, default=3, help="passes per throughput figure (median)")
    sp.add_argument(
        "--memory-epochs",
        type=int,
        default=0,
        help="stream this many epochs and report memory growth",
    )

    sp = add(
        sub,
        "run",
        cmd_run,
        "run a pipeline file: train -> prune/cluster/QAT/distill -> export -> verify",
    )
    sp.add_argument("pipeline", help="pipeline YAML (see pipelines/)")
    sp.add_argument("--data", required=True, help="training manifest or TFRecord folder")
    sp.add_argument("--eval-data", required=True, help="evaluation manifest")
    sp.add_argument("--out", required=True, help="output folder (rerun to resume)")

    sp = add(sub, "inspect", cmd_inspect, "ops, tensor dtypes and int8 coverage of a .tflite file")
    sp.add_argument("file", help="FILE.tflite")
    sp.add_argument("--latency", action="store_true", help="also time it in LiteRT (XNNPACK)")

    sp = add(sub, "demo", cmd_demo, "the whole product on generated sample data, end to end")
    sp.add_argument("--out", default="saved_models/demo")
    sp.add_argument("--clips", type=int, default=320)
    sp.add_argument("--seed", type=int, default=0, help="sample-data seed")
    sp.add_argument("--epochs", type=int, help="override the training epochs (a quick run)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    pool_tensorflow_memory()  # before TensorFlow makes its first tensor
    import_tensorflow_quietly()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            result, text = args.fn(args)
    except (ValueError, FileNotFoundError, KeyError) as e:
        msg = str(e).strip("'\"").splitlines()[0] if str(e) else type(e).__name__
        print(f"vdg {args.command}: error: {msg}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else text, file=sys.__stdout__, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
