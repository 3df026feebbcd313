"""tf.data service: training reads `vdg preprocess` shards through a dispatcher and workers.

TensorFlow's service servers take a port, not an interface: they listen on every
interface of this machine, on free ports (0), and clients reach them as localhost. Each
test stops the servers it started.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from tests.helpers import tiny_config, vdg
from vdg_tf.config import Config, ConfigError
from vdg_tf.data.features import TextTokenizer
from vdg_tf.data.records import preprocess, read_index
from vdg_tf.data.service import service_stream
from vdg_tf.training.trainer import train

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shards(sample_data, tmp_path_factory):
    """The training split decoded once into 6 shards (the files the dispatcher hands out)."""
    out = tmp_path_factory.mktemp("shards")
    preprocess(sample_data["manifest_train"], out, tiny_config().data, shards=6, progress=False)
    return out


def _with_service(config: Config, address: str) -> Config:
    return config.with_overrides({"data": {"service": address}}, where="test")


def test_config_refuses_a_service_that_is_not_an_address():
    with pytest.raises(ConfigError, match=r"data\.service: expected grpc://HOST:PORT"):
        Config.from_dict({"data": {"service": "localhost:5050"}})


def test_a_manifest_with_the_service_set_says_to_preprocess_first(sample_data, tmp_path, capfd):
    config = tmp_path / "svc.yaml"
    _with_service(tiny_config(1), "grpc://localhost:5050").save(config)
    run = tmp_path / "run"
    rc, out, err = vdg(capfd, "train", "--data", sample_data["manifest_train"], "--config",
                       config, "--out", run)  # fmt: skip
    assert rc == 2 and out == ""
    line = err.strip().splitlines()[-1]
    assert "data.service" in line and "run `vdg preprocess" in line
    assert not run.exists()  # refused before anything was written


@pytest.fixture
def servers():
    """A dispatcher and 2 workers in this process (a TensorFlow start each would cost more
    than what they serve); stopped after the test."""
    service = tf.data.experimental.service
    dispatcher = service.DispatchServer(service.DispatcherConfig(port=0))
    address = dispatcher.target.split("://")[1]
    workers = [
        service.WorkerServer(service.WorkerConfig(dispatcher_address=address, port=0))
        for _ in range(2)
    ]
    yield dispatcher
    for w in workers:
        w.stop()
    dispatcher.stop()


def test_the_service_stream_yields_augmented_model_inputs(servers, shards):
    cfg = _with_service(tiny_config(), servers.target).data
    index = read_index(shards, cfg)
    tokenizer = TextTokenizer.fit(index["texts"], cfg.text)
    stream = service_stream(shards, cfg, index["labels"], tokenizer)
    batches = list(stream.take(8))  # more than one epoch (48 clips) of batches of <= 8
    assert servers._num_workers() == 2
    inputs, labels = batches[0]
    assert set(inputs) == {"video", "audio", "text", "video_mask", "audio_mask", "text_mask"}
    assert inputs["video"].shape[1:] == (4, 32, 32, 3) and inputs["video"].dtype == tf.float32
    assert all(0 < len(y) <= 8 for _, y in batches)
    assert {int(v) for _, y in batches for v in y} <= set(range(len(index["labels"])))


@pytest.mark.slow  # ~25-50 s on 2 shared cores: a tiny model trained for one epoch
def test_trains_from_a_dispatcher_and_two_workers(servers, shards, tmp_path):
    r = train(_with_service(tiny_config(1), servers.target), shards, tmp_path / "run",
              progress=False)  # fmt: skip
    assert servers._num_workers() == 2
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1
    assert (r.out / "model.keras").is_file() and len(r.labels) == 8


def _start(*args: str) -> tuple[subprocess.Popen, str]:
    """`vdg data-service ARGS` as its own process; (process, its grpc:// address) once it
    says it is listening."""
    p = subprocess.Popen(
        [sys.executable, "-m", "vdg_tf.cli", "data-service", *args, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    for line in p.stderr:
        found = re.search(r"listening at (grpc://\S+)", line)
        if found:
            return p, found.group(1)
    p.wait()
    raise AssertionError(f"vdg data-service {' '.join(args)} exited {p.returncode} unstarted")


@pytest.mark.slow  # ~100 s on 2 shared cores: three TensorFlow processes start, then training
def test_cli_servers_serve_training_and_stop_on_ctrl_c(shards, tmp_path):
    """`vdg data-service dispatcher` and two `worker`s as the user runs them; Ctrl-C stops
    each cleanly (exit 0, its JSON line says so)."""
    dispatcher, target = _start("dispatcher", "--port", "0")
    hostport = target.removeprefix("grpc://")
    procs = [dispatcher]
    try:
        for _ in range(2):
            procs.append(_start("worker", "--dispatcher", hostport, "--port", "0")[0])
        r = train(_with_service(tiny_config(1), target), shards, tmp_path / "run", progress=False)
        assert (r.out / "model.keras").is_file()
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGINT)
        codes = [p.wait(timeout=120) for p in procs]
    assert codes == [0, 0, 0]
    results = [json.loads(p.stdout.read()) for p in procs]
    assert [r["role"] for r in results] == ["dispatcher", "worker", "worker"]
    assert all(r["stopped_by"] == "Ctrl-C" for r in results)
