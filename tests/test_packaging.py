"""Packaging and layering: the wheel holds the whole source tree and imports on its own;
no module imports from a stage that comes after it in the flow (DESIGN.md, "The flow")."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vdg_tf"

# Not copied into the build folder: generated, local or heavy, never part of a wheel.
_NOT_BUILT = {".git", ".venv", "build", "dist", "data", "saved_models", "bench_data"}
_CACHES = {"__pycache__", ".pytest_cache", ".ruff_cache"}
# Dropped into a nested package of the copy, so the package-data rule in setup.cfg is
# checked even while the real tree has no data file.
_PROBE = "vdg_tf/models/_package_data_probe.yaml"


def _source_files() -> set[str]:
    """Every file of the package, as wheel paths (`vdg_tf/data/pipeline.py`)."""
    return {
        p.relative_to(ROOT).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and not _CACHES & set(p.parts) and p.suffix not in (".pyc", ".pyo")
    }


def _ignore(folder: str, names: list[str]) -> set[str]:
    top = Path(folder).resolve() == ROOT
    return {
        n
        for n in names
        if n in _CACHES or n.endswith((".egg-info", ".pyc")) or (top and n in _NOT_BUILT)
    }


def _pip(*args: str, cwd: Path) -> None:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, f"pip {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


def _has_code(folder: Path) -> bool:
    return any(not _CACHES & set(p.parts) for p in folder.rglob("*.py"))


def test_every_code_folder_has_an_init():
    """setuptools' `find:` skips a folder without `__init__.py`, and the modules under it.

    A folder of data files only (`pipeline/builtin/*.yaml`) needs none: package data.
    """
    missing = sorted(
        d.relative_to(ROOT).as_posix()
        for d in [PACKAGE, *PACKAGE.rglob("*")]
        if d.is_dir()
        and not _CACHES & set(d.parts)
        and not (d / "__init__.py").exists()
        and _has_code(d)
    )
    assert not missing, f"folders without __init__.py (left out of the wheel): {missing}"


def test_wheel_holds_the_source_tree_and_imports_from_it(tmp_path):
    """Build the wheel, compare it with the tree, install it alone and import from it.

    The wheel is built from a copy of the working tree (untracked files included): built
    in the repository, setuptools reuses a stale `build/lib`, which can put a deleted module
    back into the wheel and hide a missing `__init__.py`, and it rewrites the
    `vdg_tf.egg-info` the editable install reads.
    """
    src, wheels, target, elsewhere = (tmp_path / n for n in ("src", "wheels", "site", "cwd"))
    shutil.copytree(ROOT, src, ignore=_ignore)
    (src / _PROBE).write_text("probe: true\n")
    _pip("wheel", ".", "--no-deps", "--no-build-isolation", "-w", str(wheels), "-q", cwd=src)
    (wheel,) = wheels.glob("vdg_tf-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    in_wheel = {n for n in names if n.startswith("vdg_tf/")}
    expected = _source_files() | {_PROBE}
    assert not expected - in_wheel, f"left out of the wheel: {sorted(expected - in_wheel)}"
    assert not in_wheel - expected, f"in the wheel, not in the tree: {sorted(in_wheel - expected)}"
    others = {n.split("/")[0] for n in names - in_wheel}
    assert others == {wheel.name.split("-py")[0] + ".dist-info"}, sorted(others)
    (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "vdg = vdg_tf.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    _pip("install", "--no-deps", "--target", str(target), str(wheel), "-q", cwd=tmp_path)
    elsewhere.mkdir()
    code = "import vdg_tf, vdg_tf.data, vdg_tf.cli\nfor m in (vdg_tf, vdg_tf.data, vdg_tf.cli): print(m.__file__)"
    env = {**os.environ, "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, f"import from the wheel failed:\n{done.stderr[-3000:]}"
    files = [Path(line) for line in done.stdout.split()[-3:]]
    assert len(files) == 3 and all(f.is_relative_to(target) for f in files), done.stdout


# --- layering ------------------------------------------------------------------------------

# Stage ranks, in the order of the flow (DESIGN.md). A module may import its own rank or
# lower. Names not listed (bench, cli, demo, run, ...) sit on top and may import anything.
BASE = (
    "vdg_tf",
    "vdg_tf._quiet",
    "vdg_tf._progress",
    "vdg_tf.config",
    "vdg_tf.manifest",
    "vdg_tf.files",
    "vdg_tf.results",
    "vdg_tf.safety",
)
STAGES = {
    **dict.fromkeys(BASE, 0),
    "vdg_tf.tasks": 0,
    "vdg_tf.media": 1,
    "vdg_tf.data": 2,
    "vdg_tf.models": 3,
    "vdg_tf.bundle": 4,
    "vdg_tf.training": 5,
    "vdg_tf.compression": 6,
    "vdg_tf.export": 7,
    "vdg_tf.runtime": 8,
    "vdg_tf.pipeline": 9,
}
TOP = 10


def rank(module: str) -> int:
    """The stage rank of a dotted module name (`vdg_tf` alone: the package `__init__`)."""
    if module == "vdg_tf":
        return 0
    parts = module.split(".")
    for i in range(len(parts), 1, -1):
        prefix = ".".join(parts[:i])
        if prefix in STAGES and prefix != "vdg_tf":
            return STAGES[prefix]
    return TOP


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool):
    """(line, imported module) for every import at any depth, outside `if TYPE_CHECKING:`."""
    package = module if is_package else module.rpartition(".")[0]
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y, from .. import z
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"  # `from vdg_tf import data` imports a package
                yield node.lineno, sub if _is_module(sub) else base
        stack.extend(ast.iter_child_nodes(node))


def layering_violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if _CACHES & set(path.parts):
            continue
        module = _module_name(path)
        mine = rank(module)
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, imported in sorted(set(_imports(tree, module, path.name == "__init__.py"))):
            if imported.split(".")[0] == "vdg_tf" and rank(imported) > mine:
                where = f"{path.relative_to(ROOT)}:{line}"
                found.append(
                    f"{where} ({module}, rank {mine}) imports {imported} (rank {rank(imported)})"
                )
    return found


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("vdg_tf", 0),
        ("vdg_tf.config", 0),
        ("vdg_tf.tasks.anomaly", 0),
        ("vdg_tf.media.decode", 1),
        ("vdg_tf.data", 2),
        ("vdg_tf.models.encoders.video", 3),
        ("vdg_tf.bundle", 4),
        ("vdg_tf.export.verify", 7),
        ("vdg_tf.pipeline.stages", 9),
        ("vdg_tf.cli", TOP),
        ("vdg_tf.bench.pipeline", TOP),
        ("vdg_tf.configs", TOP),  # a prefix of the name is not its stage
    ],
)
def test_rank_follows_the_flow(module, expected):
    assert rank(module) == expected


def test_imports_are_found_at_any_depth_but_not_for_type_checking():
    src = """
import vdg_tf.models.fusion
from typing import TYPE_CHECKING
from .heap import pool
from ..training import not_a_module
from vdg_tf import export
def f():
    from vdg_tf.runtime.stream import run
if TYPE_CHECKING:
    from vdg_tf.pipeline import Pipeline
else:
    import vdg_tf.bundle
"""
    found = {name for _, name in _imports(ast.parse(src), "vdg_tf.data.pipeline", False)}
    assert {
        "vdg_tf.models.fusion",
        "vdg_tf.data.heap",
        "vdg_tf.training",
        "vdg_tf.export",
        "vdg_tf.runtime.stream",
        "vdg_tf.bundle",
    } <= found
    assert "vdg_tf.pipeline" not in found


def test_no_module_imports_a_later_stage():
    found = layering_violations()
    assert not found, "imports against the flow:\n" + "\n".join(found)
