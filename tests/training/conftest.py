"""Fixtures of the training tests."""

from __future__ import annotations

import logging

import pytest


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def vdg_log():
    """The messages the library logs under `vdg_tf` during a test (a list of strings).

    Attached to the `vdg_tf` logger itself, so it sees them whether or not the CLI has
    stopped that logger propagating to the root (where `caplog` listens).
    """
    log = logging.getLogger("vdg_tf")
    handler, level = _Lines(), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield handler.lines
    log.removeHandler(handler)
    log.setLevel(level)
