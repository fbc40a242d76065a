"""Throwaway redis-server processes, the spec's Lua scripts, and key names from spec/keys.json."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from typing import cast

import redis as redis_lib
from redis.cluster import RedisCluster

from .paths import SPEC_DIR

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def as_bytes(value: bytes | str) -> bytes:
    """A reply as bytes: the suite's clients never decode, but redis-py types replies bytes | str."""
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")


def text(value: bytes | str) -> str:
    """A reply as text (names, ids): bytes that are not UTF-8 are replaced."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def free_port() -> int:
    """A free loopback TCP port, never Redis's default 6379."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != 6379:
            return port


class RedisServer:
    """A redis-server on 127.0.0.1:<free port>, no persistence; stopped by its pid only.

    The one throwaway server of the repository: the suite's, and the tests', the demo's and the
    benchmarks' (`with RedisServer() as server: ... server.url`). stop() then start() keeps the
    port and the data directory; close() also removes the directory."""

    def __init__(self, port: int | None = None, extra_args: tuple[str, ...] = ()) -> None:
        """extra_args go after the defaults and so override them (the chaos driver adds AOF)."""
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.dir = tempfile.mkdtemp(prefix="jobwire-redis-")
        self.extra_args = tuple(extra_args)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--protected-mode",
                "no",
                "--loglevel",
                "warning",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe = redis_lib.Redis(port=self.port, socket_connect_timeout=0.2)
            try:
                probe.ping()
                return self
            except (redis_lib.ConnectionError, redis_lib.BusyLoadingError):  # not up, or loading its AOF
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server on port {self.port} exited with {self.proc.returncode}") from None
                time.sleep(0.05)
            finally:
                probe.close()
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {timeout} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash would: no final fsync, no shutdown save."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        if down_s:
            time.sleep(down_s)
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def is_cluster_url(url: str) -> bool:
    """`?cluster=1` (or `=true`) in a Redis URL means Redis Cluster, as in every jobwire client."""
    query = urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)
    return ("cluster", "1") in query or ("cluster", "true") in query


def client(url: str) -> redis_lib.Redis:
    """A connection to the suite's Redis; a RedisCluster (same commands) for a cluster URL."""
    if is_cluster_url(url):
        # A RedisCluster answers every command the suite sends like a Redis does: typed as one.
        return cast(redis_lib.Redis, cluster_client(url))
    return redis_lib.Redis.from_url(url, socket_connect_timeout=5)


def cluster_client(url: str) -> RedisCluster:
    """A RedisCluster for a cluster URL (`?cluster=1`): any node's address will do."""
    plain = urllib.parse.urlsplit(url)._replace(query="")
    return RedisCluster.from_url(urllib.parse.urlunsplit(plain), socket_connect_timeout=5)


def slot_master(r, key: str) -> redis_lib.Redis:
    """A plain connection to the master that owns `key`'s slot (r itself when not a cluster):
    keyspace notifications, INFO and CLIENT LIST are per node."""
    if not isinstance(r, RedisCluster):
        return r
    node = r.get_node_from_key(key)
    return redis_lib.Redis(host=node.host, port=node.port, socket_connect_timeout=5)


class ClusterServer:
    """A Redis Cluster of `masters` masters with `replicas` replicas each, one redis-server per
    node on 127.0.0.1 (free ports whose bus port, +10000, is free too), joined by
    `redis-cli --cluster create`; stopped by pid. The suite tests no failover (the failover test
    and the cluster benchmark pass a short node_timeout_ms and kill() a master): a long
    cluster-node-timeout (Redis' default) keeps a master that is busy with a multi-MiB payload's
    script (seconds on a loaded machine, the cluster bus unanswered) from being failed over, and a
    long busy-reply-threshold makes other groups on that master wait for it instead of reading
    BUSY errors (a single redis-server shares the same script time, but one process, not six,
    competes for the CPU)."""

    def __init__(self, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 15000) -> None:
        self.ports = [self._node_port() for _ in range(masters * (1 + replicas))]
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.procs: dict[int, subprocess.Popen] = {}
        self.dir = tempfile.mkdtemp(prefix="jobwire-conformance-cluster-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0?cluster=1"

    @staticmethod
    def _node_port() -> int:
        while True:
            port = free_port()
            if port + 10000 > 65535:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                    return port
                except OSError:
                    pass

    def start_node(self, port: int) -> None:
        self.procs[port] = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--protected-mode",
                "no",
                "--loglevel",
                "warning",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-node-timeout",
                str(self.node_timeout_ms),
                "--busy-reply-threshold",
                "30000",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self, timeout: float = 60.0) -> ClusterServer:
        for port in self.ports:
            self.start_node(port)
        try:
            for port in self.ports:
                self._wait(lambda p=port: redis_lib.Redis(port=p, socket_connect_timeout=0.2).ping(), timeout)
            subprocess.run(
                [
                    shutil.which("redis-cli") or "/usr/bin/redis-cli",
                    "--cluster",
                    "create",
                    *[f"127.0.0.1:{p}" for p in self.ports],
                    "--cluster-replicas",
                    str(self.replicas),
                    "--cluster-yes",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=timeout,
            )
            self.wait_ok(timeout)
        except BaseException:
            self.close()
            raise
        return self

    def wait_ok(self, timeout: float = 60.0) -> None:
        """Until every live node says cluster_state:ok and each replica has synced its master."""

        def ok(port: int) -> bool:
            node = redis_lib.Redis(port=port, socket_connect_timeout=0.2)
            if b"cluster_state:ok" not in node.execute_command("CLUSTER", "INFO"):
                return False
            info = node.info("replication")
            return info["role"] == "master" or info.get("master_link_status") == "up"

        for port in self.live_ports():
            self._wait(lambda p=port: ok(p), timeout)

    def live_ports(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def master_port(self, key: str) -> int:
        """The port of the master that owns `key`'s slot now (asked of a node still alive)."""
        r = RedisCluster(host="127.0.0.1", port=self.live_ports()[0], socket_connect_timeout=5)
        try:
            return int(r.get_node_from_key(key).port)
        finally:
            r.close()

    def kill(self, port: int) -> None:
        """SIGKILL one node by pid, as a crash would."""
        proc = self.procs.get(port)
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    @staticmethod
    def _wait(probe, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if probe():
                    return
            except redis_lib.RedisError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the Redis Cluster did not come up within {timeout} s")

    def __enter__(self) -> ClusterServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = {}
        shutil.rmtree(self.dir, ignore_errors=True)


class Scripts:
    """The Lua scripts of spec/lua, called with EVALSHA and loaded on NOSCRIPT (protocol.md 8)."""

    def __init__(self, redis: redis_lib.Redis) -> None:
        self.redis = redis
        self.source = {p.stem: p.read_bytes() for p in (SPEC_DIR / "lua").glob("*.lua")}
        self.sha = {name: hashlib.sha1(src).hexdigest() for name, src in self.source.items()}

    def call(self, name: str, keys: list, args: list):
        try:
            return self.redis.evalsha(self.sha[name], len(keys), *keys, *args)
        except redis_lib.exceptions.NoScriptError:
            self.redis.script_load(self.source[name])
            return self.redis.evalsha(self.sha[name], len(keys), *keys, *args)


def key_templates() -> dict[str, str]:
    """spec/keys.json, the one source of key names: template name -> template."""
    return dict(json.loads((SPEC_DIR / "keys.json").read_text())["templates"])


class Keys:
    """Key names for one namespace, built from spec/keys.json (never hand-written)."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.templates = key_templates()

    def __getattr__(self, name: str):
        templates = self.__dict__.get("templates") or {}
        if name not in templates:
            raise AttributeError(name)
        template = templates[name]

        def build(value: str = "") -> str:
            return (
                template.replace("{ns}", self.ns)
                .replace("{queue}", value)
                .replace("{worker_id}", value)
                .replace("{day}", value)
                .replace("{ts}", value)
                .replace("{item}", value)
                .replace("{name}", value)
            )

        return build

    def work_keys(self, worker_id: str, queues: list[str], settle_queue: str | None = None) -> list[str]:
        """KEYS of work.lua (protocol.md 8.2, manifest.json): the fixed ones, the settle queue's
        list and wake key (the worker record twice when the settlement pushes nowhere), then each
        reserve queue's list and then each one's wake key, in priority order."""
        settle = (
            [self.queue(settle_queue), self.wake(settle_queue)] if settle_queue else [self.worker_record(worker_id)] * 2
        )
        return [
            self.worker_record(worker_id),
            self.inflight(worker_id),
            self.stat_processed(),
            self.stat_processed_worker(worker_id),
            self.stat_failed(),
            self.stat_failed_worker(worker_id),
            self.failed(),
            self.deaths(),
            self.minutes(utc("%Y-%m-%d")),
            self.leases(),
            self.pause_all(),
            *settle,
            *[self.queue(q) for q in queues],
            *[self.wake(q) for q in queues],
        ]

    def unregister_keys(self, worker_id: str, queue: str = "") -> list[str]:
        """KEYS of unregister.lua (protocol.md 8.5) for worker_id, whose in-flight job came from
        `queue` ("" when it holds none: the two queue slots then repeat its in-flight key)."""
        held = [self.queue(queue), self.wake(queue)] if queue else [self.inflight(worker_id)] * 2
        return [
            self.leases(),
            self.workers(),
            self.heartbeats(),
            self.worker_record(worker_id),
            self.worker_started(worker_id),
            self.inflight(worker_id),
            self.stat_processed_worker(worker_id),
            self.stat_failed_worker(worker_id),
            self.worker_info(worker_id),
            self.control(worker_id),
            self.deaths(),
            self.failed(),
            self.stat_processed(),
            self.stat_failed(),
            self.minutes(utc("%Y-%m-%d")),
            *held,
        ]


def redis_time_ms(redis: redis_lib.Redis) -> int:
    s, us = redis.time()
    return int(s) * 1000 + int(us) // 1000


def utc(fmt: str) -> str:
    return time.strftime(fmt, time.gmtime())


def enqueue(redis, keys: Keys, queue: str, *payloads: bytes | str) -> int:
    """enqueue.lua with raw payload bytes exactly as given."""
    return scripts_for(redis).call(
        "enqueue", [keys.queues(), keys.queue(queue), keys.wake(queue), keys.wake_new_queue()], [queue, *payloads]
    )


_scripts_by_client: dict[int, Scripts] = {}


def scripts_for(redis) -> Scripts:
    s = _scripts_by_client.get(id(redis))
    if s is None or s.redis is not redis:
        s = _scripts_by_client[id(redis)] = Scripts(redis)
    return s


def pid_alive(pid: int) -> bool:
    """True when pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def children_of(pid: int) -> list[int]:
    """Direct children of pid (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(entry))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return out


def descendants_of(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in children_of(todo.pop()):
            out.append(child)
            todo.append(child)
    return out
