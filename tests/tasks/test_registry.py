"""Tasks are found by name through one registry; nothing outside vdg_tf/tasks/ branches on
a task's name; a new task is one class plus its registration, and it trains end to end."""

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from tests.helpers import tiny_config
from vdg_tf.bundle import Bundle
from vdg_tf.tasks import TASKS, Task, get_task, register_task
from vdg_tf.training import train

PACKAGE = Path(__file__).resolve().parents[2] / "vdg_tf"


def test_every_task_is_registered_under_its_name():
    assert {"classification", "multilabel", "regression", "ordinal", "vqa", "anomaly"} <= set(TASKS)
    for name, cls in TASKS.items():
        assert cls.name == name and isinstance(get_task(name), Task)
    with pytest.raises(ValueError, match=r"data.task: unknown 'detect' \(known: anomaly"):
        get_task("detect")


def _task_name_comparisons(path: Path) -> list[str]:
    """`x == "anomaly"`, `x in ("vqa", ...)` and the like: a comparison with a task's name."""
    names = set(TASKS)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Compare):
            continue
        for side in (node.left, *node.comparators):
            consts = [side] if isinstance(side, ast.Constant) else getattr(side, "elts", [])
            hits = [c.value for c in consts if isinstance(c, ast.Constant) and c.value in names]
            if hits:
                found.append(
                    f"{path.relative_to(PACKAGE.parent)}:{node.lineno} compares with {hits[0]!r}"
                )
    return found


def test_nothing_outside_tasks_branches_on_a_task_name():
    found = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if "tasks" not in path.relative_to(PACKAGE).parts
        for hit in _task_name_comparisons(path)
    ]
    assert not found, "\n".join(found)


@register_task
class Polarity(Task):
    """Sentiment polarity: `target` > 0 is positive; one sigmoid, binary cross-entropy.

    The README's "extending" example: a new task is this class and nothing else.
    """

    name = "polarity"
    key = "target"
    primary = "accuracy"

    def problem(self, row, labels):
        return None if row.target is not None else f"{row.where}: missing key 'target'"

    def target_encoder(self, labels, training=False):
        return lambda names, value: tf.reshape(tf.cast(value > 0, tf.float32), [1])

    def head(self, x, num_labels, name, regularizer=None):
        return keras.layers.Dense(1, activation="sigmoid", name=name)(x)

    def loss(self, label_smoothing=0.0):
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)

    def metrics(self):
        return [keras.metrics.BinaryAccuracy(name="accuracy")]

    def report(self, y, outputs, labels):
        hits = (np.ravel(outputs) > 0.5) == (np.ravel(y) > 0.5)
        return {"n": int(len(hits)), "accuracy": float(hits.mean())}

    def decisions(self, outputs):
        return np.ravel(outputs) > 0.5

    def predictions(self, outputs, labels, top=3):
        return [{"positive": round(float(p), 6)} for p in np.ravel(outputs)]


def test_a_registered_task_loads_trains_and_reloads(sample_data, tmp_path):
    cfg = tiny_config(epochs=10).with_overrides({"data": {"task": "polarity"}})
    result = train(
        cfg, sample_data["manifest_train"], tmp_path, eval_data=sample_data["manifest_eval"],
        progress=False,
    )  # fmt: skip
    report = json.loads((tmp_path / "metrics.json").read_text())["eval"]
    lines = Path(sample_data["manifest_eval"]).read_text().splitlines()
    targets = [json.loads(line)["target"] for line in lines]
    majority = max(np.mean(np.array(targets) > 0), np.mean(np.array(targets) <= 0))
    assert report["n"] == 16 and report["accuracy"] > majority, (report, majority)
    bundle = Bundle.load(tmp_path)
    assert bundle.task.name == "polarity" and bundle.model.output_shape["fused"] == (None, 1)
    assert result.bundle.task.predictions(np.array([[0.9]]), [])[0] == {"positive": 0.9}
