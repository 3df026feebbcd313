"""Progress bars with an ETA on stderr for long steps, for every stage (no TensorFlow here).

On a terminal a bar redraws in place (tqdm); when stderr is a file or a pipe it is
replaced by one line when the step ends, so logs hold results, not redraws.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterable, Iterator

from tqdm import tqdm


def interactive(stream) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def bar(
    items: Iterable,
    desc: str,
    total: int | None = None,
    unit: str = "it",
    stream=None,
) -> Iterator:
    """Iterate `items` with a bar and an ETA (when `total` is known) on stderr; when
    stderr is not a terminal, one line when done: `desc: 64 samples in 3 s`."""
    stream = stream or sys.stderr
    if interactive(stream):
        yield from tqdm(items, desc=desc, total=total, unit=unit, file=stream, leave=False)
        return
    started, n = time.time(), 0
    for item in items:
        n += 1
        yield item
    units = unit + ("es" if unit.endswith(("s", "ch")) else "s") if n != 1 else unit
    print(f"{desc}: {n} {units} in {seconds(time.time() - started)}", file=stream, flush=True)


@contextlib.contextmanager
def working(desc: str, stream=None) -> Iterator[None]:
    """Show `desc` with the time spent on it while a step with no measurable parts runs
    (a TFLite conversion); when stderr is not a terminal, one line when it ends."""
    stream = stream or sys.stderr
    started = time.time()
    if not interactive(stream):
        yield
        print(f"{desc}: done in {seconds(time.time() - started)}", file=stream, flush=True)
        return
    shown = tqdm(total=None, desc=desc, file=stream, leave=False, bar_format="{desc} {elapsed}")
    done = threading.Event()

    def tick():
        while not done.wait(0.5):
            shown.refresh()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        shown.close()
