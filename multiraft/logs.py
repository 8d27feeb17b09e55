"""Log lines that bad input cannot turn into a flood.

A peer that keeps failing its handshake, or a fuzzer sending a million bad
frames, would otherwise write a million lines: `Throttled` writes the first
of each topic, then at most one per `every` seconds with the count of those
it held back."""

from __future__ import annotations

import logging
import time


class Throttled:
    def __init__(self, logger: logging.Logger, every: float = 10.0) -> None:
        self._log = logger
        self._every = every
        self._last: dict[str, tuple[float, int]] = {}

    def __call__(self, level: int, topic: str, fmt: str, *args: object) -> None:
        now = time.monotonic()
        last, held = self._last.get(topic, (-self._every, 0))
        if now - last < self._every:
            self._last[topic] = (last, held + 1)
            return
        if len(self._last) > 10_000:  # topics name senders: keep the table bounded
            self._last.clear()
        self._last[topic] = (now, 0)
        suffix = f" ({held} more like it not logged)" if held else ""
        self._log.log(level, fmt + suffix, *args)

    def forget(self) -> None:
        """Log the next line of every topic (tests start from a clean slate)."""
        self._last.clear()

    def warning(self, fmt: str, *args: object) -> None:
        """A warning whose format is its topic: one line per kind per period."""
        self(logging.WARNING, fmt, fmt, *args)

    def error(self, fmt: str, *args: object) -> None:
        self(logging.ERROR, fmt, fmt, *args)
