"""A gateway of its own for one worker command: how the conformance suite runs gateway workers.

    python -m jobwire.gateway.pair --redis-url URL --namespace NS -- node gateway-worker.js --gateway {gateway} ...
    python python/src/jobwire/gateway/pair.py ...   (the same, without importing jobwire first:
                                                     the worker starts ~1 s sooner on a loaded host)

The suite starts a worker command, signals the process it started and finds the worker's id by
that pid; it gives each test group its own Redis URL and namespace. So this launcher starts a
gateway for exactly that URL on a Unix socket of its own (no port to race for), detached (its
own session, not a descendant of the worker, so the suite's orphan checks and process-group
kills see only the worker), then, without waiting for it, replaces itself with the worker
command, `{gateway}` filled in with `unix:PATH` (the worker's reconnect backoff covers the
gateway's start-up): the pid the suite holds is the worker's. The gateway exits by itself once
that pid is gone and its stream has been recovered (a SIGKILLed worker is recovered at once, as
a death), and removes its socket.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import sys

__all__ = ["main"]


def _parse(argv):
    p = argparse.ArgumentParser(prog="python -m jobwire.gateway.pair")
    p.add_argument("--redis-url", required=True)
    p.add_argument("--namespace", default="resque")
    p.add_argument("--log", default=None, help="gateway log file (default: this process's stderr)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the worker command, with {gateway}")
    opts = p.parse_args(argv)
    if opts.command[:1] == ["--"]:
        opts.command = opts.command[1:]
    if not opts.command:
        p.error("a worker command is required after --")
    return opts


def _redis_url_problem(url: str) -> str | None:
    """Why url is not a valid Redis URL, or None: jobwire/redisurl.py loaded by its path, which
    imports nothing of jobwire (importing the package would cost the worker's start-up time)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_jobwire_redisurl", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "redisurl.py")
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses looks the module up by name
    spec.loader.exec_module(module)
    try:
        module.parse(url)
    except module.InvalidRedisUrl as exc:
        return str(exc)
    return None


def _socket_path(worker_pid: int) -> str:
    """A Unix socket of this worker's own: no port to race for with the suite's other groups."""
    return os.path.join(tempfile.gettempdir(), f"jobwire-gateway-{worker_pid}-{os.urandom(4).hex()}.sock")


def _gateway_child(opts, worker_pid: int, path: str) -> None:
    """The detached grandchild: serve until the worker pid is gone. Never returns."""
    status = 1
    try:
        os.setsid()
        if os.fork():
            os._exit(0)  # the intermediate child; the grandchild is adopted by init
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        if opts.log:
            out = os.open(opts.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(out, 1)
            os.dup2(out, 2)
        from jobwire.gateway.server import GatewayOptions, serve  # grpc (and jobwire) only after the fork

        options = GatewayOptions(
            listen=f"unix:{path}",
            redis_url=opts.redis_url,
            namespace=opts.namespace,
            conformance=True,
            exit_with_pid=worker_pid,
        )
        status = serve(options)
    except BaseException as exc:  # noqa: BLE001 - say why in the worker's log, then exit
        print(f"jobwire.gateway.pair: the gateway failed: {exc!r}", file=sys.stderr, flush=True)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os._exit(status)


def main(argv=None) -> int:
    """Start the gateway and exec the worker at once: both start up in parallel, and the worker's
    reconnect backoff (protocol.md 7.7) covers the moment before the gateway listens."""
    opts = _parse(sys.argv[1:] if argv is None else argv)
    problem = _redis_url_problem(opts.redis_url)
    if problem:  # bad usage (protocol.md 7.2): exit 2 before starting either process
        print(f"jobwire.gateway.pair: {problem}", file=sys.stderr)
        return 2
    worker_pid = os.getpid()  # exec keeps it: the worker will have this pid
    path = _socket_path(worker_pid)
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        _gateway_child(opts, worker_pid, path)
    os.waitpid(child, 0)  # the intermediate child exits at once
    argv = [a.replace("{gateway}", f"unix:{path}") for a in opts.command]
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    sys.exit(main())
