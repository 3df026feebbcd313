"""Task metrics against values worked out by hand on fixed small prediction sets."""

import numpy as np
import pytest

from vdg_tf.tasks.anomaly import anomaly_report
from vdg_tf.tasks.metrics import auroc, average_precision, best_threshold
from vdg_tf.tasks.multilabel import multilabel_report
from vdg_tf.tasks.ordinal import ordinal_report
from vdg_tf.tasks.regression import regression_report


def test_average_precision_is_mean_precision_at_each_positive():
    # ranked: 0.9 (pos), 0.8 (neg), 0.7 (pos), 0.1 (neg) -> precisions at positives 1/1, 2/3
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx((1 + 2 / 3) / 2)
    assert np.isnan(average_precision([0, 0], [0.3, 0.2]))


def test_multilabel_map_f1_and_subset_accuracy():
    y = np.array([[1, 0], [0, 1], [1, 1]])
    p = np.array([[0.9, 0.2], [0.6, 0.7], [0.4, 0.8]])
    r = multilabel_report(y, p, ["a", "b"])
    # label a: ranked 0.9 (pos), 0.6 (neg), 0.4 (pos) -> AP (1 + 2/3) / 2; label b: AP 1
    assert r["map"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    # at 0.5: a tp=1 fp=1 fn=1 (F1 0.5); b tp=2 (F1 1); micro tp=3 fp=1 fn=1 -> 6/8
    assert r["macro_f1"] == pytest.approx(0.75) and r["micro_f1"] == pytest.approx(0.75)
    assert r["subset_accuracy"] == pytest.approx(1 / 3)


def test_regression_mae_rmse_correlation_and_sign_accuracy():
    r = regression_report([-2.0, -1.0, 1.0, 2.0], [[-1.0], [1.0], [1.0], [3.0]])
    assert r["mae"] == pytest.approx(1.0)
    assert r["rmse"] == pytest.approx(np.sqrt((1 + 4 + 0 + 1) / 4))
    assert r["correlation"] == pytest.approx(np.corrcoef([-2, -1, 1, 2], [-1, 1, 1, 3])[0, 1])
    assert r["sign_accuracy"] == pytest.approx(0.75)


def test_ordinal_level_is_count_of_thresholds_passed():
    probs = np.array([[0.9, 0.8, 0.1], [0.2, 0.1, 0.0], [0.9, 0.9, 0.9]])  # levels 2, 0, 3
    r = ordinal_report([2, 1, 1], probs, ["0", "1", "2", "3"])
    assert r["accuracy"] == pytest.approx(1 / 3)
    assert r["mae"] == pytest.approx((0 + 1 + 2) / 3)


def test_auroc_counts_ties_as_half():
    # pairs (pos, neg): (0.8,0.5) win, (0.8,0.3) win, (0.5,0.5) tie, (0.5,0.3) win -> 3.5/4
    assert auroc([1, 1, 0, 0], [0.8, 0.5, 0.5, 0.3]) == pytest.approx(0.875)
    assert np.isnan(auroc([1, 1], [0.1, 0.2]))


def test_anomaly_threshold_is_picked_for_f1_then_reused():
    y, s = [0, 0, 0, 1, 1], [0.1, 0.2, 0.6, 0.5, 0.9]
    assert best_threshold(y, s) == pytest.approx(0.2)  # > 0.2 flags 0.6, 0.5, 0.9: F1 0.8
    r = anomaly_report(y, s)
    assert r["threshold"] == pytest.approx(0.2) and r["f1"] == pytest.approx(0.8)
    assert r["recall"] == 1.0 and r["precision"] == pytest.approx(2 / 3)
    fixed = anomaly_report(y, s, threshold=0.7)
    assert fixed["recall"] == 0.5 and fixed["precision"] == 1.0
