"""Detection at predict time on real files: a contract detector (tests/export/toy_detector.py)
exported by `vdg.export` to a `.tflite` with its sidecars, then `predict` on a generated
mp4 gives per-frame boxes, tracks that follow the object, and a drawn video that decodes
back with the boxes where they were found. The tracker alone on hand-made sequences."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from tests.export.toy_detector import LABELS, SIZE, SPEC, video_model
from tests.helpers import vdg
from vdg_tf.bundle import Bundle
from vdg_tf.config import Config, DataConfig, TextSpec, VideoSpec
from vdg_tf.data.features import TextTokenizer
from vdg_tf.data.sample import write_clip
from vdg_tf.runtime.boxes_draw import PALETTE, BoxVideoWriter, colour
from vdg_tf.runtime.predict import predict
from vdg_tf.runtime.tracks import IoUTracker

W, H, FRAMES, FPS = 64, 64, 8, 8


def _bundle() -> Bundle:
    data = DataConfig(
        task="detection",
        video=VideoSpec(frames=2, size=SIZE, resize="stretch"),
        text=TextSpec(tokenizer="byte"),
        augment=None,
    )
    cfg = Config(data=data)
    return Bundle(cfg, list(LABELS), TextTokenizer(cfg.data.text, None), video_model(),
                  info={"anchors": SPEC.to_dict()})  # fmt: skip


def _moving_square() -> np.ndarray:
    """Frames [8, 64, 64, 3]: a red 16-pixel square moving right 4 px a frame from x=8."""
    frames = np.full((FRAMES, H, W, 3), 20, np.uint8)
    for i in range(FRAMES):
        frames[i, 24:40, 8 + 4 * i : 24 + 4 * i, 0] = 240
    return frames


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """The toy detector exported to float32 (with sidecars) and a clip of a moving square."""
    import vdg_tf as vdg

    folder = tmp_path_factory.mktemp("detect")
    write_clip(folder / "square.mp4", _moving_square(), FPS)
    r = vdg.export(_bundle(), "float32", folder / "det.tflite")
    return {"model": r.path, "video": folder / "square.mp4", "folder": folder}


def test_predict_gives_per_frame_boxes_and_tracks(files):
    run = predict(files["model"], [str(files["video"])], track=True, box_threshold=0.5)
    assert run.frames == FRAMES and len(run.records) == FRAMES
    assert [r["t"] for r in run.records] == pytest.approx([i / FPS for i in range(FRAMES)])
    for i, record in enumerate(run.records):
        red = [b for b in record["boxes"] if b["label"] == "red"]
        assert red and not [b for b in record["boxes"] if b["label"] == "blue"]
        x1, y1, x2, y2 = red[0]["box"]
        centre = ((x1 + x2) / 2 * W, (y1 + y2) / 2 * H)
        assert centre == pytest.approx((16 + 4 * i, 32), abs=6)  # within a 4 px cell + coding
    # the toy's boxes are its anchors: a box found where one was a frame before keeps its id
    for before, now in zip(run.records, run.records[1:], strict=False):
        ids = {tuple(b["box"]): b["track"] for b in before["boxes"]}
        kept = [(ids[tuple(b["box"])], b["track"]) for b in now["boxes"] if tuple(b["box"]) in ids]
        assert kept and all(a == b for a, b in kept)


def test_keras_run_and_tflite_agree(files):
    lite = predict(files["model"], [str(files["video"])], box_threshold=0.5).records
    keras = predict(_bundle(), [str(files["video"])], box_threshold=0.5).records
    for a, b in zip(lite, keras, strict=True):
        assert a["boxes"][0]["label"] == b["boxes"][0]["label"]
        assert a["boxes"][0]["score"] == pytest.approx(b["boxes"][0]["score"], abs=1e-3)


def test_draw_writes_a_video_with_boxes_at_their_edges(files, capfd):
    out = files["folder"] / "drawn.mp4"
    rc, stdout, err = vdg(capfd, "predict", files["model"], files["video"], "--draw", out,
                          "--track", "--box-threshold", "0.5", "--json")  # fmt: skip
    assert rc == 0, err
    records = [json.loads(line) for line in stdout.splitlines()]
    assert len(records) == FRAMES and all("track" in b for r in records for b in r["boxes"])
    with av.open(str(out)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == FRAMES and decoded[0].shape == (H, W, 3)
    for record, image in zip(records, decoded, strict=True):
        top = record["boxes"][-1]  # drawn last: nothing covers its outline
        x1, y1, x2, y2 = (round(v * (W - 1)) for v in top["box"])
        want = np.array(colour(top), float)
        right_edge = image[y1 + 2 : y2 - 1, x2].astype(float)
        assert np.abs(np.median(right_edge, axis=0) - want).max() < 40  # H.264 shifts colours
        inside = image[(y1 + y2) // 2, (x1 + x2) // 2].astype(float)
        assert np.abs(inside - want).max() > 60  # the outline, not a filled box
    assert not list(files["folder"].glob(".drawn*"))  # no temp file left


def test_draw_refuses_a_classifier_and_many_sources(files, tmp_path):
    with pytest.raises(ValueError, match="--draw: draws one video; got 2 sources"):
        predict(files["model"], [str(files["video"])] * 2, draw=tmp_path / "x.mp4")
    with pytest.raises(ValueError, match="give a .mp4, .mkv, .mov or .webm file"):
        BoxVideoWriter(tmp_path / "x.gif", 8)


def _box(x: float, y: float, label: str = "car", side: float = 0.2) -> dict:
    return {"box": [x, y, x + side, y + side], "label": label, "score": 0.9}


def test_crossing_objects_keep_their_ids():
    tracker = IoUTracker(iou_threshold=0.2)
    ids = []
    for i in range(11):  # two cars of one label cross: one moves right, one left
        a, b = 0.1 + 0.05 * i, 0.6 - 0.05 * i
        found = tracker.update([_box(a, 0.40), _box(b, 0.44)])
        ids.append([f["track"] for f in found])
    assert ids == [[1, 2]] * 11


def test_tracks_end_after_missed_frames_and_ids_are_not_reused():
    tracker = IoUTracker(max_missed=2)
    assert tracker.update([_box(0.1, 0.1)])[0]["track"] == 1
    for _ in range(2):
        tracker.update([])
    assert tracker.update([_box(0.1, 0.1)])[0]["track"] == 1  # back within 2 missed frames
    for _ in range(3):
        tracker.update([])
    assert tracker.update([_box(0.1, 0.1)])[0]["track"] == 2  # that track ended
    other = tracker.update([_box(0.1, 0.1, "person")])
    assert other[0]["track"] == 3  # a box of another label starts its own track
    assert PALETTE[0] != PALETTE[1]


def _manifest(files) -> str:
    """The square clip with its true box at every frame, one bad box and one empty time."""
    boxes = [{"t": i / FPS, "box": [(8 + 4 * i) / W, 24 / H, (24 + 4 * i) / W, 40 / H],
              "label": "red"} for i in range(FRAMES - 1)]  # fmt: skip
    boxes.append({"t": 0.5, "box": [0.5, 0.5, 0.4, 0.6], "label": "red"})  # x2 <= x1
    row = {"video": "square.mp4", "boxes": boxes, "times": [i / FPS for i in range(FRAMES)]}
    path = files["folder"] / "boxes.jsonl"
    path.write_text(json.dumps(row) + "\n")
    return str(path)


def test_box_map_of_the_export_equals_the_keras_models(files):
    from vdg_tf.runtime.box_map import box_map

    data = _manifest(files)
    lite, keras = box_map(files["model"], data), box_map(_bundle(), data)
    assert lite["frames"] == FRAMES and lite["skipped_box_reasons"] == {"x2 <= x1 or y2 <= y1": 1}
    # the toy finds the square with 4-6 anchor boxes of equal score that NMS keeps (IoU 0.33
    # to each other), one of them a true positive: a low AP, but the same in LiteRT and Keras
    assert lite["map_50"] > 0.15
    assert lite["map_50"] == pytest.approx(keras["map_50"], abs=1e-3)
    assert lite["per_class_ap"]["blue"] is None  # no blue box in the truth


def test_stride_detects_fewer_frames_and_draws_them_all(files, tmp_path):
    out = tmp_path / "strided.mp4"
    run = predict(files["model"], [str(files["video"])], stride=0.25, draw=out)
    assert [r["t"] for r in run.records] == pytest.approx([0.0, 0.25, 0.5, 0.75])
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == FRAMES


def test_evaluate_a_detection_tflite_reports_its_map(files, capfd):
    data = _manifest(files)
    rc, stdout, err = vdg(capfd, "evaluate", files["model"], "--data", data, "--json")
    assert rc == 0, err
    r = json.loads(stdout)
    assert r["frames"] == FRAMES and r["map_50"] > 0.15 and r["skipped"] == 0
    rc, stdout, err = vdg(capfd, "evaluate", files["model"], "--data", data)
    assert rc == 0 and "map_50" in stdout


def test_a_pipeline_scores_a_detection_export_by_map(files):
    from types import SimpleNamespace

    from vdg_tf.export.api import ExportResult
    from vdg_tf.pipeline.context import RunContext

    exported = ExportResult(files["model"], files["model"].stat().st_size, "float32", 1, 0.0)
    run = SimpleNamespace(inputs=SimpleNamespace(eval_data=_manifest(files)))
    run.detector_entry = lambda e: RunContext.detector_entry(run, e)
    entry = RunContext.tflite_entry(run, exported)
    assert entry["metric"] == "map" and entry["map_50"] > 0.15 and entry["latency_ms"] > 0
