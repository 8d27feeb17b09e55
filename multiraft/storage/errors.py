"""Errors of the storage layer."""


class StorageError(Exception):
    """Base class of every error raised by `multiraft.storage`."""


class StorageFull(StorageError):
    """The disk (or the process's file-size limit) has no room for the write.

    The batch was not committed and nothing of it is visible; free space and
    commit it again.
    """


class IdentMismatch(StorageError):
    """The data dir belongs to another store or another cluster."""
