"""What a run does with a task's report is the task's to say: what it chooses on
validation and ships with the model, which figures are scores, what it plots, which
series `--watch` follows; only anomaly detection has normal labels."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import tiny_config
from vdg_tf.tasks import TASKS, get_task


def _anomaly(normal=("left", "right")):
    cfg = tiny_config().data
    cfg.task, cfg.normal_labels = "anomaly", normal
    return get_task(cfg)


def test_only_anomaly_has_normal_labels_and_it_reads_them_from_the_config():
    assert _anomaly().normal_labels == ("left", "right")
    for name in set(TASKS) - {"anomaly"}:
        assert not hasattr(get_task(name), "normal_labels"), name


def test_anomaly_ships_its_validation_threshold_and_reads_it_back():
    task = _anomaly()
    y = np.array([0, 0, 1, 1, 0, 1], float)
    outputs = np.array([[0.9, 0.05], [0.8, 0.1], [0.3, 0.2], [0.2, 0.3], [0.7, 0.2], [0.4, 0.4]])
    validation = task.report(y, outputs, ["left", "right"])
    info = task.chosen_on_validation(validation)
    assert info == {"threshold": validation["threshold"], "threshold_chosen_on": "validation"}
    assert task.decision_threshold(info) == validation["threshold"]
    figures = task.figures(validation)
    assert "threshold" not in figures and figures["auroc"] == validation["auroc"]


@pytest.mark.parametrize("name", ["classification", "multilabel", "regression", "ordinal", "vqa"])
def test_other_tasks_choose_nothing_on_validation(name):
    task = get_task(name)
    assert task.chosen_on_validation({"accuracy": 1.0}) == {}
    assert task.decision_threshold({"threshold": 0.3}) is None


def test_classification_plots_its_confusion_matrix_and_anomaly_plots_nothing(tmp_path):
    task = get_task("classification")
    y, outputs = np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    report = task.report(y, outputs, ["a", "b"])
    path = tmp_path / task.report_plot
    assert task.plot_report(report, ["a", "b"], path, "t") == "confusion matrix"
    assert path.read_bytes().startswith(b"\x89PNG")
    anomaly = _anomaly()
    assert anomaly.report_plot is None
    assert anomaly.plot_report({}, ["left"], tmp_path / "x.png", "t") is None
    assert not (tmp_path / "x.png").exists()


def test_the_only_series_has_one_spelling():
    """`--watch` with no label follows the task's only series, named as `series` names it;
    a task with a series per label asks for one."""
    for name, outputs in (("regression", np.zeros((2, 1))), ("ordinal", np.zeros((2, 2)))):
        task = get_task(name)
        assert list(task.series(outputs, ["1", "2", "3"])) == [task.only_series]
        assert task.watched_series(None, ["1", "2", "3"]) == task.only_series
    anomaly = _anomaly()
    assert list(anomaly.series(np.zeros((2, 2)), ["left", "right"])) == ["anomaly"]
    assert anomaly.watched_series(None, ["left", "right"]) == anomaly.only_series == "anomaly"
    task = get_task("classification")
    assert task.only_series is None and task.watched_series("b", ["a", "b"]) == "b"
    with pytest.raises(ValueError, match="--watch: name a label for task classification"):
        task.watched_series(None, ["a", "b"])
