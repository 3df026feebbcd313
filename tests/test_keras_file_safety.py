""".keras files that name code to run are refused before Keras reads them (vdg_tf.safety).

Each planted file is a real saved model whose `config.json` is rewritten the way an
attacker would; `trust=True` shows the plant is live (it runs on load), the default shows
it is refused with one line and nothing runs.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import zipfile
from pathlib import Path

import pytest
import tf_keras as keras

from vdg_tf.bundle import MODEL_FILE, Bundle, load_model
from vdg_tf.cli import main
from vdg_tf.safety import UnsafeModelError, find_unsafe


def passthrough(x):
    return x


def _save(model: keras.Model, path: Path) -> dict:
    model.save(path)
    return json.loads(zipfile.ZipFile(path).read("config.json"))


def _rewrite(path: Path, config: dict) -> None:
    """Replace the `config.json` of the zip at `path`, keeping its other members."""
    with zipfile.ZipFile(path) as old:
        members = {n: old.read(n) for n in old.namelist() if n != "config.json"}
    with zipfile.ZipFile(path, "w") as new:
        new.writestr("config.json", json.dumps(config))
        for name, data in members.items():
            new.writestr(name, data)


def _lambdas(node):
    """Every Lambda layer config in a saved config, nested models included."""
    if isinstance(node, dict):
        if node.get("class_name") == "Lambda":
            yield node["config"]
        for v in node.values():
            yield from _lambdas(v)
    elif isinstance(node, list):
        for v in node:
            yield from _lambdas(v)


def _plant(lam: dict, module: str, name: str, arguments: dict) -> None:
    """Point a Lambda at `module.name(inputs, **arguments)` by name, as tf_keras stores a
    plain function (`function_type: function`), which its safe mode does not block."""
    lam["function"] = {"module": module, "class_name": "function", "config": name}
    lam["function_type"] = "function"
    lam["module"] = module
    lam["arguments"] = arguments


def _lambda_model(nested: bool) -> keras.Model:
    x = keras.Input((3,))
    if not nested:
        return keras.Model(x, keras.layers.Lambda(passthrough)(keras.layers.Dense(2)(x)))
    i = keras.Input((2,))
    inner = keras.Model(i, keras.layers.Lambda(passthrough)(i), name="inner")
    return keras.Model(x, inner(keras.layers.Dense(2)(x)))


@pytest.mark.parametrize(
    "module, name, nested",
    [
        ("pydoc", "pipepager", False),
        ("os", "system", False),
        ("subprocess", "getoutput", False),
        ("pydoc", "pipepager", True),  # inside a functional sub-model
    ],
)
def test_a_lambda_naming_any_function_is_refused_and_never_runs(tmp_path, module, name, nested):
    marker = tmp_path / "marker"
    path = tmp_path / "model.keras"
    config = _save(_lambda_model(nested), path)
    (lam,) = list(_lambdas(config))
    _plant(lam, module, name, {"cmd": f"id > {marker}"} if name == "pipepager" else {})
    _rewrite(path, config)
    with pytest.raises(UnsafeModelError, match=r"model\.keras: refused: layer '.*' holds a Lambda"):
        load_model(path)
    assert not marker.exists()


def test_the_planted_pipepager_really_runs_when_trusted(tmp_path):
    """The plant is live: without the check (trusted on purpose) loading runs the command."""
    marker = tmp_path / "marker"
    path = tmp_path / "model.keras"
    config = _save(_lambda_model(False), path)
    _plant(next(_lambdas(config)), "pydoc", "pipepager", {"cmd": f"id > {marker}"})
    _rewrite(path, config)
    with contextlib.suppress(TypeError):  # pipepager fails after starting the command
        load_model(path, trust=True)
    for _ in range(100):  # the shell it started runs on its own
        if marker.exists() and marker.read_text():
            break
        time.sleep(0.1)
    assert "uid=" in marker.read_text()


def test_an_object_from_an_unknown_module_is_refused_before_it_is_imported(tmp_path, monkeypatch):
    """The model object itself names a module that looks like a model class's home:
    tf_keras imports it (running its top level) before anything else."""
    marker = tmp_path / "imported"
    (tmp_path / "evilmod.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from tf_keras.src.engine.functional import Functional as Net\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "model.keras"
    x = keras.Input((3,))
    config = _save(keras.Model(x, keras.layers.Dense(2)(x), name="net"), path)
    config.update(module="evilmod", class_name="Net", registered_name=None)
    _rewrite(path, config)
    with pytest.raises(UnsafeModelError, match="layer 'net' holds an object from module 'evilmod'"):
        load_model(path)
    assert not marker.exists() and "evilmod" not in sys.modules
    load_model(path, trust=True)  # trusted: Keras imports the module, as it always did
    assert marker.exists()


def test_op_lambdas_that_touch_files_are_refused_and_math_is_not():
    def op(fn):
        return {"class_name": "TFOpLambda", "config": {"name": "op", "function": fn}}

    assert "tf.io.write_file" in find_unsafe({"layers": [op("io.write_file")]})
    assert "load_op_library" in find_unsafe({"layers": [op("load_op_library")]})
    assert "raw_ops.WriteFile" in find_unsafe({"layers": [op("raw_ops.WriteFile")]})
    assert find_unsafe({"layers": [op("math.reduce_mean"), op("reshape"), op("nn.relu")]}) is None


def test_a_loss_named_by_builtins_is_kept_unless_it_is_a_python_builtin():
    def fn(name):
        return {"compile_config": {"loss": {"module": "builtins", "class_name": "function",
                                            "config": name, "registered_name": "function"}}}  # fmt: skip

    assert find_unsafe(fn("ordinal_loss")) is None  # how Keras stores a registered loss
    assert find_unsafe(fn("categorical_crossentropy")) is None
    for name in ("exec", "open", "__import__"):
        assert "Python builtin" in find_unsafe(fn(name)), name
    # tf_keras falls back to `registered_name`, and follows `outer.inner` into any module
    smuggled = fn("not_a_builtin")
    smuggled["compile_config"]["loss"]["registered_name"] = "eval"
    assert "Python builtin 'eval'" in find_unsafe(smuggled)
    dotted = {"module": "tf_keras.src.utils.io_utils", "class_name": "function",
              "config": "os.system", "registered_name": None}  # fmt: skip
    assert "not one plain name" in find_unsafe({"layers": [dotted]})


def test_every_model_vdg_saves_passes_the_check(trained_run):
    load_model(trained_run.out / MODEL_FILE)  # the fixture's run: saved by vdg train


def test_the_cli_refuses_a_planted_run_in_one_line(trained_run, sample_data, tmp_path, capfd):
    run = tmp_path / "run"
    run.mkdir()
    for f in trained_run.out.iterdir():
        if f.is_file():
            (run / f.name).write_bytes(f.read_bytes())
    config = json.loads(zipfile.ZipFile(run / MODEL_FILE).read("config.json"))
    layers = config["config"]["layers"]
    layers[-1]["module"] = "pydoc"  # the head, as an object from another module
    _rewrite(run / MODEL_FILE, config)
    capfd.readouterr()
    rc = main(["evaluate", str(run), "--data", str(sample_data["manifest_eval"])])
    err = capfd.readouterr().err.strip().splitlines()
    assert rc == 2 and "refused" in err[-1] and "pydoc" in err[-1] and "--trust-model" in err[-1]
    with pytest.raises(UnsafeModelError):
        Bundle.load(run)
