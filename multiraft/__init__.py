"""multiraft: a sharded, replicated key-value store (many Raft groups per process)."""

__all__: list[str] = []
