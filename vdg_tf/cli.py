"""The `vdg` command line: parses arguments and calls the Python API, nothing more.

Progress goes to stderr; with `--json` one JSON object goes to stdout and nothing else
does (Keras' progress bars are sent to stderr too).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from vdg_tf._quiet import import_tensorflow_quietly


def _emit(obj: dict, as_json: bool, text: str | None = None) -> None:
    if as_json:
        print(json.dumps(obj), file=sys.__stdout__, flush=True)
    else:
        print(
            text if text is not None else json.dumps(obj, indent=2), file=sys.__stdout__, flush=True
        )


def cmd_make_sample_data(a: argparse.Namespace) -> dict:
    from vdg_tf.data.sample import SampleSpec, make_sample_data

    width, height = _frame_size(a.size)
    if not 0 < a.seconds[0] <= a.seconds[1]:
        raise ValueError(f"--seconds: need 0 < MIN <= MAX, got {a.seconds[0]} {a.seconds[1]}")
    spec = SampleSpec(width, height, a.fps, min_seconds=a.seconds[0], max_seconds=a.seconds[1])
    return make_sample_data(a.out, a.clips, a.seed, spec=spec, progress=not a.json)


def _frame_size(text: str) -> tuple[int, int]:
    """`WIDTHxHEIGHT` (e.g. 320x240) -> (width, height); a clear error otherwise."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size: expected WIDTHxHEIGHT such as 320x240, got '{text}'") from None
    if min(width, height) < 16 or width % 2 or height % 2:
        raise ValueError(f"--size: {text}: both sides even and at least 16 pixels (H.264 4:2:0)")
    return width, height


def cmd_train(a: argparse.Namespace) -> dict:
    from vdg_tf.config import Config
    from vdg_tf.training.artifacts import MODEL_FILE
    from vdg_tf.training.train import train

    cfg = Config.load(a.config) if a.config else Config()
    if a.epochs:
        cfg.train.epochs = a.epochs
    r = train(cfg, a.data, a.out, a.eval_data, progress=True)
    saved = _write_saved_model(r.model, Path(a.out) / "saved_model", cfg, r.labels, r.tokenizer)
    out = {
        "model": str(Path(a.out) / MODEL_FILE),
        "saved_model": str(saved),
        "epochs": r.epochs,
        "skipped": len(r.skipped),
    }
    if "eval" in r.metrics:
        from vdg_tf.training.metrics import PRIMARY

        key = PRIMARY[cfg.data.task]
        out[f"eval_{key}"] = r.metrics["eval"][key]
    return out


def _write_saved_model(model, path: Path, cfg, labels, tokenizer) -> Path:
    """The deployable model as a SavedModel (serving_default by input name) with its
    labels, vocabulary and config, written to a temp folder and renamed."""
    from vdg_tf.export.tflite import save_serving_model
    from vdg_tf.files import atomic_dir
    from vdg_tf.models.builder import inference_model
    from vdg_tf.training.artifacts import save_run_metadata

    with atomic_dir(path) as tmp:
        save_serving_model(inference_model(model), tmp)
        save_run_metadata(tmp, cfg, labels, tokenizer)
    return path


def cmd_evaluate(a: argparse.Namespace) -> dict:
    from vdg_tf.data.pipeline import SkipLog, batched_features
    from vdg_tf.data.sources import open_source
    from vdg_tf.training.artifacts import load_metadata, load_run

    model_path = Path(a.model)
    folder = model_path.parent if model_path.suffix in (".tflite", ".keras") else model_path
    cfg, labels, tok = load_metadata(folder)
    skips = SkipLog()
    source = open_source(a.data, cfg.data, labels, skips=skips)
    ds = batched_features(source.decoded, cfg.data, tok)
    from vdg_tf.training.evaluate import modality_ablation

    if model_path.suffix == ".tflite":
        from vdg_tf.export.verify import evaluate_tflite, predict_tflite

        report = evaluate_tflite(model_path, ds, labels, cfg.data.task)
        predict = lambda d: predict_tflite(model_path, d)  # noqa: E731
    else:
        from vdg_tf.models.builder import inference_model
        from vdg_tf.training.evaluate import evaluate_model, predict_dataset

        model = load_run(folder).model
        report = evaluate_model(model, ds, labels, cfg.data.task)
        predict = lambda d: predict_dataset(inference_model(model), d)  # noqa: E731
    if a.ablation:
        abl = modality_ablation(predict, ds, cfg.model.modalities, cfg.data.task, labels)
        report["ablation"] = abl
        print(
            f"{abl['metric']}  "
            + "  ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in abl.items() if k != "metric"),
            file=sys.stderr,
        )
    if a.plot and "confusion" in report:
        from vdg_tf.training.plots import plot_confusion

        plot_confusion(
            report["confusion"], labels, a.plot, f"{model_path.name} on {Path(a.data).name}"
        )
    print(skips.summary(source.count), file=sys.stderr)
    return {**report, "skipped": skips.count, "skipped_files": skips.reasons}


def cmd_export(a: argparse.Namespace) -> dict:
    from vdg_tf.data.manifest import read_manifest
    from vdg_tf.data.pipeline import make_dataset
    from vdg_tf.export.tflite import ExportConfig, convert
    from vdg_tf.export.verify import representative_inputs
    from vdg_tf.files import atomic_write_bytes
    from vdg_tf.models.builder import inference_model
    from vdg_tf.training.artifacts import load_run, run_metadata, save_run_metadata

    run = load_run(a.model)
    rep = None
    if a.target in ("edge-int8", "int8-fallback"):
        if not a.data:
            raise ValueError(f"--target {a.target} needs --data TRAIN.jsonl for int8 calibration")
        rows, _ = read_manifest(a.data)
        ds = make_dataset(rows, run.config.data, run.labels, run.tokenizer)
        rep = lambda: representative_inputs(ds, a.calibration_samples)  # noqa: E731
    meta = run_metadata(run.config, run.labels, run.tokenizer) if a.embed_metadata else None
    data = convert(inference_model(run.model), ExportConfig(a.target, rep, metadata=meta))
    path = atomic_write_bytes(a.out, data)
    save_run_metadata(path.parent, run.config, run.labels, run.tokenizer)
    result = {"path": str(path), "bytes": len(data), "target": a.target}
    if a.saved_model:
        _write_saved_model(run.model, Path(a.saved_model), run.config, run.labels, run.tokenizer)
        result["saved_model"] = str(a.saved_model)
    return result


def cmd_preprocess(a: argparse.Namespace) -> dict:
    from vdg_tf.config import Config
    from vdg_tf.data.records import preprocess

    cfg = Config.load(a.config) if a.config else Config()
    index = preprocess(a.manifest, a.out, cfg.data, shards=a.shards, progress=not a.json)
    print(
        f"{index['clips']} clips in {len(index['shards'])} shards; skipped {index['skipped']}",
        file=sys.stderr,
    )
    return {k: index[k] for k in ("clips", "shards", "skipped", "skipped_files")} | {"out": a.out}


def cmd_benchmark(a: argparse.Namespace) -> dict:
    from vdg_tf.config import Config
    from vdg_tf.data.benchmark import run_benchmark

    cfg = Config.load(a.config) if a.config else Config()
    r = run_benchmark(
        a.data,
        cfg,
        a.clips,
        a.memory_epochs,
        a.wait_steps,
        a.repeats,
        log=lambda m: print(f"[benchmark] {m}", file=sys.stderr),
    )
    if not a.json:
        lines = [
            f"clips {r['clips']} x {r['frames_per_clip']} frames, {r['cores']} cores",
            f"  tf.data pipeline      {r['pipeline_clips_per_s']:8.1f} clips/s  {r['pipeline_frames_per_s']:8.1f} frames/s  (decoding in {r['decoder']})",
            f"    threads             {r['threads_clips_per_s']:8.1f} clips/s",
            f"    worker processes    {r['processes_clips_per_s']:8.1f} clips/s  -> {r['processes_vs_threads']:.2f}x threads",
            f"    new iterator/epoch  {r['processes_new_iterator_clips_per_s']:8.1f} clips/s  (processes; threads {r['threads_new_iterator_clips_per_s']:.1f})",
            f"  sequential loop       {r['sequential_clips_per_s']:8.1f} clips/s  -> pipeline is {r['pipeline_vs_sequential']:.2f}x",
            f"    with FFmpeg threads {r['sequential_ffmpeg_threads_clips_per_s']:8.1f} clips/s",
            f"  decode-only limit     {r['decode_only_clips_per_s']:8.1f} clips/s  {r['decode_only_frames_per_s']:8.1f} frames/s -> pipeline at {r['pipeline_vs_decode_only']:.2f}x",
            "    machine time a clip limit {decode_only:.1f} ms, pipeline {pipeline:.1f} ms: the pipeline adds {overhead:.1f} ms".format(
                **r["machine_ms_per_clip"]
            ),
        ]
        if "input_wait_fraction" in r:
            w = r["input_wait_fraction"]
            lines += [
                f"  input wait per step   cached {w['cached']:.1%}, streaming {w['streaming_processes']:.1%} (processes), {w['streaming_threads']:.1%} (threads)",
                f"    step slower than from memory: cached {w['cached_slowdown']:.1%}, streaming {w['streaming_processes_slowdown']:.1%} (processes), {w['streaming_threads_slowdown']:.1%} (threads)",
            ]
        if "memory" in r:
            m = r["memory"]
            lines.append(
                f"  memory                {m['rss_mb_epoch1']:.0f} MiB after epoch 1, {m['rss_mb_last']:.0f} MiB after {m['epochs']} ({m['growth']:+.1%})"
            )
        print("\n".join(lines), file=sys.__stdout__)
    return r


def cmd_run(a: argparse.Namespace) -> dict:
    from vdg_tf.run import Pipeline, format_report, run_pipeline

    report = run_pipeline(Pipeline.load(a.pipeline), a.data, a.eval_data, a.out, progress=True)
    if not a.json:
        print(format_report(report), file=sys.__stdout__)
    return {"report": report["report"], "stages": report["stages"]}


def cmd_inspect(a: argparse.Namespace) -> dict:
    from vdg_tf.export.inspect import format_inspection, inspect_tflite, latency_ms

    r = inspect_tflite(a.file)
    if a.latency:
        r["latency_ms"] = latency_ms(a.file)
    if not a.json:
        print(
            format_inspection(r)
            + (
                f"\n  latency           {r['latency_ms']:.3f} ms (LiteRT, median)"
                if a.latency
                else ""
            ),
            file=sys.__stdout__,
        )
    return r


def cmd_demo(a: argparse.Namespace) -> dict:
    from vdg_tf.demo import DemoConfig, format_report, run_demo

    report = run_demo(a.out, DemoConfig(clips=a.clips, seed=a.seed), progress=True)
    if not a.json:
        print(format_report(report), file=sys.__stdout__)
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vdg",
        description="Multimodal (video + audio + text) models: build, train, compress, export to TFLite.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, fn, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        sp.set_defaults(fn=fn)
        return sp

    sp = add(
        "make-sample-data", cmd_make_sample_data, "write the sample dataset: mp4 clips + manifests"
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

    sp = add("train", cmd_train, "train a multimodal classifier into a run folder")
    sp.add_argument("--data", required=True, help="training manifest (JSON Lines)")
    sp.add_argument("--eval-data", help="evaluation manifest")
    sp.add_argument("--config", help="YAML config (see vdg_tf/config.py)")
    sp.add_argument("--epochs", type=int, help="override train.epochs")
    sp.add_argument("--out", required=True, help="run folder")

    sp = add(
        "evaluate",
        cmd_evaluate,
        "accuracy, macro-F1 and per-class table of a run folder or .tflite",
    )
    sp.add_argument(
        "model", help="run folder, model.keras, or FILE.tflite (labels/vocab beside it)"
    )
    sp.add_argument("--data", required=True, help="evaluation manifest")
    sp.add_argument("--plot", help="write the confusion matrix PNG here")
    sp.add_argument(
        "--ablation", action="store_true", help="also accuracy with each modality masked out"
    )

    sp = add("export", cmd_export, "export a run folder to TFLite for a target")
    sp.add_argument("model", help="run folder")
    sp.add_argument(
        "--target",
        required=True,
        choices=["edge-int8", "gpu-fp16", "cpu-dynamic", "float32", "int8-fallback"],
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
    sp = bsub.add_parser(
        "pipeline", help="tf.data vs sequential loop vs decode-only, input wait, memory"
    )
    sp.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    sp.set_defaults(fn=cmd_benchmark)
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
        "run",
        cmd_run,
        "run a pipeline file: train -> prune/cluster/QAT -> export -> verify, resuming",
    )
    sp.add_argument("pipeline", help="pipeline YAML (see pipelines/)")
    sp.add_argument("--data", required=True, help="training manifest or TFRecord folder")
    sp.add_argument("--eval-data", required=True, help="evaluation manifest")
    sp.add_argument("--out", required=True, help="output folder (rerun to resume)")

    sp = add("inspect", cmd_inspect, "ops, tensor dtypes and int8 coverage of a .tflite file")
    sp.add_argument("file", help="FILE.tflite")
    sp.add_argument("--latency", action="store_true", help="also time it in LiteRT (XNNPACK)")

    sp = add("demo", cmd_demo, "the whole product on generated sample data, end to end")
    sp.add_argument("--out", default="saved_models/demo")
    sp.add_argument("--clips", type=int, default=320)
    sp.add_argument("--seed", type=int, default=0, help="sample-data seed")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import_tensorflow_quietly()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            result = args.fn(args)
    except (ValueError, FileNotFoundError, KeyError) as e:
        msg = str(e).strip("'\"").splitlines()[0] if str(e) else type(e).__name__
        print(f"vdg {args.command}: error: {msg}", file=sys.stderr)
        return 2
    if args.json or args.command not in ("demo", "benchmark", "run", "inspect"):
        _emit(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
