"""Keep library noise out of users' terminals: TensorFlow's start-up lines (cuInit, oneDNN,
absl banners) are silenced, and a library warning repeated per layer (tfmot logs
`apply CQAT instead` once for each of 8 layers) is shown once and counted.

`--verbose` on any `vdg` command (`set_verbose(True)`, or `VDG_VERBOSE=1` in the
environment) turns all of this off, so everything TensorFlow and its libraries log is
shown again. The setting lives in the environment so that every module (and the decode
workers) reads the same answer without a flag threaded through each call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections import Counter

VERBOSE_ENV = "VDG_VERBOSE"


def set_verbose(on: bool) -> None:
    """Show (True) or hide (False) library logs and Keras' full per-epoch lines."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"


def is_verbose() -> bool:
    """Whether the user asked for everything (`--verbose` or `VDG_VERBOSE=1`)."""
    return os.environ.get(VERBOSE_ENV, "0") not in ("", "0", "false", "no")


def quiet_environment() -> None:
    """Set the env vars TF reads at import; a no-op for values the user already set, and
    under `--verbose`."""
    if is_verbose():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def silenced_stderr():
    """Send fd 2 to /dev/null: TF 2.21 logs from C++ (absl) before any env var is read."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class RepeatFilter(logging.Filter):
    """Let the first record of each (logger, level, message) through and count the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: Counter = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, record.getMessage())
        self.seen[key] += 1
        return self.seen[key] == 1

    def reset(self) -> None:
        """Forget what was seen: each command summarises its own repeats."""
        self.seen.clear()

    @property
    def hidden(self) -> int:
        """Repeats held back so far."""
        return sum(n - 1 for n in self.seen.values())

    def summary(self) -> str | None:
        """One line on what was held back, or None when nothing was."""
        if not self.hidden:
            return None
        kinds = sum(1 for n in self.seen.values() if n > 1)
        return (
            f"({self.hidden} repeats of {kinds} library warning{'s' * (kinds != 1)} "
            "shown once above; --verbose shows every one)"
        )


_repeats = RepeatFilter()


def repeated_warnings() -> RepeatFilter:
    """The process's filter of repeated library log records (installed by
    `import_tensorflow_quietly`)."""
    return _repeats


def import_tensorflow_quietly() -> None:
    """Import TF and tf_keras once with their banners and Python warnings muted, and show
    each repeated library log record once; under `--verbose` import them as they are."""
    if is_verbose():
        import tensorflow  # noqa: F401
        import tf_keras  # noqa: F401

        return
    quiet_environment()
    with silenced_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import tensorflow as tf  # noqa: F401
        import tf_keras  # noqa: F401

    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    # tfmot and other libraries log through the root logger (`logging.warning`)
    if _repeats not in logging.root.filters:
        logging.root.addFilter(_repeats)
