"""`vdg_tf.media` imports no TensorFlow (nor a later stage): decode workers start small and fast."""

import ast
import subprocess
import sys
from pathlib import Path

import vdg_tf.media

ROOT = Path(__file__).resolve().parents[2]
MEDIA = Path(vdg_tf.media.__file__).parent
FORBIDDEN = ("tensorflow", "tf_keras", "keras", "keras_nlp", "tensorflow_io")
ALLOWED_VDG = ("vdg_tf.media", "vdg_tf.config", "vdg_tf.manifest")

_IMPORT_ALL = """
import sys
import vdg_tf.media, vdg_tf.media.workers, vdg_tf.media.decode, vdg_tf.media.wire, vdg_tf.media.heap
from vdg_tf.media import *
loaded = [m for m in sys.modules if m.startswith(("tensorflow", "tf_keras", "keras"))]
assert not loaded, loaded
later = [m for m in sys.modules if m.startswith("vdg_tf.") and not m.startswith(
    ("vdg_tf.media", "vdg_tf.config", "vdg_tf.manifest", "vdg_tf._quiet"))]
assert not later, later
"""


def test_importing_media_loads_no_tensorflow():
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_media_modules_import_only_allowed_packages():
    """Also the imports inside functions, which importing the package would not run."""
    bad = []
    for path in sorted(MEDIA.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in FORBIDDEN or (top == "vdg_tf" and not name.startswith(ALLOWED_VDG)):
                    bad.append(f"{path.name}:{node.lineno} imports {name}")
    assert not bad, bad
