"""A leader's lease (Raft thesis §6.4.1, TiKV's lease read): a leader that
a quorum acknowledged at time t knows that no other leader can be elected
before t plus an election timeout, so until then it answers reads from its
own state machine, without a heartbeat round to a quorum.

Why that holds here. Replicas run with check_quorum: a follower refuses
every vote that is not a leader transfer's for an election timeout,
counted in its own ticks, after hearing from its leader; a replica loaded
at a store's start holds its vote for its first election timeout
(`Config.hold_votes_on_start`), since it forgot whom it heard from. A store
ticks at most once per tick interval, bar one catch-up tick after a late
one, so election_tick ticks take at least (election_tick - 2) tick
intervals of wall time. The lease lasts that, less MAX_DRIFT of it.

The clock. The lease counts on the leader's monotonic clock from the start
of the turn that sent the round (before any of its messages left); a
SIGSTOPped leader wakes with its clock moved on and its lease run out. The
assumption: the stores' clocks advance at rates within MAX_DRIFT of each
other (CLOCK_MONOTONIC is slewed by NTP at most 0.05%, and does not count a
suspended machine's sleep: suspend a store's host and leases are unsafe).

Renewed by a quorum's confirmation of a round the leader started in its
term: a ReadIndex issued at t, or an entry of writes proposed at t and
committed. Ended by a leader transfer for the rest of the term (the
transferee's campaign is let through the followers' leases) and by an
applied membership change until a round started after it is confirmed.
"""

from __future__ import annotations

from collections import deque

MAX_DRIFT = 0.05
"""The share of the lease given up to clocks that run at different rates."""


def lease_duration(election_tick: int, tick_interval: float) -> float:
    return (election_tick - 2) * tick_interval * (1 - MAX_DRIFT)


class Lease:
    __slots__ = ("_proposed", "blocked_term", "duration", "not_before", "term", "until")

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self.term = 0
        self.until = 0.0
        """Reads may be served locally while now < until, in `term`."""
        self.not_before = 0.0
        """Only rounds started at or after this renew the lease."""
        self.blocked_term = 0
        """A leader transfer began in this term: no lease in it."""
        self._proposed: deque[tuple[int, int, float]] = deque()
        """(index, term, time) of write entries proposed, not yet committed."""

    def valid(self, term: int, now: float) -> bool:
        return term == self.term != self.blocked_term and now < self.until

    def renew(self, term: int, started_at: float) -> None:
        """A quorum confirmed a round this leader started at `started_at`."""
        if term < self.term or term == self.blocked_term or started_at < self.not_before:
            return
        if term > self.term:
            self.term, self.until = term, 0.0
        self.until = max(self.until, started_at + self.duration)

    def proposed(self, index: int, term: int, now: float) -> None:
        self._proposed.append((index, term, now))

    def committed(self, index: int, term: int) -> None:
        """Entry (index, term) is committed: so is every entry of `term`
        before it (log matching), and each renews from its proposal time."""
        started_at = None
        while self._proposed and self._proposed[0][0] <= index:
            _, p_term, at = self._proposed.popleft()
            if p_term == term:
                started_at = at
        if started_at is not None:
            self.renew(term, started_at)

    def end(self, now: float) -> None:
        """Until a quorum confirms a round started after `now`."""
        self.until = 0.0
        self.not_before = now
        self._proposed.clear()

    def end_term(self, term: int) -> None:
        """A leader transfer began: no lease for the rest of `term`."""
        self.blocked_term = term
        self.until = 0.0
        self._proposed.clear()
