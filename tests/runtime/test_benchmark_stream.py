"""`vdg benchmark stream`: every figure from one run over a real video, float32 and int8,
one core and all cores; incremental vs full re-inference where the model splits per frame,
and one line saying why not where it does not; a `.tflite` is measured as it is."""

import json

import pytest

from tests.helpers import vdg
from tests.runtime.test_incremental import train_streamable
from vdg_tf.bench.stream import StreamBenchmark, run_stream_benchmark
from vdg_tf.export import export


def _check_passes(r: StreamBenchmark, kinds: set[str], main: str = "edge-int8") -> dict:
    assert {k.rsplit("_", 1)[0] for k in r.passes} == kinds
    for name, p in r.passes.items():
        assert p["windows"] == 45 and p["seconds_of_video"] == 24.0, name  # (24 - 2) / 0.5 + 1
        assert p["realtime_factor"] > 0 and p["wall_s"] > 0
        assert (p["model_ms_per_window"] > 0) == (not name.startswith("decode_only"))
    assert r.full_ms_per_window == r.passes[f"{main}_1core"]["ms_per_window"]
    assert "real time" in r.format()
    # the cost of segments from the pass's window scores is measured and shown
    assert r.segments_ms_per_window > 0 and "--segments adds" in r.format()
    return r.passes


def test_stream_benchmark_measures_every_variant(strong_run, long_video):
    r = run_stream_benchmark(strong_run.out, long_video["mp4"], window=2.0)
    assert r.stride_s == 0.5 and r.incremental_ms_per_window is None
    assert "mixes neighbouring frames" in r.incremental
    _check_passes(r, {"decode_only", "float32", "edge-int8"})
    assert "incremental (ring-buffer) inference: off" in r.format()


def test_a_plain_tflite_gets_whole_window_figures(strong_run, long_video, capfd, tmp_path):
    """It used to end in AttributeError: the benchmark took run folders only."""
    path = export(strong_run.out, "float32", tmp_path / "m.tflite").path
    rc, out, err = vdg(capfd, "benchmark", "stream", path, long_video["mp4"], "--window", "2",
                       "--json")  # fmt: skip
    assert rc == 0, err
    r = json.loads(out)
    assert r["model"] == str(path) and r["incremental_ms_per_window"] is None
    assert "no incremental signatures" in r["incremental"] and not r["incremental_vs_full"]
    assert {k.rsplit("_", 1)[0] for k in r["passes"]} == {"decode_only", "tflite"}
    assert r["full_ms_per_window"] == r["passes"]["tflite_1core"]["ms_per_window"] > 0
    pre = export(strong_run.out, "float32", tmp_path / "pre.tflite", preprocess=True).path
    rc, _, err = vdg(capfd, "benchmark", "stream", pre, long_video["mp4"])
    assert rc == 2 and "a --preprocess export" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_stream_benchmark_compares_incremental_with_full(sample_data, long_video, tmp_path):
    run = train_streamable(sample_data, tmp_path / "streamable")
    r = run_stream_benchmark(run.out, long_video["mp4"], window=2.0)
    assert r.incremental == "on" and r.incremental_ms_per_window > 0
    kinds = {"decode_only", "float32", "edge-int8", "float32_incremental", "edge-int8_incremental"}
    passes = _check_passes(r, kinds)
    inc = passes["edge-int8_incremental_1core"]
    assert inc["frames_encoded"] == 4 + 44  # 4 frames a window, one new every 0.5 s
    assert inc["encode_frame_ms"] > 0 and inc["head_ms"] > 0 and inc["encode_audio_ms"] > 0
    for target in ("float32", "edge-int8"):
        c = r.incremental_vs_full[target]
        assert c["model_ms_ratio"] > 0 and c["top1_agreement"] >= 0.9
    assert r.incremental_vs_full["float32"]["max_abs_diff"] < 1e-4
    assert "top-1 agreement" in r.format()
    # an incremental .tflite, as it is: both figures
    path = export(run.out, "float32", tmp_path / "inc.tflite", incremental=True).path
    r = run_stream_benchmark(path, long_video["mp4"], window=2.0)
    _check_passes(r, {"decode_only", "tflite", "tflite_incremental"}, main="tflite")
    assert r.incremental_vs_full["tflite"]["max_abs_diff"] < 1e-4
    assert r.incremental_ms_per_window == r.passes["tflite_incremental_1core"]["ms_per_window"]
