"""Box-annotated dataset import (YouTube-VIS / TAO JSON, AVA CSV) on real tiny mp4 files:
good boxes become relative targets at the right times, bad ones are skipped and counted by
reason, missing or broken videos are named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vdg_tf.data import box_importers as bi
from vdg_tf.data.box_importers import from_ava, from_coco_video, read_label_map
from vdg_tf.data.sample import write_clip
from vdg_tf.manifest import read_manifest

W, H, FPS, FRAMES = 64, 48, 5, 10  # 2.0 s clips


def _clip(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.random.default_rng(0).integers(0, 255, (FRAMES, H, W, 3), dtype=np.uint8)
    write_clip(path, frames, FPS)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """One real 2 s, 64x48, 5 fps mp4, copied where each test needs it."""
    return _clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _vis(tmp_path: Path, clip: Path) -> Path:
    """A YouTube-VIS style JSON over four videos: good, in a sub-folder, missing, all bad."""
    videos = tmp_path / "videos"
    _copy(clip, videos / "a1b2.mp4")
    _copy(clip, videos / "sub" / "clip2.mp4")
    _copy(clip, videos / "allbad.mp4")
    frames = [f"a1b2/{i:05d}.jpg" for i in range(FRAMES)]
    none = [None] * FRAMES
    v1 = none.copy()
    v1[0], v1[2] = [0, 0, 32, 24], [32, 24, 32, 24]  # [0,0,.5,.5] at 0 s, [.5,.5,1,1] at 0.4 s
    v1[3] = [60, 0, 10, 10]  # x2 = 70/64 > 1: outside, the only box at 0.6 s
    dog = none + [None, None, [1, 1, 5, 5]]  # frame 12 = 2.4 s: past the 2.0 s clip
    dog[4] = [10, 10, 0, 5]  # zero width, the only box at 0.8 s
    data = {
        "videos": [
            {"id": 1, "width": W, "height": H, "length": FRAMES, "file_names": frames},
            {"id": 2, "file_name": "sub/clip2.mp4", "file_names": []},
            {"id": 3, "file_names": ["gone/00000.jpg"]},
            {"id": 4, "name": "allbad"},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {"id": 10, "video_id": 1, "category_id": 1, "bboxes": v1},
            {"id": 11, "video_id": 1, "category_id": 9, "bboxes": [[1, 1, 5, 5]]},  # unknown
            {"id": 12, "video_id": 1, "category_id": 2, "bboxes": dog},
            {"id": 20, "video_id": 2, "category_id": 2, "bboxes": [[16, 12, 32, 24]]},
            {"id": 30, "video_id": 3, "category_id": 1, "bboxes": [[1, 1, 5, 5]]},
            {"id": 40, "video_id": 4, "category_id": 1, "bboxes": [[0, 0, 128, 10]]},
            {"id": 50, "video_id": 77, "category_id": 1, "bboxes": [[1, 1, 5, 5]]},
        ],
    }
    path = tmp_path / "vis.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_video_keeps_good_boxes_and_counts_bad_ones(tmp_path, clip):
    out = tmp_path / "data" / "det.jsonl"
    info = from_coco_video(_vis(tmp_path, clip), tmp_path / "videos", out)
    assert info["rows"] == 2 and info["labels"] == ["dog", "person"] and info["boxes"] == 3
    assert info["skipped_box_reasons"] == {
        bi.EMPTY: 1,
        bi.OUTSIDE: 2,
        bi.TIME: 1,
        bi.UNKNOWN_LABEL: 1,
    }
    assert info["skipped_boxes"] == 5 and len(info["skipped_box_examples"]) == 5
    assert "video 1 annotation 10 frame 3: outside [0, 1]" in "\n".join(
        info["skipped_box_examples"]
    )
    assert info["skipped"] == 3
    missing, orphan, allbad = info["skipped_files"]
    assert missing.startswith("video 3: no video file") and "gone" in missing
    assert orphan == "vis.json: 1 annotations name a video_id not in 'videos' (77)"
    assert "allbad.mp4: every box skipped (1)" in allbad
    first, second = _rows(out)
    assert first["video"] == "../videos/a1b2.mp4"
    assert first["boxes"] == [
        {"t": 0.0, "box": [0.0, 0.0, 0.5, 0.5], "label": "person"},
        {"t": 0.4, "box": [0.5, 0.5, 1.0, 1.0], "label": "person"},
    ]
    # background frames stay; 0.6 s and 0.8 s (only a bad box each) do not
    assert first["times"] == [0.0, 0.2, 0.4, 1.0, 1.2, 1.4, 1.6, 1.8]
    assert second["video"] == "../videos/sub/clip2.mp4"
    assert second["boxes"] == [{"t": 0.0, "box": [0.25, 0.25, 0.75, 0.75], "label": "dog"}]
    rows, problems = read_manifest(out)
    assert len(rows) == 2 and not problems and Path(rows[0].video).is_file()


def test_coco_video_without_probe_needs_size_and_rate(tmp_path, clip):
    path = _vis(tmp_path, clip)
    info = from_coco_video(path, tmp_path / "videos", tmp_path / "a.jsonl", probe=False, fps=5)
    # video 2 gives no width/height in the JSON: unknown without probing
    assert any("video 2" in s and "unknown frame size" in s for s in info["skipped_files"])
    # times are not bounded without the clip's duration: frame 12 is kept
    boxes = _rows(tmp_path / "a.jsonl")[0]["boxes"]
    (late,) = [b for b in boxes if b["t"] == 2.4]
    assert late["label"] == "dog"
    assert late["box"] == pytest.approx([1 / 64, 1 / 48, 6 / 64, 6 / 48], abs=1e-6)


def test_coco_video_refuses_a_json_without_annotations(tmp_path):
    (tmp_path / "v").mkdir()
    path = tmp_path / "test.json"
    path.write_text(json.dumps({"videos": [], "categories": []}))
    with pytest.raises(ValueError, match="test.json: missing list 'annotations'"):
        from_coco_video(path, tmp_path / "v", tmp_path / "o.jsonl")


PBTXT = """label {
  name: "stand"
  label_id: 1
  label_type: PERSON_MOVEMENT
}
label {
  name: "sit"
  label_id: 2
  label_type: PERSON_MOVEMENT
}
"""


def test_read_label_map_parses_ava_pbtxt(tmp_path):
    (tmp_path / "ava.pbtxt").write_text(PBTXT)
    assert read_label_map(tmp_path / "ava.pbtxt") == {1: "stand", 2: "sit"}
    (tmp_path / "old.pbtxt").write_text('item {\n  name: "walk"\n  id: 14\n}\n')
    assert read_label_map(tmp_path / "old.pbtxt") == {14: "walk"}


def test_ava_rows_labels_times_and_reasons(tmp_path, clip):
    videos = tmp_path / "videos"
    _copy(clip, videos / "vidA.mp4")
    (videos / "vidC.mp4").write_bytes(b"not a video at all")
    (tmp_path / "ava.pbtxt").write_text(PBTXT)
    lines = [
        "vidA,900.5,0.1,0.2,0.5,0.6,1,0",
        "vidA,900.5,0.1,0.2,0.5,0.6,2,0",  # same person, second action: second label
        "vidA,900.5,0.1,0.2,0.5,0.6,2,0",  # exact duplicate: one box
        "vidA,901.0,0.1,0.2,1.2,0.6,1,1",  # outside, the only box at 1.0 s
        "vidA,903.0,0.1,0.2,0.5,0.6,1,0",  # 3.0 s: past the 2.0 s clip
        "vidA,900.5,0.5,0.5,0.9,0.9,99,2",  # action 99 is not in the label map
        "vidA,901.5,0.5,0.5,0.4,0.6,1,3",  # x2 <= x1
        "vidA,abc,0.1,0.2,0.5,0.6,1,0",
        "vidA,901.0",
        "vidB,900.5,0.1,0.2,0.5,0.6,1,0",
        "vidB,901.5,0.1,0.2,0.5,0.6,1,0",
        "vidC,900.5,0.1,0.2,0.5,0.6,1,0",
        "",
    ]
    (tmp_path / "ava.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "ava.jsonl"
    info = from_ava(
        tmp_path / "ava.csv", videos, out, label_map=tmp_path / "ava.pbtxt", time_offset=900
    )
    assert info["rows"] == 1 and info["labels"] == ["sit", "stand"] and info["boxes"] == 2
    assert info["skipped_box_reasons"] == {
        bi.NOT_A_BOX: 1,
        bi.EMPTY: 1,
        bi.OUTSIDE: 1,
        bi.TIME: 2,
        bi.UNKNOWN_LABEL: 1,
    }
    assert "ava.csv line 4: outside [0, 1]" in info["skipped_box_examples"][0]
    assert info["skipped"] == 2
    assert any("vidC.mp4" in s for s in info["skipped_files"])
    assert any("no video for vidB" in s and "(2 lines)" in s for s in info["skipped_files"])
    (row,) = _rows(out)
    assert row["boxes"] == [
        {"t": 0.5, "box": [0.1, 0.2, 0.5, 0.6], "label": "sit"},
        {"t": 0.5, "box": [0.1, 0.2, 0.5, 0.6], "label": "stand"},
    ]
    assert row["times"] == [0.5]


def test_ava_without_label_map_keeps_action_ids(tmp_path, clip):
    _copy(clip, tmp_path / "v" / "x.mp4")
    (tmp_path / "a.csv").write_text("x,0.5,0.1,0.1,0.2,0.2,12,0\n")
    info = from_ava(tmp_path / "a.csv", tmp_path / "v", tmp_path / "a.jsonl")
    assert info["labels"] == ["12"] and info["skipped_boxes"] == 0


def test_ava_with_no_usable_video_is_one_line_error(tmp_path):
    (tmp_path / "v").mkdir()
    (tmp_path / "a.csv").write_text("gone,0.5,0.1,0.1,0.2,0.2,12,0\n")
    with pytest.raises(ValueError) as e:
        from_ava(tmp_path / "a.csv", tmp_path / "v", tmp_path / "a.jsonl")
    assert "a.csv: no line matched a video" in str(e.value) and "no video for gone" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "box, t, duration, label, reason",
    [
        ([0.1, 0.1, 0.2, 0.2], 0.0, 1.0, "a", None),
        ([0.1, 0.1, 0.2], 0.0, None, "a", bi.NOT_A_BOX),
        ([0.1, 0.1, 0.2, float("nan")], 0.0, None, "a", bi.NOT_A_BOX),
        ([-0.01, 0.1, 0.2, 0.2], 0.0, None, "a", bi.OUTSIDE),
        ([0.2, 0.1, 0.2, 0.2], 0.0, None, "a", bi.EMPTY),
        ([0.1, 0.3, 0.2, 0.2], 0.0, None, "a", bi.EMPTY),
        ([0.1, 0.1, 0.2, 0.2], 1.0, 1.0, "a", bi.TIME),
        ([0.1, 0.1, 0.2, 0.2], -0.1, None, "a", bi.TIME),
        ([0.1, 0.1, 0.2, 0.2], 5.0, None, "a", None),  # unknown duration: not bounded
        ([0.1, 0.1, 0.2, 0.2], 0.0, None, None, bi.UNKNOWN_LABEL),
    ],
)
def test_box_problem_reasons(box, t, duration, label, reason):
    problem = bi.box_problem(box, t, duration, label)
    assert (problem[0] if problem else None) == reason
