"""Inflights: a bounded window of MsgApp messages sent but not yet acknowledged.

Each slot holds the last index of one in-flight append. When the window is
full the leader stops sending appends to that follower (flow control).
"""

from __future__ import annotations

from collections import deque


class Inflights:
    __slots__ = ("_buffer", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._buffer: deque[int] = deque()

    def add(self, last_index: int) -> None:
        if self.full():
            raise AssertionError("cannot add into a full inflights")
        self._buffer.append(last_index)

    def free_le(self, to: int) -> None:
        """Free every in-flight append whose last index is <= `to`."""
        buf = self._buffer
        while buf and buf[0] <= to:
            buf.popleft()

    def free_first_one(self) -> None:
        if self._buffer:
            self._buffer.popleft()

    def full(self) -> bool:
        return len(self._buffer) >= self.size

    def count(self) -> int:
        return len(self._buffer)

    def reset(self) -> None:
        self._buffer.clear()
