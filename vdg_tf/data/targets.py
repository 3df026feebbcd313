"""What a manifest row teaches, per task: its label vocabulary, its check, its target tensor.

Tasks and the manifest keys they read:
  classification  `label`            -> class index (int32 [])
  multilabel      `labels` (else `label`) -> multi-hot (float32 [C])
  regression      `target`           -> value (float32 [1]), e.g. sentiment in [-3, 3]
  ordinal         `target`           -> level index (int32 []): round(target) on an ordered scale
  vqa             `question`+`answer` -> answer index (int32 []); text = question + caption
  anomaly         `label`            -> evaluation: 1.0 if not one of `normal_labels`, else 0.0
                                        (float32 []); training keeps normal rows only and, with
                                        several normal labels, learns them as classes (int32 [])

The target is built inside tf.data from a row's `names` (class names) and `value`, so
manifests and `vdg preprocess` records share one encoder.
"""

from __future__ import annotations

import math

import tensorflow as tf

from vdg_tf.data.manifest import ClipRow

TASKS = ("classification", "multilabel", "regression", "ordinal", "vqa", "anomaly")


def check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"data.task: unknown '{task}' (known: {', '.join(TASKS)})")


def task_labels(
    rows: list[ClipRow], task: str, normal_labels: tuple[str, ...] = ("normal",)
) -> list[str]:
    """The output vocabulary a training manifest defines for `task` ([] for regression;
    the normal classes for anomaly)."""
    check_task(task)
    if task == "classification":
        return sorted({r.label for r in rows if r.label is not None})
    if task == "multilabel":
        return sorted({n for r in rows for n in row_names(r, task)})
    if task == "vqa":
        return sorted({r.answer for r in rows if r.answer})
    if task == "ordinal":
        levels = [round(r.target) for r in rows if r.target is not None and math.isfinite(r.target)]
        return [str(v) for v in range(min(levels), max(levels) + 1)] if levels else []
    if task == "anomaly":
        return list(normal_labels)
    return []


def row_text(row: ClipRow, task: str) -> str:
    """The text the model reads: the caption, or for VQA the question then the caption."""
    if task == "vqa":
        return f"{row.question or ''} {row.text}".strip()
    return row.text


def row_names(row: ClipRow, task: str) -> list[str]:
    """The class names a row carries for `task` (the target encoder looks them up)."""
    if task == "multilabel":
        return list(row.labels) if row.labels else ([row.label] if row.label is not None else [])
    if task == "vqa":
        return [row.answer] if row.answer else []
    if task in ("classification", "anomaly"):
        return [row.label] if row.label is not None else []
    return []


def row_value(row: ClipRow) -> float:
    return float(row.target) if row.target is not None else math.nan


def row_problem(row: ClipRow, task: str, labels: list[str]) -> str | None:
    """Why `row` cannot be a training/evaluation example for `task`, or None."""
    where = row.where
    if task in ("regression", "ordinal"):
        if row.target is None or not math.isfinite(row.target):
            return f"{where}: missing key 'target' (a number) for task {task}"
        return None
    if task == "vqa" and not row.question:
        return f"{where}: missing key 'question' for task vqa"
    names = row_names(row, task)
    key = {"multilabel": "labels", "vqa": "answer"}.get(task, "label")
    if not names:
        return f"{where}: missing key '{key}'"
    if task == "anomaly":
        return None
    known = set(labels)
    unknown = [n for n in names if n not in known]
    if unknown:
        shown = ", ".join(labels[:8]) + (" ..." if len(labels) > 8 else "")
        return f"{where}: {key} '{unknown[0]}' not in labels (known: {shown})"
    return None


def is_normal(row: ClipRow, normal_labels: tuple[str, ...]) -> bool:
    return row.label in normal_labels


def target_encoder(
    task: str,
    labels: list[str],
    normal_labels: tuple[str, ...] = ("normal",),
    training: bool = False,
):
    """A tf function (names [k] string, value float32 []) -> the example's target.

    Unknown names give -1 (classes) or are left out (multi-hot); callers filter rows
    with `row_problem` first, so that only happens for records decoded elsewhere.
    """
    check_task(task)
    n = len(labels)
    if task == "regression":
        return lambda names, value: tf.reshape(value, [1])
    if task == "ordinal":
        low = int(labels[0]) if labels else 0

        def level(names, value):
            i = tf.cast(tf.round(value), tf.int32) - low
            return tf.clip_by_value(i, 0, max(n - 1, 0))

        return level
    if task == "anomaly" and not (training and n >= 2):
        normal = tf.constant(list(normal_labels) or [""])

        def anomalous(names, value):
            hit = tf.reduce_any(tf.equal(tf.reshape(names[:1], [-1, 1]), normal))
            return 1.0 - tf.cast(hit, tf.float32)

        return anomalous
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(labels or [""]), tf.range(max(n, 1))), -1
    )
    if task == "multilabel":

        def multi_hot(names, value):
            ids = table.lookup(names)
            hot = tf.one_hot(tf.boolean_mask(ids, ids >= 0), n, dtype=tf.float32)
            return tf.reduce_max(tf.concat([hot, tf.zeros([1, n])], 0), 0)

        return multi_hot
    return lambda names, value: table.lookup(tf.concat([names, [""]], 0)[0])
