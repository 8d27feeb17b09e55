"""The keys `cluster up` records per user, for clients given only the
cluster's addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from multiraft.cli import known_clusters


@pytest.fixture(autouse=True)
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "multiraft" / "clusters.json"


def keys_dir(tmp_path: Path) -> str:
    d = tmp_path / "keys"
    d.mkdir(exist_ok=True)
    (d / "admin.key_secret").write_text("secret")
    return str(d)


def test_recorded_keys_are_found_by_any_of_the_addresses(tmp_path: Path, config: Path) -> None:
    keys = keys_dir(tmp_path)
    known_clusters.remember(["127.0.0.1:1", "127.0.0.1:2"], keys)
    assert config.stat().st_mode & 0o777 == 0o600
    found = known_clusters.keys_for(["127.0.0.1:9", "127.0.0.1:2"])
    assert found == (str(Path(keys) / "admin.key_secret"), keys)
    assert known_clusters.keys_for(["127.0.0.1:9"]) is None


def test_a_plain_cluster_on_the_same_addresses_forgets_them(tmp_path: Path) -> None:
    known_clusters.remember(["127.0.0.1:1"], keys_dir(tmp_path))
    known_clusters.remember(["127.0.0.1:1"], None)
    assert known_clusters.keys_for(["127.0.0.1:1"]) is None


def test_keys_gone_or_a_broken_file_mean_none(tmp_path: Path, config: Path) -> None:
    keys = keys_dir(tmp_path)
    known_clusters.remember(["127.0.0.1:1"], keys)
    (Path(keys) / "admin.key_secret").unlink()
    assert known_clusters.keys_for(["127.0.0.1:1"]) is None
    config.write_text("not json")
    assert known_clusters.keys_for(["127.0.0.1:1"]) is None
