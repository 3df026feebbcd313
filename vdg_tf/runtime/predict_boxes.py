"""`predict` for a detection model: per-frame box records over every source, with tracks
and a drawn video (`runtime/detect.py` does the per-frame work)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from vdg_tf.bundle import Bundle
from vdg_tf.media.decode import DecodeError
from vdg_tf.runtime.detect import BoxDetector, detect_frames, source_fps
from vdg_tf.runtime.predict import PredictRun, jobs_from
from vdg_tf.runtime.tracks import IoUTracker

log = logging.getLogger(__name__)


def predict_boxes(
    model: str | Path | Bundle,
    inputs: list[str],
    *,
    trust_model: bool = False,
    score_threshold: float = 0.3,
    track: bool = False,
    draw: str | Path | None = None,
    stride: float | None = None,
    on_record: Callable[[dict], None] | None = None,
) -> PredictRun:
    """Boxes in every frame of every input: one record `{source, t, boxes}` per frame.

    `track`: boxes gain a `track` id, linked across each source's frames (a source starts
    its own tracks). `draw`: the frames of the (one) source written to this video with
    their boxes drawn. `stride`: detect on frames at least this many seconds apart (every
    frame when None; a drawn video keeps every frame, with the last boxes found). A source
    that cannot be decoded is skipped with one line.
    """
    if stride is not None and not 0 < stride < 1e300:
        raise ValueError(f"stride: must be a positive number of seconds, got {stride}")
    jobs, problems = jobs_from([str(i) for i in inputs])
    if draw is not None and len(jobs) != 1:
        raise ValueError(f"--draw: draws one video; got {len(jobs)} sources")
    detector = BoxDetector(model, trust_model=trust_model, score_threshold=score_threshold)
    run = PredictRun(skipped=list(problems))
    try:
        for job in jobs:
            summary = {"source": job.source, "span": None, "windows": 0, "ended": "end",
                       "note": ""}  # fmt: skip
            run.sources.append(summary)
            try:
                _one_source(detector, job.source, run, summary, (track, draw, stride), on_record)
            except DecodeError as e:
                summary.update(ended="failed", note=str(e))
                run.skipped.append(str(e))
                log.warning("skipped %s", e)
    except KeyboardInterrupt:
        run.interrupted = True
        run.sources[-1]["ended"] = "interrupted"
        log.info("stopped (Ctrl-C)")
    return run


def _one_source(detector, source, run: PredictRun, summary: dict, settings, on_record) -> None:
    """The records of one source (and its drawn video), counted in `run` and `summary`;
    `settings`: (track, draw, stride)."""
    from vdg_tf.runtime.boxes_draw import BoxVideoWriter

    track, draw, stride = settings
    tracker = IoUTracker() if track else None
    frames = detect_frames(detector, source, tracker=tracker, stride=stride,
                           original=draw is not None)  # fmt: skip
    if draw is None:
        for record, _, _ in frames:
            if record is not None:
                _keep(run, summary, record, on_record)
        return
    with BoxVideoWriter(draw, source_fps(source)) as writer:
        for record, frame, boxes in frames:
            writer.write(frame.image, boxes)
            if record is not None:
                _keep(run, summary, record, on_record)
    run.video = str(draw)


def _keep(run: PredictRun, summary: dict, record: dict, on_record) -> None:
    run.records.append(record)
    run.windows += 1
    run.frames += 1
    summary["windows"] += 1
    if on_record is not None:
        on_record(record)
