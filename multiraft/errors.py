"""Public exceptions of multiraft.

`Timeout` is the only error whose operation may or may not have taken
effect; every other error means it did not.

The same classes are what a store answers with: an error travels as its
class name, its message and its `detail` (what a client needs to retry:
the leader's store, the region's current descriptor; see
`multiraft.protocol.wire`).
"""

from __future__ import annotations

from typing import Any


class MultiraftError(Exception):
    """Base class of every error multiraft raises to users."""

    def __init__(self, message: str = "", detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.detail: dict[str, Any] = detail or {}
        """Wire-ready hints for a retry, e.g. {"region": descriptor}."""


class Timeout(MultiraftError):
    """No answer in time: the operation may or may not have taken effect."""


class InvalidRequest(MultiraftError):
    """The request is malformed (wrong types, oversize key or value)."""


class RegionError(MultiraftError):
    """The request reached the wrong place; the client refreshes its routes
    and retries these by itself, so users rarely see them."""


class NotLeader(RegionError):
    """The store does not lead the region; `leader_store_id` may name who does."""

    def __init__(
        self,
        message: str = "",
        leader_store_id: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, {**(detail or {}), "leader": leader_store_id})
        self.leader_store_id = leader_store_id


class RegionNotFound(RegionError):
    """The store has no replica of the region."""


class KeyNotInRegion(RegionError):
    """The key lies outside the region's range."""


class EpochNotMatch(RegionError):
    """The region split or changed membership since the client looked."""


class ServerBusy(RegionError):
    """The store is overloaded or the region is not ready; retry later."""


class PermissionDenied(MultiraftError):
    """The request's key is not trusted, or its role may not do this
    (e.g. a readonly key that writes, a client key that sends Raft)."""


class AuthenticationFailed(MultiraftError):
    """The secure handshake with a store failed: our key is not trusted, the
    store's key is not the one we hold for it, or one side has no key."""


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
        PermissionDenied,
        AuthenticationFailed,
        StoreError,
    )
}
"""Error kinds as they travel on the wire (the class name)."""
