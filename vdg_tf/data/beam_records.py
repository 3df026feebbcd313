"""`vdg preprocess --runner`: the decode-to-TFRecord job as an Apache Beam pipeline.

The same records, shard names and `index.json` as the local path (`vdg_tf.data.records`),
so `vdg train --data OUT` reads either. The launcher reads and checks the manifest; each
clip is decoded by `DecodeClip`, run in a subprocess through
`ParDo(...).with_exception_handling(use_subprocess=True)`: a clip that raises, times out,
or crashes the decoder outright (a segfault kills the subprocess, not the worker) goes to
the dead-letter output `dead_letter.jsonl` with its reason, and the job goes on. The same
pipeline runs on DirectRunner here and on Flink, Spark or Dataflow runners with their
options (`--beam-option k=v`); the runner's workers must then see the videos and OUT at
the paths the launcher sees (shared storage).

Apache Beam is the optional extra `vdg_tf[beam]` (it moves protobuf from 7.x to 6.x).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

try:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
except ImportError:  # the `beam` extra is optional: `preprocess_beam` says how to add it
    beam = None

from vdg_tf.config import DataConfig
from vdg_tf.data.records import encode_example, manifest_rows, shard_names, write_index
from vdg_tf.files import claim_dir
from vdg_tf.manifest import ClipRow
from vdg_tf.media.decode import DecodeError
from vdg_tf.media.workers import DecodeJob

logger = logging.getLogger(__name__)

DEAD_LETTER = "dead_letter.jsonl"


class ClipFailed(Exception):
    """A clip that did not decode; its text is the reason the dead-letter line keeps."""

    def __repr__(self) -> str:  # Beam's dead-letter output holds repr(exception)
        return str(self)


def _decode(element: dict) -> list[bytes]:
    """A clip -> its serialized record; raises `ClipFailed` with the decoder's reason."""
    try:
        clip = element["job"].run()
    except DecodeError as e:  # names its file and the problem, as the local path logs it
        raise ClipFailed(str(e)) from None
    except Exception as e:  # noqa: BLE001 - every failure is a dead-letter reason
        raise ClipFailed(f"{type(e).__name__}: {e}") from None
    fields = {"frames": clip.frames, "samples": clip.audio,
              "audio_mask": float(clip.has_audio), "text": element["text"]}  # fmt: skip
    return [encode_example(fields, element["names"], element["value"])]


if beam is not None:

    class DecodeClip(beam.DoFn):
        """Decode one manifest row into a serialized `tf.train.Example`."""

        def process(self, element: dict):
            yield from _decode(element)


def _element(row: ClipRow, cfg: DataConfig, task) -> dict:
    """What a Beam worker needs for one row (no task, no manifest): plain picklable data."""
    job = DecodeJob(row.video, cfg.video, cfg.audio, row.start, row.end, row.audio, None,
                    cfg.max_bad_packet_fraction)  # fmt: skip
    text = task.text(row).encode()
    return {"place": row.place, "video": row.video, "job": job, "text": text,
            "names": task.names(row), "value": float(task.value(row))}  # fmt: skip


def _dead_line(bad) -> str:
    """A dead-letter element `(element, (type, repr, traceback))` as a JSON line."""
    element, (kind, text, _trace) = bad
    reason = text if kind is ClipFailed else f"{kind.__name__}: {text}"
    return json.dumps({"place": element["place"], "video": element["video"],
                       "reason": f"{element['place']}: {reason}"})  # fmt: skip


def pipeline_options(runner: str, beam_options: dict[str, str] | None) -> PipelineOptions:
    """`--runner` and the `k=v` options passed through to the runner as `--k=v` flags."""
    flags = [f"--{k.removeprefix('--')}={v}" for k, v in (beam_options or {}).items()]
    return PipelineOptions(flags, runner=runner)


def _run(elements: list[dict], out: Path, shards: int, options, timeout: float) -> None:
    """Build and run the pipeline: decode (dead-lettering failures), write shards."""
    with beam.Pipeline(options=options) as p:
        decoded = (
            p
            | "Rows" >> beam.Create(elements, reshuffle=True)
            | "Decode"
            >> beam.ParDo(DecodeClip()).with_exception_handling(
                use_subprocess=True, timeout=timeout
            )
        )
        _ = decoded.good | "Shards" >> beam.io.WriteToTFRecord(
            str(out / "clips"), file_name_suffix=".tfrecord", num_shards=shards,
            shard_name_template="-SSSSS-of-NNNNN",
        )  # fmt: skip
        _ = (
            decoded.bad
            | "Reasons" >> beam.Map(_dead_line)
            | "DeadLetter"
            >> beam.io.WriteToText(
                str(out / "dead_letter"), file_name_suffix=".jsonl", shard_name_template=""
            )  # fmt: skip
        )


def read_dead_letter(out: str | Path) -> list[dict]:
    """The dead-letter lines of a Beam preprocess folder (`{place, video, reason}`)."""
    path = Path(out) / DEAD_LETTER
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def preprocess_beam(
    manifest: str | Path,
    out: str | Path,
    cfg: DataConfig,
    shards: int = 4,
    runner: str = "DirectRunner",
    beam_options: dict[str, str] | None = None,
) -> dict:
    """Decode `manifest` into `shards` TFRecord files under `out` with a Beam pipeline.

    Returns the index (as `records.preprocess`), with `dead_letter` (its path) and
    `runner`. Clips that fail land in `out/dead_letter.jsonl` and are counted as skipped.
    When no clip decodes, the shards are removed and the error holds the skip summary.
    """
    if beam is None:
        raise ValueError(
            f"--runner {runner}: Apache Beam is not installed; pip install 'vdg_tf[beam]' "
            "(it moves protobuf from 7.x to 6.x)"
        )
    out = claim_dir(out)
    rows, total, task, labels, skips = manifest_rows(manifest, cfg)
    (out / DEAD_LETTER).unlink(missing_ok=True)  # an earlier run's list is not this run's
    options = pipeline_options(runner, beam_options)
    logger.info("preprocess: %d clips on Beam's %s", len(rows), runner)
    try:
        _run([_element(r, cfg, task) for r in rows], out, shards, options, cfg.decode_timeout)
    finally:  # a failed job leaves Beam's temp folders behind: not ours to keep
        for tmp in out.glob("beam-temp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
    dead = read_dead_letter(out)
    for d in dead:
        skips.add(("dead", d["place"]), d["reason"])
    count = len(rows) - len(dead)
    names = shard_names(shards)
    if count == 0:  # leave no empty shards or index behind: nothing here is usable
        for name in names:
            (out / name).unlink(missing_ok=True)
        raise ValueError(f"{manifest}: no clip could be decoded: {skips.summary(total)}")
    texts = [task.text(r) for r in rows]
    return write_index(out, manifest, cfg, count, names, labels, texts, skips,
                       dead_letter=str(out / DEAD_LETTER), runner=runner)  # fmt: skip
