"""ActivityNet/THUMOS JSON import on real tiny videos: files found by id, bad segments
skipped with their reason, overlaps merged, subsets written beside the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vdg_tf.data.activitynet import clean_segments, from_activitynet, probe_video
from vdg_tf.data.sample import write_clip
from vdg_tf.manifest import read_manifest

FPS, SECONDS = 8, 4.0


def _video(path):
    rng = np.random.default_rng(len(path.name))
    frames = rng.integers(0, 255, size=(int(FPS * SECONDS), 32, 32, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_clip(path, frames, FPS)


@pytest.fixture
def anet(tmp_path):
    """A database of 6 ids: three good files (one ActivityNet-style `v_<id>`, one in a
    sub-folder as .mkv, one unannotated test video), one missing, one that does not decode,
    one whose every segment is bad."""
    videos = tmp_path / "videos"
    _video(videos / "v_abc.mp4")
    _video(videos / "more" / "def.mkv")
    _video(videos / "ghi.mp4")
    _video(videos / "allbad.mp4")
    (videos / "bad.mp4").write_bytes(b"not a video at all" * 50)
    database = {
        "abc": {"subset": "training", "duration": 4.0, "annotations": [
            {"segment": [0.5, 2.0], "label": "jump"},
            {"segment": [1.5, 2.5], "label": "jump"},   # overlaps the first: merged
            {"segment": [3.0, 4.4], "label": "run"},    # 0.4 s past the end: cut
            {"segment": [2.0, 1.0], "label": "run"},    # end <= start
            {"segment": [3.0, 9.0], "label": "run"},    # far outside the video
            {"segment": [1.0, 2.0], "label": ""},       # empty label
            {"segment": [1.0, 2.0], "label": "fly"},    # not in the taxonomy
            {"segment": "oops", "label": "run"},        # not [start, end]
            {"segment": [1.5, 2.8], "label": "run"},    # overlaps no other run
        ]},
        "def": {"subset": "validation", "annotations": [{"segment": [1, 3], "label": "run"}]},
        "ghi": {"subset": "testing", "annotations": []},
        "gone": {"subset": "training", "annotations": [{"segment": [1, 2], "label": "run"}]},
        "bad": {"subset": "training", "annotations": [{"segment": [1, 2], "label": "run"}]},
        "allbad": {"subset": "validation", "annotations": [{"segment": [5, 6], "label": "run"}]},
    }  # fmt: skip
    taxonomy = [{"nodeName": n, "nodeId": i} for i, n in enumerate(["Root", "jump", "run"])]
    path = tmp_path / "activity_net.json"
    path.write_text(json.dumps({"version": "1.3", "taxonomy": taxonomy, "database": database}))
    return path, videos


def test_import_writes_rows_subsets_and_counts(anet, tmp_path):
    path, videos = anet
    out = tmp_path / "data" / "anet.jsonl"
    info = from_activitynet(path, videos, out)
    assert info["rows"] == 3 and info["labels"] == ["jump", "run"]
    assert info["skipped"] == 3
    assert "video 'gone': no file gone.* or v_gone.*" in info["skipped_files"][0]
    assert "video 'bad':" in info["skipped_files"][1]
    assert info["skipped_files"][2] == "video 'allbad': no valid segment (1 skipped)"
    assert info["merged"] == 1 and info["clipped"] == 1 and info["unannotated"] == 1
    assert info["skipped_segments"] == 6  # five of abc, one of allbad
    reasons = "\n".join(info["segment_problems"])
    for why in ("annotation 3: end 1 <= start 2", "annotation 4: ends at 9 s, after the video",
                "annotation 5: empty or missing label", "annotation 6: label 'fly' is not",
                "annotation 7: 'segment' must be [start, end]", "'allbad' annotation 0: starts at 5 s"):  # fmt: skip
        assert why in reasons, why
    assert {k: v["rows"] for k, v in info["splits"].items()} == {
        "testing": 1, "training": 1, "validation": 1,
    }  # fmt: skip
    assert (tmp_path / "data" / "anet_validation.jsonl").is_file()

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    abc = rows[0]
    assert abc["video"] == "../videos/v_abc.mp4"
    duration = probe_video(videos / "v_abc.mp4")[1]
    assert abc["segments"] == [
        {"start": 0.5, "end": 2.5, "label": "jump"},
        {"start": 1.5, "end": 2.8, "label": "run"},
        {"start": 3.0, "end": duration, "label": "run"},
    ]
    assert rows[1] == {"video": "../videos/more/def.mkv",
                       "segments": [{"start": 1.0, "end": 3.0, "label": "run"}]}  # fmt: skip
    assert rows[2] == {"video": "../videos/ghi.mp4"}  # unannotated: for inference only
    parsed, problems = read_manifest(out)
    assert len(parsed) == 3 and not problems
    assert Path(parsed[0].video).resolve() == (videos / "v_abc.mp4").resolve()


def test_labels_argument_and_no_taxonomy(anet, tmp_path):
    path, videos = anet
    data = json.loads(path.read_text())
    del data["taxonomy"]
    path.write_text(json.dumps(data))
    info = from_activitynet(path, videos, tmp_path / "m.jsonl")
    assert info["labels"] == ["fly", "jump", "run"]  # no taxonomy: any non-empty label
    info = from_activitynet(path, videos, tmp_path / "m.jsonl", labels=["run"])
    assert info["labels"] == ["run"]
    assert any("label 'jump' is not a known class" in p for p in info["segment_problems"])


def test_clean_segments_without_a_duration():
    segs, problems, merged, clipped = clean_segments(
        [{"segment": [10, 20], "label": "a"}, {"segment": [12, 30], "label": "a"},
         {"segment": [12, 30], "label": "b"}, {"segment": [-1, 3], "label": "a"}],
        None, None, "video 'x'",
    )  # fmt: skip
    assert segs == [{"start": 10.0, "end": 30.0, "label": "a"},
                    {"start": 12.0, "end": 30.0, "label": "b"}]  # fmt: skip
    assert problems == ["video 'x' annotation 3: starts before the video (-1 s)"]
    assert (merged, clipped) == (1, 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [("{", "not a JSON file"), ('{"results": {}}', "no 'database' object")],
)
def test_bad_annotation_files_are_named(tmp_path, text, message):
    path = tmp_path / "a.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        from_activitynet(path, tmp_path, tmp_path / "m.jsonl")


def test_nothing_found_is_an_error_naming_the_first_reason(anet, tmp_path):
    path, _ = anet
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no video of its database was kept.*'abc': no file"):
        from_activitynet(path, empty, tmp_path / "m.jsonl")
