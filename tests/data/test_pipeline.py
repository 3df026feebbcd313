"""The tf.data pipeline: contracted tensors from manifest rows; bad clips skipped and counted."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from vdg_tf.config import AudioSpec, DataConfig, TextSpec, VideoSpec
from vdg_tf.data.features import TextTokenizer, log_mel_frames
from vdg_tf.data.pipeline import SkipLog, make_dataset
from vdg_tf.manifest import label_vocabulary, read_manifest

CFG = DataConfig(
    video=VideoSpec(frames=4, size=32),
    audio=AudioSpec(seconds=1.0),
    text=TextSpec(max_tokens=8, vocab_size=80),
    batch_size=4,
)


def build(manifest, cfg=CFG, training=False, repeat=False):
    rows, problems = read_manifest(manifest)
    labels = label_vocabulary(rows)
    tok = TextTokenizer.fit([r.text for r in rows], cfg.text)
    skips = SkipLog()
    skips.extend(problems)
    ds = make_dataset(rows, cfg, labels, tok, training=training, skips=skips, repeat=repeat)
    return ds, rows, skips


def test_row_becomes_contracted_tensors(sample_data):
    ds, rows, skips = build(sample_data["manifest_eval"])
    x, y = next(iter(ds))
    assert x["video"].shape == (4, 4, 32, 32, 3) and x["video"].dtype.name == "float32"
    assert float(x["video"].numpy().min()) >= 0.0 and float(x["video"].numpy().max()) <= 1.0
    assert x["audio"].shape == (4, log_mel_frames(CFG.audio), CFG.audio.mels, 1)
    assert x["text"].shape == (4, 8) and x["text"].dtype.name == "int32"
    for m in ("video_mask", "audio_mask", "text_mask"):
        assert x[m].shape == (4, 1)
        np.testing.assert_array_equal(x[m].numpy(), 1.0)
    assert y.shape == (4,) and skips.count == 0


@pytest.mark.parametrize("decoder", ["processes", "threads"])
def test_bad_clips_are_skipped_reported_and_the_epoch_completes(sample_data, tmp_path, decoder):
    good = [
        json.loads(line) for line in Path(sample_data["manifest_eval"]).read_text().splitlines()
    ]
    root = sample_data["manifest_eval"].rsplit("/", 1)[0]
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "junk.mp4").write_bytes(b"garbage" * 50)
    whole = Path(root, good[0]["video"]).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "odd_codec.mp4").write_bytes(whole.replace(b"avc1", b"zzzz"))
    rows = [{**r, "video": f"{root}/{r['video']}"} for r in good]
    bad = [
        {"video": name, "label": good[0]["label"]}
        for name in ("missing.mp4", "empty.mp4", "junk.mp4", "cut.mp4", "odd_codec.mp4")
    ] + [{"video": rows[0]["video"], "label": "no-such-label"}]
    m = tmp_path / "m.jsonl"
    m.write_text("".join(json.dumps(r) + "\n" for r in rows + bad) + "{broken\n")
    rows_read, problems = read_manifest(m)
    labels = label_vocabulary(rows_read[: len(rows)])
    tok = TextTokenizer.fit([r.text for r in rows_read], CFG.text)
    skips = SkipLog()
    skips.extend(problems)
    cfg = dataclasses.replace(CFG, decoder=decoder)
    ds = make_dataset(rows_read, cfg, labels, tok, skips=skips)
    n = sum(int(y.shape[0]) for _, y in ds)
    assert n == len(rows)
    assert skips.count == 7
    text = " | ".join(skips.reasons)
    for needle in (
        "missing.mp4: file not found",
        "empty.mp4: file is empty",
        "junk.mp4: cannot decode",
        "cut.mp4: cannot decode",
        "odd_codec.mp4: unknown or unsupported video codec",
        "label 'no-such-label' not in labels",
        "invalid JSON",
    ):
        assert needle in text
    assert skips.summary(len(rows) + 7).startswith(f"skipped 7 of {len(rows) + 7} clips: ")


def test_strict_mode_raises_on_first_bad_clip(sample_data, tmp_path):
    good, _ = read_manifest(sample_data["manifest_eval"])
    m = tmp_path / "m.jsonl"
    m.write_text(
        json.dumps({"video": "missing.mp4", "label": "a"})
        + "\n"
        + json.dumps({"video": str(good[0].video), "label": "b"})
        + "\n"
    )
    rows, _ = read_manifest(m)
    cfg = DataConfig(video=CFG.video, audio=CFG.audio, text=CFG.text, strict=True)
    tok = TextTokenizer(TextSpec(tokenizer="byte"))
    ds = make_dataset(rows, cfg, ["a", "b"], tok)
    with pytest.raises(Exception, match="manifest line 1: .*missing.mp4: file not found"):
        list(ds)


def test_seed_reproduces_augmented_batches(sample_data):
    cfg = dataclasses.replace(CFG, deterministic=True)
    a = [(x, y) for x, y in build(sample_data["manifest_train"], cfg, training=True)[0].take(2)]
    b = [(x, y) for x, y in build(sample_data["manifest_train"], cfg, training=True)[0].take(2)]
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(ya, yb)
        for k in xa:
            np.testing.assert_array_equal(xa[k], xb[k])


def test_epochs_draw_new_augmentations(sample_data):
    cfg = dataclasses.replace(CFG, deterministic=True, shuffle_buffer=1)
    ds = build(sample_data["manifest_train"], cfg, training=True)[0]
    first = [x["video"].numpy() for x, _ in ds.take(1)][0]
    second = [x["video"].numpy() for x, _ in ds.take(1)][0]
    assert not np.allclose(first, second)


def test_one_repeated_stream_reshuffles_and_redraws_each_epoch(sample_data):
    """Training reads one endless stream: every pass must still be a new epoch."""
    cfg = dataclasses.replace(CFG, deterministic=True, cache=False)
    ds, rows, skips = build(sample_data["manifest_train"], cfg, training=True, repeat=True)
    assert len(rows) % cfg.batch_size == 0  # so that batch `steps` starts the second epoch
    steps = len(rows) // cfg.batch_size
    batches = [(x["video"].numpy(), y.numpy()) for x, y in ds.take(2 * steps)]
    first, second = batches[:steps], batches[steps:]
    order = [np.concatenate([y for _, y in epoch]) for epoch in (first, second)]
    assert sorted(order[0]) == sorted(order[1]) and len(order[0]) == len(rows) - skips.count
    assert not np.array_equal(order[0], order[1])  # reshuffled
    cached = dataclasses.replace(CFG, deterministic=True, shuffle_buffer=1)  # same order
    ds = build(sample_data["manifest_train"], cached, training=True, repeat=True)[0]
    videos = [x["video"].numpy() for x, _ in ds.take(steps + 1)]
    assert not np.allclose(videos[0], videos[steps])  # the same clips, new augmentation


def test_cached_and_streamed_inputs_are_the_same(sample_data):
    """With a cache, tokens and log-mel are computed before it: the inputs must not change."""
    streamed = build(sample_data["manifest_eval"], dataclasses.replace(CFG, cache=False))[0]
    cached = build(sample_data["manifest_eval"], dataclasses.replace(CFG, cache=True))[0]
    for (xs, ys), (xc, yc) in zip(streamed, cached, strict=True):
        np.testing.assert_array_equal(ys, yc)
        assert set(xs) == set(xc)
        for k in xs:
            np.testing.assert_allclose(xs[k], xc[k], atol=1e-6)


@pytest.mark.parametrize("cache", [True, False])
def test_waveform_augmentation_reaches_the_log_mel(sample_data, cache):
    """Gain and noise change the waveform, so the log-mel must come after them (and after
    the cache): the same clip in two epochs differs in `audio`, not only in SpecAugment.
    Clips are matched across epochs by their token ids (a streamed epoch is reshuffled)."""
    aug = dataclasses.replace(
        DataConfig().augment, noise_snr_db=5.0, freq_mask=0, time_mask=0, token_dropout=0.0
    )
    cfg = dataclasses.replace(CFG, deterministic=True, shuffle_buffer=1, cache=cache, augment=aug)
    ds, rows, skips = build(sample_data["manifest_train"], cfg, training=True, repeat=True)
    steps = -(-(len(rows) - skips.count) // cfg.batch_size)
    epochs = [{}, {}]
    for i, (x, _) in enumerate(ds.take(2 * steps)):
        for text, audio in zip(x["text"].numpy(), x["audio"].numpy(), strict=True):
            epochs[i // steps][text.tobytes()] = audio
    first = next(iter(epochs[0].values()))
    assert first.shape == (log_mel_frames(CFG.audio), CFG.audio.mels, 1)
    assert np.all(np.isfinite(first))
    same = set(epochs[0]) & set(epochs[1])
    assert len(same) >= len(epochs[0]) // 2  # most clips seen in both epochs
    heard = [k for k in same if np.any(epochs[0][k])]  # clips with an audio track
    assert heard
    for key in heard:
        assert not np.allclose(epochs[0][key], epochs[1][key], atol=1e-3)


EXIT_SCRIPT = """
import sys
from vdg_tf.config import DataConfig
from vdg_tf.data.features import TextTokenizer
from vdg_tf.manifest import label_vocabulary, read_manifest
from vdg_tf.data.pipeline import make_dataset
rows, _ = read_manifest(sys.argv[1])
cfg = DataConfig(batch_size=4, decoder=sys.argv[2], cache=False)  # streaming: decodes in flight
tok = TextTokenizer.fit([r.text for r in rows], cfg.text)
it = iter(make_dataset(rows, cfg, label_vocabulary(rows), tok, training=True).repeat())
next(it)
print("read one batch", flush=True)
"""


@pytest.mark.parametrize("decoder", ["threads", "processes"])
def test_a_script_exits_with_an_iterator_still_open(sample_data, decoder):
    """Decodes are still in flight when the script ends; the process must exit, not hang."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, str(sample_data["manifest_train"]), decoder],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "read one batch" in done.stdout


def test_strict_mode_raises_on_an_untrimmed_row_that_does_not_fit_its_video(sample_data, tmp_path):
    from vdg_tf.data.pipeline import usable_rows

    good, _ = read_manifest(sample_data["manifest_eval"])  # 2 s clips
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"video": str(good[0].video),
                             "segments": [{"start": 8, "end": 14, "label": "jump"}]}) + "\n")  # fmt: skip
    rows, _ = read_manifest(m)
    loose = dataclasses.replace(CFG, task="localisation")
    skips = SkipLog()
    assert usable_rows(rows, loose, ["background", "jump"], skips, training=True) == []
    assert skips.count == 1 and "ends after the video" in skips.summary(1)
    strict = dataclasses.replace(loose, strict=True)
    with pytest.raises(ValueError, match=r"segment 8-14 s \(jump\) ends after the video"):
        usable_rows(rows, strict, ["background", "jump"], SkipLog(), training=True)
