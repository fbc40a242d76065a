"""Durable enqueue (protocol.md 15.4): the enqueue script, then WAIT, on one connection.

WAIT counts the replicas that have every write this *connection* made, so the script and the WAIT
travel in one pipeline on one connection to the master that ran the script: on a cluster the
connection of the node owning the keys' slot (MOVED refreshes the slot map and tries again).
"""

from __future__ import annotations

import redis as redis_lib
from redis.cluster import RedisCluster

from .errors import JobwireError

__all__ = ["DEFAULT_WAIT_TIMEOUT_MS", "NotReplicated", "call"]

DEFAULT_WAIT_TIMEOUT_MS = 1000
MAX_MOVES = 3  # slot moves followed in one call (a failover is one)


class NotReplicated(JobwireError):
    """spec/errors.json jobwire.NotReplicated: the job is on the master, but fewer replicas than
    asked acknowledged it in time; a failover may lose it, enqueueing again may run it twice."""

    name = "jobwire.NotReplicated"


def _connection(redis, key: str):
    """A plain client on one node: the slot's master on a cluster, the client itself otherwise."""
    if isinstance(redis, RedisCluster):
        return redis.get_redis_connection(redis.get_node_from_key(key))
    return redis


def call(redis, script, keys: list, args: list, replicas: int, timeout_ms: int):
    """Run `script` (a redis-py Script) and WAIT; returns the script's reply."""
    for _ in range(MAX_MOVES):
        pipe = _connection(redis, keys[0]).pipeline(transaction=False)
        script(keys=keys, args=args, client=pipe)  # the pipeline loads it first if the node lacks it
        pipe.execute_command("WAIT", replicas, timeout_ms)
        reply, acked = pipe.execute(raise_on_error=False)
        if isinstance(reply, redis_lib.ResponseError) and str(reply).startswith(("MOVED", "ASK")):
            redis.nodes_manager.initialize()  # only a cluster answers MOVED
            continue
        if isinstance(reply, Exception):
            raise reply
        if isinstance(acked, Exception):
            raise acked
        if acked < replicas:
            raise NotReplicated(
                f"the job is on the master, but {acked} of {replicas} replica(s) acknowledged it "
                f"within {timeout_ms} ms (WAIT): a failover may lose it"
            )
        return reply
    raise redis_lib.ConnectionError(f"the slot of {keys[0]} kept moving: enqueue outcome unknown")
