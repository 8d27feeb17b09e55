"""The checker itself: it must accept linearizable histories and reject the rest."""

from __future__ import annotations

import math

from .linearizability import Op, check_history, check_register

K = b"k"


def test_sequential_history_is_linearizable() -> None:
    ops = [
        Op(K, "put", 0, 1, b"a"),
        Op(K, "get", 2, 3, result=b"a"),
        Op(K, "cas", 4, 5, (b"a", b"b"), True),
        Op(K, "cas", 6, 7, (b"a", b"c"), False),
        Op(K, "delete", 8, 9),
        Op(K, "get", 10, 11, result=None),
    ]
    assert check_register(ops)


def test_stale_read_after_a_completed_write_is_not() -> None:
    ops = [Op(K, "put", 0, 1, b"a"), Op(K, "put", 2, 3, b"b"), Op(K, "get", 4, 5, result=b"a")]
    assert not check_register(ops)


def test_concurrent_ops_may_take_either_order() -> None:
    ops = [
        Op(K, "put", 0, 10, b"a"),
        Op(K, "get", 1, 2, result=None),
        Op(K, "get", 3, 4, result=b"a"),
    ]
    assert check_register(ops)
    # ...but not both orders at once: None after a was seen.
    ops.append(Op(K, "get", 5, 6, result=None))
    assert not check_register(ops)


def test_cas_applied_twice_is_not_linearizable() -> None:
    # Two successful cas 0->1 with a reset in between is fine; without the
    # reset, the second one must fail.
    ops = [
        Op(K, "put", 0, 1, b"0"),
        Op(K, "cas", 2, 3, (b"0", b"1"), True),
        Op(K, "cas", 4, 5, (b"0", b"1"), True),
    ]
    assert not check_register(ops)


def test_unknown_outcome_may_or_may_not_apply() -> None:
    maybe = Op(K, "put", 0, math.inf, b"x")
    assert check_register([maybe, Op(K, "get", 1, 2, result=None)])
    assert check_register([maybe, Op(K, "get", 1, 2, result=b"x")])
    assert not check_register([maybe, Op(K, "get", 1, 2, result=b"y")])


def test_history_is_checked_per_key() -> None:
    ops = [
        Op(b"a", "put", 0, 1, b"1"),
        Op(b"b", "get", 2, 3, result=b"1"),  # b was never written
    ]
    assert check_history(ops) == [b"b"]
