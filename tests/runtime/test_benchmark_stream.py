"""`vdg benchmark stream`: every figure from one run over a real video, float32 and int8,
one core and all cores; incremental vs full re-inference where the model splits per frame,
and one line saying why not where it does not."""

import pytest

from tests.runtime.test_incremental import train_streamable
from vdg_tf.bench.stream import format_stream_benchmark, run_stream_benchmark


def _check_passes(r: dict, kinds: set[str]) -> dict:
    passes = {k: v for k, v in r.items() if isinstance(v, dict) and "windows" in v}
    assert {k.rsplit("_", 1)[0] for k in passes} == kinds
    for name, p in passes.items():
        assert p["windows"] == 45 and p["seconds_of_video"] == 24.0, name  # (24 - 2) / 0.5 + 1
        assert p["realtime_factor"] > 0 and p["wall_s"] > 0
        assert (p["model_ms_per_window"] > 0) == (not name.startswith("decode_only"))
    assert r["full_ms_per_window"] == r["edge-int8_1core"]["ms_per_window"]
    assert "real time" in format_stream_benchmark(r)
    return passes


def test_stream_benchmark_measures_every_variant(strong_run, long_video):
    r = run_stream_benchmark(strong_run.out, long_video["mp4"], window=2.0, log=lambda m: None)
    assert r["stride_s"] == 0.5 and r["incremental_ms_per_window"] is None
    assert "mixes neighbouring frames" in r["incremental"]
    _check_passes(r, {"decode_only", "float32", "edge-int8"})
    assert "incremental (ring-buffer) inference: off" in format_stream_benchmark(r)


@pytest.mark.slow
def test_stream_benchmark_compares_incremental_with_full(sample_data, long_video, tmp_path):
    run = train_streamable(sample_data, tmp_path / "streamable")
    r = run_stream_benchmark(run.out, long_video["mp4"], window=2.0, log=lambda m: None)
    assert r["incremental"] == "on" and r["incremental_ms_per_window"] > 0
    kinds = {"decode_only", "float32", "edge-int8", "float32_incremental", "edge-int8_incremental"}
    passes = _check_passes(r, kinds)
    inc = passes["edge-int8_incremental_1core"]
    assert inc["frames_encoded"] == 4 + 44  # 4 frames a window, one new every 0.5 s
    assert inc["encode_frame_ms"] > 0 and inc["head_ms"] > 0 and inc["encode_audio_ms"] > 0
    for target in ("float32", "edge-int8"):
        c = r[f"{target}_incremental_vs_full"]
        assert c["model_ms_ratio"] > 0 and c["top1_agreement"] >= 0.9
    assert r["float32_incremental_vs_full"]["max_abs_diff"] < 1e-4
    assert "top-1 agreement" in format_stream_benchmark(r)
