"""Temporal localisation end to end: untrimmed generated videos train a window classifier,
`predict --segments` finds the actions along whole videos, `evaluate` scores them by
temporal mAP, and the int8 export does the same in LiteRT."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.data.test_activitynet import anet  # noqa: F401  (fixture)
from tests.helpers import tiny_config, vdg
from vdg_tf.data.sample_untrimmed import UntrimmedSpec, make_untrimmed_sample
from vdg_tf.manifest import ManifestError, parse_row
from vdg_tf.tasks import get_task
from vdg_tf.tasks.localisation import BACKGROUND, window_label

SEGMENTS = ((4.0, 8.0, "jump"), (10.0, 10.6, "wave"))


@pytest.mark.parametrize(
    ("start", "end", "want"),
    [
        (5.0, 7.0, "jump"),  # inside the action
        (3.4, 5.4, "jump"),  # 0.7 of the window is the action
        (3.0, 5.0, None),  # the boundary on the window's centre: not trained on
        (2.5, 4.5, BACKGROUND),  # a quarter of the window
        (0.0, 2.0, BACKGROUND),  # no action
        (9.5, 11.5, "wave"),  # a short action wholly inside the window
        (10.15, 12.15, "wave"),  # three quarters of a short action
        (10.3, 12.3, None),  # half of it: ambiguous
        (10.45, 12.45, BACKGROUND),  # a quarter of it
    ],
)
def test_window_labels_follow_the_coverage_rules(start, end, want):
    assert window_label(start, end, SEGMENTS) == want


def test_clips_cut_an_untrimmed_row_into_labelled_windows():
    row = parse_row({"video": "v.mp4", "segments": [{"start": 4, "end": 8, "label": "jump"}]},
                    1, Path("/d"))  # fmt: skip
    task = get_task("localisation")
    clips = task.clips(row, duration=12.0, window=2.0)
    assert [(c.start, c.end, c.label) for c in clips][:6] == [
        (0.0, 2.0, BACKGROUND),
        (1.0, 3.0, BACKGROUND),
        (2.0, 4.0, BACKGROUND),
        (4.0, 6.0, "jump"),
        (5.0, 7.0, "jump"),
        (6.0, 8.0, "jump"),
    ]  # fmt: skip  (3.0-5.0 and 7.0-9.0 have the boundary on their centre: not trained on)
    assert all(c.end <= 12.0 and c.segments is None for c in clips)
    assert task.labels([row]) == [BACKGROUND, "jump"]


def test_a_window_two_actions_fill_is_not_trained_on():
    both = ((2.0, 6.0, "jump"), (3.0, 7.0, "wave"))
    assert window_label(3.5, 5.5, both) is None
    assert window_label(2.0, 4.0, both) == "jump"  # jump fills it; wave has only half


def test_a_row_with_segments_and_a_span_is_a_row_problem():
    row = parse_row({"video": "v.mp4", "start": 10, "end": 20,
                     "segments": [{"start": 12, "end": 14, "label": "a"}]}, 4, Path("/d"))  # fmt: skip
    assert "a whole video: drop 'start'/'end'" in get_task("localisation").problem(row, ["a"])


def test_segments_past_the_video_or_overlapping_are_named():
    task = get_task("localisation")
    late = parse_row({"video": "v.mp4", "segments": [{"start": 8, "end": 14, "label": "a"}]},
                     2, Path("/d"))  # fmt: skip
    with pytest.raises(ValueError, match=r"segment 8-14 s \(a\) ends after the video \(12.00 s\)"):
        task.clips(late, duration=12.0, window=2.0)
    assert task.clips(late, duration=13.5, window=2.0)  # within the 1 s annotations drift
    twice = parse_row({"video": "v.mp4", "segments": [{"start": 1, "end": 4, "label": "a"},
                       {"start": 3, "end": 6, "label": "a"}, {"start": 2, "end": 5, "label": "b"}]},
                      3, Path("/d"))  # fmt: skip
    assert "segments 1-4 and 3-6 s of 'a' overlap" in task.problem(twice, ["background", "a", "b"])
    assert task.problem(late, ["background", "a"]) is None


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ([{"start": 3, "end": 2, "label": "a"}], "segments[0]: needs 0 <= start < end, got 3-2"),
        ([{"start": 1, "end": 2}], "segments[0]: needs 'start', 'end' (seconds) and a 'label'"),
        ("1-2", "'segments' must be a list"),
        ([{"start": 1, "end": 2, "label": "a"}, 5], "segments[1] must be an object"),
    ],
)
def test_bad_segments_are_one_line_row_problems(segments, message):
    with pytest.raises(ManifestError, match=re.escape(message)):
        parse_row({"video": "v.mp4", "segments": segments}, 3, Path("/d"))


@pytest.fixture(scope="module")
def untrimmed(tmp_path_factory):
    """Eight 40 s generated videos (six train, two eval) with their actions known."""
    out = tmp_path_factory.mktemp("untrimmed") / "data"
    spec = UntrimmedSpec(width=160, height=120)
    return make_untrimmed_sample(out, videos=8, seconds=40.0, seed=0, spec=spec)


@pytest.fixture(scope="module")
def loc_run(untrimmed, tmp_path_factory):
    from vdg_tf.training.trainer import train

    cfg = tiny_config(15)
    cfg.data.task = "localisation"
    out = tmp_path_factory.mktemp("loc") / "run"
    return train(cfg, untrimmed["manifest_train"], out, val_split=0.2, progress=False)


@pytest.fixture(scope="module")
def loc_report(loc_run, untrimmed):
    """`vdg.evaluate` of the trained localisation run on the evaluation videos."""
    import vdg_tf as vdg_api

    return vdg_api.evaluate(loc_run.out, untrimmed["manifest_eval"])


def test_localisation_trains_and_evaluate_reports_temporal_map(loc_report, untrimmed):
    report = loc_report
    r = report.to_dict()
    for key in ("tmap_30", "tmap_50", "tmap_70", "average_map", "class_ap_50", "accuracy"):
        assert key in r, key
    assert r["n_ground_truth"] == sum(
        len(json.loads(line)["segments"])
        for line in Path(untrimmed["manifest_eval"]).read_text().splitlines()
    )
    # measured 1.0 at tIoU 0.5 on these videos; chance (a segment per class anywhere) is
    # near 0, and segments that miss their actions' boundaries by a window fall under 0.5
    assert r["tmap_50"] >= 0.6, r
    assert "tmap_50" in report.format()


def test_predict_segments_cli_equals_the_api(loc_run, untrimmed, capfd, tmp_path):
    import vdg_tf as vdg_api

    video = (
        str(untrimmed["manifest_eval"]).replace("manifest_eval.jsonl", "")
        + json.loads(Path(untrimmed["manifest_eval"]).read_text().splitlines()[0])["video"]
    )
    plot = tmp_path / "t.png"
    run = vdg_api.predict(loc_run.out, [video], segments=True, plot=plot)
    assert run.records and all(set(r) == {"source", "start", "end", "label", "score"}
                               for r in run.records)  # fmt: skip
    assert all(r["label"] != BACKGROUND and r["end"] > r["start"] for r in run.records)
    assert plot.stat().st_size > 0
    rc, out, err = vdg(capfd, "predict", loc_run.out, video, "--segments", "--json")
    assert rc == 0, err
    assert [json.loads(line) for line in out.splitlines()] == run.records
    rc, out, err = vdg(capfd, "predict", loc_run.out, video, "--segments")
    assert rc == 0 and "SEGMENT" in out, err


def test_int8_export_localises_in_litert(loc_run, loc_report, untrimmed, tmp_path):
    import vdg_tf as vdg_api

    out = tmp_path / "loc.tflite"
    vdg_api.export(loc_run.out, "edge-int8", out, data=untrimmed["manifest_train"],
                   calibration_samples=16)  # fmt: skip
    lite = vdg_api.evaluate(out, untrimmed["manifest_eval"]).to_dict()
    keras = loc_report.to_dict()
    # the same segments from LiteRT's int8 scores: mAP within a segment's worth of float
    assert lite["n_ground_truth"] == keras["n_ground_truth"]
    assert abs(lite["tmap_50"] - keras["tmap_50"]) <= 0.25, (lite["tmap_50"], keras["tmap_50"])


def test_make_sample_data_and_activitynet_import_from_the_cli(anet, capfd, tmp_path):  # noqa: F811
    rc, out, err = vdg(capfd, "make-sample-data", tmp_path / "u", "--task", "localisation",
                       "--clips", "2", "--length", "12", "--size", "96x72", "--json")  # fmt: skip
    assert rc == 0, err
    info = json.loads(out)
    assert info["videos"] == 2 and info["seconds"] == 12
    rows = [json.loads(x) for x in Path(info["manifest_train"]).read_text().splitlines()]
    assert rows and all("segments" in r for r in rows)

    path, videos = anet
    rc, out, err = vdg(capfd, "manifest", "from-activitynet", path, "--videos", videos,
                       "--out", tmp_path / "a.jsonl", "--json")  # fmt: skip
    assert rc == 0, err
    r = json.loads(out)
    assert r["rows"] == 3 and r["skipped"] == 3 and r["merged"] == 1
    rc, out, err = vdg(capfd, "manifest", "from-activitynet", path, "--videos", videos,
                       "--out", tmp_path / "b.jsonl")  # fmt: skip
    assert rc == 0 and "skipped segments" in out and "6:" in out, out
