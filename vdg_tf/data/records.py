"""`vdg preprocess`: decode a manifest once into TFRecord shards, so later epochs skip decoding.

Each record holds one decoded clip (uint8 frames, float32 waveform, audio mask, the text
the task reads, the row's class names and target value), encoded for the config's task. `index.json` records the data spec the clips were decoded at, the labels
and the captions (for the vocabulary), and the clips that were skipped.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import NamedTuple

import tensorflow as tf
from tqdm import tqdm

from vdg_tf.config import DataConfig
from vdg_tf.data.pipeline import SkipLog, decode_rows, ordered, usable_rows
from vdg_tf.files import atomic_path, claim_dir, write_json
from vdg_tf.manifest import read_manifest
from vdg_tf.media.workers import set_decode_log
from vdg_tf.tasks import get_task

INDEX = "index.json"


def _spec(cfg: DataConfig) -> dict:
    v, a = cfg.video, cfg.audio
    return {"frames": v.frames, "size": v.size, "fps": v.fps, "resize": v.resize,
            "sample_rate": a.sample_rate, "seconds": a.seconds, "task": cfg.task}  # fmt: skip


def encode_example(clip: dict, names: list[str], value: float) -> bytes:
    """One clip as a serialized `tf.train.Example` (what `records_dataset` parses)."""
    feature = {
        "frames": tf.train.Feature(bytes_list=tf.train.BytesList(value=[clip["frames"].tobytes()])),
        "samples": tf.train.Feature(float_list=tf.train.FloatList(value=clip["samples"])),
        "audio_mask": tf.train.Feature(
            float_list=tf.train.FloatList(value=[float(clip["audio_mask"])])
        ),
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[clip["text"]])),
        "names": tf.train.Feature(bytes_list=tf.train.BytesList(value=[n.encode() for n in names])),
        "value": tf.train.Feature(float_list=tf.train.FloatList(value=[value])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


class ManifestRows(NamedTuple):
    """The rows of a manifest to preprocess: those usable, how many it held, its task,
    labels, and the skip log its bad rows are already counted in."""

    rows: list
    total: int
    task: object
    labels: list[str]
    skips: SkipLog


def manifest_rows(manifest: str | Path, cfg: DataConfig) -> ManifestRows:
    """Read `manifest` for preprocessing (local or Beam): bad rows counted, not kept."""
    skips = SkipLog()
    rows, problems = read_manifest(manifest, strict=cfg.strict)
    total = len(rows) + len(problems)
    skips.extend(problems)
    task = get_task(cfg)
    labels = task.labels(rows)
    rows = usable_rows(rows, cfg, labels, skips, training=False)
    return ManifestRows(rows, total, task, labels, skips)


def preprocess(
    manifest: str | Path,
    out: str | Path,
    cfg: DataConfig,
    shards: int = 4,
    progress: bool = True,
) -> dict:
    """Decode every clip of `manifest` (in parallel) into `shards` TFRecord files under `out`.

    Shards are written under temp names and renamed when complete. Returns the index.
    `out` must be new, empty or an earlier `vdg preprocess` folder. When no clip at
    all decodes, nothing is written and the error holds the skip summary.
    """
    out = claim_dir(out)
    set_decode_log(out / "decode.log")
    rows, total, task, labels, skips = manifest_rows(manifest, cfg)
    ds = decode_rows(rows, cfg, skips=skips)
    names = shard_names(shards)
    count = 0
    with contextlib.ExitStack() as stack:
        tmp = [stack.enter_context(atomic_path(out / n)) for n in names]
        writers = [stack.enter_context(tf.io.TFRecordWriter(str(p))) for p in tmp]
        bar = stack.enter_context(
            tqdm(total=len(rows), desc="preprocess", unit="clip", leave=False, disable=not progress)
        )
        for clip, i in ds.as_numpy_iterator():
            row = rows[int(i)]
            writers[count % shards].write(encode_example(clip, task.names(row), task.value(row)))
            count += 1
            bar.update(1)
        if count == 0:  # leave no empty shards or index behind: nothing here is usable
            raise ValueError(f"{manifest}: no clip could be decoded: {skips.summary(total)}")
    return write_index(
        out, manifest, cfg, count, names, labels, [task.text(r) for r in rows], skips
    )


def shard_names(shards: int) -> list[str]:
    """The shard files of a preprocessed folder (Beam's `-SSSSS-of-NNNNN` names too)."""
    return [f"clips-{i:05d}-of-{shards:05d}.tfrecord" for i in range(shards)]


def write_index(
    out: Path,
    manifest: str | Path,
    cfg: DataConfig,
    count: int,
    names: list[str],
    labels: list[str],
    texts: list[str],
    skips: SkipLog,
    **extra,
) -> dict:
    """Write `out/index.json` (what `read_index` checks and training reads) and return it."""
    index = {
        "manifest": str(manifest),
        "clips": count,
        "shards": names,
        "spec": _spec(cfg),
        "labels": labels,
        "texts": texts,
        "skipped": skips.count,
        "skipped_files": skips.reasons,
        "kept_damaged": skips.damaged_count,
        **extra,
    }
    write_json(out / INDEX, index)
    return index


def read_index(folder: str | Path, cfg: DataConfig) -> dict:
    """The index of a preprocessed folder; refuses one decoded at another spec."""
    path = Path(folder) / INDEX
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no {INDEX} (not a `vdg preprocess` folder)")
    index = json.loads(path.read_text())
    if index["spec"] != _spec(cfg):
        raise ValueError(
            f"{folder}: decoded at {index['spec']}, but the config asks for {_spec(cfg)}; rerun vdg preprocess"
        )
    return index


def records_dataset(
    folder: str | Path,
    cfg: DataConfig,
    labels: list[str],
    training: bool = False,
    shard: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """Unbatched `(clip, target)` from preprocessed shards: same elements as `decoded_dataset`.

    The task decides which records are examples (anomaly training keeps the normal clips).
    `shard=(n, i)`: input worker i of n reads every n-th file (every n-th record, in file
    order, when there are fewer files than workers), so no record is read by two workers.
    """
    index = read_index(folder, cfg)
    v, a = cfg.video, cfg.audio
    files = [str(Path(folder) / n) for n in index["shards"]]
    task = get_task(cfg)
    encode_target = task.target_encoder(labels, training)
    spec = {
        "frames": tf.io.FixedLenFeature([], tf.string),
        "samples": tf.io.FixedLenFeature([a.samples], tf.float32),
        "audio_mask": tf.io.FixedLenFeature([], tf.float32),
        "text": tf.io.FixedLenFeature([], tf.string),
        "names": tf.io.VarLenFeature(tf.string),
        "value": tf.io.FixedLenFeature([], tf.float32),
    }

    def parse(record):
        ex = tf.io.parse_single_example(record, spec)
        frames = tf.reshape(tf.io.decode_raw(ex["frames"], tf.uint8), [v.frames, v.size, v.size, 3])
        clip = {
            "frames": frames,
            "samples": ex["samples"],
            "audio_mask": ex["audio_mask"],
            "text": ex["text"],
        }
        names = tf.sparse.to_dense(ex["names"])
        return clip, (encode_target(names, ex["value"]), names)

    by_record = shard is not None and len(files) < shard[0]
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shard is not None and not by_record:
        ds = ds.shard(*shard)
    if by_record:  # in a fixed order, so the n workers' shards do not overlap
        ds = tf.data.TFRecordDataset(ds).shard(*shard)
    elif training:
        ds = ds.shuffle(len(files), seed=cfg.seed, reshuffle_each_iteration=True)
    if not by_record:
        ds = ds.interleave(
            tf.data.TFRecordDataset,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=ordered(cfg, training),
        )
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=ordered(cfg, training))
    ds = ds.filter(lambda clip, t: task.keeps_record(t[0], t[1], training))
    return ds.map(lambda clip, t: (clip, t[0]))
