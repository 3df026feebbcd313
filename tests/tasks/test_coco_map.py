"""COCO mAP through pycocotools against cases worked out by hand."""

import pytest

from vdg_tf.tasks.coco_map import coco_map

# 101-point interpolation: recall reached 0.5 with precision 1 -> points 0.00..0.50 are 1
HALF_RECALL_AP = 51 / 101


def gt(box, label="cat"):
    return {"box": box, "label": label}


def det(box, label="cat", score=0.9):
    return {"box": box, "label": label, "score": score}


def test_perfect_detections_score_one_and_print_nothing(capfd):
    truth = [[gt([0.1, 0.1, 0.5, 0.5]), gt([0.6, 0.2, 0.9, 0.8], "dog")], [gt([0, 0, 1, 1])]]
    preds = [[det(b["box"], b["label"]) for b in frame] for frame in truth]
    r = coco_map(truth, preds, frame_size=(320, 240))
    assert r["map"] == pytest.approx(1.0)
    assert r["map_50"] == pytest.approx(1.0) and r["map_75"] == pytest.approx(1.0)
    assert r["per_class_ap"] == {"cat": pytest.approx(1.0), "dog": pytest.approx(1.0)}
    out, _ = capfd.readouterr()
    assert out == ""  # pycocotools' "creating index..." and summary table are captured


def test_one_of_two_boxes_found_gives_half_recall_ap():
    truth = [[gt([0.1, 0.1, 0.3, 0.3])], [gt([0.5, 0.5, 0.9, 0.9])]]
    preds = [[det([0.1, 0.1, 0.3, 0.3])], []]
    r = coco_map(truth, preds, frame_size=(100, 100))
    assert r["map"] == pytest.approx(HALF_RECALL_AP)
    assert r["map_50"] == pytest.approx(HALF_RECALL_AP)


def test_box_at_iou_062_counts_at_050_not_at_075():
    # gt 50x50 px, prediction 50x31 px inside it: IoU 1550 / 2500 = 0.62, matched at the
    # thresholds 0.50, 0.55, 0.60 (3 of 10) with AP 1 each
    truth = [[gt([0.0, 0.0, 0.5, 0.5])]]
    preds = [[det([0.0, 0.0, 0.5, 0.31])]]
    r = coco_map(truth, preds, frame_size=(100, 100))
    assert r["map_50"] == pytest.approx(1.0)
    assert r["map_75"] == pytest.approx(0.0)
    assert r["map"] == pytest.approx(0.3)


def test_score_order_decides_precision():
    # a higher-scored false positive on a background frame ranks first: at recall 1 the
    # precision is 1/2, and interpolation carries 1/2 to every recall point
    truth = [[gt([0.1, 0.1, 0.4, 0.4])], []]
    preds = [[det([0.1, 0.1, 0.4, 0.4], score=0.5)], [det([0.2, 0.2, 0.6, 0.6], score=0.9)]]
    assert coco_map(truth, preds)["map"] == pytest.approx(0.5)
    preds[1][0]["score"] = 0.1  # ranked after the true positive: precision 1 up to recall 1
    assert coco_map(truth, preds)["map"] == pytest.approx(1.0)


def test_per_class_ap_and_wrong_label_is_a_miss():
    truth = [[gt([0.1, 0.1, 0.4, 0.4], "cat"), gt([0.5, 0.5, 0.9, 0.9], "dog")]]
    preds = [[det([0.1, 0.1, 0.4, 0.4], "cat"), det([0.5, 0.5, 0.9, 0.9], "bird")]]
    r = coco_map(truth, preds, labels=["cat", "dog", "bird"])
    assert r["per_class_ap"] == {"cat": pytest.approx(1.0), "dog": pytest.approx(0.0), "bird": None}
    assert r["map"] == pytest.approx(0.5)  # mean over classes with ground truth


def test_no_ground_truth_is_undefined_not_zero():
    r = coco_map([[]], [[det([0.1, 0.1, 0.2, 0.2])]], labels=["cat"])
    assert r == {"map": None, "map_50": None, "map_75": None, "per_class_ap": {"cat": None}}


def test_no_predictions_scores_zero():
    r = coco_map([[gt([0.1, 0.1, 0.2, 0.2])]], [[]])
    assert r["map"] == pytest.approx(0.0) and r["per_class_ap"] == {"cat": pytest.approx(0.0)}


def test_frame_sizes_per_frame_and_many_frames():
    truth = [[gt([0.1, 0.1, 0.4, 0.4])], [gt([0.2, 0.2, 0.5, 0.5])]]
    preds = [[det(f[0]["box"])] for f in truth]
    r = coco_map(truth, preds, frame_size=[(64, 48), (1920, 1080)])
    assert r["map"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "truth, preds, kwargs, message",
    [
        ([[gt([0.5, 0.1, 0.4, 0.4])]], [[]], {}, "ground_truth: frame 0 box 0: box"),
        ([[gt([0.1, 0.1, 0.4])]], [[]], {}, "four finite numbers"),
        (
            [[gt([0.1, 0.1, 0.4, 0.4])]],
            [[det([0.1, 0.1, 0.4, 0.4], "cta")]],
            {"labels": ["cat"]},
            "predictions: frame 0 box 0: label 'cta' not in labels (known: cat)",
        ),
        (
            [[gt([0.1, 0.1, 0.4, 0.4])]],
            [[det([0.1, 0.1, 0.4, 0.4], score=float("nan"))]],
            {},
            "score nan is not a finite number",
        ),
        ([[]], [[], []], {}, "predictions: 2 frames, ground truth has 1"),
        ([[]], [[]], {"frame_size": [(10, 10), (10, 10)]}, "frame_size: 2 sizes for 1 frames"),
        ([[]], [[]], {"frame_size": (0, 10)}, "frame_size: frame 0 size"),
    ],
)
def test_bad_input_is_one_line_naming_the_box(truth, preds, kwargs, message):
    with pytest.raises(ValueError, match=None) as e:
        coco_map(truth, preds, **kwargs)
    assert message in str(e.value) and "\n" not in str(e.value)
