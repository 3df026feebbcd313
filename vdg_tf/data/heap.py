"""Keep freed heap memory in the process while streaming, instead of handing it back to the kernel.

glibc serves a block above its mmap threshold (128 KiB at start, raised as such blocks are
freed) with a fresh `mmap`, and gives the top of a heap back once 128 KiB of it is free.
A streaming pipeline allocates and frees megabyte buffers every batch (a group of decoded
clips, a batch of frames, the float copy), so each batch page-faulted its memory back in,
zero-filled by the kernel: 30-37% of the training process's CPU while streaming on 2
cores, and 5% of a decode worker's (`perf record -a`, session 13). The thresholds below
keep such blocks in the heap for reuse; peak memory is unchanged, the memory a process
holds no longer shrinks between batches. TensorFlow's own guide recommends tcmalloc for
the same reason; that needs a system library, this needs nothing.
"""

from __future__ import annotations

import ctypes
import platform

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # the most glibc accepts on 64-bit: blocks under it reuse the heap
TRIM_THRESHOLD = 256 << 20  # free memory a heap keeps at its top before giving it back

_kept = False


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds for this process (once); False where the C
    library is not glibc (macOS, musl, Windows), which keeps its own behaviour."""
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
