"""The client commands of INTERFACE.md, driven through click against a fake store."""

from __future__ import annotations

import json

from tests.client.fake_store import DROP, FakeStore, error, region

from .conftest import Run


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_put_get_delete(run: Run, fake: FakeStore) -> None:
    r = run("kv", "put", "greeting", "héllo")
    assert (r.exit_code, r.stdout) == (0, "OK\n")
    assert fake.cluster.data == {b"greeting": "héllo".encode()}
    r = run("kv", "get", "greeting")
    assert (r.exit_code, r.stdout) == (0, "héllo\n")
    assert run("kv", "delete", "greeting").exit_code == 0
    assert fake.cluster.data == {}


def test_get_absent_exits_1_with_one_line(run: Run) -> None:
    r = run("kv", "get", "nope")
    assert r.exit_code == 1
    assert r.stdout == ""
    assert len(lines(r.stderr)) == 1 and "not found" in r.stderr


def test_cluster_option_after_subcommand_wins_over_env(run: Run, fake: FakeStore) -> None:
    r = run("kv", "put", "--cluster", fake.addr, "k", "v", env={"MULTIRAFT_CLUSTER": "bad"})
    assert r.exit_code == 0, r.stderr
    assert fake.cluster.data == {b"k": b"v"}


def test_missing_cluster_is_a_one_line_usage_error(run: Run) -> None:
    r = run("kv", "get", "k", env={"MULTIRAFT_CLUSTER": None})
    assert r.exit_code == 2
    assert len(lines(r.stderr)) == 1
    assert "--cluster" in r.stderr and "MULTIRAFT_CLUSTER" in r.stderr


def test_bad_cluster_address_and_usage_errors_are_one_line(run: Run) -> None:
    for args in (
        ["kv", "get", "--cluster", "nohostport", "k"],
        ["kv", "get"],
        ["kv", "put", "k"],
        ["kv", "scan", "--limit", "-1"],
        ["kv", "get", "--hex", "zz"],
        ["kv", "cas", "k", "--new", "v"],
        ["kv", "cas", "k", "--expect", "a", "--expect-absent", "--new", "v"],
        ["kv", "cas", "k", "--expect", "a"],
        ["region", "transfer-leader", "x", "1"],
        ["nosuchcommand"],
    ):
        r = run(*args)
        assert r.exit_code == 2, (args, r.stderr)
        assert len(lines(r.stderr)) == 1 and r.stderr.startswith("Error: "), (args, r.stderr)


def test_hex_round_trip(run: Run, fake: FakeStore) -> None:
    assert run("kv", "put", "--hex", "00ff", "c3a9").exit_code == 0
    assert fake.cluster.data == {b"\x00\xff": b"\xc3\xa9"}
    r = run("kv", "get", "--hex", "00ff")
    assert r.stdout == "c3a9\n"
    r = run("kv", "scan", "--hex")
    assert r.stdout == "00ff\tc3a9\n"


def test_raw_bytes_are_written_as_is(run: Run, fake: FakeStore) -> None:
    fake.cluster.data[b"bin"] = b"\xff\x00"
    r = run("kv", "get", "bin")
    assert r.stdout_bytes == b"\xff\x00\n"


def test_scan_with_bounds_limit_and_json(run: Run, fake: FakeStore) -> None:
    fake.cluster.data.update({b"a": b"1", b"b": b"2", b"c": b"3", b"d": b"4"})
    assert lines(run("kv", "scan").stdout) == ["a\t1", "b\t2", "c\t3", "d\t4"]
    assert lines(run("kv", "scan", "b", "d").stdout) == ["b\t2", "c\t3"]
    assert lines(run("kv", "scan", "b", "--limit", "1").stdout) == ["b\t2"]
    rows = json.loads(run("kv", "scan", "c", "--json").stdout)
    assert rows == [{"key": "c", "value": "3"}, {"key": "d", "value": "4"}]


def test_cas(run: Run, fake: FakeStore) -> None:
    r = run("kv", "cas", "k", "--expect-absent", "--new", "1")
    assert (r.exit_code, r.stdout) == (0, "OK\n")
    r = run("kv", "cas", "k", "--expect", "0", "--new", "2")
    assert r.exit_code == 1 and len(lines(r.stderr)) == 1 and "not swapped" in r.stderr
    assert run("kv", "cas", "k", "--expect", "1", "--delete").exit_code == 0
    assert fake.cluster.data == {}


def test_cluster_errors_exit_3_with_one_line(run: Run, fake: FakeStore) -> None:
    fake.script["put"].append(error("StoreError", "disk full"))
    r = run("kv", "put", "k", "v")
    assert r.exit_code == 3
    assert lines(r.stderr) == ["Error: StoreError: disk full"]
    fake.script["get"] += [DROP] * 50
    r = run("kv", "get", "--timeout", "0.5", "k")
    assert r.exit_code == 3 and lines(r.stderr)[0].startswith("Error: Timeout")
    fake.script["put"].append(error("InvalidRequest", "too big"))
    r = run("kv", "put", "k", "v")
    assert r.exit_code == 2 and "too big" in r.stderr


def test_region_list_text_and_json(run: Run, fake: FakeStore) -> None:
    fake.cluster.regions = [
        (region(2, b"m", b"", 2, (1, 2, 3)), None),
        (region(1, b"", b"m", 2, (1, 2, 3)), 1),
    ]
    r = run("region", "list")
    assert r.exit_code == 0
    table = lines(r.stdout)
    assert table[0].split() == ["ID", "START", "END", "EPOCH", "PEERS", "LEADER"]
    assert table[1].split() == ["1", "(min)", "m", "v2,c1", "1,2,3", "1"]
    assert table[2].split() == ["2", "m", "(max)", "v2,c1", "1,2,3", "-"]
    objs = json.loads(run("region", "list", "--json").stdout)
    assert [o["id"] for o in objs] == [1, 2]
    assert objs[0] == {
        "id": 1,
        "start": "",
        "end": "m",
        "epoch": {"version": 2, "conf_ver": 1},
        "peers": [{"store_id": s, "peer_id": 100 + s, "role": "voter"} for s in (1, 2, 3)],
        "leader": 1,
    }
    assert objs[1]["leader"] is None
    assert json.loads(run("region", "list", "--json", "--hex").stdout)[1]["start"] == "6d"


def test_region_split_and_transfer_leader(run: Run, fake: FakeStore) -> None:
    left, right = region(1, b"", b"m", 2), region(2, b"m", b"", 2)
    fake.script["split"].append((True, [left.to_wire(), right.to_wire()]))
    r = run("region", "split", "m")
    assert r.exit_code == 0, r.stderr
    assert fake.ops("split")[0].args["key"] == b"m"
    assert "(min)" in r.stdout and "(max)" in r.stdout
    fake.cluster.stores[2] = fake.addr
    fake.cluster.regions = [(region(1, stores=(1, 2)), 1)]
    r = run("region", "transfer-leader", "1", "2")
    assert (r.exit_code, r.stdout) == (0, "OK\n"), r.stderr
    assert fake.ops("transfer_leader")[0].args == {"region": 1, "epoch": [1, 1], "store": 2}


def test_transfer_leader_unknown_region_fails(run: Run) -> None:
    r = run("region", "transfer-leader", "99", "1")
    assert r.exit_code == 3 and "RegionNotFound" in r.stderr


def test_status_text_and_json(run: Run, fake: FakeStore) -> None:
    r = run("status")
    assert r.exit_code == 0
    assert "answered by store 1" in r.stdout
    st = json.loads(run("status", "--json").stdout)
    assert set(st) == {"stores", "regions"}
    assert st["stores"][0]["id"] == 1 and st["stores"][0]["up"] is True
    assert st["regions"][0]["id"] == 1 and st["regions"][0]["leader"] == 1


def test_help_texts(run: Run) -> None:
    for args in (["--help"], ["kv", "--help"], ["kv", "scan", "--help"], ["region", "--help"]):
        r = run(*args)
        assert r.exit_code == 0 and "Usage:" in r.stdout
    assert "--cluster" in run("status", "--help").stdout
