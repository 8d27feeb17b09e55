"""CurveZMQ key pairs in pyzmq's certificate format.

`NAME.key` holds the public key, `NAME.key_secret` the public and the secret
key (readable by its owner only); both carry metadata saying what the key is
for: its role, and for a store its id and address, so one directory of
public certificates tells a store whom to trust and a client which key each
store must prove it holds. `zmq.auth.load_certificate` reads them."""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

ROLES = ("store", "admin", "readwrite", "readonly")
"""What a key may do (see `trust.PERMISSIONS`)."""

_META_LINE = re.compile(r'^\s+([A-Za-z0-9_-]+)\s*=\s*"?([^"]*)"?\s*$')


class CertificateError(ValueError):
    """A certificate file that is missing, unreadable or malformed."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    """This process's own key: it proves who we are."""

    public: str
    secret: str
    """z85 text, 40 characters each."""


@dataclass(frozen=True, slots=True)
class PublicCert:
    """Someone else's public key and what it is for."""

    public: str
    role: str
    name: str
    store_id: int | None = None
    addr: str | None = None


def generate(
    name: str,
    out_dir: str | os.PathLike[str],
    role: str,
    store_id: int | None = None,
    addr: str | None = None,
) -> tuple[Path, Path]:
    """Write a new key pair as `out_dir/NAME.key` and `NAME.key_secret`;
    returns their paths. Refuses to overwrite an existing key."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if (role == "store") != (store_id is not None):
        raise ValueError("a store key needs a store id, and only a store key has one")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"key name {name!r}: use letters, digits, '.', '_' and '-'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    public_path, secret_path = out / f"{name}.key", out / f"{name}.key_secret"
    for path in (public_path, secret_path):
        if path.exists():
            raise FileExistsError(f"{path} exists; not overwriting a key")
    public, secret = (k.decode() for k in zmq.curve_keypair())
    meta = {"name": name, "role": role}
    if store_id is not None:
        meta["store_id"] = str(store_id)
    if addr is not None:
        meta["addr"] = addr
    _write(public_path, meta, public, None)
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    _write(secret_path, meta, public, secret)
    return public_path, secret_path


def make_cluster_keys(keys_dir: str | os.PathLike[str], stores: dict[int, str]) -> Path:
    """A local cluster's keys in one directory: `store-N` for each store
    (with its id and address) and `admin`, each made once. The directory is
    at once the stores' `--trusted` and the clients' cluster keys."""
    out = Path(keys_dir)
    for sid, addr in stores.items():
        if not (out / f"store-{sid}.key_secret").exists():
            generate(f"store-{sid}", out, "store", sid, addr)
    if not (out / "admin.key_secret").exists():
        generate("admin", out, "admin")
    return out


def _write(path: Path, meta: dict[str, str], public: str, secret: str | None) -> None:
    kind = "Secret" if secret else "Public"
    lines = [
        f"#   ****  Generated on {datetime.datetime.now()} by multiraft  ****",
        f"#   ZeroMQ CURVE {kind} Certificate",
        "",
        "metadata",
        *(f'    {k} = "{v}"' for k, v in meta.items()),
        "curve",
        f'    public-key = "{public}"',
    ]
    if secret:
        lines.append(f'    secret-key = "{secret}"')
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def load_key_pair(path: str | os.PathLike[str]) -> KeyPair:
    """Our own key from a `.key_secret` file."""
    public, secret = _load(path)
    if secret is None:
        raise CertificateError(f"{path} holds no secret key (give the .key_secret file)")
    return KeyPair(public, secret)


def load_public(path: str | os.PathLike[str]) -> PublicCert:
    """A public certificate (a `.key_secret` file works too)."""
    public, _ = _load(path)
    meta = _metadata(Path(path))
    role = meta.get("role", "")
    if role not in ROLES:
        raise CertificateError(f"{path}: role must be one of {', '.join(ROLES)}, not {role!r}")
    store_id = meta.get("store_id")
    if (role == "store") != (store_id is not None) or not (store_id or "1").isdigit():
        raise CertificateError(f"{path}: a store key needs a store_id, and only a store has one")
    name = meta.get("name") or Path(path).name.split(".")[0]
    return PublicCert(public, role, name, int(store_id) if store_id else None, meta.get("addr"))


def load_publics(path: str | os.PathLike[str]) -> list[PublicCert]:
    """Every `*.key` certificate of a directory, or the one file given."""
    p = Path(path)
    if p.is_dir():
        return [load_public(f) for f in sorted(p.glob("*.key"))]
    return [load_public(p)]


def _load(path: str | os.PathLike[str]) -> tuple[str, str | None]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as e:
        raise CertificateError(f"cannot read a key from {path}: {e}") from None
    if len(public) != 40 or (secret is not None and len(secret) != 40):
        raise CertificateError(f"{path} holds a malformed key")
    return public.decode(), None if secret is None else secret.decode()


def _metadata(path: Path) -> dict[str, str]:
    meta: dict[str, str] = {}
    in_meta = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line[0].isspace():
            in_meta = line.strip() == "metadata"
            continue
        m = _META_LINE.match(line)
        if in_meta and m:
            meta[m.group(1)] = m.group(2)
    return meta
