"""Errors of the storage layer."""

from multiraft.raft.errors import StorageError as RaftStorageError


class StorageError(RaftStorageError):
    """Base class of the errors `multiraft.storage` adds; a kind of the Raft
    core's `StorageError`, so one `except` covers what any Storage raises."""


class StorageFull(StorageError):
    """The disk (or the process's file-size limit) has no room for the write.

    The batch was not committed and nothing of it is visible; free space and
    commit it again.
    """


class IdentMismatch(StorageError):
    """The data dir belongs to another store or another cluster."""
