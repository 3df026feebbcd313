"""`vdg run`'s report names the fastest export here (the one `--target auto` would pick)."""

from vdg_tf.pipeline.report import fastest_stage


def test_fastest_stage_is_the_quickest_export_within_tolerance():
    """A fake timing table: the quickest export that disagrees too often is passed over."""
    stages = {
        "keras_float": {"accuracy": 0.9, "path": "m.keras"},
        "tflite_float32": {
            "latency_ms": 1.1,
            "top1_agreement": 1.0,
            "path": "x/model_float32.tflite",
        },
        "tflite_int8": {
            "latency_ms": 0.4,
            "top1_agreement": 0.95,
            "path": "x/model_edge-int8.tflite",
        },
        "tflite_fp16": {
            "latency_ms": 0.9,
            "top1_agreement": 0.995,
            "path": "x/model_gpu-fp16.tflite",
        },
        "sweep_s00_int8": {
            "latency_ms": 0.1,
            "top1_agreement": 1.0,
            "path": "s/model_edge-int8.tflite",
        },
    }
    best = fastest_stage(stages)
    assert (best["stage"], best["target"], best["latency_ms"]) == ("tflite_fp16", "gpu-fp16", 0.9)
    assert [c["within_tolerance"] for c in best["candidates"]] == [True, False, True]
    assert fastest_stage(stages, tolerance=0.9)["stage"] == "tflite_int8"
    assert fastest_stage({"keras_float": {"path": "m.keras"}}) is None
