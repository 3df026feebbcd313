"""`vdg predict` on real videos: windows name the class of the part they lie in, a .tflite
predicts as the Keras model does, streams from a pipe, real-time drops, events."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from vdg_tf.export.api import export_model
from vdg_tf.runtime.events import EventTracker, describe
from vdg_tf.runtime.predict import Events, Predictor, PredictStats, _latest, predict


@pytest.fixture(scope="module")
def parts_manifest(long_video, tmp_path_factory):
    """One manifest row per part of the long video (its span and caption; no labels)."""
    path = tmp_path_factory.mktemp("m") / "parts.jsonl"
    rows = [
        {"video": str(long_video["mp4"]), "start": p["start"], "end": p["end"], "text": p["text"]}
        for p in long_video["parts"]
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def predictor(strong_run):
    return Predictor(strong_run.out)


def test_windows_inside_each_part_name_its_class(predictor, parts_manifest, long_video):
    records = list(predict(predictor, [str(parts_manifest)], window=2.0, stride=1.0))
    for part in long_video["parts"]:
        inside = [r for r in records if part["start"] <= r["start"] and r["end"] <= part["end"]]
        assert len(inside) == 5  # a 6 s part holds 5 windows of 2 s every 1 s
        right = sum(r["top"][0]["label"] == part["label"] for r in inside)
        assert right >= 3, (part["label"], [r["top"][0] for r in inside])
    r = records[0]
    assert set(r) == {"source", "start", "end", "top"} and len(r["top"]) == 3
    assert r["top"][0]["score"] >= r["top"][1]["score"] >= r["top"][2]["score"]


def test_a_tflite_export_predicts_as_the_keras_model(strong_run, predictor, long_video, tmp_path):
    tfl = tmp_path / "m.tflite"
    export_model(strong_run.out, "float32", tfl)
    a = list(predict(predictor, [str(long_video["mp4"])], window=2.0, stride=2.0))
    b = list(predict(str(tfl), [str(long_video["mp4"])], window=2.0, stride=2.0))
    assert [r["top"][0]["label"] for r in a] == [r["top"][0]["label"] for r in b]
    diff = max(abs(x["top"][0]["score"] - y["top"][0]["score"]) for x, y in zip(a, b, strict=True))
    assert diff < 1e-4


def test_realtime_drops_windows_the_model_has_no_time_for():
    stats = PredictStats()

    def fast_source():
        for i in range(40):
            time.sleep(0.002)
            yield i

    got = []
    for w in _latest(fast_source(), stats):
        got.append(w)
        time.sleep(0.02)  # a model 10x slower than the source
    assert stats.dropped > 0 and len(got) + stats.dropped == 40
    assert got == sorted(got) and got[-1] == 39  # in order, ending with the newest


def test_events_open_and_close_with_hysteresis():
    t = EventTracker("loitering", on=0.6, off=0.4, smooth=1)
    scores = [0.1, 0.7, 0.9, 0.5, 0.45, 0.3, 0.2]
    done = [t.feed(i, i + 1, s) for i, s in enumerate(scores)]
    events = [e for e in done if e]
    assert events == [{"event": "loitering", "start": 1, "end": 5, "peak": 0.9, "threshold": 0.6}]
    assert describe(events[0]) == "loitering from 00:01.0 to 00:05.0, peak 0.90"
    t.feed(7, 8, 0.95)
    assert t.close()["start"] == 7  # an event still open at the end is reported


def test_watch_reports_an_event_over_the_part_of_that_label(predictor, parts_manifest, long_video):
    part = long_video["parts"][1]
    events = Events([part["label"]], on=0.5, smooth=2)
    records = list(predict(predictor, [str(parts_manifest)], 2.0, 1.0, events=events))
    found = [r for r in records if "event" in r]
    assert found and all(r["event"] == part["label"] for r in found)
    best = max(found, key=lambda e: e["end"] - e["start"])
    assert part["start"] - 1 <= best["start"] and best["end"] <= part["end"] + 1


def test_stream_from_stdin_through_the_cli(trained_run, long_video, tmp_path):
    """An MPEG-TS piped in (as from ffmpeg or a camera tool): JSON Lines, a timeline plot."""
    plot = tmp_path / "timeline.png"
    with open(long_video["ts"], "rb") as stdin:
        out = subprocess.run(
            [sys.executable, "-m", "vdg_tf.cli", "predict", str(trained_run.out), "-", "--stream",
             "--json", "--window", "2", "--stride", "1", "--plot", str(plot), "--timeout", "2"],
            stdin=stdin, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(records) == 23 and all(r["source"] == "-" for r in records)
    assert "predicted 23 windows" in out.stderr and plot.stat().st_size > 10_000


def test_bad_inputs_are_one_line_errors(trained_run, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "vdg_tf.cli", "predict", str(trained_run.out), str(tmp_path / "x.mp4")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].endswith("x.mp4: file not found")
    stats = PredictStats()
    assert list(predict(str(trained_run.out), [str(tmp_path / "y.mp4")], stats=stats)) == []
    assert stats.failed == [f"{tmp_path / 'y.mp4'}: file not found"]
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        Predictor(tmp_path / "no_run")
    assert np.isfinite(0)


def test_a_dynamic_batch_tflite_runs_batch_4_in_one_call(
    strong_run, predictor, long_video, tmp_path
):
    """`--batch dynamic`: the exported signature takes any batch in LiteRT, int8 included."""
    from vdg_tf.export.litert import LiteRTModel
    from vdg_tf.media.windows import read_windows

    cfg = predictor.bundle.config.data
    ws = list(read_windows(str(long_video["mp4"]), cfg.video, cfg.audio, 2.0, 2.0))[:4]
    x = predictor.inputs(ws, [""] * 4)
    export_model(strong_run.out, "float32", tmp_path / "d.tflite", batch=None)
    m = LiteRTModel(tmp_path / "d.tflite")
    assert m.dynamic_batch
    batch = m.predict_batch(x)
    assert batch.shape == (4, len(predictor.labels))
    one_by_one = np.stack([m.predict_one({k: v[i] for k, v in x.items()}) for i in range(4)])
    np.testing.assert_allclose(batch, one_by_one, atol=1e-5)
