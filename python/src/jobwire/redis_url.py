"""REDIS_URL conventions every command shares (protocol.md 15.1): `?cluster=1` (or `true`) names any
node of a Redis Cluster, whose only database is 0. Checked before connecting, so that a bad URL is
bad usage (exit status 2, options.json "exit_codes") in every language, never a retry loop."""

from __future__ import annotations

import urllib.parse

__all__ = ["is_cluster_url", "check_url", "without_cluster_flag"]


def _query(url: str) -> list[tuple[str, str]]:
    return urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)


def is_cluster_url(url: str) -> bool:
    """Does the URL name a Redis Cluster (`?cluster=1` or `?cluster=true`)?"""
    query = _query(url)
    return ("cluster", "1") in query or ("cluster", "true") in query


def check_url(url: str) -> None:
    """ValueError for a cluster URL that asks for a database other than 0, by path (`/3`) or by
    redis-py's `?db=3`; a cluster has only database 0 (protocol.md 15.1)."""
    if not is_cluster_url(url):
        return
    parts = urllib.parse.urlsplit(url)
    dbs = [parts.path.lstrip("/")] + [v for k, v in _query(url) if k == "db"]
    bad = [db for db in dbs if db not in ("", "0")]
    if bad:
        raise ValueError(f"Redis Cluster has only database 0, not {bad[0]} ({url})")


def without_cluster_flag(url: str) -> str:
    """The URL without its `cluster` query member (what redis-py's RedisCluster.from_url takes)."""
    parts = urllib.parse.urlsplit(url)
    query = [q for q in _query(url) if q[0] != "cluster"]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
