"""Replica-change requests are goals: "a voter on store S" (ADD) or "no
replica on store S" (REMOVE). The client asks again until the goal holds,
so a retry after a lost reply or a leader change is safe."""

from __future__ import annotations

from .region import VOTER, Region

ADD = "add"
REMOVE = "remove"
CHANGES = (ADD, REMOVE)


def goal_reached(region: Region, store_id: int, change: str) -> bool:
    meta = region.peer_on(store_id)
    if change == ADD:
        return meta is not None and meta.role == VOTER
    return meta is None
