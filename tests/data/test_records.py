"""`vdg preprocess`: TFRecord shards hold the same decoded clips as the manifest pipeline."""

import dataclasses

import numpy as np
import pytest

from vdg_tf.config import DataConfig, VideoSpec
from vdg_tf.data.pipeline import decoded_dataset
from vdg_tf.data.records import preprocess, records_dataset
from vdg_tf.data.sources import open_source
from vdg_tf.manifest import read_manifest

CFG = DataConfig(video=VideoSpec(frames=4, size=32), deterministic=True)


@pytest.fixture(scope="module")
def preprocessed(sample_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("pre")
    return out, preprocess(sample_data["manifest_eval"], out, CFG, shards=3, progress=False)


def test_shards_hold_every_clip(preprocessed, sample_data):
    out, index = preprocessed
    assert index["clips"] == 16 and index["skipped"] == 0 and len(index["shards"]) == 3
    assert all((out / name).is_file() for name in index["shards"])
    assert not list(out.glob(".*.tmp"))


def test_records_equal_decoded_clips(preprocessed, sample_data):
    out, index = preprocessed
    rows, _ = read_manifest(sample_data["manifest_eval"])
    direct = {
        c["text"]: (c, int(y))
        for c, y in decoded_dataset(rows, CFG, index["labels"]).as_numpy_iterator()
    }
    stored = list(records_dataset(out, CFG, index["labels"]).as_numpy_iterator())
    assert len(stored) == len(direct)
    for clip, label in stored:
        ref, ref_label = direct[clip["text"]]
        assert label == ref_label
        np.testing.assert_array_equal(clip["frames"], ref["frames"])
        np.testing.assert_allclose(clip["samples"], ref["samples"])


def test_source_by_folder_and_spec_mismatch(preprocessed):
    out, index = preprocessed
    src = open_source(out, CFG)
    assert src.count == 16 and src.labels == index["labels"] and len(src.texts) == 16
    other = dataclasses.replace(CFG, video=VideoSpec(frames=8, size=32))
    with pytest.raises(ValueError, match="decoded at .* rerun vdg preprocess"):
        open_source(out, other)


def test_vdg_train_reads_a_preprocessed_folder(preprocessed, sample_data, tmp_path, capfd):
    """`vdg train --data <records folder>`: trains from the shards, no decoding, and the
    run evaluates on the manifest it was preprocessed from."""
    import json

    from tests.helpers import tiny_config, vdg
    from vdg_tf.bundle import Bundle

    out_dir, _ = preprocessed
    config = tmp_path / "tiny.yaml"
    tiny_config(epochs=2).save(config)
    run = tmp_path / "run"
    rc, out, err = vdg(capfd, "train", "--data", out_dir, "--out", run, "--config", config,
                       "--eval-data", sample_data["manifest_eval"], "--json")  # fmt: skip
    assert rc == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["eval"]["n"] == 16
    assert json.loads(out)["model"] == str(run / "model.keras")
    assert len(Bundle.load(run).labels) == 8  # the shards' labels, all 8 classes
