"""Whether a verify history could have come from a linearizable store.

Linearizability is local (P-compositional): a history is linearizable iff
each key's is, so every key is checked on its own and gets its own verdict.

Registers (get / put / cas / delete) get a linearizability search: Wing &
Gong's depth-first search with Lowe's just-in-time linearization, as
Porcupine does it. Call and return events sit in one doubly linked list in
time order; an operation may go next only if it was called before the first
return still pending; linearizing it unlinks both of its events and
backtracking links them back, so a step costs no more than the operations
in flight. A (linearized set, state) once searched is never searched again.

Operations with an unknown outcome ("info") never return: they may take
effect at any time after they started, or never. One is tried only where it
lets go what could not go otherwise, and the memo counts a search that
linearized fewer of them as covering one that linearized more (never taking
effect stays open to them), so that timeouts do not multiply the states.
Proving that a history has no linearization means trying every order up to
where it fails, so the checker also looks for a short window of the history
there that fails on its own (see check_register), which is proof enough and
what a reader needs to see.

Sets (add / read) need no search: adds never conflict, so it is enough that
no element once known to be in the set goes missing and no element appears
that nobody added.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from multiraft.verify.history import Op

__all__ = ["Verdict", "check", "check_register", "check_set"]

SET_FS = frozenset({"add", "read"})


@dataclass(frozen=True)
class Verdict:
    key: str
    workload: Literal["register", "set"]
    status: Literal["ok", "fail", "unknown"]
    ops: int
    """Operations checked for this key ("fail" ones, which did not happen, are left out)."""
    reason: str
    """"" when ok; otherwise why, in one line."""
    window: tuple[Op, ...]
    """For a failure, the operations that show it (see check_register and
    check_set), in order of start; () otherwise."""


def check(ops: Iterable[Op], budget: float = 10.0) -> list[Verdict]:
    """One verdict per key, in key order. `budget` is the seconds a key's
    search may take before its verdict is "unknown"; a failing key may take
    as long again to find its window."""
    by_key: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        by_key[op.key].append(op)
    return [_check_key(by_key[key], budget) for key in sorted(by_key)]


def _check_key(ops: list[Op], budget: float) -> Verdict:
    fs = {op.f for op in ops}
    if fs <= SET_FS:
        return check_set(ops)
    if fs & SET_FS:
        n = sum(op.type != "fail" for op in ops)
        why = "mixes set operations (add, read) with register ones (get, put, cas, delete)"
        return Verdict(ops[0].key, "register", "fail", n, why, ())
    return check_register(ops, budget)


# --- registers ---------------------------------------------------------------

NONE = 0
"""The interned id of None, the absent value every key starts with."""
WILD = -1
"""The state at the start of a window: any value the key could have held."""
ANY = -2
"""`need` of an operation that requires nothing of the state."""
KEEP = -3
"""`new` of an operation that leaves the state as it is."""
JUNK = -4
"""Any value that no operation of a search asks for: one state for all of
them, as nothing can tell them apart."""

Effect = tuple[int, bool, int]
"""(need, equal, new): the state must equal `need` (or differ from it when
`equal` is False; ANY: no condition), and becomes `new` (KEEP: unchanged)."""


class _Step(NamedTuple):
    start: float
    end: float
    """math.inf for an operation that may take effect any time after start, or never."""
    need: int
    equal: bool
    new: int


def check_register(ops: list[Op], budget: float = 10.0) -> Verdict:
    """Whether one register's history is linearizable.

    A window [t, T] of the history is its operations that started by T and
    did not return before t; those that ran within it (called at or after
    t, returned by T) as they are, the others of unknown outcome (they may
    have taken effect at t or before, or within, or never); checked from
    any value the key could have held at t (absent, or one that some write
    wrote), or from absent if t is the history's start. A window that has no
    linearization proves that the history has none.

    A failing verdict's window ends at the first return, from where the
    search got stuck on, at which a failing window with its front at most
    about a thousand calls and returns back is found (else where the
    shortest failing prefix of the history ends); its front is then cut as
    late as it still fails, and it is stripped, oldest first, of each
    returned operation it can do without (a read left out, a write made of
    unknown outcome). What remains are returned operations, in order of
    start, that no linearization can order even if the other operations
    near them took effect at any time or never: two for a stale read. The
    window's search has a budget of its own, as long as `budget`; where it
    runs out the window is longer, never wrong.
    """
    began = time.monotonic()
    register = _Register(ops)
    key = ops[0].key if ops else ""
    n = len(register.ops)
    search = register.search(-math.inf, math.inf)
    found = search.run(began + budget / 8)
    cut = None
    if found is None:
        # Proving that no linearization exists means trying every order up
        # to where the search is stuck; a short failing window there is quicker.
        cut = register.near(search.reached, began + budget / 4)
        if cut is None:
            found = search.run(began + budget)
    if found:
        return Verdict(key, "register", "ok", n, "", ())
    if cut is None and found is None:
        why = f"search budget of {budget:g} s ran out after {search.visited:,} states"
        return Verdict(key, "register", "unknown", n, why, ())
    deadline = time.monotonic() + budget
    if cut is None:
        cut = register.near(search.reached, deadline) or register.first(deadline)
    window = register.shown(*cut, deadline)
    last = max(window, key=lambda op: op.end)
    why = f"not linearizable once {_describe(last)} returned ({len(window)} ops in the window)"
    return Verdict(key, "register", "fail", n, why, window)


def _describe(op: Op) -> str:
    shown = f" {op.value!r}" if op.value is not None else ""
    got = f" -> {op.result!r}" if op.f in ("get", "cas") else ""
    return f"process {op.process}'s {op.f}{shown}{got} at {op.start:.3f}-{op.end:.3f} s"


NEAR = 64
"""Returns after where the search got stuck at which to look for a failing window."""
REACH = 1024
"""How far back (in call and return times) to look for a failing window's front there."""


class _Register:
    """One key's operations (started in this order), values interned as ints."""

    def __init__(self, ops: list[Op]) -> None:
        self.ops = sorted((op for op in ops if op.type != "fail"), key=lambda op: op.start)
        self._ids: dict[Any, int] = {None: NONE}
        self.known = [self._effect(op, op.type == "ok") for op in self.ops]
        self.unknown = [self._effect(op, False) for op in self.ops]
        self.written = frozenset([NONE] + [e[2] for e in self.known if e is not None and e[2] >= 0])
        """Every value the key could have held: absent, or one some write wrote."""

    def _id(self, value: Any) -> int:
        value = tuple(value) if isinstance(value, list) else value
        return self._ids.setdefault(value, len(self._ids))

    def _effect(self, op: Op, known: bool) -> Effect | None:
        """What `op` does to the register if its outcome is `known` (None: nothing)."""
        if op.f == "get":
            return (self._id(op.result), True, KEEP) if known else None
        if op.f == "put":
            return ANY, True, self._id(op.value)
        if op.f == "delete":
            return ANY, True, NONE
        if op.f == "cas":
            if not isinstance(op.value, list | tuple) or len(op.value) != 2:
                raise ValueError(f"a cas's value is [expected, new]: {op}")
            expected, new = (self._id(v) for v in op.value)
            if known and not op.result:
                return expected, False, KEEP
            return expected, True, new
        raise ValueError(f"{op.f!r} is not a register operation: {op}")

    def steps(self, since: float, until: float, hidden: frozenset[int]) -> list[_Step]:
        """The window [since, until], `hidden` operations of unknown outcome."""
        steps = []
        for i, op in enumerate(self.ops):
            if op.start > until:
                break
            end = op.end if op.type == "ok" else math.inf
            if end < since:
                continue
            known = since <= op.start and end <= until and i not in hidden
            effect = self.known[i] if known else self.unknown[i]
            if effect is not None:
                steps.append(_Step(op.start, end if known else math.inf, *effect))
        return steps

    def search(self, since: float, until: float, hidden: frozenset[int] = frozenset()) -> _Search:
        initial = NONE if since == -math.inf else WILD
        return _Search(self.steps(since, until, hidden), initial, self.written)

    def fails(
        self, since: float, until: float, deadline: float, hidden: frozenset[int] = frozenset()
    ) -> bool:
        """Whether the window is proved, by `deadline`, to have no linearization."""
        return self.search(since, until, hidden).run(deadline) is False

    def near(self, reached: float, deadline: float) -> tuple[float, float] | None:
        """A failing window (its t and T) ending at one of the first returns
        from `reached` on, if one is found by `deadline`."""
        ends = sorted({op.end for op in self.ops if op.type == "ok" and op.end >= reached})
        for until in ends[:NEAR]:
            since = self._front(until, deadline, REACH)
            if since is not None:
                return since, until
            if time.monotonic() > deadline:
                break
        return None

    def first(self, deadline: float) -> tuple[float, float]:
        """The failing window of the shortest failing prefix (which the history is)."""
        ends = sorted({op.end for op in self.ops if op.type == "ok"})
        until = ends[_first(len(ends), lambda i: self.fails(-math.inf, ends[i], deadline))]
        since = self._front(until, deadline, len(ends) * 2)
        return -math.inf if since is None else since, until

    def _front(self, until: float, deadline: float, reach: int) -> float | None:
        """The latest t, back to `reach` cuts, at which the window to `until`
        fails (-inf: the history's start), if any."""
        times = {t for op in self.ops if op.start <= until for t in (op.start, op.end)}
        cuts = [-math.inf, *sorted(t for t in times if t <= until)]
        i = _last(len(cuts), lambda i: self.fails(cuts[i], until, deadline), reach)
        return None if i is None else cuts[i]

    def shown(self, since: float, until: float, deadline: float) -> tuple[Op, ...]:
        """The returned operations of a failing window that it cannot do without."""
        inside = [
            i
            for i, op in enumerate(self.ops)
            if op.type == "ok" and since <= op.start and op.end <= until
        ]
        hidden: frozenset[int] = frozenset()
        for i in inside:
            if self.fails(since, until, deadline, hidden | {i}):
                hidden |= {i}
        return tuple(self.ops[i] for i in inside if i not in hidden)


def _first(n: int, pred: Callable[[int], bool]) -> int:
    """The first i < n with pred(i), where pred is monotone and pred(n - 1) holds."""
    lo, hi = 0, n - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _last(n: int, pred: Callable[[int], bool], reach: int) -> int | None:
    """The last i < n with pred(i), where pred holds up to some i and not
    after; looked for from the end with growing steps, as windows are short,
    back to n - 1 - reach (None: not there)."""
    lowest = max(0, n - 1 - reach)
    above, i, step = n, n - 1, 1
    while not pred(i):
        if i == lowest:
            return None
        above, i = i, max(i - step, lowest)
        step *= 2
    hi = above - 1
    while i < hi:
        mid = (i + hi + 1) // 2
        if pred(mid):
            i = mid
        else:
            hi = mid - 1
    return i


class _Search:
    """One depth-first search for a linearization of `steps` from `initial`.

    Nodes 0..m-1 are the calls of the operations that returned, m..2m-1
    their returns (with `head`, a circular list in time order), 2m.. the
    operations of unknown outcome. At each point of the search the calls
    that may go next are tried (`rank`), then the unknown operations that
    may help (`_helpers`); a read that can go goes, alone (`_try`).

    A value that no operation still to be placed asks for is a dead one:
    all dead values are one state (JUNK), which lets the memo see that
    searches after different unread writes are the same search.
    """

    def __init__(self, steps: list[_Step], initial: int, written: frozenset[int]) -> None:
        done = [s for s in steps if s.end != math.inf]
        maybe = [s for s in steps if s.end == math.inf]
        m = self.m = len(done)
        self.head = 2 * m
        ops = done + done + maybe
        self.need = [s.need for s in ops]
        self.equal = [s.equal for s in ops]
        self.new = [s.new for s in ops]
        self.start = [s.start for s in ops]
        self.end = [s.end for s in ops]
        self.bit = [1 << i for i in range(m)] * 2 + [1 << j for j in range(len(maybe))]
        self.dies: dict[int, float] = defaultdict(lambda: -math.inf)
        """For each value, when the last operation that asks for it returns."""
        for s in steps:
            self.dies[s.need] = max(self.dies[s.need], s.end)
        self.rank = [
            0 if s.new == KEEP else 2 if s.need == ANY and self.dies[s.new] > -math.inf else 1
            for s in ops
        ]
        """The order to try calls in: reads, then writes, then blind writes
        of a value someone reads (they go best where a read needs them)."""
        events = sorted(
            [(s.start, 0, i) for i, s in enumerate(done)]
            + [(s.end, 1, m + i) for i, s in enumerate(done)]
        )
        self.nxt = [0] * (2 * m + 1)
        self.prv = [0] * (2 * m + 1)
        nodes = [self.head] + [node for _, _, node in events]
        for a, b in zip(nodes, nodes[1:] + nodes[:1], strict=True):
            self.nxt[a] = b
            self.prv[b] = a
        self.groups: dict[int, dict[Effect, list[int]]] = defaultdict(dict)
        """Unknown-outcome operations by the value they write, then by what
        they do (all alike but for when they started), in order of start."""
        for j, s in enumerate(maybe, 2 * m):
            self.groups[s.new].setdefault((s.need, s.equal, s.new), []).append(j)
        self.written = written
        self.done_bits = 0
        self.maybe_bits = 0
        self.left = m
        calls, self.limit = self._window()
        self.state = self._alive(initial)
        self.options, self.pos, self.helping = calls, 0, False
        """What to try here, how many tried, and whether they are the
        unknown operations (else the calls that may go next)."""
        self.stack: list[tuple[int, int, float, list[int], int, bool]] = []
        self.seen: dict[tuple[int, int], list[int]] = {(0, self.state): [0]}
        self.visited = 1
        self.deepest = 0
        self.reached = self.limit
        """The first pending return where the most calls were linearized."""

    def run(self, deadline: float) -> bool | None:
        """Whether a linearization exists (None: `deadline` passed first)."""
        turns = 0
        while self.left:
            turns += 1
            if not turns & 1023 and time.monotonic() > deadline:
                return None
            if self.pos < len(self.options):
                self.pos += 1
                self._try(self.options[self.pos - 1])
            elif not self.helping:
                self.options, self.pos, self.helping = self._helpers(), 0, True
            elif self.stack:
                self._backtrack()
            else:
                return False
        return True

    def _window(self) -> tuple[list[int], float]:
        """The calls that may go next (those before the first pending
        return), in the order to try them, and when that return is."""
        calls = []
        node = self.nxt[self.head]
        while node < self.m:
            calls.append(node)
            node = self.nxt[node]
        calls.sort(key=self.rank.__getitem__)
        return calls, self.end[node] if node != self.head else math.inf

    def _alive(self, state: int) -> int:
        return state if state < 0 or self.dies[state] >= self.limit else JUNK

    def _try(self, node: int) -> None:
        """Linearize `node` here if it can go and leads somewhere new."""
        state = self._step(node)
        if state is None:
            return
        # A read that can go here goes here, and nothing else is tried: in
        # any linearization from here it could as well go first.
        read = node < self.m and self.new[node] == KEEP and state == self.state
        done, maybe, limit = self.done_bits, self.maybe_bits, self.limit
        if node < self.m:
            done |= self.bit[node]
            self._lift(node)
            if self.end[node] == limit:  # it was the first pending return
                self.limit = self._window()[1]
        else:
            maybe |= self.bit[node]
        state = self._alive(state)
        tried = self.seen.get((done, state))
        if tried is None:
            self.seen[done, state] = [maybe]
        elif any(t | maybe == maybe for t in tried):
            # A search as good was made, with as many unknown ones left.
            if node < self.m:
                self._unlift(node)
                self.limit = limit
            if read:
                self.pos, self.helping = len(self.options), True
            return
        else:
            tried.append(maybe)
        self.visited += 1
        if read:
            self.pos, self.helping = len(self.options), True
        self.stack.append((node, self.state, limit, self.options, self.pos, self.helping))
        self.done_bits, self.maybe_bits, self.state = done, maybe, state
        self.left -= node < self.m
        if self.m - self.left > self.deepest:
            self.deepest, self.reached = self.m - self.left, self.limit
        self.options, self.pos, self.helping = self._window()[0], 0, False

    def _backtrack(self) -> None:
        node, self.state, self.limit, self.options, self.pos, self.helping = self.stack.pop()
        if node < self.m:
            self._unlift(node)
            self.done_bits ^= self.bit[node]
            self.left += 1
        else:
            self.maybe_bits ^= self.bit[node]

    def _lift(self, node: int) -> None:
        nxt, prv, ret = self.nxt, self.prv, node + self.m
        nxt[prv[node]], prv[nxt[node]] = nxt[node], prv[node]
        nxt[prv[ret]], prv[nxt[ret]] = nxt[ret], prv[ret]

    def _unlift(self, node: int) -> None:
        nxt, prv, ret = self.nxt, self.prv, node + self.m
        nxt[prv[ret]] = prv[nxt[ret]] = ret
        nxt[prv[node]] = prv[nxt[node]] = node

    def _step(self, node: int) -> int | None:
        """The state after `node` (None: it cannot go in this state)."""
        state, need = self.state, self.need[node]
        if need != ANY:
            if state == WILD:
                # A window's start: reading pins it, if it could hold that
                # value; a failed cas leaves it open (looser, never wrong).
                if self.equal[node]:
                    if need not in self.written:
                        return None
                    state = need
            elif (state == need) != self.equal[node]:
                return None
        new = self.new[node]
        return state if new == KEEP else new

    def _helpers(self) -> list[int]:
        """The unknown-outcome operations worth placing here.

        One is worth it only if it lets go next what could not go now (a
        call that may go next, or another such operation that does): any
        linearization can move an unknown write later until it is followed by
        an operation it lets go, or drop it. Of those that do the same here
        (writing dead values counts as the same), only the one called last
        is tried: any other could stand in for it later.
        """
        if not self.groups:
            return []
        wanted, anything = self._wanted()
        values = set(self.groups) if anything else wanted
        todo = list(values)
        while todo:  # what would let go an unknown cas that helps
            for group in self.groups.get(todo.pop(), {}).values():
                node = self._latest(group)
                need = self.need[node] if node >= 0 else ANY
                if need != ANY and need not in values and self._step(node) is None:
                    values.add(need)
                    todo.append(need)
        best: dict[Effect, int] = {}
        for value in values:
            for (need, equal, new), group in self.groups.get(value, {}).items():
                node = self._latest(group)
                effect = (need, equal, self._alive(new))
                if node >= 0 and self.start[node] >= self.start[best.get(effect, node)]:
                    best[effect] = node
        return [node for node in best.values() if self._step(node) is not None]

    def _wanted(self) -> tuple[set[int], bool]:
        """The states that the calls that may go next need and do not have,
        and whether one needs only a state other than this one (a failed cas)."""
        wanted: set[int] = set()
        anything = False
        node = self.nxt[self.head]
        while node < self.m:
            if self._step(node) is None:
                if self.equal[node]:
                    wanted.add(self.need[node])
                else:
                    anything = True
            node = self.nxt[node]
        return wanted, anything

    def _latest(self, group: list[int]) -> int:
        """The operation of `group` not yet placed that was called last (-1: none)."""
        for node in reversed(group):
            if self.start[node] <= self.limit and not self.maybe_bits & self.bit[node]:
                return node
        return -1


# --- sets --------------------------------------------------------------------

SHOWN = 3
"""Examples of each anomaly a set's window shows."""


def check_set(ops: list[Op]) -> Verdict:
    """Whether one set's adds and reads agree, as Jepsen's set-full checker.

    An element is known to be in the set from the earlier of its ok add's
    return and the return of the first read that saw it. It is lost if an
    ok read that started after that misses it (the final read included),
    and unexpected if a read returns it though no add of it (ok or of
    unknown outcome) started before the read returned.
    """
    ops = [op for op in ops if op.type != "fail"]
    key = ops[0].key if ops else ""
    adds = [op for op in ops if op.f == "add"]
    reads = sorted(
        (op for op in ops if op.f == "read" and op.type == "ok"), key=lambda op: op.start
    )
    attempted: dict[Any, float] = {}
    for op in adds:
        attempted[op.value] = min(op.start, attempted.get(op.value, math.inf))
    unexpected = [(x, r) for r in reads for x in r.result if attempted.get(x, math.inf) > r.end]
    lost = _lost(adds, reads)
    if not lost and not unexpected:
        return Verdict(key, "set", "ok", len(ops), "", ())
    parts = []
    if lost:
        parts.append(f"lost {_examples(x for x, _, _ in lost)}")
    if unexpected:
        parts.append(f"unexpected {_examples(x for x, _ in unexpected)}")
    shown = [op for _, known, missed in lost[:SHOWN] for op in (known, missed)]
    shown += [r for _, r in unexpected[:SHOWN]]
    unique = {id(op): op for op in shown}.values()  # a read's result is a list: no hash
    window = tuple(sorted(unique, key=lambda op: (op.start, op.end)))
    return Verdict(key, "set", "fail", len(ops), "; ".join(parts), window)


def _lost(adds: list[Op], reads: list[Op]) -> list[tuple[Any, Op, Op]]:
    """(element, the op that made it known, the first read missing it after)."""
    known: dict[Any, Op] = {}
    for op in [a for a in adds if a.type == "ok"] + reads:
        for x in [op.value] if op.f == "add" else op.result:
            if x not in known or op.end < known[x].end:
                known[x] = op
    contents = [(r, set(r.result)) for r in reads]
    lost = []
    for x, since in known.items():
        missed = next((r for r, xs in contents if r.start > since.end and x not in xs), None)
        if missed is not None:
            lost.append((x, since, missed))
    return sorted(lost, key=lambda t: t[2].start)


def _examples(elements: Iterable[Any]) -> str:
    """'3 elements (4, 9, 12, ...)' for the distinct elements given."""
    xs = list(dict.fromkeys(elements))
    more = ", ..." if len(xs) > SHOWN else ""
    noun = "element" if len(xs) == 1 else "elements"
    return f"{len(xs)} {noun} ({', '.join(map(repr, xs[:SHOWN]))}{more})"
