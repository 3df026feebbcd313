"""Events from window scores: smoothing, then hysteresis, then `{event, start, end, peak}`.

A score series (an anomaly score, or one label's probability with `--watch LABEL`) is
smoothed by a causal moving average over the last `smooth` windows; an event opens when
the smoothed score rises to `on` (starting at the first window in the average already
above `off`, its peak the highest score seen) and closes when the smoothed score falls
below `off` (`off` < `on`, so noise around one threshold does not flicker events). The security use case reads:
`loitering from 00:12.4 to 00:19.0, peak 0.93`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class EventTracker:
    """Feed `(start, end, score)` per window, in time order; finished events come back."""

    name: str
    on: float = 0.5
    off: float = 0.4
    smooth: int = 3
    _recent: deque = field(default_factory=deque, repr=False)
    _open: dict | None = field(default=None, repr=False)

    def __post_init__(self):
        if not 0 <= self.off <= self.on:
            raise ValueError(f"events: need 0 <= off <= on, got off {self.off}, on {self.on}")
        if self.smooth < 1:
            raise ValueError(f"events: smooth must be >= 1 window, got {self.smooth}")
        self._recent = deque(maxlen=self.smooth)

    def feed(self, start: float, end: float, score: float) -> dict | None:
        """The event that this window closes, if any."""
        self._recent.append((start, float(score)))
        level = sum(s for _, s in self._recent) / len(self._recent)
        if self._open is None:
            if level >= self.on:
                # the event began with the first window in the average that was already up
                began = next(t for t, s in self._recent if s >= self.off)
                peak = max(s for _, s in self._recent)
                self._open = {
                    "event": self.name, "start": began, "end": end, "peak": peak,
                    "on": self.on,  # the level the smoothed score rose to
                }  # fmt: skip
            return None
        if level < self.off:
            done, self._open = self._open, None
            return done
        self._open["end"] = end
        self._open["peak"] = max(self._open["peak"], float(score))
        return None

    def close(self) -> dict | None:
        """The event still open when the source ended (ends with the last window)."""
        done, self._open = self._open, None
        return done


def clock(seconds: float) -> str:
    """`mm:ss.s` (or `h:mm:ss.s` past an hour) for event and window times."""
    h, rest = divmod(max(float(seconds), 0.0), 3600)
    m, s = divmod(rest, 60)
    return f"{int(h)}:{int(m):02d}:{s:04.1f}" if h else f"{int(m):02d}:{s:04.1f}"


def describe(event: dict) -> str:
    """`loitering from 00:12.4 to 00:19.0, peak 0.93`."""
    return (
        f"{event['event']} from {clock(event['start'])} to {clock(event['end'])}, "
        f"peak {event['peak']:.2f}"
    )
