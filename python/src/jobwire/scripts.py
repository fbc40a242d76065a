"""The protocol's Lua scripts, loaded from spec/lua as they are and called by SHA.

redis-py's Script object sends EVALSHA and, on NOSCRIPT (a restarted or new Redis), loads the
source and retries, which is exactly what protocol.md section 8 asks of every implementation.
"""

from __future__ import annotations

from redis.commands.core import Script

from . import spec

__all__ = ["Scripts"]


class Scripts:
    """One attribute per script in spec/lua/manifest.json, bound to a Redis client."""

    def __init__(self, redis) -> None:
        self.redis = redis
        for name in spec.manifest()["scripts"]:
            setattr(self, name, Script(redis, spec.lua_source(name)))

    def call(self, name: str, keys: list, args: list):
        return getattr(self, name)(keys=keys, args=args, client=self.redis)
