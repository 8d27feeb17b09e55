"""Client side of multiraft: route cache, retries, sessions."""

from ..protocol.limits import MAX_KEY_SIZE, MAX_VALUE_SIZE
from ..protocol.router import RegionRouter
from .async_client import AsyncClient
from .client import Client

__all__ = ["MAX_KEY_SIZE", "MAX_VALUE_SIZE", "AsyncClient", "Client", "RegionRouter"]
