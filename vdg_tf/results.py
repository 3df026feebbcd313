"""The typed result every public API call returns: `to_dict()` is exactly what the
command's `--json` prints, `format()` the table a person reads.

One base so the CLI never builds output of its own: a command prints `result.format()`
or `json.dumps(result.to_dict())`, and a Python user gets the same two views.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any


def plain(value: Any) -> Any:
    """`value` as JSON-ready data: paths as strings, tuples as lists, NaN as None."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return plain(value.item())
    return value


class Result:
    """Base of the results of `vdg.train`, `vdg.evaluate`, `vdg.export`, `vdg.predict`, `vdg.run`.

    A subclass is a dataclass; fields whose metadata has `json=False` (models, datasets)
    stay out of `to_dict()`. Subclasses override `format()`.
    """

    def to_dict(self) -> dict:
        """The JSON object `--json` prints."""
        if not dataclasses.is_dataclass(self):
            raise TypeError(f"{type(self).__name__}: a Result must be a dataclass")
        return {
            f.name: plain(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.metadata.get("json", True)
        }

    def format(self) -> str:
        """The table a person reads (default: one `key  value` line per field)."""
        width = max((len(k) for k in self.to_dict()), default=0)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in self.to_dict().items())
