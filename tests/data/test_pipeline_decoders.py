"""The pipeline's two decoders (`data.decoder`): worker processes and threads give the same batches."""

import dataclasses

import numpy as np
import pytest

from vdg_tf.config import AudioSpec, DataConfig, TextSpec, VideoSpec
from vdg_tf.data.features import TextTokenizer
from vdg_tf.data.pipeline import DECODE_GROUP, SkipLog, make_dataset
from vdg_tf.manifest import label_vocabulary, read_manifest

VS, AS = VideoSpec(frames=4, size=32), AudioSpec(seconds=1.0)


def test_threads_and_processes_give_the_same_batches(sample_data, tmp_path):
    """Processes decode a group of clips a call: bad clips inside a group, and a last
    group cut short, must give what threads give clip by clip."""
    rows, _ = read_manifest(sample_data["manifest_train"])
    labels = label_vocabulary(rows)
    rows = rows[: 2 * DECODE_GROUP + 3]
    assert len(rows) % DECODE_GROUP == 3
    for i in (2, DECODE_GROUP + 1):  # a missing file inside the first two groups
        rows[i] = dataclasses.replace(rows[i], video=str(tmp_path / f"gone{i}.mp4"))
    base = DataConfig(
        video=VS, audio=AS, text=TextSpec(max_tokens=8, vocab_size=80), batch_size=4,
        deterministic=True,
    )  # fmt: skip
    tok = TextTokenizer.fit([r.text for r in rows], base.text)
    batches = {}
    for decoder in ("threads", "processes"):
        cfg = dataclasses.replace(base, decoder=decoder)
        skips = SkipLog()
        batches[decoder] = list(
            make_dataset(rows, cfg, labels, tok, skips=skips).as_numpy_iterator()
        )
        assert skips.count == 2 and "gone" in skips.reasons[0]
    assert sum(len(y) for _, y in batches["processes"]) == len(rows) - 2
    for (xa, ya), (xb, yb) in zip(batches["threads"], batches["processes"], strict=True):
        np.testing.assert_array_equal(ya, yb)
        for k in xa:
            np.testing.assert_array_equal(xa[k], xb[k])


def test_unknown_decoder_is_a_clear_error(sample_data):
    rows, _ = read_manifest(sample_data["manifest_eval"])
    cfg = DataConfig(decoder="gpu")
    with pytest.raises(ValueError, match="data.decoder: unknown 'gpu'"):
        make_dataset(rows, cfg, label_vocabulary(rows), TextTokenizer(TextSpec(tokenizer="byte")))
