"""The protocol's Lua scripts, loaded from spec/lua as they are and called by SHA.

redis-py's Script object sends EVALSHA and, on NOSCRIPT (a restarted or new Redis), loads the
source and retries, which is exactly what protocol.md section 8 asks of every implementation.
"""

from __future__ import annotations

import redis as redis_lib
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from . import spec

__all__ = ["Scripts"]


def _plain(redis) -> bool:
    """Whether `redis` is a plain pooled redis-py client (not a Cluster, a single-connection
    client, a client-side cache or a subclass), whose EVALSHA Scripts may send on a pooled
    connection itself."""
    return (
        type(redis) is redis_lib.Redis
        and redis.connection is None
        and getattr(redis.connection_pool, "cache", None) is None
    )


class Scripts:
    """One attribute per script in spec/lua/manifest.json, bound to a Redis client."""

    def __init__(self, redis) -> None:
        self.redis = redis
        self._send = self._send_pooled if _plain(redis) else redis.execute_command
        for name in spec.manifest()["scripts"]:
            setattr(self, name, Script(redis, spec.lua_source(name)))

    def call(self, name: str, keys: list, args: list):
        """EVALSHA on the bound client; on NOSCRIPT load the source and retry once. What redis-py's
        Script.__call__ does, sent straight to execute_command: this is every enqueue's and every
        work.lua call's path, and cProfile counted about 10 calls of wrapping on it."""
        script: Script = getattr(self, name)
        try:
            return self._send("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            script.sha = self.redis.script_load(script.script)
            return self._send("EVALSHA", script.sha, len(keys), *keys, *args)

    def _send_pooled(self, *args):
        """One command on a connection of the client's pool, with the client's retry on a lost
        connection (as redis-py's execute_command does), without its per-command observability
        hooks and response callbacks (EVALSHA has none): a third of a one-by-one enqueue's Python
        time in cProfile, and every work.lua call of a worker."""
        pool = self.redis.connection_pool
        conn = pool.get_connection()
        try:
            return conn.retry.call_with_retry(lambda: _send_read(conn, args), lambda _error: conn.disconnect())
        finally:
            pool.release(conn)


def _send_read(conn, args: tuple):
    conn.send_command(*args)
    return conn.read_response()
