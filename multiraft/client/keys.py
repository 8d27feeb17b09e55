"""A secure client's keys: its own (which the stores check against their
trust table) and, per store address, the key that store must prove.

`cluster_keys` seeds the second: a directory (or one file) of store
certificates carrying `addr` metadata, as `multiraft cluster up` writes, or
a {"HOST:PORT": public key} map. Stores added later are learned from the
directory replies of stores already verified."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypedDict

from ..errors import AuthenticationFailed
from ..security.keys import CertificateError, KeyPair, load_key_pair, load_publics
from .connection import Curve, endpoint

KeySource = str | os.PathLike[str] | KeyPair
ClusterKeys = str | os.PathLike[str] | Mapping[str, str]


class KeyArgs(TypedDict, total=False):
    """Client(..., **this): a secure cluster's keys as paths (picklable, for
    the benchmark's worker processes); empty for a plain cluster."""

    key: str
    cluster_keys: str


class ClientKeys:
    def __init__(self, key: KeySource, cluster_keys: ClusterKeys | None) -> None:
        if cluster_keys is None:
            raise CertificateError("a client key needs cluster_keys: the stores' public keys")
        self.key = key if isinstance(key, KeyPair) else load_key_pair(key)
        self._by_addr: dict[str, str] = {}
        if isinstance(cluster_keys, Mapping):
            for addr, public in cluster_keys.items():
                endpoint(addr)
                self._by_addr[addr] = str(public)
            return
        for cert in load_publics(cluster_keys):
            if cert.role == "store" and cert.addr:
                self._by_addr[cert.addr] = cert.public
        if not self._by_addr:
            raise CertificateError(f"{cluster_keys} holds no store certificate with an addr")

    def curve(self, addr: str) -> Curve:
        public = self._by_addr.get(addr)
        if public is None:
            raise AuthenticationFailed(f"no public key known for the store at {addr}")
        return Curve(self.key, public)

    def learn(self, stores: Mapping[int, str], keys: Any) -> None:
        """Keys a verified store named for the stores it knows (never
        replacing one given by the user)."""
        if not isinstance(keys, dict):
            return
        for store_id, public in keys.items():
            addr = stores.get(store_id)
            if addr is not None and isinstance(public, str) and len(public) == 40:
                self._by_addr.setdefault(addr, public)
