"""`vdg benchmark stream`: every figure from one run over a real video, float32 and int8,
one core and all cores; incremental inference is reported missing, not guessed."""

from vdg_tf.bench.stream import format_stream_benchmark, run_stream_benchmark


def test_stream_benchmark_measures_every_variant(strong_run, long_video):
    r = run_stream_benchmark(strong_run.out, long_video["mp4"], window=2.0, log=lambda m: None)
    assert r["stride_s"] == 0.5 and r["incremental_ms_per_window"] is None
    passes = {k: v for k, v in r.items() if isinstance(v, dict)}
    assert {k.rsplit("_", 1)[0] for k in passes} == {"decode_only", "float32", "edge-int8"}
    for name, p in passes.items():
        assert p["windows"] == 45 and p["seconds_of_video"] == 24.0, name  # (24 - 2) / 0.5 + 1
        assert p["realtime_factor"] > 0 and p["wall_s"] > 0
        assert (p["model_ms_per_window"] > 0) == (not name.startswith("decode_only"))
    assert r["full_ms_per_window"] == r["edge-int8_1core"]["ms_per_window"]
    assert "real time" in format_stream_benchmark(r)
