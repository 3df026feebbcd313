"""Detection end to end: generated clips whose moving shapes carry their boxes train the
per-frame detector, `evaluate` reports COCO mAP, `predict` writes per-frame boxes, bad
boxes are skipped and counted, and tfmot's QAT takes the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import vdg_tf as vdg
from tests.helpers import vdg as run_vdg
from vdg_tf.config import Config
from vdg_tf.data.pipeline import SkipLog, usable_rows
from vdg_tf.data.sample_detection import DetectionSpec, make_detection_sample
from vdg_tf.manifest import parse_row, read_manifest, write_manifest
from vdg_tf.tasks import get_task
from vdg_tf.tasks.anchors import AnchorSpec, anchor_boxes, encode, xyxy_to_yxyx
from vdg_tf.tasks.detection import anchor_spec_of, boxes_from_outputs, match_anchors

MIN_MAP_50 = 0.5  # the slow test's floor on the evaluation split


def tiny_detection_config(**train) -> Config:
    """The tiny preset's detector (own small backbone, 64 px), one frame an example."""
    return Config.from_dict({
        "data": {
            "task": "detection", "batch_size": 8,
            "video": {"frames": 1, "size": 64, "resize": "stretch"},
            "augment": {"crop_scale": 1.0, "temporal_jitter": False},
        },
        "model": {"preset": "tiny", "modalities": ["video"]},
        "train": {"epochs": 2, "learning_rate": 0.003, **train},
    })  # fmt: skip


@pytest.fixture(scope="module")
def det_data(tmp_path_factory) -> dict:
    """Six short clips (160 x 120, 1 s at 8 fps, every other frame annotated)."""
    out = tmp_path_factory.mktemp("det") / "data"
    spec = DetectionSpec(width=160, height=120, seconds=1.0)
    return make_detection_sample(out, clips=6, seed=1, spec=spec, eval_fraction=0.34)


@pytest.fixture(scope="module")
def det_run(det_data, tmp_path_factory):
    """A tiny detector trained for one epoch (checkpoint on validation mAP); ~30-50 s."""
    out = tmp_path_factory.mktemp("det_run") / "run"
    return vdg.train(
        tiny_detection_config(epochs=1), det_data["manifest_train"], out, val_split=0.25,
        eval_data=det_data["manifest_eval"], progress=False,
        saved_model=True,  # as `vdg train` does: the named outputs keep their names
    )  # fmt: skip


# -- targets ------------------------------------------------------------------------------
def test_anchor_matching_on_a_hand_made_case():
    # box 0 is matched by anchors 0 and 1 (IoU 1 and 0.82); anchor 2 (IoU 0.43) is
    # ignored; box 1 overlaps no anchor by 0.4 but still gets its best one, anchor 3
    anchors = np.array(
        [
            [0.25, 0.25, 0.5, 0.5],  # exactly box 0
            [0.25, 0.30, 0.5, 0.5],  # box 0 shifted by 0.05: IoU 0.45/0.55 = 0.818
            [0.25, 0.45, 0.5, 0.5],  # shifted by 0.2: IoU 0.3/0.7 = 0.43 -> ignored
            [0.75, 0.75, 0.2, 0.2],  # far from box 0; overlaps box 1 a little
        ],
        np.float32,
    )
    boxes = np.array([[0.0, 0.0, 0.5, 0.5, 1], [0.6, 0.6, 1.0, 1.0, 0], [0, 0, 0, 0, -1]])
    enc, cls, pos, neg = (t.numpy() for t in match_anchors(tf.constant(boxes[None], tf.float32),
                                                            tf.constant(anchors)))  # fmt: skip
    assert pos[0].tolist() == [True, True, False, True]
    assert neg[0].tolist() == [False, False, False, False]
    assert cls[0][[0, 1, 3]].tolist() == [1, 1, 0]
    np.testing.assert_allclose(enc[0, 0], [0, 0, 0, 0], atol=1e-5)
    np.testing.assert_allclose(enc[0, 3], encode(boxes[1:2, :4], anchors[3:4])[0], atol=1e-4)
    # a background frame (padding only): every anchor is negative
    _, _, pos, neg = match_anchors(tf.constant([[[0, 0, 0, 0, -1.0]]]), tf.constant(anchors))
    assert not pos.numpy().any() and neg.numpy().all()


def test_boxes_from_outputs_decodes_and_suppresses_per_class():
    spec = AnchorSpec((64, 64), strides=(16,), sizes=(24.0,), aspect_ratios=(1.0,))
    anchors = anchor_boxes(spec)  # 16 anchors
    truth = np.array([[0.1, 0.1, 0.45, 0.4]])  # xyxy
    enc = np.zeros((len(anchors), 4), np.float32)
    scores = np.zeros((len(anchors), 2), np.float32)
    enc[:3] = encode(xyxy_to_yxyx(np.repeat(truth, 3, 0)), anchors[:3])
    scores[0, 0], scores[1, 0], scores[2, 1] = 0.9, 0.8, 0.7  # a duplicate, another class
    found = boxes_from_outputs(enc, scores, anchors, ["cat", "dog"])
    assert [(f["label"], round(f["score"], 2)) for f in found] == [("cat", 0.9), ("dog", 0.7)]
    np.testing.assert_allclose(found[0]["box"], truth[0], atol=1e-5)
    assert boxes_from_outputs(enc, scores, anchors, ["cat", "dog"], score_threshold=0.95) == []


def test_report_is_coco_map_on_a_hand_computed_case():
    task = get_task(tiny_detection_config().data)
    anchors, labels = task.anchors, ["circle", "square"]
    truth = np.array([[[0.1, 0.1, 0.5, 0.5, 0]], [[0.5, 0.5, 0.9, 0.9, 1]]], np.float32)  # yxyx
    out = np.zeros((2, 1, len(anchors), 4 + 2), np.float32)
    out[0, 0, 0, :4] = encode(truth[0, :, :4], anchors[:1])[0]
    out[0, 0, 0, 4] = 0.9  # frame 0's box found; frame 1's missed
    report = task.report(truth, out, labels)
    assert report["map_50"] == pytest.approx(0.5)  # the mean of circle's 1 and square's 0
    assert report["per_class_ap"] == {"circle": pytest.approx(1.0), "square": 0.0}


# -- bad boxes ----------------------------------------------------------------------------
def test_bad_boxes_are_skipped_and_counted_by_reason_never_clipped(tmp_path, det_data):
    video = Path(det_data["manifest_train"]).parent / "clips" / "00003.mp4"
    good = {"t": 0.25, "box": [0.1, 0.1, 0.4, 0.5], "label": "circle"}
    rows = [{
        "video": str(video), "times": [0.0, 0.25, 0.5, 0.75],
        "boxes": [
            good,
            {"t": 0.25, "box": [0.5, 0.5, 1.2, 0.9], "label": "circle"},  # outside [0, 1]
            {"t": 0.5, "box": [0.6, 0.2, 0.3, 0.4], "label": "square"},  # x2 <= x1
            {"t": 9.0, "box": [0.1, 0.1, 0.2, 0.2], "label": "square"},  # past the end
            {"t": 0.75, "box": [0.1, 0.1, 0.2, 0.2], "label": "dragon"},  # unknown label
        ],
    }]  # fmt: skip
    write_manifest(tmp_path / "m.jsonl", rows)
    cfg = tiny_detection_config().data
    skips = SkipLog()
    kept = usable_rows(read_manifest(tmp_path / "m.jsonl")[0], cfg, ["circle", "square"],
                       skips, training=True)  # fmt: skip
    assert skips.part_reasons == {
        "outside [0, 1]": 1, "time outside the clip": 1, "unknown label": 1,
        "x2 <= x1 or y2 <= y1": 1,
    }  # fmt: skip
    # 0.0 is background (no box), 0.25 keeps its good box only; 0.5 and 0.75 held only bad
    # boxes, so they are no background frames either
    assert [(r.times, r.boxes) for r in kept] == [
        ((0.0,), ()),
        ((0.25,), ((0.25, (0.1, 0.1, 0.4, 0.5), "circle"),)),
    ]
    assert skips.count == 0  # the row itself is kept


def test_detection_refuses_crops_and_a_frame_resize_that_moves_boxes():
    cfg = tiny_detection_config()
    with pytest.raises(ValueError, match="resize: task detection needs 'stretch'"):
        get_task(cfg.with_overrides({"data": {"video": {"resize": "crop"}}}).data)
    with pytest.raises(ValueError, match="crop_scale: 1.0 and flip: false"):
        get_task(cfg.with_overrides({"data": {"augment": {"flip": True}}}).data)


def test_a_row_without_boxes_is_a_row_problem():
    row = parse_row({"video": "a.mp4", "label": "x"}, 1, Path("."))
    assert "missing key 'boxes'" in get_task(tiny_detection_config().data).problem(row, [])


# -- the model, training, evaluation and prediction ---------------------------------------
def test_trained_run_keeps_the_frame_detector_contract(det_run, det_data):
    bundle = vdg.Bundle.load(det_run.out)
    spec = anchor_spec_of(bundle)
    assert spec == anchor_spec_of(bundle.config) and bundle.info["anchors"] == spec.to_dict()
    a, c = len(anchor_boxes(spec)), len(bundle.labels)
    detector = bundle.model.get_layer("frame_detector")
    assert detector.input_shape == (None, 64, 64, 3)
    assert [tuple(s) for s in detector.output_shape] == [(None, a, 4), (None, a, c)]
    assert bundle.model.output_shape == {
        "box_encodings": (None, 1, a, 4), "class_scores": (None, 1, a, c)
    }  # fmt: skip
    assert det_run.metrics["checkpoint"]["metric"] == "val_map"
    assert det_run.metrics["checkpoint"]["split"] == "val"


def test_evaluate_json_holds_coco_map_and_per_class_ap(det_run, det_data, capfd):
    rc, out, _ = run_vdg(capfd, "evaluate", det_run.out, "--data", det_data["manifest_eval"],
                         "--json")  # fmt: skip
    assert rc == 0
    report = json.loads(out)
    assert {"map", "map_50", "map_75", "per_class_ap", "skipped"} <= set(report)
    assert set(report["per_class_ap"]) == set(det_run.labels)
    rc, out, _ = run_vdg(capfd, "evaluate", det_run.out, "--data", det_data["manifest_eval"])
    assert "map_50" in out and "class" in out  # the table


def test_predict_writes_one_record_per_sampled_frame(det_run, det_data):
    video = str(Path(det_data["manifest_eval"]).parent / "clips" / "00000.mp4")
    run = vdg.predict(det_run.out, [video], stride=0.25)
    assert run.records and all(set(r) == {"source", "t", "boxes"} for r in run.records)
    times = [r["t"] for r in run.records]
    assert times == sorted(times) and np.allclose(np.diff(times), 0.25)
    for r in run.records:
        for b in r["boxes"]:
            assert set(b) == {"box", "label", "score"} and b["label"] in det_run.labels


def test_predict_cli_prints_a_line_per_frame(det_run, det_data, capfd):
    video = Path(det_data["manifest_eval"]).parent / "clips" / "00001.mp4"
    rc, out, _ = run_vdg(capfd, "predict", det_run.out, video, "--stride", "0.5")
    assert rc == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("00001.mp4  00:00.") for line in lines)


def test_qat_wraps_the_frame_detector_and_fine_tunes(det_run, det_data):
    from vdg_tf.compression.quantize import QATConfig, qat
    from vdg_tf.data.features import TextTokenizer
    from vdg_tf.data.pipeline import make_dataset
    from vdg_tf.training.trainer import compile_classifier, with_head_targets

    cfg = det_run.config
    rows = read_manifest(det_data["manifest_train"])[0]
    ds = make_dataset(rows, cfg.data, det_run.labels, TextTokenizer.fit([""], cfg.data.text),
                      training=True).take(1)  # fmt: skip
    pairs = with_head_targets(ds, det_run.model.output_names, det_run.task)
    result = qat(
        det_run.model, pairs, QATConfig(epochs=1, preserve_sparsity=False),
        lambda m, steps: compile_classifier(m, cfg, steps, task=det_run.task),
    )  # fmt: skip
    inner = result.model.get_layer("frame_detector")
    assert sum(type(layer).__name__ == "QuantizeWrapperV2" for layer in inner.layers) > 20
    assert result.float_layers == []
    x = next(iter(ds))[0]
    out = result.model({"video": x["video"]})
    assert np.isfinite(out["class_scores"].numpy()).all()


def test_make_sample_data_detection_cli(tmp_path, capfd):
    rc, out, _ = run_vdg(capfd, "make-sample-data", tmp_path / "d", "--task", "detection",
                         "--clips", "2", "--size", "96x64", "--json")  # fmt: skip
    assert rc == 0
    info = json.loads(out)
    assert info["labels"] and info["frames"] == 16  # 2 s at 8 fps, every other frame
    row = json.loads(Path(info["manifest_train"]).read_text().splitlines()[0])
    assert set(row) == {"video", "boxes", "times"}
    for b in row["boxes"]:
        x1, y1, x2, y2 = b["box"]
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1 and b["t"] in row["times"]


@pytest.mark.slow
def test_detector_learns_boxes_on_generated_data(tmp_path):
    """A smaller recipe than the benchmark's (tiny own backbone, 100 clips, 50 epochs):
    a few minutes on 2 cores. The figure the issue asks for (mAP@0.5 >= 0.8) is the
    `small` preset's run in BENCHMARKS.md, "Detection"; this guards that training learns."""
    data = make_detection_sample(tmp_path / "d", clips=100, seed=3)
    cfg = tiny_detection_config(epochs=50, patience=50).with_overrides(
        {"data": {"video": {"size": 96}}, "model": {"width": 32}}
    )
    r = vdg.train(cfg, data["manifest_train"], tmp_path / "run", val_split=0.2,
                  eval_data=data["manifest_eval"], progress=False)  # fmt: skip
    assert r.metrics["eval"]["map_50"] >= MIN_MAP_50
