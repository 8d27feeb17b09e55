from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import zmq.auth

from multiraft.security.keys import (
    CertificateError,
    generate,
    load_key_pair,
    load_public,
    load_publics,
)


def test_a_generated_pair_loads_back_with_its_metadata(tmp_path: Path) -> None:
    public, secret = generate("store-2", tmp_path, "store", 2, "127.0.0.1:7002")
    pair = load_key_pair(secret)
    cert = load_public(public)
    assert cert.public == pair.public and len(pair.secret) == 40
    assert (cert.role, cert.name, cert.store_id, cert.addr) == (
        "store",
        "store-2",
        2,
        "127.0.0.1:7002",
    )
    # pyzmq reads the same files: the format is its own.
    assert zmq.auth.load_certificate(public) == (pair.public.encode(), None)
    assert zmq.auth.load_certificate(secret) == (pair.public.encode(), pair.secret.encode())
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600


def test_generate_refuses_to_overwrite_and_checks_its_arguments(tmp_path: Path) -> None:
    generate("admin", tmp_path, "admin")
    with pytest.raises(FileExistsError):
        generate("admin", tmp_path, "admin")
    with pytest.raises(ValueError, match="role"):
        generate("x", tmp_path, "root")
    with pytest.raises(ValueError, match="store id"):
        generate("y", tmp_path, "store")
    with pytest.raises(ValueError, match="store id"):
        generate("z", tmp_path, "readonly", store_id=3)
    with pytest.raises(ValueError, match="name"):
        generate("../evil", tmp_path, "readonly")


def test_load_publics_reads_every_public_certificate_of_a_directory(tmp_path: Path) -> None:
    generate("b", tmp_path, "readonly")
    generate("a", tmp_path, "admin")
    assert [c.name for c in load_publics(tmp_path)] == ["a", "b"]
    assert [c.name for c in load_publics(tmp_path / "a.key")] == ["a"]


def test_broken_certificates_give_a_clear_error(tmp_path: Path) -> None:
    public, _ = generate("a", tmp_path, "admin")
    with pytest.raises(CertificateError, match="no secret key"):
        load_key_pair(public)
    with pytest.raises(CertificateError, match="cannot read"):
        load_public(tmp_path / "missing.key")
    bad = tmp_path / "bad.key"
    bad.write_text(public.read_text().replace('role = "admin"', 'role = "root"'))
    with pytest.raises(CertificateError, match="role"):
        load_public(bad)
    short = tmp_path / "short.key"
    short.write_text('metadata\n    role = "admin"\ncurve\n    public-key = "abc"\n')
    with pytest.raises(CertificateError, match="malformed"):
        load_public(short)
