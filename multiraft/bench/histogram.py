"""Latency histograms that cross process boundaries: each worker records into
its own HDR histogram (microseconds, 3 significant digits) and ships it back
encoded; the parent merges them, so percentiles are exact over all workers
instead of averages of per-worker percentiles."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 120_000_000
"""Two minutes: anything slower is clamped (the client times out long before)."""
SIGNIFICANT_DIGITS = 3


class Latencies:
    """An HDR histogram of operation latencies, recorded in microseconds.

    A recorded value is first counted in a plain Counter and goes into the
    histogram when it is read: hdrh's `record_value` is pure Python and cost
    a load-generator process about a tenth of its CPU, once per request."""

    def __init__(self, hist: HdrHistogram | None = None) -> None:
        self._hist = hist or HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        self._unrecorded: Counter[int] = Counter()

    def record(self, seconds: float) -> None:
        self._unrecorded[int(seconds * 1e6)] += 1

    @property
    def hist(self) -> HdrHistogram:
        """The histogram, with every value recorded so far."""
        if self._unrecorded:
            for us, n in self._unrecorded.items():
                self._hist.record_value(min(max(us, LOWEST_US), HIGHEST_US), n)
            self._unrecorded.clear()
        return self._hist

    @property
    def count(self) -> int:
        return int(self._hist.get_total_count()) + self._unrecorded.total()

    def encode(self) -> bytes:
        """A compact, picklable form (HdrHistogram's own wire encoding)."""
        return bytes(self.hist.encode())

    @classmethod
    def decode(cls, data: bytes) -> Latencies:
        return cls(HdrHistogram.decode(data))

    @classmethod
    def merge(cls, parts: Iterable[Latencies | bytes]) -> Latencies:
        """One histogram holding every value of `parts`."""
        out = cls()
        for part in parts:
            other = cls.decode(part) if isinstance(part, bytes) else part
            if other.count:
                out.hist.add(other.hist)
        return out

    def summary_ms(self) -> dict[str, float]:
        """p50 / p99 / p99.9 / max in milliseconds (zeros when empty)."""
        if not self.count:
            return {"p50": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0}
        pct = self.hist.get_value_at_percentile
        return {
            "p50": round(pct(50) / 1000, 3),
            "p99": round(pct(99) / 1000, 3),
            "p999": round(pct(99.9) / 1000, 3),
            "max": round(self.hist.get_max_value() / 1000, 3),
        }
