"""The cluster's trust table: every public key a store accepts, with its
role, and what each role may do.

Stores replicate the table by gossip: an entry is stamped (counter, store id)
by the store that added or removed it, and the higher stamp wins, so every
store ends with the same table whatever order the gossip came in (a
last-writer-wins map; removal leaves a tombstone so an older "add" cannot
bring a key back). The `--trusted` certificates enter at stamp (0, 0): a
later `trust remove` outranks them, also across restarts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .keys import ROLES, PublicCert

log = logging.getLogger(__name__)

READONLY_OPS = frozenset({"get", "scan", "regions"})
READWRITE_OPS = READONLY_OPS | {"put", "delete", "cas"}
ADMIN_OPS = READWRITE_OPS | {
    "split",
    "change_peer",
    "transfer_leader",
    "status",
    "trust_add",
    "trust_remove",
    "trust_list",
}
PERMISSIONS: dict[str, frozenset[str]] = {
    "readonly": READONLY_OPS,
    "readwrite": READWRITE_OPS,
    "admin": ADMIN_OPS,
    "store": frozenset({"join", "regions"}),
}
"""The client requests each role may send. Only `store` keys may also send
store-to-store frames (Raft, snapshots, gossip)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who sent a frame, as the transport authenticated it."""

    role: str
    """One of `keys.ROLES`, or "plain" on a store without keys (anyone may
    do anything, as before security existed)."""
    name: str
    store_id: int | None = None

    def may(self, op: str) -> bool:
        return self.role == "plain" or op in PERMISSIONS.get(self.role, ())

    @property
    def is_store(self) -> bool:
        return self.role in ("store", "plain")


PLAIN = Principal("plain", "plain")
UNTRUSTED = Principal("untrusted", "removed from the trust table")
"""The sender on a connection made before its key was removed: it may do nothing."""


@dataclass(frozen=True, slots=True)
class TrustEntry:
    role: str
    name: str
    store_id: int | None
    stamp: tuple[int, int]
    removed: bool = False

    def to_wire(self) -> list[Any]:
        return [self.role, self.name, self.store_id, list(self.stamp), self.removed]

    @staticmethod
    def from_wire(w: Any) -> TrustEntry:
        role, name, store_id, stamp, removed = w
        if role not in ROLES or not isinstance(name, str) or type(removed) is not bool:
            raise ValueError("bad trust entry")
        if (role == "store") != (type(store_id) is int and store_id > 0):
            raise ValueError("a store key needs a store id, and only a store key has one")
        if not (isinstance(stamp, list) and len(stamp) == 2 and all(type(x) is int for x in stamp)):
            raise ValueError("bad trust stamp")
        return TrustEntry(role, name, store_id, (stamp[0], stamp[1]), removed)


class TrustTable:
    """Public key (z85 text) -> entry; `version` moves on every change."""

    def __init__(self, my_store_id: int) -> None:
        self.me = my_store_id
        self.entries: dict[str, TrustEntry] = {}
        self.version = 0

    def principal(self, key: str) -> Principal | None:
        """The principal of a key, or None if it is not (or no longer) trusted."""
        e = self.entries.get(key)
        if e is None or e.removed:
            return None
        return Principal(e.role, e.name, e.store_id)

    def store_key(self, store_id: int) -> str | None:
        """The key store `store_id` proves it holds, if any is trusted."""
        for key, e in self.entries.items():
            if e.store_id == store_id and not e.removed:
                return key
        return None

    def seed(self, certs: list[PublicCert]) -> None:
        """Take the `--trusted` certificates (stamp (0, 0): any replicated
        change outranks them)."""
        for c in certs:
            self._merge_one(c.public, TrustEntry(c.role, c.name, c.store_id, (0, 0)))

    def add(self, key: str, role: str, name: str, store_id: int | None) -> TrustEntry:
        """Trust `key` from now on (or change its role), stamped by this store."""
        entry = TrustEntry(role, name, store_id, self._next_stamp())
        TrustEntry.from_wire(entry.to_wire())  # the same checks as a gossiped entry
        for other, e in self.entries.items():
            if store_id is not None and e.store_id == store_id and other != key and not e.removed:
                raise ValueError(f"store {store_id} already has a trusted key ({e.name})")
        self._merge_one(key, entry)
        return entry

    def remove(self, key: str) -> bool:
        """Stop trusting `key`; False if it was not trusted."""
        old = self.entries.get(key)
        if old is None or old.removed:
            return False
        stamp = self._next_stamp()
        self._merge_one(key, TrustEntry(old.role, old.name, old.store_id, stamp, removed=True))
        return True

    def merge(self, wire: Any) -> bool:
        """Take in another store's table; returns whether anything changed."""
        if not isinstance(wire, dict):
            raise ValueError("trust table must be a map")
        changed = False
        for key, w in wire.items():
            if not (isinstance(key, str) and len(key) == 40):
                raise ValueError("bad trusted key")
            changed |= self._merge_one(key, TrustEntry.from_wire(w))
        return changed

    def to_wire(self) -> dict[str, list[Any]]:
        return {k: e.to_wire() for k, e in self.entries.items()}

    def listing(self) -> list[dict[str, Any]]:
        """The table for people: trusted keys first, tombstones marked."""
        rows = [
            {"key": k, "role": e.role, "name": e.name, "store_id": e.store_id, "removed": e.removed}
            for k, e in self.entries.items()
        ]
        return sorted(rows, key=lambda r: (r["removed"], r["role"], r["name"]))

    def _next_stamp(self) -> tuple[int, int]:
        top = max((e.stamp[0] for e in self.entries.values()), default=0)
        return (top + 1, self.me)

    def _merge_one(self, key: str, entry: TrustEntry) -> bool:
        old = self.entries.get(key)
        if old is not None and old.stamp >= entry.stamp:
            return False
        self.entries[key] = entry
        self.version += 1
        verb = "no longer trusts" if entry.removed else "trusts"
        log.info("store %d %s key %s (%s, %s)", self.me, verb, key[:8], entry.name, entry.role)
        return True
