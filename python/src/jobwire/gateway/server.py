"""The gateway process: `jobwire gateway --listen 127.0.0.1:7460` (an asyncio gRPC server).

One Gateway holds the Redis clients every service shares, the worker sessions, and the
listener. SIGTERM/SIGINT stop it: each worker leaves (a held job goes back to its queue, no
death), its stream ends UNAVAILABLE (jobwire.GatewayStopping) and the worker reconnects.
A SIGKILLed gateway leaves its workers' leases to lapse: any live worker recovers them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys

import grpc
import redis.asyncio as aioredis

from .. import spec
from ..client import DEFAULT_REDIS_URL, Client
from ..keys import Keys
from ..v1 import admin_pb2_grpc, producer_pb2_grpc, worker_pb2_grpc
from .auth import TokenInterceptor, is_loopback, server_credentials
from .errors import GatewayError, abort
from .liveness import AwakeClock, BeatBatcher, Recoveries
from .services import AdminService, ProducerService
from .session import Session, WorkerConfig

__all__ = ["Gateway", "GatewayOptions", "serve", "parse_listen"]

log = logging.getLogger("jobwire.gateway")
MAX_MESSAGE = 64 * 1024 * 1024  # above the largest payload a worker may accept (16 MiB default)
BLOCK_POOL_TIMEOUT_S = 30  # longest wait for one of the shared pool's 64 connections
REDIS_TIMEOUT_S = 10  # a Redis that answers nothing for this long is treated as unreachable


class GatewayOptions:
    """What `jobwire gateway` was told; see cli.py for the flags."""

    def __init__(
        self,
        listen="127.0.0.1:7460",
        redis_url=None,
        namespace="resque",
        token=None,
        tls_cert=None,
        tls_key=None,
        tls_client_ca=None,
        allow_insecure=False,
        conformance=False,
        extra_namespaces=(),
        any_namespace=False,
        exit_with_pid=None,
    ) -> None:
        self.listen, self.redis_url, self.namespace = listen, redis_url, namespace
        self.token, self.tls_cert, self.tls_key, self.tls_client_ca = token, tls_cert, tls_key, tls_client_ca
        self.allow_insecure, self.conformance = allow_insecure, conformance
        self.namespaces = {namespace, *extra_namespaces}
        self.any_namespace = any_namespace
        self.exit_with_pid = exit_with_pid  # jobwire.gateway.pair: stop once this process is gone


def parse_listen(listen: str) -> tuple[str, int]:
    """(host, port) of HOST:PORT; ("unix:PATH", 0) for a Unix socket (local, like loopback)."""
    if listen.startswith("unix:"):
        return listen, 0
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:7460")
    return host.strip("[]"), int(port)


class WorkerService(worker_pb2_grpc.WorkerServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    async def Work(self, request_iterator, context):
        first = await context.read()
        try:
            if first is grpc.aio.EOF or first.WhichOneof("msg") != "hello":
                raise GatewayError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "jobwire.InvalidRequest",
                    "the first message on a worker stream must be hello",
                )
            config = WorkerConfig(first.hello)
            namespace = first.hello.namespace or self.gw.options.namespace
            if namespace not in self.gw.options.namespaces and not self.gw.options.any_namespace:
                raise GatewayError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "jobwire.NamespaceDenied",
                    f"this gateway serves namespace {self.gw.options.namespace!r}, not {namespace!r}",
                )
            session = Session(self.gw, config, context, Keys(namespace))
            self.gw.add_session(session)
            try:
                await session.run()
            finally:
                self.gw.discard_session(session)
            error = self.gw.errors.pop(session, None)
            if error is None and session.stopping:
                error = GatewayError(
                    grpc.StatusCode.UNAVAILABLE, "jobwire.GatewayStopping", "the gateway is shutting down; reconnect"
                )
            if error is not None:
                raise error
        except GatewayError as exc:
            await abort(context, exc)


class Gateway:
    """Shared state of one gateway process."""

    def __init__(self, options: GatewayOptions) -> None:
        self.options = options
        self.redis_url = options.redis_url or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
        self.keys = Keys(options.namespace)
        self.redis = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                self.redis_url,
                max_connections=64,
                timeout=BLOCK_POOL_TIMEOUT_S,
                socket_connect_timeout=5,
                socket_timeout=REDIS_TIMEOUT_S,
            )
        )
        self.scripts = _AsyncScripts(self.redis)
        self.gateway_id = f"{socket.gethostname()}:{os.getpid()}"
        self.conformance = options.conformance
        self.sessions: set[Session] = set()
        self._by_id: dict[tuple[str, str], Session] = {}  # (namespace, worker id) -> its newest stream
        self.clock = AwakeClock()
        self.beats = BeatBatcher(self.redis_url, REDIS_TIMEOUT_S)
        self.recoveries = Recoveries(self)
        self._tasks: list[asyncio.Task] = []
        self.errors: dict[Session, GatewayError] = {}
        self.server: grpc.aio.Server | None = None
        self.port: int | None = None

    def new_block_pool(self, block_timeout_ms: int):
        """A one-connection pool for one session's BLPOP (a blocked connection serves no one else),
        whose read timeout outlasts the longest BLPOP so that only a hanging Redis trips it."""
        return aioredis.ConnectionPool.from_url(
            self.redis_url,
            max_connections=1,
            socket_connect_timeout=5,
            socket_timeout=block_timeout_ms / 1000 + REDIS_TIMEOUT_S,
        )

    def add_session(self, session: Session) -> None:
        self.sessions.add(session)
        self._by_id[(session.keys.ns, session.id)] = session

    def discard_session(self, session: Session) -> None:
        self.sessions.discard(session)
        key = (session.keys.ns, session.id)
        if self._by_id.get(key) is session:
            del self._by_id[key]

    def live_session(self, key: tuple[str, str]) -> Session | None:
        """The stream this gateway holds for (namespace, worker id) if its worker beat within its
        lease by the awake clock (liveness.py): then the gateway renews it, never recovers it."""
        session = self._by_id.get(key)
        if session is not None and session.alive_within_lease():
            return session
        return None

    def note_error(self, session: Session, error: GatewayError) -> None:
        self.errors[session] = error

    async def start(self) -> int:
        host, port = parse_listen(self.options.listen)
        o = self.options
        local = host.startswith("unix:") or is_loopback(host)
        if not local and not o.token and not o.allow_insecure:
            raise ValueError(
                f"refusing to listen on {host} without authentication: set $JOBWIRE_GATEWAY_TOKEN "
                "(or --token-file), or pass --insecure-no-auth to accept anyone who can connect"
            )
        interceptors = [TokenInterceptor(o.token)] if o.token else []
        self.server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.keepalive_time_ms", 20000),
                ("grpc.keepalive_timeout_ms", 10000),
                ("grpc.http2.min_ping_interval_without_data_ms", 5000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.so_reuseport", 0),
            ],
        )
        producer_pb2_grpc.add_ProducerServiceServicer_to_server(ProducerService(self), self.server)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(
            AdminService(Client(self.redis_url, o.namespace)), self.server
        )
        worker_pb2_grpc.add_WorkerServiceServicer_to_server(WorkerService(self), self.server)
        if host.startswith("unix:"):
            address = host
        else:
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if o.tls_cert:
            self.port = self.server.add_secure_port(address, server_credentials(o.tls_cert, o.tls_key, o.tls_client_ca))
        else:
            self.port = self.server.add_insecure_port(address)
        await self.server.start()
        self._tasks = [asyncio.create_task(t.run()) for t in (self.clock, self.beats, self.recoveries)]
        return self.port

    async def stop(self, grace: float = 5.0) -> None:
        for session in list(self.sessions):
            session.stop()
        for _ in range(int(grace * 20)):
            if not self.sessions:
                break
            await asyncio.sleep(0.05)
        if self.server is not None:
            await self.server.stop(1.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.beats.aclose()
        await self.redis.aclose()


class _AsyncScripts:
    """The spec's Lua scripts for redis.asyncio, by SHA, reloaded on NOSCRIPT (protocol.md 8)."""

    def __init__(self, redis) -> None:
        self._scripts = {name: redis.register_script(spec.lua_source(name)) for name in spec.manifest()["scripts"]}

    async def call(self, name: str, keys: list, args: list, client=None):
        """The script's reply; with a pipeline as `client`, the call is queued on it instead."""
        return await self._scripts[name](keys=keys, args=args, client=client)


async def _main(options: GatewayOptions, ready_fd: int | None = None) -> int:
    gateway = Gateway(options)
    port = await gateway.start()
    host, _ = parse_listen(options.listen)
    where = host if host.startswith("unix:") else f"{host}:{port}"
    if options.exit_with_pid is None:  # a pair's gateway (pair.py) shares its worker's log (serve)
        print(
            f"jobwire gateway: listening on {where} (namespace {options.namespace}, "
            f"{'token' if options.token else 'no auth'}, {'TLS' if options.tls_cert else 'plaintext'})",
            file=sys.stderr,
            flush=True,
        )
    if ready_fd is not None:
        os.write(ready_fd, f"{port}\n".encode())
        os.close(ready_fd)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if options.exit_with_pid:
        asyncio.create_task(_watch_pid(options.exit_with_pid, gateway, stop))
    await stop.wait()
    log.info("stopping: %d worker streams", len(gateway.sessions))
    await gateway.stop()
    return 0


def _pid_gone(pid: int) -> bool:
    """True when the process is gone or a zombie (its parent has not reaped it yet)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


async def _watch_pid(pid: int, gateway: Gateway, stop: asyncio.Event) -> None:
    """Stop once `pid` is gone and every stream has ended (its recovery done), or 15 s later."""
    while not _pid_gone(pid):
        await asyncio.sleep(0.2)
    for _ in range(150):
        if not gateway.sessions:
            break
        await asyncio.sleep(0.1)
    stop.set()


def serve(options: GatewayOptions, ready_fd: int | None = None) -> int:
    """Run the gateway until SIGTERM or SIGINT."""
    # A pair's gateway (pair.py) writes into its worker's log: warnings and errors only there, so
    # that the worker's own lines (a one-line usage error, protocol.md 7.2) stay its own.
    level = logging.WARNING if options.exit_with_pid else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return asyncio.run(_main(options, ready_fd))
