from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multiraft.storage import keys

U64 = st.integers(min_value=0, max_value=2**64 - 1)


@given(U64, U64, U64, U64)
def test_log_key_order_is_region_then_index_order(r1: int, i1: int, r2: int, i2: int) -> None:
    k1, k2 = keys.raft_log_key(r1, i1), keys.raft_log_key(r2, i2)
    assert (k1 < k2) == ((r1, i1) < (r2, i2))
    assert keys.raft_log_index(k1) == i1


@given(U64, U64)
def test_region_keys_share_the_region_prefix_and_sort_after_its_log(r: int, i: int) -> None:
    prefix = keys.region_prefix(r)
    log = keys.raft_log_key(r, i)
    states = [keys.hard_state_key(r), keys.apply_state_key(r), keys.region_state_key(r)]
    assert log.startswith(keys.raft_log_prefix(r)) and log.startswith(prefix)
    assert all(k.startswith(prefix) for k in states)
    assert log < states[0] < states[1] < states[2]
    assert len(set(states)) == 3


@given(U64, U64, st.binary())
def test_data_keys_sort_after_every_local_key(r: int, i: int, k: bytes) -> None:
    locals_ = [keys.STORE_IDENT_KEY, keys.raft_log_key(r, i), keys.region_state_key(r)]
    assert max(locals_) < keys.data_key(k) < keys.DATA_END
    assert keys.user_key(keys.data_key(k)) == k


def test_exact_bytes_of_the_layout() -> None:
    assert keys.raft_log_key(1, 2) == b"\x01" + (1).to_bytes(8, "big") + b"\x01" + (2).to_bytes(
        8, "big"
    )
    assert keys.hard_state_key(1) == b"\x01" + (1).to_bytes(8, "big") + b"\x02"
    assert keys.apply_state_key(1) == b"\x01" + (1).to_bytes(8, "big") + b"\x03"
    assert keys.region_state_key(1) == b"\x01" + (1).to_bytes(8, "big") + b"\x04"
    assert keys.STORE_IDENT_KEY == b"\x00\x01"
    assert keys.data_key(b"k") == b"zk"


@given(st.binary(), st.binary(), st.binary())
def test_data_range_holds_exactly_the_region_keys(start: bytes, end: bytes, k: bytes) -> None:
    lo, hi = keys.data_range(start, end)
    inside = start <= k and (end == b"" or k < end)
    assert (lo <= keys.data_key(k) < hi) == inside


def test_user_key_rejects_non_data_keys() -> None:
    with pytest.raises(ValueError):
        keys.user_key(keys.hard_state_key(1))
