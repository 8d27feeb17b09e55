from __future__ import annotations

import msgpack
import pytest

from multiraft.store.commands import (
    CAS,
    DELETE,
    OPS,
    PUT,
    SPLIT,
    SPLITS,
    WRITES,
    SplitCommand,
    SplitPart,
    WriteCommand,
    decode_entry,
    encode_split,
    encode_writes,
)


def test_writes_round_trip() -> None:
    cmds = [
        WriteCommand(PUT, 1, 5, 3, 2, b"k", b"v"),
        WriteCommand(DELETE, 1, 6, 3, 2, b"k"),
        WriteCommand(CAS, 2**63, 1, 0, 2, b"", None, b"new"),
        WriteCommand(CAS, 9, 2**40, 2**40, 1, b"\xff" * 10, b"old", None),
    ]
    assert decode_entry(encode_writes(cmds)) == (WRITES, cmds)


def test_empty_writes_round_trip() -> None:
    assert decode_entry(encode_writes([])) == (WRITES, [])


def test_split_round_trip() -> None:
    parts = [SplitPart(b"m", 2**33 + 1, [2**33 + 2, 2**33 + 3]), SplitPart(b"p", 7, [8, 9])]
    cmd = SplitCommand(3, parts)
    assert decode_entry(encode_split(cmd)) == (SPLITS, cmd)


def test_a_one_key_split_written_before_batch_splits_still_reads() -> None:
    old = msgpack.packb([SPLIT, [3, b"m", 11, [12, 13]]])
    assert decode_entry(old) == (SPLITS, SplitCommand(3, [SplitPart(b"m", 11, [12, 13])]))


@pytest.mark.parametrize("kind", [3, 99, -1, "writes", None])
def test_unknown_kind_raises_value_error(kind: object) -> None:
    with pytest.raises(ValueError, match="unknown entry kind"):
        decode_entry(msgpack.packb([kind, []]))


def test_ops() -> None:
    assert OPS == {"put": PUT, "delete": DELETE, "cas": CAS}
