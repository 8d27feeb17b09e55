"""Config.validate."""

import pytest

from multiraft.raft import MemoryStorage, RawNode
from multiraft.raft.config import Config, ReadOnlyOption
from multiraft.raft.errors import ConfigInvalid


def test_defaults_are_valid():
    Config(1).validate()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"heartbeat_tick": 1, "election_tick": 2},
        {"max_inflight_msgs": 1, "max_size_per_msg": 1},
        {"read_only_option": ReadOnlyOption.LEASE_BASED, "check_quorum": True},
    ],
)
def test_valid_edge_settings(kwargs):
    Config(1, **kwargs).validate()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"id": 0}, "id"),
        ({"heartbeat_tick": 0}, "heartbeat_tick"),
        ({"heartbeat_tick": -1}, "heartbeat_tick"),
        ({"heartbeat_tick": 3, "election_tick": 3}, "election_tick"),
        ({"heartbeat_tick": 3, "election_tick": 2}, "election_tick"),
        ({"max_inflight_msgs": 0}, "max_inflight_msgs"),
        ({"max_inflight_msgs": -1}, "max_inflight_msgs"),
        ({"max_size_per_msg": 0}, "max_size_per_msg"),
        ({"read_only_option": ReadOnlyOption.LEASE_BASED}, "check_quorum"),
    ],
)
def test_validate_rejects(kwargs, message):
    kwargs = {"id": 1, **kwargs}
    with pytest.raises(ConfigInvalid, match=message):
        Config(**kwargs).validate()


def test_rawnode_validates_its_config():
    with pytest.raises(ConfigInvalid):
        RawNode(Config(1, election_tick=1), MemoryStorage())
