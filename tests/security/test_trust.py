from __future__ import annotations

import random

import pytest

from multiraft.security.keys import PublicCert
from multiraft.security.trust import PLAIN, UNTRUSTED, Principal, TrustTable

A, B, C = "A" * 40, "B" * 40, "C" * 40


def test_roles_allow_what_they_name_and_nothing_else() -> None:
    reader, writer = Principal("readonly", "r"), Principal("readwrite", "w")
    admin, store = Principal("admin", "a"), Principal("store", "s", 1)
    assert reader.may("get") and reader.may("scan") and not reader.may("put")
    assert writer.may("put") and writer.may("cas") and not writer.may("split")
    assert admin.may("split") and admin.may("trust_add") and admin.may("put")
    assert store.may("join") and not store.may("put") and store.is_store
    assert not admin.is_store and not writer.is_store
    assert PLAIN.may("anything") and PLAIN.is_store
    assert not UNTRUSTED.may("get") and not UNTRUSTED.is_store


def test_seeded_keys_are_trusted_and_a_removal_outranks_the_seed() -> None:
    t = TrustTable(1)
    t.seed([PublicCert(A, "store", "store-2", 2), PublicCert(B, "admin", "admin")])
    assert t.principal(A) == Principal("store", "store-2", 2)
    assert t.store_key(2) == A and t.store_key(3) is None
    assert t.remove(B) and not t.remove(B) and not t.remove(C)
    assert t.principal(B) is None
    t.seed([PublicCert(B, "admin", "admin")])  # a restart with the same --trusted dir
    assert t.principal(B) is None


def test_add_refuses_a_second_key_for_one_store_and_bad_entries() -> None:
    t = TrustTable(1)
    t.add(A, "store", "store-2", 2)
    with pytest.raises(ValueError, match="already has a trusted key"):
        t.add(B, "store", "other", 2)
    with pytest.raises(ValueError):
        t.add(B, "root", "x", None)
    with pytest.raises(ValueError):
        t.add(B, "store", "x", None)


def test_tables_converge_whatever_order_the_gossip_comes_in() -> None:
    """Three stores make changes; every store merges every other's table in
    a random order, repeatedly: all end equal, and the last change wins."""
    rng = random.Random(7)
    for _ in range(50):
        stores = [TrustTable(i) for i in (1, 2, 3)]
        for step in range(12):
            t = rng.choice(stores)
            key = rng.choice([A, B, C])
            if rng.random() < 0.5:
                t.add(key, rng.choice(["admin", "readonly"]), f"k{step}", None)
            else:
                t.remove(key)
            other = rng.choice(stores)
            other.merge(t.to_wire())
        for _ in range(2):
            for dst in stores:
                for src in rng.sample(stores, 3):
                    dst.merge(src.to_wire())
        assert stores[0].to_wire() == stores[1].to_wire() == stores[2].to_wire()


def test_merge_rejects_malformed_tables() -> None:
    t = TrustTable(1)
    for bad in (
        [],
        {A: "x"},
        {"short": ["admin", "n", None, [1, 1], False]},
        {A: ["admin", "n", None, [1], False]},
        {A: ["store", "n", None, [1, 1], False]},
    ):
        with pytest.raises((ValueError, TypeError)):
            t.merge(bad)
    assert t.entries == {}
