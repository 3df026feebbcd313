"""`vdg predict` on real videos: windows name the class of the part they lie in, a .tflite
predicts as the Keras model does, streams from a pipe, real-time drops, events."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import vdg
from vdg_tf.export.api import export_model
from vdg_tf.runtime.events import EventTracker, describe
from vdg_tf.runtime.predict import Events, Predictor, PredictRun, _latest, predict


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
    records = predict(predictor, [str(parts_manifest)], window=2.0, stride=1.0).records
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
    a = predict(predictor, [str(long_video["mp4"])], window=2.0, stride=2.0).records
    b = predict(str(tfl), [str(long_video["mp4"])], window=2.0, stride=2.0).records
    assert [r["top"][0]["label"] for r in a] == [r["top"][0]["label"] for r in b]
    diff = max(abs(x["top"][0]["score"] - y["top"][0]["score"]) for x, y in zip(a, b, strict=True))
    assert diff < 1e-4


def test_realtime_drops_windows_the_model_has_no_time_for():
    run = PredictRun()

    def fast_source():
        for i in range(40):
            time.sleep(0.002)
            yield i

    got = []
    for w in _latest(fast_source(), run):
        got.append(w)
        time.sleep(0.02)  # a model 10x slower than the source
    assert run.dropped > 0 and len(got) + run.dropped == 40
    assert got == sorted(got) and got[-1] == 39  # in order, ending with the newest


def test_events_open_and_close_with_hysteresis():
    t = EventTracker("loitering", on=0.6, off=0.4, smooth=1)
    scores = [0.1, 0.7, 0.9, 0.5, 0.45, 0.3, 0.2]
    done = [t.feed(i, i + 1, s) for i, s in enumerate(scores)]
    events = [e for e in done if e]
    assert events == [{"event": "loitering", "start": 1, "end": 5, "peak": 0.9, "on": 0.6}]
    assert describe(events[0]) == "loitering from 00:01.0 to 00:05.0, peak 0.90"
    t.feed(7, 8, 0.95)
    assert t.close()["start"] == 7  # an event still open at the end is reported


def test_watch_reports_an_event_over_the_part_of_that_label(predictor, parts_manifest, long_video):
    part = long_video["parts"][1]
    events = Events([part["label"]], on=0.5, smooth=2)
    run = predict(predictor, [str(parts_manifest)], window=2.0, stride=1.0, events=events)
    records = run.records
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
    missing = str(tmp_path / "y.mp4")
    run = predict(str(trained_run.out), [missing])
    assert run.records == [] and run.windows == 0
    assert run.failed == run.skipped == [f"{missing}: file not found"]
    assert run.sources == [{"source": missing, "span": None, "windows": 0, "ended": "failed",
                            "note": f"{missing}: file not found"}]  # fmt: skip
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        Predictor(tmp_path / "no_run")


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


def test_cli_json_lines_equal_the_api_records(trained_run, long_video, tmp_path, capfd):
    """`vdg predict --json` streams exactly `PredictRun.to_dict()["records"]`; the CSV and
    the plot are the API's too."""
    video = str(long_video["mp4"])
    csv, plot = tmp_path / "w.csv", tmp_path / "w.png"
    rc, out, err = vdg(capfd, "predict", trained_run.out, video, "--window", "2", "--stride", "2",
                       "--json", "--csv", csv, "--plot", plot)  # fmt: skip
    assert rc == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    run = predict(trained_run.out, [video], window=2.0, stride=2.0)
    assert json.loads(json.dumps(run.to_dict()))["records"] == lines
    assert len(lines) == run.windows == 12 and "predicted 12 windows" in err
    assert run.sources == [{"source": video, "span": None, "windows": 12, "ended": "end",
                            "note": ""}]  # fmt: skip
    assert len(csv.read_text().splitlines()) == 13 and plot.stat().st_size > 10_000
    from vdg_tf.bundle import Bundle  # `model` may also be a Bundle in memory

    same = predict(Bundle.load(trained_run.out), video, window=2.0, stride=2.0)
    assert json.loads(json.dumps(same.records)) == lines


def test_manifest_rows_that_hold_no_window_say_so(trained_run, long_video, tmp_path, vdg_log):
    video = str(long_video["mp4"])
    rows = [{"video": video, "start": 100, "end": 110},  # past the 24 s video's end
            {"video": video, "start": 3, "end": 4},  # shorter than a 2 s window
            {"video": video, "start": 0, "end": 4}]  # fmt: skip
    manifest = tmp_path / "rows.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = predict(trained_run.out, [str(manifest)], window=2.0, stride=1.0)
    assert run.windows == 3  # 0-2, 1-3, 2-4 of the last row
    assert run.skipped == [
        f"{video} [100-110 s]: no window: its span lies past the end of the video (24.00 s)",
        f"{video} [3-4 s]: no window: its span (1 s) is shorter than a window (2 s)",
    ]
    assert [s["ended"] for s in run.sources] == ["no windows", "no windows", "end"]
    assert [m for m in vdg_log if "no window" in m] == [f"skipped {m}" for m in run.skipped]


@pytest.mark.parametrize(
    "option, value, message",
    [("--stride", "nan", "stride: must be a positive number of seconds, got nan"),
     ("--stride", "inf", "stride: must be a positive number of seconds, got inf"),
     ("--stride", "0", "stride: must be a positive number of seconds, got 0.0"),
     ("--window", "0", "window: must be a positive number of seconds, got 0.0"),
     ("--timeout", "-1", "timeout: must be a positive number of seconds, got -1.0"),
     ("--top", "-2", "top: must be a whole number of at least 1, got -2")],
)  # fmt: skip
def test_bad_settings_are_one_line_errors(trained_run, long_video, option, value, message, capfd):
    rc, out, err = vdg(capfd, "predict", trained_run.out, long_video["mp4"], option, value)
    assert rc == 2 and out == ""
    assert err.strip().splitlines()[-1] == f"vdg predict: error: {message}"
    key = {"--timeout": "timeout_s"}.get(option, option[2:])
    with pytest.raises(ValueError, match=message.split(",")[0]):
        predict(trained_run.out, [str(long_video["mp4"])], **{key: float(value)})


def test_a_source_name_that_is_not_utf8_still_gets_its_csv_and_plot(
    trained_run, long_video, tmp_path, capfd
):
    import os
    import shutil

    video = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"clip-\xff.mp4"))
    shutil.copy(long_video["mp4"], video)
    csv, plot = tmp_path / "w.csv", tmp_path / "w.png"
    rc, out, err = vdg(capfd, "predict", trained_run.out, video, "--window", "2", "--stride", "4",
                       "--csv", csv, "--plot", plot)  # fmt: skip
    assert rc == 0, err
    assert out.splitlines()[0].startswith("clip-\\xff.mp4  00:00.0-00:02.0")
    rows = csv.read_bytes().splitlines()
    assert len(rows) == 7 and rows[1].startswith(os.fsencode(video) + b",0.0,2.0,")
    assert plot.stat().st_size > 10_000


def test_a_truncated_faststart_mp4_says_it_ended_early(trained_run, cut_faststart, vdg_log):
    run = predict(trained_run.out, [str(cut_faststart)], window=2.0, stride=1.0)
    assert 5 <= run.windows < 23 and run.sources[0]["ended"] == "cut short"
    assert any("ends early" in m and "cut.mp4" in m for m in vdg_log)
    assert "ended: cut short (the file ends early" in run.format()


def test_an_http_source_that_stalls_gives_every_window_and_says_stalled(
    trained_run, long_video, tmp_path
):
    from tests.runtime.conftest import stalling_server
    from vdg_tf.media.windows import read_windows

    data = long_video["ts"].read_bytes()
    half = tmp_path / "half.ts"
    half.write_bytes(data[: len(data) // 2])
    cfg = Predictor(trained_run.out, incremental=False).bundle.config.data
    want = len(list(read_windows(str(half), cfg.video, cfg.audio, 2.0, 1.0)))
    with stalling_server(half.read_bytes()) as url:
        run = predict(trained_run.out, [url], window=2.0, stride=1.0, stream=True, timeout_s=1.0)
    assert run.windows == want >= 10 and run.failed == []
    assert run.sources[0]["ended"] == "stalled"
    assert f"{want} windows, ended: stalled" in run.format()


def test_stdin_that_stalls_ends_with_its_windows_and_the_summary(trained_run, long_video, tmp_path):
    """Half a stream piped in, and the pipe left open: the command ends `--timeout` after
    the last byte with every window the bytes hold and its summary (it used to hang)."""
    from vdg_tf.media.windows import read_windows

    data = long_video["ts"].read_bytes()
    half = tmp_path / "half.ts"
    half.write_bytes(data[: len(data) // 2])
    cfg = Predictor(trained_run.out, incremental=False).bundle.config.data
    want = len(list(read_windows(str(half), cfg.video, cfg.audio, 2.0, 1.0)))
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vdg_tf.cli", "predict", str(trained_run.out), "-", "--stream",
             "--json", "--window", "2", "--stride", "1", "--timeout", "2"],
            stdin=subprocess.PIPE, stdout=stdout, stderr=stderr,
        )  # fmt: skip
        try:
            proc.stdin.write(half.read_bytes())
            proc.stdin.flush()  # the pipe stays open: the camera tool froze
            rc = proc.wait(timeout=300)  # a hang guard, not a timing figure
        finally:
            proc.kill()
            proc.stdin.close()
    assert rc == 0, err.read_text()[-2000:]
    assert len(out.read_text().splitlines()) == want >= 10
    assert f"predicted {want} windows" in err.read_text()
    assert "-: " + f"{want} windows, ended: stalled" in err.read_text()
