"""The package's structural rules, read from its source: short functions, no `print` in
library code, no branching on a task's report keys outside `tasks/`."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vdg_tf"
MAX_LINES = 80
# flatc output, regenerated from the TFLite metadata schema, never edited by hand
GENERATED = {"export/tflite_metadata/metadata_schema_py_generated.py"}
# the command line and the progress displays are where output to a person is written
PRINTS = {"cli.py", "_progress.py", "training/progress.py"}
# report keys only a task may interpret
TASK_KEYS = {"threshold", "confusion"}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel not in GENERATED:
            yield rel, ast.parse(path.read_text(), filename=str(path))


MODULES = dict(_modules())


def test_the_rules_see_the_whole_package():
    assert {"cli.py", "training/trainer.py", "runtime/predict.py", "tasks/anomaly.py"} <= set(
        MODULES
    )


@pytest.mark.parametrize("rel", sorted(MODULES))
def test_no_function_is_longer_than_a_screen(rel):
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
        for node in ast.walk(MODULES[rel])
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_LINES
    ]
    assert not long, f"{rel}: over {MAX_LINES} lines: {', '.join(long)}"


def test_library_code_reports_through_logging_not_print():
    prints = [
        f"{rel}:{node.lineno}"
        for rel, tree in MODULES.items()
        if rel not in PRINTS
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]
    assert not prints, f"print() outside the CLI and progress modules: {prints}"


def test_only_tasks_read_task_report_keys():
    found = [
        f"{rel}:{node.lineno} {node.value!r}"
        for rel, tree in MODULES.items()
        if not rel.startswith("tasks/")
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in TASK_KEYS
    ]
    assert not found, f"task report keys used outside vdg_tf/tasks/: {found}"


def test_readme_python_names_are_the_top_level_api():
    """Every `vdg.NAME` in README's Python blocks is a name `import vdg_tf as vdg` has."""
    import re

    import vdg_tf

    readme = (PACKAGE.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    code = "\n".join(b for b in blocks if "import vdg_tf as vdg" in b)
    names = set(re.findall(r"\bvdg\.([A-Za-z_]\w*)", code))
    assert {"train", "evaluate", "export", "predict", "run"} <= names
    missing = sorted(n for n in names if not hasattr(vdg_tf, n))
    assert not missing, f"README uses vdg.{missing} that vdg_tf does not have"
    assert callable(vdg_tf.export) and all(callable(getattr(vdg_tf, n)) for n in names)
