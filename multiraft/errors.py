"""Public exceptions of multiraft.

`Timeout` is the only error whose operation may or may not have taken
effect; every other error means it did not.
"""

from __future__ import annotations


class MultiraftError(Exception):
    """Base class of every error multiraft raises to users."""


class Timeout(MultiraftError):
    """No answer in time: the operation may or may not have taken effect."""


class InvalidRequest(MultiraftError):
    """The request is malformed (wrong types, oversize key or value)."""


class RegionError(MultiraftError):
    """The request reached the wrong place; the client refreshes its routes
    and retries these by itself, so users rarely see them."""


class NotLeader(RegionError):
    """The store does not lead the region; `leader_store_id` may name who does."""

    def __init__(self, message: str, leader_store_id: int | None = None) -> None:
        super().__init__(message)
        self.leader_store_id = leader_store_id


class RegionNotFound(RegionError):
    """The store has no replica of the region."""


class KeyNotInRegion(RegionError):
    """The key lies outside the region's range."""


class EpochNotMatch(RegionError):
    """The region split or changed membership since the client looked."""


class ServerBusy(RegionError):
    """The store is overloaded or the region is not ready; retry later."""


class StoreError(MultiraftError):
    """The store failed the request for an internal reason (e.g. disk full)."""


ERRORS_BY_NAME: dict[str, type[MultiraftError]] = {
    cls.__name__: cls
    for cls in (
        Timeout,
        InvalidRequest,
        NotLeader,
        RegionNotFound,
        KeyNotInRegion,
        EpochNotMatch,
        ServerBusy,
        StoreError,
    )
}
"""Error kinds as they travel on the wire (the class name)."""
