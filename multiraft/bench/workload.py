"""What a benchmark asks for: which keys (uniform or zipf), which operation,
and where to pre-split the key space.

Keys are fixed-width decimal (`k000000042`) so that their byte order is their
numeric order: evenly spaced split points then give regions of equal size.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass

WORKLOADS = ("put", "get", "mixed", "cas", "scan")
DISTRIBUTIONS = ("uniform", "zipf")
ZIPF_THETA = 0.99
"""YCSB's default skew: about 2/3 of accesses hit 1% of the keys at 100k keys."""

KEY_WIDTH = 10
SCRAMBLE = 2_654_435_761
"""Knuth's multiplicative-hash constant (prime): maps zipf ranks onto keys
spread over the whole key space, as YCSB's scrambled zipfian does, so hot keys
land in every region rather than all in the first."""


def key_of(i: int) -> bytes:
    """The i-th key of the key space."""
    return b"k%0*d" % (KEY_WIDTH, i)


def split_keys(keys: int, regions: int) -> list[bytes]:
    """The regions-1 keys that cut [0, keys) into `regions` equal ranges."""
    if regions < 1:
        raise ValueError("regions must be at least 1")
    points = sorted({keys * j // regions for j in range(1, regions)} - {0})
    return [key_of(i) for i in points]


class KeyChooser:
    """Draws key indexes in [0, n): uniform, or zipf-skewed (scrambled)."""

    def __init__(self, n: int, distribution: str = "uniform", seed: int | None = None) -> None:
        if n < 1:
            raise ValueError("need at least one key")
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution {distribution!r}")
        self.n = n
        self.distribution = distribution
        self._rng = random.Random(seed)
        self._cdf = zipf_cdf(n, ZIPF_THETA) if distribution == "zipf" else None

    def rank(self) -> int:
        """A zipf rank (0 is the hottest) or a uniform index."""
        if self._cdf is None:
            return self._rng.randrange(self.n)
        return min(bisect.bisect_left(self._cdf, self._rng.random() * self._cdf[-1]), self.n - 1)

    def index(self) -> int:
        """A key index; zipf ranks are scrambled over the key space."""
        r = self.rank()
        return r if self._cdf is None else (r * SCRAMBLE) % self.n

    def key(self) -> bytes:
        return key_of(self.index())


def zipf_cdf(n: int, theta: float) -> list[float]:
    """Cumulative (unnormalized) weights 1/(rank+1)^theta for n ranks."""
    return list(itertools.accumulate(1.0 / (r + 1) ** theta for r in range(n)))


@dataclass(frozen=True)
class OpMix:
    """Which operation comes next: for "mixed", gets with `read_ratio`."""

    workload: str
    read_ratio: float = 0.5

    def __post_init__(self) -> None:
        if self.workload not in WORKLOADS:
            raise ValueError(f"unknown workload {self.workload!r}")
        if not 0.0 <= self.read_ratio <= 1.0:
            raise ValueError("read_ratio must be within [0, 1]")

    def next_op(self, rng: random.Random) -> str:
        if self.workload != "mixed":
            return self.workload
        return "get" if rng.random() < self.read_ratio else "put"

    @property
    def needs_preload(self) -> bool:
        """Reads and compares of absent keys would measure nothing useful."""
        return self.workload != "put"
