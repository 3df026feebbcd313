"""`vdg manifest from-coco-video` and `from-ava` on real tiny mp4 files: the CLI parses,
calls the importer, and prints its summary (`--json`: rows, skipped, labels, boxes and the
skipped boxes by reason; a table for people)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import vdg
from vdg_tf.data.sample import write_clip

W, H, FPS, FRAMES = 64, 48, 5, 10  # 2.0 s clips


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """A folder with two real 2 s mp4s: `a1.mp4` and `sub/b2.mp4`."""
    folder = tmp_path_factory.mktemp("videos")
    frames = np.random.default_rng(0).integers(0, 255, (FRAMES, H, W, 3), dtype=np.uint8)
    for name in ("a1.mp4", "sub/b2.mp4"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        write_clip(folder / name, frames, FPS)
    return folder


def test_from_coco_video_json_and_table(tmp_path, videos, capfd):
    boxes = [[0, 0, 32, 24], None, [70, 0, 10, 10]]  # good, not in frame, outside
    data = {
        "videos": [
            {"id": 1, "file_names": [f"a1/{i:05d}.jpg" for i in range(3)]},
            {"id": 2, "file_names": [f"gone/{i:05d}.jpg" for i in range(3)]},
        ],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [
            {"video_id": 1, "category_id": 1, "bboxes": boxes},
            {"video_id": 2, "category_id": 1, "bboxes": boxes},
        ],
    }
    (tmp_path / "vis.json").write_text(json.dumps(data))
    out = tmp_path / "m.jsonl"
    args = ["manifest", "from-coco-video", tmp_path / "vis.json", "--videos", videos, "--out", out]
    rc, stdout, err = vdg(capfd, *args, "--json")
    assert rc == 0, err
    r = json.loads(stdout)
    assert (r["rows"], r["labels"], r["boxes"], r["skipped"]) == (1, ["person"], 1, 1)
    assert r["skipped_box_reasons"] == {"outside [0, 1]": 1}
    assert "gone" in r["skipped_files"][0]
    row = json.loads(out.read_text().splitlines()[0])
    assert row["boxes"] == [{"t": 0.0, "box": [0.0, 0.0, 0.5, 0.5], "label": "person"}]
    rc, stdout, _ = vdg(capfd, *args)
    assert rc == 0
    assert "1 videos, 1 boxes" in stdout and "1 (1 outside [0, 1])" in stdout


def test_from_ava_with_label_map_and_offset(tmp_path, videos, capfd):
    (tmp_path / "map.pbtxt").write_text('item {\n  name: "stand"\n  id: 1\n}\n')
    lines = ["b2,900.5,0.1,0.2,0.5,0.6,1,0", "b2,901.0,0.1,0.2,0.5,0.6,7,0", "zz,900.5,0,0,1,1,1,0"]
    (tmp_path / "ava.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "ava.jsonl"
    rc, stdout, err = vdg(
        capfd, "manifest", "from-ava", tmp_path / "ava.csv", "--videos", videos, "--out", out,
        "--label-map", tmp_path / "map.pbtxt", "--time-offset", 900, "--json",
    )  # fmt: skip
    assert rc == 0, err
    r = json.loads(stdout)
    assert (r["rows"], r["labels"], r["boxes"]) == (1, ["stand"], 1)
    assert r["skipped_box_reasons"] == {"unknown label": 1}
    assert r["skipped"] == 1 and "no video for zz" in r["skipped_files"][0]
    row = json.loads(out.read_text().splitlines()[0])
    assert row["video"].endswith("sub/b2.mp4") and row["boxes"][0]["t"] == 0.5


def test_a_missing_annotation_file_is_one_line_error(tmp_path, videos, capfd):
    rc, _, err = vdg(capfd, "manifest", "from-ava", tmp_path / "no.csv", "--videos", videos,
                     "--out", tmp_path / "m.jsonl")  # fmt: skip
    assert rc == 2 and "no.csv: no such CSV file" in err and len(err.strip().splitlines()) == 1
