"""Keep TensorFlow's start-up noise (cuInit, oneDNN, absl banners) out of users' terminals."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings


def quiet_environment() -> None:
    """Set the env vars TF reads at import; a no-op for values the user already set."""
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


def import_tensorflow_quietly() -> None:
    """Import TF, tf_keras and tfio once with their banners and Python warnings muted."""
    quiet_environment()
    with silenced_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import tensorflow as tf  # noqa: F401
        import tf_keras  # noqa: F401

    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
