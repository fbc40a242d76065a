"""A throwaway redis-server on a free loopback port, for the demo, the benchmarks and the tests.

Never for production: no persistence, bound to 127.0.0.1, stopped by its own pid.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

import redis

__all__ = ["free_port", "RedisServer", "RedisClusterServer"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """`with RedisServer() as server: ... server.url`; stop() and start() keep the port."""

    def __init__(self, extra_args: tuple[str, ...] = ()) -> None:
        """extra_args go after the defaults and so override them (the chaos driver adds AOF)."""
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.extra_args = tuple(extra_args)

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        try:
            for _ in range(500):
                try:
                    client.ping()
                    return self
                except (redis.ConnectionError, redis.BusyLoadingError):
                    time.sleep(0.02)
        finally:
            client.close()
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no final fsync, no shutdown save."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class RedisClusterServer:
    """Three throwaway masters joined into a Redis Cluster; `url` names one with `?cluster=1`.
    With replicas=1 each master has a replica that takes over within a few node timeouts of
    its master's death (kill())."""

    def __init__(self, nodes: int = 3, replicas: int = 0, node_timeout_ms: int = 2000) -> None:
        self.ports = [self._node_port() for _ in range(nodes * (1 + replicas))]
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.url = f"redis://127.0.0.1:{self.ports[0]}/0?cluster=1"
        self.procs: list[subprocess.Popen] = []
        self.dir = tempfile.TemporaryDirectory(prefix="jobwire-cluster-")

    @staticmethod
    def _node_port() -> int:
        """A free port whose cluster bus port (port + 10000) is valid and free too."""
        while True:
            port = free_port()
            if port + 10000 <= 65535:
                with socket.socket() as s:
                    try:
                        s.bind(("127.0.0.1", port + 10000))
                        return port
                    except OSError:
                        pass

    def start(self) -> RedisClusterServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        for port in self.ports:
            self.procs.append(
                subprocess.Popen(
                    [
                        binary,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        f"nodes-{port}.conf",
                        "--dir",
                        self.dir.name,
                        "--cluster-node-timeout",
                        str(self.node_timeout_ms),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in self.ports:
            self._wait(lambda port=port: redis.Redis(port=port).ping())
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
            timeout=60,
        )
        for port in self.ports:
            self._wait(lambda port=port: self._node_ready(port))
        return self

    @staticmethod
    def _node_ready(port: int) -> bool:
        """The node sees a healthy cluster and, if a replica, has synced with its master."""
        node = redis.Redis(port=port)
        try:
            if b"cluster_state:ok" not in node.execute_command("CLUSTER", "INFO"):
                return False
            info = node.info("replication")
            return info["role"] == "master" or info.get("master_link_status") == "up"
        finally:
            node.close()

    def master_port(self, key: str) -> int:
        """The port of the master that owns `key`'s slot now."""
        client = redis.RedisCluster(host="127.0.0.1", port=self.live_ports()[0])
        try:
            return int(client.get_node_from_key(key).port)
        finally:
            client.close()

    def live_ports(self) -> list[int]:
        return [port for port, proc in zip(self.ports, self.procs, strict=True) if proc.poll() is None]

    def kill(self, port: int) -> None:
        """SIGKILL one node by its pid, as a crash would (no chance to replicate what it holds)."""
        proc = self.procs[self.ports.index(port)]
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def _wait(self, probe, seconds: float = 20.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if probe():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the Redis Cluster did not come up")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        self.procs = []
        self.dir.cleanup()

    def __enter__(self) -> RedisClusterServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
