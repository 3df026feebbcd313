"""Each task's target comes out of the real pipeline (manifest and preprocessed records) as defined."""

import dataclasses

import numpy as np
import pytest

from tests.helpers import tiny_config
from vdg_tf.data.pipeline import SkipLog, decoded_dataset
from vdg_tf.data.records import preprocess, records_dataset
from vdg_tf.manifest import read_manifest
from vdg_tf.tasks import get_task

HORIZONTAL = ("left-low-day", "left-mid-dawn", "right-mid-night", "right-high-dusk")


def data_cfg(task, **kw):
    return dataclasses.replace(
        tiny_config().data, task=task, augment=None, deterministic=True, **kw
    )


def targets(rows, cfg, labels, training=False):
    return [t for _, t in decoded_dataset(rows, cfg, labels, training).as_numpy_iterator()]


@pytest.fixture(scope="module")
def rows(sample_data):
    return read_manifest(sample_data["manifest_eval"])[0]


def test_multilabel_is_multi_hot_of_the_labels_key(rows):
    cfg = data_cfg("multilabel")
    labels = get_task("multilabel").labels(rows)
    got = targets(rows, cfg, labels)
    for row, t in zip(rows, got, strict=True):
        assert t.shape == (len(labels),) and t.sum() == 3
        assert {labels[i] for i in np.flatnonzero(t)} == set(row.labels)


def test_regression_and_ordinal_read_target(rows):
    reg = targets(rows, data_cfg("regression"), [])
    np.testing.assert_allclose([t[0] for t in reg], [r.target for r in rows], rtol=1e-6)
    levels = get_task("ordinal").labels(rows)
    assert levels == [str(v) for v in range(int(levels[0]), int(levels[-1]) + 1)]
    got = targets(rows, data_cfg("ordinal"), levels)
    assert [levels[int(t)] for t in got] == [str(round(r.target)) for r in rows]


def test_vqa_answers_the_question_and_reads_it(rows):
    cfg = data_cfg("vqa")
    answers = get_task("vqa").labels(rows)
    ds = decoded_dataset(rows, cfg, answers)
    for row, (clip, t) in zip(rows, ds.as_numpy_iterator(), strict=True):
        assert answers[int(t)] == row.answer
        assert clip["text"].decode().startswith(row.question)


def test_anomaly_trains_on_normal_rows_only(rows):
    cfg = data_cfg("anomaly", normal_labels=HORIZONTAL)
    labels = get_task(data_cfg("anomaly", normal_labels=HORIZONTAL)).labels(rows)
    assert labels == list(HORIZONTAL)  # the normal classes the model learns
    evaluation = targets(rows, cfg, labels)
    assert [float(t) for t in evaluation] == [0.0 if r.label in HORIZONTAL else 1.0 for r in rows]
    training = targets(rows, cfg, labels, training=True)
    normal = [r for r in rows if r.label in HORIZONTAL]
    assert [int(t) for t in training] == [HORIZONTAL.index(r.label) for r in normal]


def test_rows_missing_the_task_key_are_skipped_by_name(rows):
    bare = [dataclasses.replace(rows[0], target=None), *rows[1:]]
    skips = SkipLog()
    ds = decoded_dataset(bare, data_cfg("regression"), [], skips=skips)
    assert sum(1 for _ in ds) == len(rows) - 1
    assert skips.count == 1 and "missing key 'target'" in skips.reasons[0]
    with pytest.raises(ValueError, match="missing key 'target'"):
        decoded_dataset(bare, data_cfg("regression", strict=True), [])


def test_preprocessed_records_give_the_same_targets(rows, sample_data, tmp_path):
    cfg = data_cfg("multilabel")
    index = preprocess(sample_data["manifest_eval"], tmp_path, cfg, shards=2, progress=False)
    labels = index["labels"]
    from_rows = sorted(tuple(t) for t in targets(rows, cfg, labels))
    from_records = sorted(
        tuple(t) for _, t in records_dataset(tmp_path, cfg, labels).as_numpy_iterator()
    )
    assert len(from_rows) == len(rows) and from_rows == from_records
