"""Multi-worker training: where a process sits in `TF_CONFIG`, rows split between workers
before decoding, the global batch, the chief's backup, and (slow) two real `vdg train`
worker processes on 127.0.0.1: the same weights on both, one run folder, a result close to
one process's, and a worker killed mid-run that resumes from the backup."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import random_inputs, tiny_config
from vdg_tf.bench.workers import local_cluster
from vdg_tf.bundle import MODEL_FILE, load_model
from vdg_tf.data.features import log_mel_frames
from vdg_tf.data.pipeline import SkipLog
from vdg_tf.data.records import preprocess
from vdg_tf.data.sample import make_sample_data
from vdg_tf.data.sources import open_source
from vdg_tf.models import build_classifier
from vdg_tf.training.callbacks import ResumableBackup
from vdg_tf.training.cluster import Cluster
from vdg_tf.training.devices import distribution_strategy
from vdg_tf.training.sharding import global_batch, shard_of, steps_per_epoch
from vdg_tf.training.trainer import compile_classifier, weights_digest


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """24 real mp4 clips (18 train / 6 eval) and a config small enough for two workers."""
    return make_sample_data(tmp_path_factory.mktemp("mw-data"), clips=24, seed=3)


def test_tf_config_gives_this_workers_place_and_the_chief():
    env = {"TF_CONFIG": json.dumps({
        "cluster": {"worker": ["a:1", "b:2", "c:3"]}, "task": {"type": "worker", "index": 2},
    })}  # fmt: skip
    assert Cluster.from_env(env) == Cluster(workers=3, index=2, task="worker")
    assert not Cluster.from_env(env).chief and Cluster.from_env({}).chief
    with_chief = {"TF_CONFIG": json.dumps({
        "cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker", "index": 0},
    })}  # fmt: skip
    assert Cluster.from_env(with_chief).index == 1  # the chief task is input pipeline 0
    assert Cluster.from_env({}) == Cluster(workers=1, index=0)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "TF_CONFIG: expected"),
        ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG: expected"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
         "TF_CONFIG: task index 3 but the cluster lists 1 'worker' addresses"),
        ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
         "TF_CONFIG: task type 'ps' does not train here"),
    ],
)  # fmt: skip
def test_a_bad_tf_config_is_one_line_naming_it(text, message):
    with pytest.raises(ValueError, match=message) as e:
        Cluster.from_env({"TF_CONFIG": text})
    assert "\n" not in str(e.value)


def test_a_strategy_that_trains_alone_refuses_a_cluster():
    cluster = Cluster(workers=2, index=1)
    for name in ("default", "mirrored"):
        with pytest.raises(ValueError, match=f"train.strategy {name}: TF_CONFIG names 2 workers"):
            distribution_strategy(name, cluster)


def test_global_batch_is_per_replica_batch_times_replicas():
    one = tf.distribute.get_strategy()
    assert global_batch(8, one) == 8 and steps_per_epoch(17, 8) == 3
    assert steps_per_epoch(16, 8) == 2 and steps_per_epoch(0, 8) == 1
    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                     num_replicas_in_sync=4)  # fmt: skip
    assert shard_of(ctx) == (2, 1) and ctx.get_per_replica_batch_size(16) == 4
    assert shard_of(tf.distribute.InputContext()) is None  # one pipeline reads it all


def _texts(ds) -> list[str]:
    return sorted(clip["text"].decode() for clip, _ in ds.as_numpy_iterator())


def test_rows_are_split_between_workers_before_decoding(clips, tmp_path):
    """Each worker decodes only its own rows: a broken clip in worker 1's rows is never
    opened by worker 0, and the two shards hold every clip once."""
    folder = Path(clips["manifest_train"]).parent
    rows = Path(clips["manifest_train"]).read_text().splitlines()[:8]
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    rows = [json.loads(r) for r in rows]
    broken = json.dumps({"video": str(tmp_path / "broken.mp4"), "label": rows[0]["label"]})
    for r in rows:
        r["video"] = str(folder / r["video"])
    lines = [json.dumps(rows[0]), broken] + [json.dumps(r) for r in rows[1:]]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    cfg = tiny_config().data
    skips = SkipLog()
    source = open_source(manifest, cfg, training=False, skips=skips)
    first = _texts(source.shard((2, 0)))
    assert skips.count == 0  # worker 0 never opened the broken file (row 1 is worker 1's)
    second = _texts(source.shard((2, 1)))
    assert skips.count == 1 and "broken.mp4" in skips.reasons[0]
    assert len(first) == 5 and len(second) == 3  # rows 0,2,4,6,8 and 1(broken),3,5,7
    assert sorted(first + second) == _texts(source.decoded)


def test_records_are_split_by_file_or_by_record(clips, tmp_path):
    cfg = tiny_config().data
    out = tmp_path / "records"
    preprocess(clips["manifest_eval"], out, cfg, shards=2, progress=False)
    source = open_source(out, cfg)
    everything = _texts(source.decoded)
    for workers in (2, 4):  # 2: a file each; 4 (more workers than files): by record
        parts = [_texts(source.shard((workers, i))) for i in range(workers)]
        assert sorted(sum(parts, [])) == everything and all(parts)


def test_jit_compile_switch_reaches_the_compiled_model():
    cfg = tiny_config()
    cfg.train.jit_compile = True
    model = build_classifier(cfg, 4, 50, log_mel_frames(cfg.data.audio))
    compile_classifier(model, cfg, steps_per_epoch=2)
    assert model._jit_compile is True  # tf_keras keeps the compile argument here


def test_a_worker_resumes_the_backup_the_chief_kept(tmp_path):
    """Another worker takes the chief's backup as the chief judged it (its own paths
    differ), after the barrier."""
    folder = tmp_path / "backup"
    (folder / "chief").mkdir(parents=True)
    (folder / "chief" / "checkpoint").write_text("")  # a complete Keras backup
    state = {"identity": {"data": "chief's"}, "callbacks": {"best": {"best": 0.9}}}
    (folder / ResumableBackup.STATE_FILE).write_text(json.dumps(state))
    met = []
    worker = ResumableBackup(
        folder, {"data": "worker's temp path"}, {}, chief=False, barrier=lambda: met.append(1)
    )
    assert met == [1] and worker.resuming and worker._restore == {"best": {"best": 0.9}}
    # a worker never judges, so never deletes, the shared backup (even of another run)
    assert (folder / ResumableBackup.STATE_FILE).is_file()


# -- two real worker processes (slow) ---------------------------------------------------


def _train_args(clips, config: Path, out: Path) -> list:
    return ["train", "--data", clips["manifest_train"], "--val-data", clips["manifest_eval"],
            "--config", config, "--out", out, "--json"]  # fmt: skip


def _configs(tmp_path, epochs: int) -> tuple[Path, Path]:
    """Two workers at per-replica batch 4, and one process at batch 8: the same global batch."""
    cfg = tiny_config(epochs)
    cfg.data.batch_size = 4
    cfg.train.strategy = "multi_worker"
    cfg.save(tmp_path / "mw.yaml")
    cfg.data.batch_size, cfg.train.strategy = 8, "default"
    cfg.save(tmp_path / "single.yaml")
    return tmp_path / "mw.yaml", tmp_path / "single.yaml"


def _history(run: Path) -> list[dict]:
    import csv

    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_two_workers_end_equal_write_one_run_and_match_one_process(clips, tmp_path):
    """~4-6 min on a busy 2-core machine: two 3-epoch worker runs and one single run."""
    mw, single = _configs(tmp_path, epochs=3)
    out, temps = tmp_path / "run", [tmp_path / "tmp0", tmp_path / "tmp1"]
    with local_cluster(2, tmp_path / "logs") as cluster:
        for i in (0, 1):
            temps[i].mkdir()
            cluster.start(i, _train_args(clips, mw, out), env={"TMPDIR": str(temps[i])})
        codes = cluster.wait(timeout=1200)
        assert codes == {0: 0, 1: 0}, cluster.err_path(1).read_text()[-2000:]
        results = [cluster.result(i) for i in (0, 1)]
    chief, worker = (r["distribution"] for r in results)
    assert chief["chief"] and not worker["chief"]
    assert chief["global_batch"] == 8 and chief["replicas"] == 2 and chief["steps_per_epoch"] == 3
    # the same weights on both workers, and the run folder holds exactly them
    assert chief["weights_sha256"] == worker["weights_sha256"]
    assert weights_digest(load_model(out / MODEL_FILE)) == chief["weights_sha256"]
    # one run: the chief's; the other worker left nothing behind
    assert results[1]["model"] == str(out / MODEL_FILE)
    assert not list(temps[1].glob("vdg-worker*")) and not list((out / "backup").iterdir())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["distribution"]["workers"] == 2

    one = tmp_path / "one"
    with local_cluster(1, tmp_path / "logs-one") as cluster:  # a cluster of one: plain path
        cluster.start(0, _train_args(clips, single, one))
        assert cluster.wait(timeout=1200) == {0: 0}, cluster.err_path(0).read_text()[-2000:]
    # the same global batch, the same start: the loss curves agree within noise (each
    # batch holds other clips: the workers shuffle their own rows)
    two_losses = [float(r["loss"]) for r in _history(out)]
    one_losses = [float(r["loss"]) for r in _history(one)]
    # (seen: 4.18 3.79 3.70 against 3.98 3.77 3.57, at most 5% apart)
    np.testing.assert_allclose(two_losses, one_losses, rtol=0.15)


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_restarted_and_resumes_from_the_backup(clips, tmp_path):
    """~5-8 min on a busy 2-core machine: worker 1 is killed after the first backup, the
    chief fails on its own (its collectives abort), both restart and resume."""
    mw, _ = _configs(tmp_path, epochs=6)
    out = tmp_path / "run"
    args = _train_args(clips, mw, out)
    state = out / "backup" / ResumableBackup.STATE_FILE
    weights = out / "backup" / "chief" / "checkpoint"  # Keras writes it after the state
    with local_cluster(2, tmp_path / "logs") as cluster:
        cluster.start_all(args)
        deadline = time.time() + 900  # a bound for a broken build, not a timing check
        while time.time() < deadline and not (state.is_file() and weights.is_file()):
            assert all(p.poll() is None for p in cluster.procs.values()), "a worker ended early"
            time.sleep(0.2)
        cluster.kill(1)
        # the chief's collectives abort once its peer is gone: it exits with an error
        assert cluster.procs[0].wait(timeout=600) != 0
        assert len(_history(out)) < 6
        for i in (0, 1):  # what a cluster manager does: restart the job
            cluster.start(i, args)
        codes = cluster.wait(timeout=1200)
        assert codes == {0: 0, 1: 0}, cluster.err_path(0).read_text()[-2000:]
        results = [cluster.result(i) for i in (0, 1)]
        for i in (0, 1):
            assert "resumed from the backup" in cluster.err_path(i).read_text()
    assert results[0]["epochs"] < 6  # the restarted fit ran only the epochs left
    digests = {r["distribution"]["weights_sha256"] for r in results}
    assert digests == {weights_digest(load_model(out / MODEL_FILE))}
    rows = _history(out)
    assert [int(r["epoch"]) for r in rows] == list(range(6))  # one history, no epoch twice


@pytest.mark.slow
def test_jit_compiled_training_step_runs_on_cpu():
    """~1-2 min (XLA compiles the step): the switch trains, not only compiles."""
    cfg = tiny_config()
    cfg.train.jit_compile = True
    model = build_classifier(cfg, 4, 50, log_mel_frames(cfg.data.audio))
    compile_classifier(model, cfg, steps_per_epoch=2)
    x = random_inputs(model, 8)
    y = {k: np.arange(8) % 4 for k in model.output_names}
    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
