"""Client side of multiraft: route cache, retries, sessions."""

from ..store.router import RegionRouter
from .async_client import AsyncClient
from .client import Client
from .limits import MAX_KEY_SIZE, MAX_VALUE_SIZE

__all__ = ["MAX_KEY_SIZE", "MAX_VALUE_SIZE", "AsyncClient", "Client", "RegionRouter"]
