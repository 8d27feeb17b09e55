"""multiraft: a sharded, replicated key-value store (many Raft groups per process).

from multiraft import Client
with Client(["127.0.0.1:20161"]) as c:
    c.put(b"k", b"v")
"""

from . import errors
from .client import AsyncClient, Client

__all__ = ["AsyncClient", "Client", "errors"]
