"""The checker: it rejects histories no linearizable store could produce,
accepts those one could, says "unknown" (never "ok") when out of budget,
and shows a short window around a violation."""

from __future__ import annotations

import dataclasses
import itertools
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multiraft.verify.checker import check, check_register, check_set
from multiraft.verify.history import Op


def op(
    f: str,
    start: float,
    end: float,
    value: Any = None,
    result: Any = None,
    type: str = "ok",
    process: int = 0,
    key: str = "k",
) -> Op:
    return Op(process, key, f, value, type, result, start, end)  # type: ignore[arg-type]


def status(ops: list[Op]) -> str:
    return check_register(ops).status


# --- registers: known answers -------------------------------------------------


def test_a_sequential_history_is_linearizable() -> None:
    ops = [
        op("put", 0, 1, "a"),
        op("get", 2, 3, result="a"),
        op("cas", 4, 5, ["a", "b"], True),
        op("cas", 6, 7, ["a", "c"], False),
        op("delete", 8, 9),
        op("get", 10, 11, result=None),
        op("cas", 12, 13, [None, "d"], True),
        op("get", 14, 15, result="d"),
    ]
    verdict = check_register(ops)
    assert (verdict.status, verdict.ops, verdict.reason, verdict.window) == ("ok", 8, "", ())


def test_a_stale_read_after_a_completed_put_is_not() -> None:
    stale = op("get", 4, 5, result="a")
    verdict = check_register([op("put", 0, 1, "a"), op("put", 2, 3, "b"), stale])
    assert verdict.status == "fail"
    assert stale in verdict.window
    assert "get -> 'a' at 4.000-5.000 s" in verdict.reason


def test_a_lost_write_is_not() -> None:
    # Absent again after a put completed on a written key, with no delete.
    ops = [op("put", 0, 1, "a"), op("put", 2, 3, "b"), op("get", 4, 5, result=None)]
    assert status(ops) == "fail"


def test_a_cas_applied_twice_is_not() -> None:
    ops = [
        op("put", 0, 1, "0"),
        op("cas", 2, 3, ["0", "1"], True, process=1),
        op("cas", 4, 5, ["0", "1"], True, process=2),
    ]
    assert status(ops) == "fail"
    # ...but with a reset in between it is fine.
    assert status([*ops[:2], op("put", 3.5, 3.8, "0"), ops[2]]) == "ok"


def test_a_read_of_a_value_never_written_is_not() -> None:
    bad = op("get", 2, 3, result="ghost")
    verdict = check_register([op("put", 0, 1, "a"), bad, op("get", 4, 5, result="a")])
    assert verdict.status == "fail"
    assert verdict.window == (bad,)


def test_concurrent_puts_may_be_read_in_either_order() -> None:
    puts = [op("put", 0, 10, "a", process=1), op("put", 0, 10, "b", process=2)]
    assert status([*puts, op("get", 11, 12, result="a")]) == "ok"
    assert status([*puts, op("get", 11, 12, result="b")]) == "ok"
    # ...but not both orders at once: once b is read after a, a is gone.
    reads = [op("get", 5, 6, result="a"), op("get", 7, 8, result="b")]
    assert status([*puts, *reads]) == "ok"
    assert status([*puts, *reads, op("get", 11, 12, result="a")]) == "fail"


def test_an_op_may_take_effect_any_time_during_its_call() -> None:
    ops = [
        op("put", 0, 10, "a", process=1),
        op("get", 1, 2, result=None),
        op("get", 3, 4, result="a"),
    ]
    assert status(ops) == "ok"
    assert status([*ops, op("get", 5, 6, result=None)]) == "fail"


def test_an_unknown_outcome_may_or_may_not_take_effect() -> None:
    maybe = op("put", 0, 1, "x", type="info")
    assert status([maybe, op("get", 2, 3, result=None)]) == "ok"
    assert status([maybe, op("get", 2, 3, result="x")]) == "ok"
    assert status([maybe, op("get", 2, 3, result="y")]) == "fail"
    # Even long after the client gave up on it.
    late = [maybe, op("get", 2, 3, result=None), op("get", 50, 51, result="x")]
    assert status(late) == "ok"
    # But not before it started.
    early = [op("get", 0, 1, result="x"), dataclasses.replace(maybe, start=2, end=3)]
    assert status(early) == "fail"
    # At most once.
    assert status([*late, op("put", 60, 61, "y"), op("get", 62, 63, result="x")]) == "fail"


def test_an_unknown_cas_takes_effect_only_on_its_expected_value() -> None:
    cas = op("cas", 2, 3, ["a", "b"], type="info")
    assert status([op("put", 0, 1, "a"), cas, op("get", 4, 5, result="b")]) == "ok"
    assert status([op("put", 0, 1, "c"), cas, op("get", 4, 5, result="b")]) == "fail"


def test_two_cas_that_raced() -> None:
    def race(first: bool, second: bool, read: str) -> str:
        return status(
            [
                op("put", 0, 1, "a"),
                op("cas", 2, 6, ["a", "b"], first, process=1),
                op("cas", 3, 5, ["a", "c"], second, process=2),
                op("get", 7, 8, result=read),
            ]
        )

    # Whichever went first won; the read after tells which.
    assert race(True, False, "b") == "ok"
    assert race(False, True, "c") == "ok"
    assert race(True, False, "c") == "fail"
    assert race(True, True, "c") == "fail"  # both cannot have seen a
    assert race(False, False, "a") == "fail"  # ...nor both have failed with a there


def test_failed_ops_did_not_happen() -> None:
    refused = op("put", 0, 1, "x", type="fail")
    verdict = check_register([refused, op("get", 2, 3, result="x")])
    assert (verdict.status, verdict.ops) == ("fail", 1)
    assert check_register([refused, op("get", 2, 3, result=None)]).status == "ok"


def test_each_key_is_checked_on_its_own() -> None:
    ops = [
        op("put", 0, 1, "1", key="b"),
        op("get", 2, 3, result="1", key="a"),  # a was never written
        op("add", 0, 1, 5, key="s"),
        op("read", 2, 3, result=[5], key="s"),
        op("put", 0, 1, "1", key="mixed"),
        op("read", 2, 3, result=[], key="mixed"),
    ]
    verdicts = check(ops)
    assert [(v.key, v.workload, v.status) for v in verdicts] == [
        ("a", "register", "fail"),
        ("b", "register", "ok"),
        ("mixed", "register", "fail"),
        ("s", "set", "ok"),
    ]
    assert "mixes set operations" in verdicts[2].reason


def test_a_malformed_op_is_refused_with_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"a cas's value is \[expected, new\]"):
        check([op("cas", 0, 1, "a", True)])
    with pytest.raises(ValueError, match="'incr' is not a register operation"):
        check([op("incr", 0, 1)])


# --- sets ----------------------------------------------------------------------


def test_a_set_with_every_add_read_back_is_fine() -> None:
    ops = [
        op("add", 0, 1, 1),
        op("add", 0, 5, 2, process=1),
        op("read", 2, 3, result=[1]),  # 2 may not be there yet
        op("add", 2, 3, 3, type="info", process=2),
        op("read", 6, 7, result=[1, 2]),  # the unknown add may never happen
        op("read", 8, 9, result=[1, 2, 3]),  # ...or later
    ]
    verdict = check_set(ops)
    assert (verdict.workload, verdict.status, verdict.ops) == ("set", "ok", 6)


def test_a_lost_add_is_caught() -> None:
    add, final = op("add", 0, 1, 7), op("read", 5, 6, result=[1])
    verdict = check_set([op("add", 0, 1, 1), add, op("read", 2, 3, result=[1, 7]), final])
    assert verdict.status == "fail"
    assert verdict.reason == "lost 1 element (7)"
    assert add in verdict.window and final in verdict.window


def test_an_element_read_then_missing_is_lost_even_if_its_add_was_unknown() -> None:
    ops = [
        op("add", 0, 1, 7, type="info"),
        op("read", 2, 3, result=[7]),
        op("read", 4, 5, result=[]),
    ]
    assert check_set(ops).reason == "lost 1 element (7)"


def test_an_unexpected_element_is_caught() -> None:
    ops = [
        op("add", 0, 1, 1),
        op("add", 0, 1, 2, type="fail"),  # refused: it did not happen
        op("read", 2, 3, result=[1, 2, 9]),
        op("add", 5, 6, 4),
        op("read", 3, 4, result=[1, 4]),  # read before its add started
    ]
    verdict = check_set(ops)
    assert verdict.status == "fail"
    assert verdict.reason == "unexpected 3 elements (2, 9, 4)"
    assert len(verdict.window) == 2


# --- budget ----------------------------------------------------------------------


def test_running_out_of_budget_is_unknown_never_ok() -> None:
    ops = simulate(random.Random(1), 3000, processes=6)
    verdict = check_register(ops, budget=0)
    assert verdict.status == "unknown"
    assert verdict.reason.startswith("search budget of 0 s ran out after ")
    assert check_register(ops).status == "ok"
    bad = corrupt(ops, random.Random(2))
    assert check_register(bad, budget=0).status in ("unknown", "fail")
    assert check_register(bad).status == "fail"


# --- simulated histories ----------------------------------------------------------


def simulate(rng: random.Random, n: int, processes: int, info: float = 0.1) -> list[Op]:
    """`n` operations on one register by `processes` workers, each taking
    effect at a random instant of its call; an unknown one ("info") takes
    effect at some time after it started (maybe after the worker gave up)
    or never. Linearizable by construction."""
    clock = [rng.uniform(0, 1) for _ in range(processes)]
    calls = []
    for i in range(n):
        p = rng.randrange(processes)
        start = clock[p]
        end = start + rng.choice([0.01, 0.1, 1, 3]) * rng.random()
        clock[p] = end + rng.uniform(0, 0.2)
        f = rng.choice(["get", "get", "put", "put", "cas", "delete"])
        unknown = rng.random() < info
        at: float | None = rng.uniform(start, end)
        if unknown:
            at = rng.uniform(start, end + 5) if rng.random() < 0.5 else None
        calls.append((at, start, end, p, f, f"v{i}", unknown))
    state: str | None = None
    written: list[str | None] = [None]
    ops = []
    for at, start, end, p, f, value, unknown in sorted(
        calls, key=lambda c: c[1] if c[0] is None else c[0]
    ):
        result: Any = None
        arg: Any = value if f == "put" else None
        if f == "get":
            result = state
        elif f == "cas":
            arg = [rng.choice(written[-3:]), value]
            result = state == arg[0]
        if at is not None and (f in ("put", "delete") or f == "cas" and result):
            state = None if f == "delete" else value
            written.append(state)
        outcome = "info" if unknown else "ok"
        ops.append(op(f, start, end, arg, None if unknown else result, outcome, p))
    return ops


def corrupt(ops: list[Op], rng: random.Random) -> list[Op]:
    """`ops` with one read (chosen at random) reading a value never written."""
    gets = [i for i, o in enumerate(ops) if o.f == "get" and o.type == "ok"]
    i = rng.choice(gets)
    return [*ops[:i], dataclasses.replace(ops[i], result="never written"), *ops[i + 1 :]]


@settings(max_examples=150, deadline=None)
@given(rng=st.randoms(use_true_random=False), n=st.integers(1, 60), processes=st.integers(1, 6))
def test_simulated_histories_are_accepted(rng: random.Random, n: int, processes: int) -> None:
    verdict = check_register(simulate(rng, n, processes))
    assert verdict.status == "ok", verdict


@settings(max_examples=150, deadline=None)
@given(rng=st.randoms(use_true_random=False), n=st.integers(1, 60), processes=st.integers(1, 6))
def test_a_read_of_a_value_never_written_is_always_rejected(
    rng: random.Random, n: int, processes: int
) -> None:
    ops = simulate(rng, n, processes)
    if not any(o.f == "get" and o.type == "ok" for o in ops):
        return
    ops = corrupt(ops, rng)
    verdict = check_register(ops)
    assert verdict.status == "fail"
    [bad] = [o for o in ops if o.result == "never written"]
    assert verdict.window == (bad,)


def test_a_stale_read_amid_a_thousand_ops_gets_a_short_window() -> None:
    ops = simulate(random.Random(7), 1000, processes=4, info=0.02)
    gets = [i for i, o in enumerate(ops) if o.f == "get" and o.type == "ok"]
    i = gets[len(gets) // 2]
    puts = sorted((o for o in ops if o.f == "put" and o.type == "ok"), key=lambda o: o.end)
    newer = [p for p in puts if p.end < ops[i].start][-1]
    older = [p for p in puts if p.end < newer.start][-1]  # overwritten, surely, by newer
    stale = dataclasses.replace(ops[i], result=older.value)
    ops[i] = stale
    verdict = check_register(ops)
    assert verdict.status == "fail"
    assert stale in verdict.window
    assert 1 <= len(verdict.window) <= 10
    assert check_register(list(verdict.window)).status == "fail"


# --- against brute force ------------------------------------------------------


def brute_force(ops: list[Op]) -> bool:
    """Whether some order of the ok ops and some of the info ones, keeping
    real-time order, is a legal run of a register from absent."""
    done = [o for o in ops if o.type == "ok"]
    maybe = [o for o in ops if o.type == "info"]
    for k in range(len(maybe) + 1):
        for chosen in itertools.combinations(maybe, k):
            for order in itertools.permutations([*done, *chosen]):
                if _in_real_time_order(order) and _legal(order):
                    return True
    return False


def _in_real_time_order(order: tuple[Op, ...]) -> bool:
    return not any(
        b.type == "ok" and b.end < a.start for i, a in enumerate(order) for b in order[i + 1 :]
    )


def _legal(order: tuple[Op, ...]) -> bool:
    state = None
    for o in order:
        if o.f == "get" and o.type == "ok" and o.result != state:
            return False
        if o.f == "cas":
            swapped = state == o.value[0]
            if o.type == "ok" and o.result != swapped:
                return False
            state = o.value[1] if swapped else state
        elif o.f in ("put", "delete"):
            state = o.value
    return True


@st.composite
def small_histories(draw: st.DrawFn) -> list[Op]:
    """Any few ops, linearizable or not, on three values."""
    values = st.sampled_from(["a", "b", None])
    ops = []
    for i in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, 10))
        end = start + draw(st.integers(0, 4))
        f = draw(st.sampled_from(["get", "put", "cas", "delete"]))
        type = draw(st.sampled_from(["ok", "ok", "info"]))
        value: Any = {"put": draw(values), "cas": [draw(values), draw(values)]}.get(f)
        result = {"get": draw(values), "cas": draw(st.booleans())}.get(f)
        ops.append(op(f, start, end, value, result if type == "ok" else None, type, i))
    return ops


@settings(max_examples=300, deadline=None)
@given(ops=small_histories())
def test_the_checker_agrees_with_brute_force(ops: list[Op]) -> None:
    verdict = check_register(ops)
    assert (verdict.status == "ok") == brute_force(ops)
    if verdict.status == "fail":
        # The window fails on its own, and without the ops it leaves out.
        assert verdict.window
        assert not brute_force(list(verdict.window))
