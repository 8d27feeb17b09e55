"""Where `cluster up` leaves the keys of the secure clusters it starts, so
that a client command given only MULTIRAFT_CLUSTER (all that
../shared/INTERFACE.md asks of a user) finds them, as kubectl finds the
clusters `kind` made in its kubeconfig.

One JSON file per user, $XDG_CONFIG_HOME/multiraft/clusters.json
(~/.config/multiraft/... by default), mode 600: store address -> the
directory of that cluster's keys (the stores' certificates and the admin
key, itself mode 600). Only the user who started a cluster can read the
file or the key it points to; `--key`, `--cluster-keys` and their
environment variables always win over it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

ADMIN_KEY = "admin.key_secret"


def registry_path() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(config) / "multiraft" / "clusters.json"


def remember(addrs: Iterable[str], keys_dir: str | None) -> None:
    """Record that the stores at `addrs` trust the keys in `keys_dir` (None:
    they run without keys, forget any recorded); a warning, not a failure,
    where the file cannot be written."""
    path = registry_path()
    before = _read(path)
    known = dict(before)
    for addr in addrs:
        if keys_dir is None:
            known.pop(addr, None)
        else:
            known[addr] = keys_dir
    if known == before:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(known, out, indent=1)
        os.replace(tmp, path)
    except OSError as e:
        log.warning("could not record the cluster's keys in %s: %s", path, e)


def keys_for(addrs: Iterable[str]) -> tuple[str, str] | None:
    """(admin key, certificates directory) of the first of `addrs` that
    `cluster up` recorded and whose keys are still there; None otherwise."""
    known = _read(registry_path())
    for addr in addrs:
        keys_dir = known.get(addr)
        if isinstance(keys_dir, str) and os.path.isfile(os.path.join(keys_dir, ADMIN_KEY)):
            return os.path.join(keys_dir, ADMIN_KEY), keys_dir
    return None


def _read(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
