"""Namespace groups (protocol.md 15.2): which namespace a producer puts a queue's jobs in.

A home namespace `B` has a routing table, the hash `B:jobwire:routes` (queue -> group name). A
queue without a route lives in `B`; a routed one in its group's namespace `{B-without-braces:G}`,
its own hash tag and so its own slot. spec/routing-vectors.json pins `route` and `namespaces`.
"""

from __future__ import annotations

import re
import time

from .errors import JobwireError
from .keys import Keys

__all__ = ["BadRoute", "ROUTE_CACHE_MS", "Router", "group_namespace", "namespaces", "route", "valid_group"]

GROUP_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")  # ASCII only: bytes and characters agree
ROUTE_CACHE_MS = 5000  # protocol.md 15.2: the longest a producer may cache the table


class BadRoute(JobwireError):
    """spec/errors.json jobwire.BadRoute: the table maps a queue to an invalid group name."""

    name = "jobwire.BadRoute"


def valid_group(group: str) -> bool:
    return bool(GROUP_RE.match(group))


def group_namespace(home: str, group: str) -> str:
    """`{resque}` + `mail` -> `{resque:mail}`: the home's name without braces, one new hash tag."""
    return "{" + home.replace("{", "").replace("}", "") + ":" + group + "}"


def route(home: str, routes: dict[str, str], queue: str) -> str:
    """The namespace of `queue`'s jobs, given the routing table as a dict (protocol.md 15.2)."""
    group = routes.get(queue, "")
    if group == "":
        return home
    if not valid_group(group):
        raise BadRoute(
            f"the routing table {Keys(home).routes} maps queue {queue!r} to {group!r}, "
            "which is no group name (1-64 of A-Z a-z 0-9 _ . -): nothing was enqueued"
        )
    return group_namespace(home, group)


def namespaces(home: str, routes: dict[str, str]) -> list[str]:
    """Every namespace of a home, as tools list them: home first, then groups in byte order."""
    groups = sorted({g for g in routes.values() if valid_group(g)}, key=lambda g: g.encode())
    return [home, *(group_namespace(home, g) for g in groups)]


def routed_elsewhere(home: str, routes: dict[str, str], queues) -> list[tuple[str, str]]:
    """The queues among `queues` (not `*`) that producers put in another namespace than `home`
    (protocol.md 15.2, "Workers are not routed"): (queue, that namespace, or the BadRoute
    message for an invalid route). A worker of `home` warns about each at start-up."""
    found = []
    for queue in queues:
        if queue == "*":
            continue
        try:
            ns = route(home, routes, queue)
        except BadRoute as exc:
            found.append((queue, str(exc)))
            continue
        if ns != home:
            found.append((queue, ns))
    return found


def routed_warning(home: str, queue: str, where: str) -> str:
    """The start-up warning for one routed queue, the same words in every language."""
    return (
        f"queue {queue} is routed to namespace {where} by {Keys(home).routes}: new jobs for it go there, "
        f"and this worker serves {home} only (start a worker with --namespace '{where}')"
        if where.startswith("{")
        else f"queue {queue}: {where}"
    )


def _text(value) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


class Router:
    """The routing table of one home namespace. A producer reads one queue's route with HGET
    (what protocol.md 8.9's user may run) and caches it for at most ROUTE_CACHE_MS, so a changed
    route is followed within that time (15.2); tools read the whole table (HGETALL)."""

    def __init__(self, redis, home: str, cache_ms: int = ROUTE_CACHE_MS) -> None:
        self.redis = redis
        self.home = home
        self.key = Keys(home).routes
        self.cache_ms = min(cache_ms, ROUTE_CACHE_MS)
        self._cache: dict[str, tuple[float, str]] = {}  # queue -> (read at, group or "")

    def _group(self, queue: str) -> str:
        now = time.monotonic()
        hit = self._cache.get(queue)
        if hit is None or (now - hit[0]) * 1000 >= self.cache_ms:
            hit = (now, _text(self.redis.hget(self.key, queue) or b""))
            self._cache[queue] = hit
        return hit[1]

    def namespace_for(self, queue: str) -> str:
        group = self._group(queue)
        return route(self.home, {queue: group} if group else {}, queue)

    def table(self) -> dict[str, str]:
        """The whole table, read now (for tools)."""
        return {_text(q): _text(g) for q, g in self.redis.hgetall(self.key).items()}

    def namespaces(self) -> list[str]:
        return namespaces(self.home, self.table())

    def set_route(self, queue: str, group: str | None) -> None:
        """Route `queue` to `group` (None or "" routes it home again). Producers follow within 5 s."""
        if group:
            if not valid_group(group):
                raise BadRoute(f"{group!r} is no group name (1-64 of A-Z a-z 0-9 _ . -)")
            self.redis.hset(self.key, queue, group)
        else:
            self.redis.hdel(self.key, queue)
        self._cache.pop(queue, None)
