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

import redis as redis_lib

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
    """A redis-server on 127.0.0.1:<free port>, no persistence; stopped by its pid only."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.dir = tempfile.mkdtemp(prefix="jobwire-conformance-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--protected-mode", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                redis_lib.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return self
            except redis_lib.ConnectionError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server on port {self.port} exited with {self.proc.returncode}") from None
                time.sleep(0.05)
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

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        if down_s:
            time.sleep(down_s)
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def client(url: str) -> redis_lib.Redis:
    return redis_lib.Redis.from_url(url, socket_connect_timeout=5)


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
            return (template.replace("{ns}", self.ns).replace("{queue}", value)
                    .replace("{worker_id}", value).replace("{day}", value).replace("{ts}", value)
                    .replace("{item}", value).replace("{name}", value))
        return build


def redis_time_ms(redis: redis_lib.Redis) -> int:
    s, us = redis.time()
    return int(s) * 1000 + int(us) // 1000


def utc(fmt: str) -> str:
    return time.strftime(fmt, time.gmtime())


def enqueue(redis, keys: Keys, queue: str, *payloads: bytes | str) -> int:
    """enqueue.lua with raw payload bytes exactly as given."""
    return scripts_for(redis).call("enqueue", [keys.queues(), keys.queue(queue), keys.wake(queue),
                                               keys.wake_new_queue()], [queue, *payloads])


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
