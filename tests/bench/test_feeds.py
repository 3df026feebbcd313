"""`vdg benchmark feeds`: a short real video played as 2 live feeds, every figure present
(about 20 s with the shared streamable model trained)."""

from __future__ import annotations

import json

from tests.helpers import vdg
from tests.runtime.conftest import render_long_video
from tests.runtime.test_incremental import train_streamable


def test_benchmark_two_feeds(sample_data, tmp_path_factory, capfd):
    run = train_streamable(sample_data, tmp_path_factory.mktemp("streamable"))
    video = tmp_path_factory.mktemp("bench_feeds") / "four.mp4"
    render_long_video(video, classes=(2, 5), renders=1, seed=6)
    rc, out, err = vdg(capfd, "benchmark", "feeds", run.out, video, "--feeds", "2",
                       "--seconds", "3", "--window", "2", "--stride", "0.5", "--decode-nice", "0",
                       "--json")  # fmt: skip
    assert rc == 0, err[-2000:]
    r = json.loads(out)
    assert r["max_realtime_feeds"] is None and r["fps"] == 12 and r["stride"] == 0.5
    (trial,) = r["runs"]
    assert trial["feeds"] == 2 and trial["failed"] == 0
    assert {"sent_to_predicted_p50_ms", "sent_to_predicted_p95_ms", "cpu_cores_decode"} <= set(
        trial
    )
    # 3 s of each feed: windows at 0, 0.5 and 1.0 s, answered or dropped
    assert trial["windows"] + trial["dropped"] == 6
    assert r["decode_nice"] == 0  # the decoders at the model's priority, as asked
    assert sum(trial["drops_by_window_start"].values()) == trial["dropped"]
    assert trial["cpu_cores"] > 0 and isinstance(trial["realtime"], bool)
    if trial["windows"]:
        assert 0 < trial["latency_p50_ms"] <= trial["latency_p95_ms"]
        assert trial["cpu_ms_per_window"] > 0 and r["cpu_bound_feeds"] >= 1
        assert 0 < trial["model_call_ms_p50"] <= trial["model_call_ms_max"]
