"""The `vdg` command line: parses arguments and calls one Python API function per command.

Progress goes to stderr; with `--json` one JSON object goes to stdout and nothing else
does (Keras' progress bars are sent to stderr too). Without it, stdout gets text for people:
short tables with the figures that matter. Library start-up lines and repeated warnings
are hidden unless `--verbose` (`vdg_tf/_quiet.py`). Data paths are checked before any
work starts or any folder is made, and a misspelled option gets its command's usage
with the closest option.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import logging
import sys
from pathlib import Path

from vdg_tf._quiet import import_tensorflow_quietly, repeated_warnings, set_verbose
from vdg_tf.media.heap import pool_tensorflow_memory


def cmd_make_sample_data(a: argparse.Namespace) -> tuple[dict, str]:
    """The sample data `--task` names: labelled clips, or untrimmed videos with segments."""
    samples = {"clips": _clip_sample, "localisation": _untrimmed_sample,
               "detection": _detection_sample}  # fmt: skip
    return samples[a.task](a)


def _clip_sample(a: argparse.Namespace) -> tuple[dict, str]:
    """`make-sample-data`: one labelled clip per file, with the manifests."""
    from vdg_tf.data.sample import SampleSpec, make_sample_data

    width, height = _frame_size(a.size or "96x96")
    if not 0 < a.seconds[0] <= a.seconds[1]:
        raise ValueError(f"--seconds: need 0 < MIN <= MAX, got {a.seconds[0]} {a.seconds[1]}")
    spec = SampleSpec(
        width, height, (a.fps or 12), min_seconds=a.seconds[0], max_seconds=a.seconds[1]
    )
    r = make_sample_data(a.out, 240 if a.clips is None else a.clips, a.seed, spec=spec,
                         progress=True)  # fmt: skip
    return r, _table(
        f"sample data in {a.out}",
        [
            ("clips", f"{r['clips']} ({width}x{height}, {(a.fps or 12)} fps, mp4 H.264 + AAC)"),
            ("training", f"{r['train_clips']} clips  {r['manifest_train']}"),
            ("evaluation", f"{r['eval_clips']} clips  {r['manifest_eval']}"),
            ("labels", f"{len(r['labels'])}: {', '.join(r['labels'][:3])}, ..."),
        ],
    )


def _untrimmed_sample(a: argparse.Namespace) -> tuple[dict, str]:
    """`make-sample-data --task localisation`: untrimmed videos with known segments."""
    from vdg_tf.data.sample_untrimmed import UntrimmedSpec, make_untrimmed_sample

    width, height = _frame_size(a.size or "320x240")
    if not a.length > 0:
        raise ValueError(f"--length: must be a positive number of seconds, got {a.length}")
    spec = UntrimmedSpec(width, height, (a.fps or 12))
    videos = 8 if a.clips is None else a.clips
    r = make_untrimmed_sample(a.out, videos, a.length, a.seed, spec=spec, progress=True)
    return r, _table(
        f"untrimmed sample data in {a.out}",
        [
            ("videos", f"{r['videos']} of {a.length:g} s ({width}x{height}, {(a.fps or 12)} fps), "
                       f"{r['segments']} action segments"),
            ("training", f"{r['train_videos']} videos  {r['manifest_train']}"),
            ("evaluation", f"{r['eval_videos']} videos  {r['manifest_eval']}"),
            ("labels", ", ".join(r["labels"])),
        ],
    )  # fmt: skip


def _detection_sample(a: argparse.Namespace) -> tuple[dict, str]:
    """`make-sample-data --task detection`: clips of moving shapes with their boxes."""
    from vdg_tf.data.sample_detection import DetectionSpec, make_detection_sample

    width, height = _frame_size(a.size or "320x240")
    spec = DetectionSpec(width, height, a.fps or 8)
    clips = 80 if a.clips is None else a.clips
    r = make_detection_sample(a.out, clips, a.seed, spec=spec, progress=True)
    return r, _table(
        f"detection sample data in {a.out}",
        [
            ("clips", f"{r['clips']} of {spec.seconds:g} s ({width}x{height}, {spec.fps} fps), "
                      f"{r['frames']} annotated frames ({r['empty_frames']} without objects), "
                      f"{r['boxes']} boxes"),
            ("training", f"{r['train_clips']} clips  {r['manifest_train']}"),
            ("evaluation", f"{r['eval_clips']} clips  {r['manifest_eval']}"),
            ("labels", ", ".join(r["labels"])),
        ],
    )  # fmt: skip


def _table(title: str, rows: list[tuple[str, str]]) -> str:
    """`title` above two aligned columns: what, and its value."""
    width = max(len(k) for k, _ in rows) + 2
    return "\n".join([title, *(f"  {k:<{width}}{v}" for k, v in rows)])


def _size(n: int) -> str:
    """Bytes as a person reads them: `287,776 B (281 KiB)`."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n:,} B ({n / scale:.{1 if n < 10 * scale else 0}f} {unit})"
    return f"{n:,} B"


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
    from vdg_tf.training import train

    cfg = _config(a.config)
    if a.epochs:
        cfg = cfg.with_overrides({"train": {"epochs": a.epochs}}, where="--epochs")
    r = train(
        cfg, a.data, a.out, val_data=a.val_data, val_split=a.val_split,
        eval_data=a.eval_data, progress=True, saved_model=True,
    )  # fmt: skip
    return r.to_dict(), r.format()


def cmd_evaluate(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.runtime.evaluate import evaluate

    r = evaluate(a.model, a.data, trust_model=a.trust_model, ablation=a.ablation, plot=a.plot)
    return r.to_dict(), r.format()


def cmd_export(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf._progress import working
    from vdg_tf.export.api import export

    with working(f"exporting {a.target}"):
        r = export(
            a.model, a.target, a.out, data=a.data, trust_model=a.trust_model, force=a.force,
            calibration_samples=a.calibration_samples, saved_model=a.saved_model,
            embed_metadata=a.embed_metadata, batch=None if a.batch == "dynamic" else int(a.batch),
            preprocess=a.preprocess, incremental=a.incremental, tolerance=a.tolerance,
            frame_detector=a.frame_detector,
        )  # fmt: skip
    return r.to_dict(), r.format()


def cmd_preprocess(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.data.preprocess import parse_beam_options, preprocess

    r = preprocess(
        a.manifest, a.out, _config(a.config), shards=a.shards, runner=a.runner,
        beam_options=parse_beam_options(a.beam_option), progress=True,
    )  # fmt: skip
    return r.to_dict(), r.format()


def cmd_benchmark_service(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.bench.service import run_service_benchmark

    r = run_service_benchmark(
        a.data, _config(a.config), tuple(a.workers), a.batches,
        log=lambda m: print(f"[benchmark] {m}", file=sys.stderr),
    )  # fmt: skip
    return r.to_dict(), r.format()


def cmd_data_service(a: argparse.Namespace) -> tuple[dict, str]:
    """`data-service dispatcher|worker`: a tf.data service server until Ctrl-C."""
    from vdg_tf.data.service_servers import run_dispatcher, run_worker

    if a.role == "dispatcher":
        r = run_dispatcher(a.port, a.work_dir)
    else:
        r = run_worker(a.dispatcher, a.port, a.host)
    return r.to_dict(), r.format()


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
    from vdg_tf.pipeline import run

    r = run(a.pipeline, a.data, a.out, val_data=a.val_data, val_split=a.val_split,
            eval_data=a.eval_data)  # fmt: skip
    return r.to_dict(), r.format()


def cmd_inspect(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.export.inspect import inspect_model

    r = inspect_model(a.file, latency=a.latency)
    return r.to_dict(), r.format()


def cmd_demo(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.pipeline import run_demo

    r = run_demo(a.out, clips=a.clips, seed=a.seed, epochs=a.epochs)
    return r.to_dict(), r.format()


def cmd_predict(a: argparse.Namespace) -> tuple[dict | None, str | None]:
    """Stream each record to stdout as the API makes it (JSON Lines with --json); the
    summary goes to stderr. An error when no source gave a window."""
    from vdg_tf.runtime.predict import Events, predict
    from vdg_tf.runtime.report import format_record

    if not a.inputs and not a.sources:
        raise ValueError("predict: give at least one INPUT or --sources FILE")

    events = Events(a.watch or [], a.threshold, smooth=a.smooth) if (a.watch or a.events) else None
    if events is not None and not events.watch:
        events.watch = [None]  # the task's only series (the anomaly score)

    def show(record: dict) -> None:
        line = json.dumps(record) if a.json else format_record(record)
        print(line, file=sys.__stdout__, flush=True)

    run = predict(
        a.model, a.inputs, trust_model=a.trust_model, window=a.window, stride=a.stride,
        text=a.text or "", top=a.top, stream=a.stream, realtime=a.realtime, timeout_s=a.timeout,
        events=events, incremental=a.incremental, csv=a.csv, plot=a.plot, on_record=show,
        segments=a.segments, segment_threshold=a.segment_threshold, draw=a.draw, track=a.track,
        box_threshold=a.box_threshold, max_latency=a.max_latency, sources=a.sources,
    )  # fmt: skip
    if a.json and len(run.sources) > 1:  # several feeds: their summaries as a last line
        summary = {k: v for k, v in run.to_dict().items() if k != "records"}
        print(json.dumps({"summary": summary}), file=sys.__stdout__, flush=True)
    print(run.format(), file=sys.stderr)
    if not run.windows and run.skipped and not run.interrupted:
        raise ValueError(run.skipped[0])
    return None, None


def cmd_benchmark_decode(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.bench.decode_cost import format_decode_cost, measure_decode_cost

    r = measure_decode_cost(a.manifest, clips=a.clips, repeats=a.repeats, batches=a.batches)
    return r, format_decode_cost(r)


def cmd_benchmark_stream(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.bench.stream import run_stream_benchmark

    r = run_stream_benchmark(a.model, a.video, window=a.window, stride=a.stride)
    return r.to_dict(), r.format()


def cmd_benchmark_detection(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.bench.detection_export import run_detection_benchmark

    r = run_detection_benchmark(a.model, a.data, calibration_data=a.calibration_data or a.data,
                                out=a.out, calibration_samples=a.calibration_samples,
                                max_frames=a.max_frames, trust_model=a.trust_model)  # fmt: skip
    return r.to_dict(), r.format()


def _add_benchmark_detection(bsub) -> None:
    """`vdg benchmark detection`."""
    sp = _add_command(
        bsub, "detection", cmd_benchmark_detection,
        "a detection run's float32/gpu-fp16/edge-int8 exports scored by mAP in LiteRT beside "
        "Keras, and the int8 detector's ms per frame beside an int8 classifier's",
    )  # fmt: skip
    sp.add_argument("model", help="detection run folder (a QAT run exports its learned ranges)")
    sp.add_argument("--data", required=True, help="evaluation manifest with boxes")
    sp.add_argument("--calibration-data", help="manifest int8 calibrates on (default: --data)")
    sp.add_argument("--calibration-samples", type=int, default=64)
    sp.add_argument("--out", help="keep the exported files in this folder")
    sp.add_argument("--max-frames", type=int, help="score at most this many annotated frames")


def cmd_benchmark_feeds(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.bench.feeds import run_feeds_benchmark

    nice = {} if a.decode_nice is None else {"decode_nice": a.decode_nice}
    r = run_feeds_benchmark(a.model, a.video, feeds=a.feeds, search=a.max, seconds=a.seconds,
                            window=a.window, stride=a.stride, max_latency=a.max_latency,
                            trust_model=a.trust_model, **nice)  # fmt: skip
    return r.to_dict(), r.format()


def _add_benchmark_feeds(bsub) -> None:
    """`vdg benchmark feeds`."""
    sp = _add_command(
        bsub, "feeds", cmd_benchmark_feeds,
        "play a video as N live feeds (paced pipes) and follow them all with one model: "
        "windows, drops, latency p50/p95, CPU; --max finds max_realtime_feeds",
    )  # fmt: skip
    sp.add_argument("model", help="run folder, model.keras or FILE.tflite")
    sp.add_argument("video", help="the video every feed plays (looped to --seconds)")
    how = sp.add_mutually_exclusive_group()
    how.add_argument("--feeds", type=int, help="feeds at once (default 2)")
    how.add_argument("--max", action="store_true",
                     help="search the most feeds with no drop and p95 latency under the stride")  # fmt: skip
    sp.add_argument("--seconds", type=float, default=20.0, help="seconds each feed plays")
    sp.add_argument("--window", type=float, help="window seconds (default: the model's audio span)")
    sp.add_argument("--stride", type=float, default=0.5, help="seconds between windows")
    sp.add_argument("--max-latency", type=float, help="latency budget a window (default: stride)")
    sp.add_argument("--decode-nice", type=int,
                    help="how much nicer the decoders run than the model (default: "
                         "vdg_tf.media.feeds.DECODE_NICE, 10; 0: the same priority)")  # fmt: skip
    _add_trust_model(sp)


def cmd_benchmark_workers(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.bench.workers import run_workers_benchmark

    r = run_workers_benchmark(a.data, a.out, _config(a.config), workers=a.workers)
    return r.to_dict(), r.format()


def _add_benchmark_workers(bsub) -> None:
    """`vdg benchmark workers`."""
    sp = _add_command(
        bsub,
        "workers",
        cmd_benchmark_workers,
        "training clips/s: one process vs N multi-worker processes on 127.0.0.1",
    )
    sp.add_argument("--data", required=True, help="training manifest or records folder")
    sp.add_argument("--config", help="YAML config (data.batch_size: the per-replica batch)")
    sp.add_argument("--out", required=True, help="folder for both runs and the workers' logs")
    sp.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")


def _add_trust_model(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--trust-model",
        action="store_true",
        help="also load a legacy HDF5 model (or Lambda layers): formats that can run code "
        "when loaded; only for a model whose source you trust",
    )


def _import_table(r: dict) -> str:
    """The people's view of a dataset import: rows, labels, splits, what was skipped."""
    rows = [
        ("manifest", f"{r['manifest']}  ({r['rows']} rows)"),
        ("labels", f"{len(r['labels'])}: {', '.join(r['labels'][:5])}"
                   f"{' ...' if len(r['labels']) > 5 else ''}"),
        ("captions", f"{r['captions']} rows have text"),
    ]  # fmt: skip
    for name, s in r["splits"].items():
        rows.append((name, f"{s['manifest']}  ({s['rows']} rows)"))
    if r["skipped"]:
        rows.append(("skipped", f"{r['skipped']}: {'; '.join(r['skipped_files'][:3])}"))
    if r["caption_errors"]:
        rows.append(("caption errors", "; ".join(r["caption_errors"][:3])))
    return _table(f"imported {r['manifest']}", rows)


def cmd_manifest_from_folders(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.data.importers import from_folders

    r = from_folders(a.root, a.out, a.splits, a.split, probe=not a.no_probe)
    return r, _import_table(r)


def cmd_manifest_from_csv(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.data.importers import from_csv

    r = from_csv(a.csv, a.videos, a.out, probe=not a.no_probe)
    return r, _import_table(r)


def cmd_manifest_from_activitynet(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.data.activitynet import from_activitynet

    r = from_activitynet(a.annotations, a.videos, a.out, probe=not a.no_probe)
    rows = [
        ("manifest", f"{r['manifest']}  ({r['rows']} videos, {r['segments']} segments)"),
        ("labels", f"{len(r['labels'])}: {', '.join(r['labels'][:5])}"
                   f"{' ...' if len(r['labels']) > 5 else ''}"),
    ]  # fmt: skip
    rows += [(name, f"{s['manifest']}  ({s['rows']} videos)") for name, s in r["splits"].items()]
    rows.append(("segments", f"{r['merged']} overlaps merged, {r['clipped']} cut at the video's "
                             f"end, {r['unannotated']} videos unannotated"))  # fmt: skip
    if r["skipped"]:
        rows.append(("skipped videos", f"{r['skipped']}: {'; '.join(r['skipped_files'][:3])}"))
    if r["skipped_segments"]:
        shown = "; ".join(r["segment_problems"][:3])
        rows.append(("skipped segments", f"{r['skipped_segments']}: {shown}"))
    return r, _table(f"imported {r['manifest']}", rows)


def cmd_manifest_from_coco_video(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.data.box_importers import from_coco_video

    r = from_coco_video(a.annotations, a.videos, a.out, fps=a.fps, probe=not a.no_probe)
    return r, _box_import_table(r)


def cmd_manifest_from_ava(a: argparse.Namespace) -> tuple[dict, str]:
    from vdg_tf.data.box_importers import from_ava

    r = from_ava(a.csv, a.videos, a.out, label_map=a.label_map, time_offset=a.time_offset,
                 probe=not a.no_probe)  # fmt: skip
    return r, _box_import_table(r)


def _box_import_table(r: dict) -> str:
    """The people's view of a box import: rows, labels, boxes kept and skipped by reason."""
    rows = [
        ("manifest", f"{r['manifest']}  ({r['rows']} videos, {r['boxes']} boxes)"),
        ("labels", f"{len(r['labels'])}: {', '.join(r['labels'][:5])}"
                   f"{' ...' if len(r['labels']) > 5 else ''}"),
    ]  # fmt: skip
    if r["skipped"]:
        rows.append(("skipped videos", f"{r['skipped']}: {'; '.join(r['skipped_files'][:3])}"))
    if r["skipped_boxes"]:
        why = ", ".join(f"{n} {k}" for k, n in r["skipped_box_reasons"].items())
        rows.append(("skipped boxes", f"{r['skipped_boxes']} ({why})"))
    return _table(f"imported {r['manifest']}", rows)


def _add_validation(sp: argparse.ArgumentParser) -> None:
    """`--val-data` / `--val-split`: the data that picks the checkpoint and stops early."""
    val = sp.add_mutually_exclusive_group()
    val.add_argument("--val-data", help="validation manifest: picks the best epoch and stops early")
    val.add_argument(
        "--val-split",
        type=_fraction,
        default=0.0,
        metavar="F",
        help="hold out this fraction of the training rows (seeded, stratified) as validation; "
        "written to OUT/val.jsonl",
    )


def _fraction(text: str) -> float:
    """A number strictly between 0 and 1, for --val-split."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction such as 0.2, got '{text}'") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that keeps the option strings it was given (`options`), so an
    unknown option can be matched to the closest known one without argparse internals."""

    def __init__(self, *args, **kwargs):
        self.options: list[str] = []
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        action = super().add_argument(*args, **kwargs)
        self.options += action.option_strings
        return action


def _add_command(parent, name: str, fn, help_: str) -> _Parser:
    """A subcommand with the options every command has (--json, --verbose), bound to `fn`."""
    sp = parent.add_parser(name, help=help_, description=help_)
    sp.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    sp.add_argument(
        "--verbose",
        action="store_true",
        help="show library logs (TensorFlow, absl, tfmot) and Keras' full epoch lines",
    )
    sp.set_defaults(fn=fn, parser=sp)
    return sp


def _add_make_sample_data(sub) -> None:
    """`vdg make-sample-data`."""
    sp = _add_command(
        sub,
        "make-sample-data",
        cmd_make_sample_data,
        "write the sample dataset: mp4 clips + manifests",
    )
    sp.add_argument("out", help="output folder")
    sp.add_argument("--clips", type=int, help="clips (default 240), or videos with --task "
                    "localisation (default 8)")  # fmt: skip
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--size", help="frame WIDTHxHEIGHT (default 96x96; 320x240, UCF101's, "
                    "with --task localisation)")  # fmt: skip
    sp.add_argument("--fps", type=int, help="frames per second (default 12; 8 with --task "
                    "detection; UCF101: 25)")  # fmt: skip
    sp.add_argument(
        "--seconds", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"),
        help="clip lengths, drawn uniformly between MIN and MAX",
    )  # fmt: skip
    sp.add_argument(
        "--task", choices=["clips", "localisation", "detection"], default="clips",
        help="clips: one labelled clip per file; localisation: --clips untrimmed videos of "
        "--length seconds (320x240 unless --size) with known action segments; detection: "
        "--clips (default 80) 2 s clips (320x240, 8 fps) of moving shapes with their boxes",
    )  # fmt: skip
    sp.add_argument("--length", type=float, default=60.0, help="seconds per untrimmed video")


def _add_file_importer(
    msub, name, fn, help_, source, videos_help, out_help, probe_help
) -> argparse.ArgumentParser:
    """A `vdg manifest` importer of one annotation file plus a folder of videos (returned,
    for an importer's own options)."""
    sp = _add_command(msub, name, fn, help_)
    sp.add_argument(source[0], help=source[1])
    sp.add_argument("--videos", required=True, help=videos_help)
    sp.add_argument("--out", required=True, help=f"manifest to write ({out_help})")
    sp.add_argument("--no-probe", action="store_true", help=probe_help)
    return sp


def _add_manifest(sub) -> None:
    """`vdg manifest from-folders` and `from-csv`."""
    msub = sub.add_parser(
        "manifest",
        help="write manifests from datasets laid out as class folders or a CSV",
        description="write manifests from datasets laid out as class folders or a CSV",
    ).add_subparsers(dest="what", required=True, metavar="WHAT")
    probe_help = "do not open each video to check it decodes (faster on a big tree)"
    sp = _add_command(
        msub,
        "from-folders",
        cmd_manifest_from_folders,
        "one folder per class (UCF101/HMDB51 layout) -> manifest; split lists -> _train/_test",
    )
    sp.add_argument("root", help="dataset folder: ROOT/<label>/<video>")
    sp.add_argument("--out", required=True, help="manifest to write (M.jsonl)")
    sp.add_argument(
        "--splits",
        help="folder of official split lists (trainlist01.txt/testlist01.txt or "
        "*_test_split1.txt): also writes M_train.jsonl and M_test.jsonl",
    )
    sp.add_argument("--split", type=int, default=1, choices=[1, 2, 3], help="which split")
    sp.add_argument("--no-probe", action="store_true", help=probe_help)
    _add_file_importer(
        msub, "from-csv", cmd_manifest_from_csv,
        "Kinetics-style CSV (youtube_id,time_start,time_end,label,split) -> manifest",
        ("csv", "the CSV file"), "folder holding the downloaded videos", "M.jsonl", probe_help,
    )  # fmt: skip
    _add_file_importer(
        msub, "from-activitynet", cmd_manifest_from_activitynet,
        "ActivityNet/THUMOS JSON (database -> id -> subset, annotations) -> localisation manifest",
        ("annotations", "the annotation JSON file"), "folder holding the videos (any depth)",
        "M.jsonl; M_<subset>.jsonl", probe_help,
    )  # fmt: skip
    _add_box_importers(msub, probe_help)


def _add_box_importers(msub, probe_help: str) -> None:
    """`vdg manifest from-coco-video` and `from-ava`: box-annotated video -> detection rows."""
    sp = _add_file_importer(
        msub, "from-coco-video", cmd_manifest_from_coco_video,
        "YouTube-VIS / TAO JSON (videos, categories, per-frame bboxes) -> detection manifest",
        ("annotations", "the annotation JSON file"), "folder holding the videos (any depth)",
        "M.jsonl", probe_help,
    )  # fmt: skip
    sp.add_argument("--fps", type=float, help="annotated frames per second of the video files "
                    "(default: the file's own rate)")  # fmt: skip
    sp = _add_file_importer(
        msub, "from-ava", cmd_manifest_from_ava,
        "AVA CSV (video_id,timestamp,x1,y1,x2,y2,action_id,person_id) -> detection manifest",
        ("csv", "the CSV file"), "folder holding <video_id>.* files (any depth)", "M.jsonl",
        probe_help,
    )  # fmt: skip
    sp.add_argument("--label-map", help="AVA's action list .pbtxt (default: action ids as labels)")
    sp.add_argument("--time-offset", type=float, default=0.0, help="seconds subtracted from each "
                    "timestamp (900 for AVA's 15-minute cuts)")  # fmt: skip


def _add_train(sub) -> None:
    """`vdg train`."""
    sp = _add_command(
        sub, "train", cmd_train, "train a multimodal model into a run folder (a bundle)"
    )
    sp.add_argument(
        "--data",
        required=True,
        help="training manifest (JSON Lines), records folder or folder of class folders",
    )
    _add_validation(sp)
    sp.add_argument(
        "--eval-data", help="evaluation manifest: only reported, after training, never chooses"
    )
    sp.add_argument("--config", help="YAML config (see vdg_tf/config.py and configs/)")
    sp.add_argument(
        "--epochs", type=int, help="override train.epochs, the cap (early stopping may end sooner)"
    )
    sp.add_argument("--out", required=True, help="run folder")


def _add_evaluate(sub) -> None:
    """`vdg evaluate`."""
    sp = _add_command(
        sub, "evaluate", cmd_evaluate, "the task's metrics (and per-class table) of a model"
    )
    sp.add_argument(
        "model", help="run folder, model.keras, or FILE.tflite (labels/vocab beside it)"
    )
    sp.add_argument(
        "--data", required=True, help="evaluation manifest, records folder or class folders"
    )
    sp.add_argument("--plot", help="write the task's plot here (PNG; the confusion matrix)")
    sp.add_argument(
        "--ablation", action="store_true", help="also the metric with each modality masked out"
    )
    _add_trust_model(sp)


def _add_export(sub) -> None:
    """`vdg export`."""
    from vdg_tf.export.targets import TARGETS

    sp = _add_command(sub, "export", cmd_export, "export a run folder to TFLite for a target")
    sp.add_argument("model", help="run folder or its model.keras")
    sp.add_argument(
        "--target",
        required=True,
        choices=[*TARGETS, "auto"],
        help="; ".join(f"{t.name}: {t.help}" for t in TARGETS.values())
        + "; auto: the fastest on this machine of float32, gpu-fp16, cpu-dynamic and "
        "edge-int8 that agrees with float32 on --data within --tolerance",
    )
    sp.add_argument("--out", required=True, help="FILE.tflite")
    sp.add_argument(
        "--tolerance", type=float, default=0.99,
        help="--target auto: the least agreement with float32 a candidate needs (top-1 "
        "agreement, or the task's own measure)",
    )  # fmt: skip
    sp.add_argument(
        "--force",
        action="store_true",
        help="replace FILE.tflite and its sidecars even if an earlier vdg export did not write them",
    )
    sp.add_argument("--data", help="training manifest: representative data for int8 targets")
    sp.add_argument("--calibration-samples", type=int, default=64)
    sp.add_argument(
        "--saved-model", help="also write a SavedModel (serving_default by input name) here"
    )
    _add_trust_model(sp)
    sp.add_argument(
        "--batch",
        default="1",
        choices=["1", "dynamic"],
        help="batch axis of the .tflite: 1 (smallest, all int8) or dynamic (any batch in LiteRT)",
    )
    sp.add_argument(
        "--embed-metadata",
        action="store_true",
        help="also embed labels, vocabulary and config as TFLite metadata (vdg_tf.*)",
    )
    sp.add_argument(
        "--preprocess",
        action="store_true",
        help="resize + log-mel in the graph: inputs uint8 frames [B,T,H,W,3] at any H,W and "
        "the raw mono waveform (text stays token ids)",
    )
    sp.add_argument(
        "--incremental",
        action="store_true",
        help="also the encode_frame, encode_audio and head signatures (ring-buffer inference)",
    )
    sp.add_argument(
        "--frame-detector", action="store_true",
        help="a detection run: input `image` [1,H,W,3] (one RGB frame) instead of `video` "
        "[1,1,H,W,3]; MediaPipe's ObjectDetector runs it as it is",
    )  # fmt: skip


def _add_preprocess(sub) -> None:
    """`vdg preprocess`."""
    sp = _add_command(
        sub,
        "preprocess",
        cmd_preprocess,
        "decode a manifest once into TFRecord shards (train --data accepts the folder)",
    )
    sp.add_argument("manifest")
    sp.add_argument("out", help="output folder")
    sp.add_argument("--config", help="YAML config: the data section sets frames, size, audio")
    sp.add_argument("--shards", type=int, default=4)
    sp.add_argument(
        "--runner",
        help="run as an Apache Beam pipeline on this runner (DirectRunner, FlinkRunner, "
        "SparkRunner, DataflowRunner; needs vdg_tf[beam]); default: decode here",
    )
    sp.add_argument(
        "--beam-option", action="append", metavar="KEY=VALUE",
        help="a Beam pipeline option for the runner, e.g. temp_location=/tmp (repeatable)",
    )  # fmt: skip


def _add_benchmark_service(bsub) -> None:
    """`vdg benchmark service`."""
    sp = _add_command(bsub, "service", cmd_benchmark_service,
                      "training input throughput with 0, 1, 2 local tf.data service workers")  # fmt: skip
    sp.add_argument("--data", required=True, help="a vdg preprocess folder")
    sp.add_argument("--config", help="YAML config (the data section)")
    sp.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2],
                    help="service worker counts to measure (0: no service)")  # fmt: skip
    sp.add_argument("--batches", type=int, default=40, help="batches timed per count")


def _add_data_service(sub) -> None:
    """`vdg data-service dispatcher` and `worker`."""
    ds = sub.add_parser(
        "data-service",
        help="run a tf.data service dispatcher or worker (foreground; Ctrl-C stops it)",
        description="tf.data service servers: training with data.service: grpc://HOST:PORT "
        "sends its input pipeline (vdg preprocess shards) to them",
    )
    dsub = ds.add_subparsers(dest="role", required=True, metavar="ROLE")
    sp = _add_command(dsub, "dispatcher", cmd_data_service, "hand out shards to workers")
    sp.add_argument("--port", type=int, default=5050, help="port to serve on (0: any free)")
    sp.add_argument("--work-dir", help="journal state here: a restarted dispatcher resumes")
    sp = _add_command(dsub, "worker", cmd_data_service, "run the input pipeline for trainers")
    sp.add_argument("--dispatcher", required=True, metavar="HOST:PORT")
    sp.add_argument("--port", type=int, default=5051, help="port to serve on (0: any free)")
    sp.add_argument(
        "--host", default="localhost",
        help="name trainers reach this worker by (this machine's name on a cluster)",
    )  # fmt: skip


def _add_benchmark(sub) -> None:
    """`vdg benchmark pipeline` and `stream`."""
    bench = sub.add_parser(
        "benchmark",
        help="measure throughput side by side",
        description="measure throughput side by side",
    )
    bsub = bench.add_subparsers(dest="what", required=True, metavar="WHAT")
    _add_benchmark_service(bsub)
    sp = _add_command(
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
    sp = _add_command(
        bsub,
        "stream",
        cmd_benchmark_stream,
        "predict-loop speed on a video: per window and real-time factor, float32 vs int8, 1 core vs all, incremental vs full windows",
    )
    sp.add_argument(
        "model",
        help="run folder (its float32 and int8 exports are measured) or FILE.tflite (as it is; "
        "incremental too when exported with --incremental)",
    )
    sp.add_argument("video", help="a video file (the longer, the steadier the figures)")
    sp.add_argument("--window", type=float, help="window seconds (default: the model's audio span)")
    sp.add_argument("--stride", type=float, help="seconds between windows (default: window / 4)")  # fmt: skip
    sp = _add_command(
        bsub,
        "decode",
        cmd_benchmark_decode,
        "Where a clip's CPU goes: bare decode vs our decoder, decode workers vs the training process",
    )
    sp.add_argument("manifest")
    sp.add_argument("--clips", type=int, default=120, help="clips for the one-thread figures")
    sp.add_argument("--repeats", type=int, default=3, help="passes per figure (median)")
    sp.add_argument("--batches", type=int, default=60, help="batches timed while streaming")
    _add_benchmark_detection(bsub)
    _add_benchmark_feeds(bsub)
    _add_benchmark_workers(bsub)


def _add_run(sub) -> None:
    """`vdg run`."""
    sp = _add_command(
        sub,
        "run",
        cmd_run,
        "run a pipeline file: train -> prune/cluster/QAT/distill -> export -> verify",
    )
    sp.add_argument("pipeline", help="pipeline YAML (see pipelines/)")
    sp.add_argument(
        "--data",
        required=True,
        help="training manifest, TFRecord folder or folder of class folders",
    )
    sp.add_argument(
        "--eval-data",
        help="evaluation data: every stage is scored on it (default: the validation rows)",
    )
    _add_validation(sp)
    sp.add_argument("--out", required=True, help="output folder (rerun to resume)")


def _add_inspect(sub) -> None:
    """`vdg inspect`."""
    sp = _add_command(
        sub, "inspect", cmd_inspect, "ops, tensor dtypes and int8 coverage of a .tflite file"
    )
    sp.add_argument("file", help="FILE.tflite")
    sp.add_argument("--latency", action="store_true", help="also time it in LiteRT (XNNPACK)")


def _add_demo(sub) -> None:
    """`vdg demo`."""
    sp = _add_command(
        sub, "demo", cmd_demo, "the whole product on generated sample data, end to end"
    )
    sp.add_argument("--out", default="saved_models/demo")
    sp.add_argument("--clips", type=int, default=320)
    sp.add_argument("--seed", type=int, default=0, help="sample-data seed")
    sp.add_argument("--epochs", type=int, help="override the training epochs (a quick run)")


def _add_feed_options(sp: argparse.ArgumentParser) -> None:
    """`vdg predict`'s options for many live feeds."""
    sp.add_argument(
        "--sources",
        help="--stream: a YAML list of named live sources (- name: door / source: rtsp://...)",
    )
    sp.add_argument(
        "--max-latency", type=float,
        help="--realtime: seconds a window may wait for the model before it is dropped "
        "(default: the stride)",
    )  # fmt: skip


def _add_predict(sub) -> None:
    """`vdg predict`."""
    sp = _add_command(
        sub,
        "predict",
        cmd_predict,
        "predict on new video, window by window (files, manifests, live streams)",
    )
    sp.add_argument("model", help="run folder, model.keras, or FILE.tflite")
    sp.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="video files, a manifest (.jsonl), '-' (a stream on stdin), a pipe or a URL; "
        "with --stream, several are followed at once",
    )
    _add_feed_options(sp)
    sp.add_argument(
        "--window", type=float, help="window length in seconds (default: the model's audio span)"
    )
    sp.add_argument(
        "--stride", type=float, help="seconds between window starts (default: half a window)"
    )
    sp.add_argument(
        "--text", help="the text the model reads with every window (a caption, a question)"
    )
    sp.add_argument("--top", type=int, default=3, help="labels per window")
    sp.add_argument(
        "--stream",
        action="store_true",
        help="live source: a growing file, '-' or a URL; windows as soon as they arrive",
    )
    sp.add_argument(
        "--realtime",
        action="store_true",
        help="drop windows the model cannot answer within --max-latency (counted)",
    )
    sp.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds a stream may stall (or a URL take to open) before it ends",
    )
    sp.add_argument(
        "--watch",
        action="append",
        metavar="LABEL",
        help="report events where this label's smoothed score stays high (repeatable)",
    )
    sp.add_argument("--events", action="store_true", help="events on the task's score (anomaly)")
    sp.add_argument(
        "--threshold",
        type=float,
        help="event on-threshold (off: 0.8x); default: the anomaly threshold training chose "
        "on validation data, else 0.5",
    )
    sp.add_argument("--smooth", type=int, default=3, help="moving average over this many windows")
    sp.add_argument(
        "--segments", action="store_true",
        help="print each source's action segments (start, end, label, score) instead of its "
        "windows: runs of windows scoring >= --segment-threshold, boundaries refined, "
        "per-class temporal NMS (a localisation model's task)",
    )  # fmt: skip
    sp.add_argument(
        "--segment-threshold", type=float, default=0.5,
        help="--segments: the window score a segment needs (default 0.5)",
    )  # fmt: skip
    sp.add_argument("--plot", help="write a timeline PNG (scores over time, events shaded)")
    sp.add_argument("--csv", help="also write the window records as CSV")  # fmt: skip
    _add_box_options(sp)
    sp.add_argument(
        "--incremental",
        action=argparse.BooleanOptionalAction,
        help="encode each frame once (ring buffer); default: when the model splits per frame",
    )
    _add_trust_model(sp)


def _add_box_options(sp: argparse.ArgumentParser) -> None:
    """`vdg predict` options of a detection model (records per frame: source, t, boxes)."""
    sp.add_argument("--draw", metavar="OUT.mp4", help="a detection model: write the video "
                    "with its boxes and labels drawn (one source)")  # fmt: skip
    sp.add_argument("--track", action="store_true", help="a detection model: link boxes "
                    "across frames (IoU, Hungarian assignment) and give each a track id")  # fmt: skip
    sp.add_argument("--box-threshold", type=float, default=0.3,
                    help="a detection model: the least score of a box (default 0.3)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The `vdg` parser: one subcommand per API verb, each added by its `_add_*`."""
    p = _Parser(
        prog="vdg",
        description="Multimodal (video + audio + text) models: build, train, compress, export to TFLite.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _add_make_sample_data, _add_manifest, _add_train, _add_evaluate, _add_export,
        _add_preprocess, _add_data_service, _add_benchmark, _add_run, _add_inspect, _add_demo, _add_predict,
    ):  # fmt: skip
        add(sub)
    return p


# the options that name data to read, checked before any work: (attribute, flag)
DATA_OPTIONS = (
    ("data", "--data"), ("val_data", "--val-data"), ("eval_data", "--eval-data"),
    ("manifest", "MANIFEST"),
)  # fmt: skip


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse `argv`; an unknown option is refused with its command's usage and the
    closest option that command has (`--epoch` -> `--epochs`)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        sp = args.parser
        known = sp.options
        flag = extra[0].split("=")[0]
        close = difflib.get_close_matches(flag, known, n=1, cutoff=0.5) if flag[:1] == "-" else []
        hint = f"; did you mean {close[0]}?" if close else ""
        sp.error(f"unrecognized argument{'s' * (len(extra) > 1)}: {' '.join(extra)}{hint}")
    return args


def check_inputs(args: argparse.Namespace) -> None:
    """Refuse data paths that cannot be read as data, before anything is made."""
    from vdg_tf.data.inputs import check_data_path

    model = getattr(args, "model", None)
    if model and "://" not in model and not Path(model).exists():
        raise FileNotFoundError(f"{model}: no such run folder, .keras or .tflite file")
    for attr, flag in DATA_OPTIONS:
        if getattr(args, attr, None):
            check_data_path(getattr(args, attr), flag)


def _summarise_repeats() -> None:
    """One stderr line on the library warnings this command showed only once."""
    hidden = repeated_warnings().summary()
    if hidden:
        print(hidden, file=sys.stderr)


def _first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none); a
    KeyError's message loses the quotes its str() adds."""
    text = str(e).strip("'\"") if isinstance(e, KeyError) else str(e)
    return text.splitlines()[0] if text.strip() else type(e).__name__


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record is emitted (tests swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def log_to_stderr(verbose: bool = False) -> None:
    """Show the library's `vdg_tf` log records on stderr, as plain lines: the CLI's job,
    never the library's (a Python user sets their own handlers)."""
    log = logging.getLogger("vdg_tf")
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    set_verbose(args.verbose)
    log_to_stderr(args.verbose)
    pool_tensorflow_memory()  # before TensorFlow makes its first tensor
    repeated_warnings().reset()
    try:
        check_inputs(args)
        import_tensorflow_quietly()
        with contextlib.redirect_stdout(sys.stderr):
            result, text = args.fn(args)
    except (ValueError, FileNotFoundError, KeyError) as e:
        _summarise_repeats()  # before the error, which stays the last line
        print(f"vdg {args.command}: error: {_first_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # not ours to expect: one line, the traceback with --verbose
        if args.verbose:
            raise
        _summarise_repeats()
        print(
            f"vdg {args.command}: error: {type(e).__name__}: {_first_line(e)} "
            "(--verbose shows the traceback)",
            file=sys.stderr,
        )
        return 1
    _summarise_repeats()
    if result is not None:  # commands that stream their records print them themselves
        print(json.dumps(result) if args.json else text, file=sys.__stdout__, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
