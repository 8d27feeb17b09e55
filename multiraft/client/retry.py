"""Bookkeeping of one operation across its attempts.

The rule it enforces: `Timeout` is raised only when the outcome is unknown
(a write reached a store and no definite answer came back, or nothing
answered at all); when every attempt was definitely refused, the last
refusal is raised instead, since then nothing took effect.
"""

from __future__ import annotations

import random
import time
from typing import Any

from ..errors import MultiraftError, Timeout
from ..protocol.region import Region

BACKOFF_BASE = 0.01
"""First backoff, in seconds; it doubles per backoff up to BACKOFF_CAP."""

BACKOFF_CAP = 0.5
FAST_RETRIES = 3
"""Redirects (a named leader, a fresher descriptor) retried without sleeping."""

_rng = random.Random()


class Op:
    """One user operation: its deadline, its attempts and what they taught."""

    def __init__(self, name: str, timeout: float, *, mutating: bool) -> None:
        self.name = name
        self.deadline = time.monotonic() + timeout
        self.mutating = mutating
        self.attempts: dict[int, tuple[Region | None, str]] = {}
        """request id -> (region, store address) it was sent with."""
        self.unknown = False
        """A write was sent and no definite answer came: it may have applied."""
        self.last_error: MultiraftError | None = None
        self.backoffs = 0
        self.silent = 0
        """Attempts that got no reply in time."""
        self.fast = 0
        self.need_refresh = False

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def backoff(self) -> float:
        """Exponential backoff with jitter (half fixed, half random)."""
        delay = min(BACKOFF_CAP, BACKOFF_BASE * (2**self.backoffs))
        self.backoffs += 1
        self.fast = 0
        return delay / 2 + _rng.uniform(0, delay / 2)

    def redirect(self) -> float:
        """Delay before retrying after a redirect: none for the first few."""
        if self.fast < FAST_RETRIES:
            self.fast += 1
            return 0.0
        return self.backoff()

    def failure(self) -> MultiraftError:
        """The error to raise once the deadline passed."""
        if self.unknown:
            return Timeout(f"{self.name}: no answer in time; it may or may not have applied")
        if self.last_error is None:
            return Timeout(f"{self.name}: no answer in time")
        return self.last_error


def region_or_none(wire: Any) -> Region | None:
    """A descriptor from an untrusted reply, or None if it is malformed."""
    try:
        return Region.from_wire(wire)
    except (TypeError, ValueError):
        return None
