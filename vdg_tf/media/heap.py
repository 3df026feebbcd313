"""Reuse freed memory while streaming instead of handing it back to the kernel every batch.

A streaming pipeline allocates and frees megabyte buffers every batch (a group of decoded
clips, a batch of frames, its float copy, the STFT). Through glibc's malloc, blocks that
size are fresh `mmap`s or get trimmed off the heap when freed, so each batch page-faulted
its memory back in, zero-filled by the kernel: 37% of the training process's CPU while
streaming on 2 cores, and 5% of a decode worker's (`perf record -a`; BENCHMARKS.md).

- The training process: TensorFlow's own pooling allocator (BFC, what it uses on GPUs),
  switched on for CPU by `TF_CPU_ALLOCATOR_USE_BFC` before TensorFlow makes its first
  tensor. Kernel share 37% -> ~11%, memory flat over 20 epochs (+0.4-1.7%).
- The decode workers (no TensorFlow): glibc's thresholds raised (`keep_freed_memory`).
  Raising them in the training process instead gave the same speed but a heap that crept
  up 15% over 20 epochs (fragmentation); the BFC pool stays flat.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # the most glibc accepts on 64-bit: blocks under it reuse the heap
TRIM_THRESHOLD = 256 << 20  # free memory a heap keeps at its top before giving it back

_kept = False


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds for this process (once): for processes without
    TensorFlow. False where the C library is not glibc (macOS, musl, Windows)."""
    global _kept
    if _kept:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    _kept = bool(
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _kept


def pool_tensorflow_memory() -> None:
    """Have TensorFlow pool its CPU tensors (BFC allocator) unless the user set
    `TF_CPU_ALLOCATOR_USE_BFC` already; read once, when TensorFlow makes its CPU device.
    The pool caps CPU tensors at 64 GiB (`TF_CPU_BFC_MEM_LIMIT_IN_MB` raises it)."""
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
