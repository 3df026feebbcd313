"""Freed memory is reused: glibc in the decode workers, TensorFlow's pool in the training process."""

import os
import platform
import subprocess
import sys

import pytest

from vdg_tf.media.heap import keep_freed_memory

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)

# a fresh process frees a 16 MiB buffer and then fills a new one of the same size: page
# faults (4 KiB pages) counted for the refill show whether the memory was handed back
_REFILL = """
import resource, sys
import numpy as np
from vdg_tf.media.heap import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
a = np.ones(16 << 20, np.uint8); del a
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
b = np.ones(16 << 20, np.uint8)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _refill_faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _REFILL, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@glibc_only
def test_freed_buffer_is_reused_without_page_faults():
    kept, default = _refill_faults("keep"), _refill_faults("default")
    # by default glibc hands the buffer back and faults it in again (4 KiB pages, or 2 MiB
    # ones where numpy asks for huge pages): hundreds of faults; kept, next to none
    assert default > 100
    assert kept * 10 < default


@glibc_only
def test_keep_freed_memory_is_idempotent():
    assert keep_freed_memory() and keep_freed_memory()


_POOLED = """
from vdg_tf.media.heap import pool_tensorflow_memory
pool_tensorflow_memory()  # as the entry points (`vdg`, the tests) do before TensorFlow starts
import tensorflow as tf
x = tf.ones([256, 256])
try:
    print(tf.config.experimental.get_memory_info("CPU:0")["current"] > 0)
except ValueError:  # the default CPU allocator keeps no statistics: not the pool
    print("unpooled")
"""


@pytest.mark.parametrize(
    "env, expected", [({}, "True"), ({"TF_CPU_ALLOCATOR_USE_BFC": "false"}, "unpooled")]
)
def test_tensorflow_pools_cpu_memory_unless_the_user_says_no(env, expected):
    full = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"} | env
    out = subprocess.run(
        [sys.executable, "-c", _POOLED], capture_output=True, text=True, check=True, env=full
    )
    assert out.stdout.strip().splitlines()[-1] == expected
