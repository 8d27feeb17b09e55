"""Typed errors of the Raft core."""


class RaftError(Exception):
    """Base class of every error raised by the Raft core."""


class ConfigInvalid(RaftError):
    """A `Config` that cannot work (see `Config.validate`)."""


class ProposalDropped(RaftError):
    """The proposal was not appended: no leader known, a leader transfer is in
    progress, or this node is not a voter that may propose. Retry later."""


class StepLocalMessage(RaftError):
    """A local message (HUP, BEAT, ...) arrived from the network."""


class StepPeerNotFound(RaftError):
    """A response came from a node that is not in the configuration."""


class StorageError(RaftError):
    """Base class of errors a `Storage` may raise."""


class Compacted(StorageError):
    """The requested index is older than the storage's first index."""


class Unavailable(StorageError):
    """The requested index is newer than the storage's last index."""


class SnapshotOutOfDate(StorageError):
    """The snapshot is older than the storage's current snapshot."""


class SnapshotTemporarilyUnavailable(StorageError):
    """The storage cannot produce a snapshot right now; the leader retries."""
