"""The Redis URL of protocol.md 7.2: parsed and checked before anything connects, so that a bad
one is a usage error (exit status 2) with a message that never shows the password.

redis-py parses the URL again to connect; this module only decides what is valid and what the
parts are (conformance/vectors/v1/redis-urls.json, which Node and C check too).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

__all__ = ["RedisUrl", "InvalidRedisUrl", "parse", "redacted"]

_DIGITS = re.compile(r"[0-9]+")
_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})|%00")


class InvalidRedisUrl(ValueError):
    """A --redis-url / REDIS_URL that protocol.md 7.2 does not allow; the message hides the password."""


@dataclass(frozen=True)
class RedisUrl:
    host: str
    port: int
    db: int
    username: str | None
    password: str | None
    cluster: bool
    tls: bool


def redacted(url: str) -> str:
    """url with its password shown as *** (for messages and logs)."""
    scheme, sep, rest = url.partition("://")
    authority = re.split(r"[/?]", rest, maxsplit=1)[0]
    userinfo, at, _ = authority.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{rest[len(userinfo) + 1 :]}"


def _decoded(part: str, what: str, url: str) -> str:
    if _ESCAPE.search(part):
        raise InvalidRedisUrl(f"bad %-escape in the {what} of the Redis URL {redacted(url)}")
    return urllib.parse.unquote(part)


def parse(url: str) -> RedisUrl:
    """The parts of url, or InvalidRedisUrl saying what is wrong."""
    shown = redacted(url)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("redis", "rediss"):
        raise InvalidRedisUrl(f"a Redis URL starts with redis:// or rediss://, got {shown!r}")
    rest, _, query = rest.partition("?")
    authority, _, path = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = _decoded(user, "user name", url) or None
        password = _decoded(secret, "password", url) or None if colon else None
    host, colon, port_text = hostport.partition(":")
    if not host:
        raise InvalidRedisUrl(f"no host in the Redis URL {shown!r}")
    port = 6379
    if colon:
        if not _DIGITS.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
            raise InvalidRedisUrl(f"bad port {port_text!r} in the Redis URL {shown!r} (1-65535)")
        port = int(port_text)
    db = 0
    if path:
        if not _DIGITS.fullmatch(path):
            raise InvalidRedisUrl(f"bad database number {path!r} in the Redis URL {shown!r}")
        db = int(path)
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    cluster = params.get("cluster") in ("1", "true")
    if cluster and db != 0:
        raise InvalidRedisUrl(f"Redis Cluster has only database 0, not {db} ({shown})")
    return RedisUrl(host, port, db, username, password, cluster, scheme == "rediss")
