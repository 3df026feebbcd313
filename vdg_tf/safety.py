"""What a `.keras` file may hold before Keras reads it: no object that runs code of its choosing.

tf_keras' `safe_mode` only blocks lambdas stored as bytecode. A `Lambda` layer whose
function is named by module and name (`{"module": "pydoc", "class_name": "function",
"config": "pipepager"}`) is imported and called on load, and `TFOpLambda` calls any
TensorFlow symbol it names (`io.write_file`, `load_op_library`) when the model runs.
Keras 3 closed this class of bug (CVE-2024-3660, CVE-2025-1550) by refusing such objects in
safe mode; tf_keras did not, so every `.keras` file is walked here first, and the first
object outside the rules below is refused in one line naming the file and the layer:

- no `Lambda` layer and no bytecode lambda, whatever their `function_type`;
- every object that names a `module` comes from Keras (`keras`, `tf_keras`), vdg_tf's
  own layers (`vdg_tf`) or tfmot's wrappers (`tensorflow_model_optimization`); a bare
  function (`class_name: "function"`) only from Keras, or named by module `builtins`
  (how Keras stores a loss or metric function: found by name among Keras' built-ins and
  registered objects) when the name is not one of Python's own builtins (`exec`, `open`);
- `TFOpLambda`/`SlicingOpLambda` (a TensorFlow op called on a Keras tensor) only for ops
  that compute: the math, nn, linalg, image and signal namespaces, operators and a fixed
  list of tensor functions.

`--trust-model` (`trust=True`) skips the walk for a file whose source the user trusts.
"""

from __future__ import annotations

import builtins
import json
import zipfile
from pathlib import Path
from typing import Any

CONFIG_MEMBER = "config.json"
MAX_CONFIG_BYTES = 64 << 20  # a model's architecture is kilobytes; more is not a model

ALLOWED_MODULES = ("keras", "tf_keras", "vdg_tf", "tensorflow_model_optimization")
FUNCTION_MODULES = ("keras", "tf_keras")
CODE_CLASSES = frozenset({"Lambda", "__lambda__"})
OP_LAMBDAS = frozenset({"TFOpLambda", "SlicingOpLambda"})
OP_NAMESPACES = ("math.", "nn.", "linalg.", "image.", "signal.", "__operators__.")
OP_NAMES = frozenset(
    [
        "abs",
        "add",
        "argmax",
        "argmin",
        "broadcast_to",
        "cast",
        "clip_by_value",
        "concat",
        "cumsum",
        "divide",
        "einsum",
        "equal",
        "exp",
        "expand_dims",
        "eye",
        "fill",
        "gather",
        "gather_nd",
        "greater",
        "greater_equal",
        "identity",
        "less",
        "less_equal",
        "logical_and",
        "logical_not",
        "logical_or",
        "matmul",
        "maximum",
        "minimum",
        "multiply",
        "norm",
        "not_equal",
        "one_hot",
        "ones",
        "ones_like",
        "pad",
        "pow",
        "range",
        "rank",
        "reduce_all",
        "reduce_any",
        "reduce_logsumexp",
        "reduce_max",
        "reduce_mean",
        "reduce_min",
        "reduce_prod",
        "reduce_std",
        "reduce_sum",
        "reduce_variance",
        "reshape",
        "reverse",
        "round",
        "rsqrt",
        "shape",
        "sigmoid",
        "sign",
        "size",
        "slice",
        "split",
        "sqrt",
        "square",
        "squeeze",
        "stack",
        "stop_gradient",
        "strided_slice",
        "subtract",
        "tanh",
        "tensordot",
        "tile",
        "transpose",
        "truediv",
        "unstack",
        "where",
        "zeros",
        "zeros_like",
    ]
)


class UnsafeModelError(ValueError):
    """A model file holds an object that could run code on load or at inference."""


def check_keras_file(path: str | Path) -> None:
    """Refuse a zip-based `.keras` file whose config names code to run (rules: module doc).

    Raises:
      UnsafeModelError: one line naming the file, the layer and what it holds.
      ValueError: the file has no readable `config.json`.
    """
    path = Path(path)
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo(CONFIG_MEMBER)
        except KeyError:
            raise ValueError(f"{path}: not a Keras model file (no {CONFIG_MEMBER})") from None
        if info.file_size > MAX_CONFIG_BYTES:
            raise ValueError(
                f"{path}: {CONFIG_MEMBER} is {info.file_size:,} bytes "
                f"(over {MAX_CONFIG_BYTES:,}): not a model architecture"
            )
        raw = archive.read(info)
    try:
        config = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: {CONFIG_MEMBER} is not JSON ({e})") from None
    problem = find_unsafe(config)
    if problem:
        raise UnsafeModelError(
            f"{path}: refused: {problem}; pass --trust-model (trust_model=True) only for "
            "a file whose source you trust"
        )


def find_unsafe(config: Any, layer: str = "model") -> str | None:
    """The first object in a Keras config that could run code of its choosing, described
    with the layer that holds it, or None. Walks every nested dict and list."""
    stack: list[tuple[Any, str]] = [(config, layer)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, list):
            stack.extend((item, where) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        inner = node.get("config")
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            where = f"layer {inner['name']!r}"
        problem = _object_problem(node)
        if problem:
            return f"{where} holds {problem}"
        stack.extend((value, where) for value in node.values())
    return None


def _object_problem(node: dict) -> str | None:
    """Why one serialized object is refused, or None (its children are walked apart)."""
    class_name = node.get("class_name")
    module = node.get("module")
    if class_name in CODE_CLASSES:
        return f"a {class_name} (Python code run when the model loads or runs)"
    if class_name == "function":
        problem = _function_problem(node)
        if problem:
            return problem
    # a function under `builtins` is a name Keras looks up (checked above), not a module
    if module is not None and not (module == "builtins" and class_name == "function"):
        if not isinstance(module, str) or not _within(module, ALLOWED_MODULES):
            return f"an object from module {str(module)[:80]!r} (allowed: {', '.join(ALLOWED_MODULES)})"
        if class_name == "function" and not _within(module, FUNCTION_MODULES):
            return f"a function from module {module!r} (only Keras functions are loaded)"
    if class_name in OP_LAMBDAS:
        op = (node.get("config") or {}).get("function")
        if not isinstance(op, str) or not _pure_op(op):
            return f"a {class_name} calling tf.{str(op)[:80]} (not a pure tensor op)"
    return None


def _function_problem(node: dict) -> str | None:
    """Why a bare function object is refused: its name must be one plain identifier (tf_keras
    follows `outer.inner` names into any module attribute, `os.system` among them), and one
    named under `builtins` must not be Python's own builtin, by `config` or by the
    `registered_name` tf_keras falls back to."""
    name, registered = node.get("config"), node.get("registered_name")
    if not isinstance(name, str) or not name.isidentifier():
        return f"a function named {str(name)[:80]!r} (not one plain name)"
    if node.get("module") == "builtins":
        for n in (name, registered):
            if n not in (None, "function") and (not isinstance(n, str) or hasattr(builtins, n)):
                return f"the Python builtin {str(n)[:80]!r} as a function"
    return None


def _within(module: str, roots: tuple[str, ...]) -> bool:
    return any(module == root or module.startswith(root + ".") for root in roots)


def _pure_op(name: str) -> bool:
    return name in OP_NAMES or (name.startswith(OP_NAMESPACES) and ".." not in name)
