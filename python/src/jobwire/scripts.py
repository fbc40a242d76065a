"""The protocol's Lua scripts, loaded from spec/lua as they are and called by SHA.

redis-py's Script object sends EVALSHA and, on NOSCRIPT (a restarted or new Redis), loads the
source and retries, which is exactly what protocol.md section 8 asks of every implementation.
"""

from __future__ import annotations

from redis.commands.core import Script
from redis.exceptions import NoScriptError

from . import spec

__all__ = ["Scripts"]


class Scripts:
    """One attribute per script in spec/lua/manifest.json, bound to a Redis client."""

    def __init__(self, redis) -> None:
        self.redis = redis
        for name in spec.manifest()["scripts"]:
            setattr(self, name, Script(redis, spec.lua_source(name)))

    def call(self, name: str, keys: list, args: list):
        """EVALSHA on the bound client; on NOSCRIPT load the source and retry once. What redis-py's
        Script.__call__ does, sent straight to execute_command: this is every enqueue's and every
        work.lua call's path, and cProfile counted about 10 calls of wrapping on it."""
        script: Script = getattr(self, name)
        try:
            return self.redis.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            script.sha = self.redis.script_load(script.script)
            return self.redis.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
