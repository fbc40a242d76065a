"""A gateway of its own for one worker command: how the conformance suite runs gateway workers.

    python -m jobwire.gateway.pair --redis-url URL --namespace NS -- node gateway-worker.js --gateway {gateway} ...

The suite starts a worker command, signals the process it started and finds the worker's id by
that pid; it gives each test group its own Redis URL and namespace. So this launcher starts a
gateway for exactly that URL on a free loopback port, detached (its own session, not a
descendant of the worker, so the suite's orphan checks and process-group kills see only the
worker), then replaces itself with the worker command, `{gateway}` filled in: the pid the suite
holds is the worker's. The gateway exits by itself once that pid is gone and its stream has
been recovered (a SIGKILLed worker is recovered at once, as a death).
"""

from __future__ import annotations

import argparse
import os
import select
import sys

__all__ = ["main"]

READY_TIMEOUT_S = 20


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


def _gateway_child(opts, worker_pid: int, ready_w: int) -> None:
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
        from .server import GatewayOptions, serve  # grpc only after the fork
        options = GatewayOptions(listen="127.0.0.1:0", redis_url=opts.redis_url, namespace=opts.namespace,
                                 conformance=True, exit_with_pid=worker_pid)
        status = serve(options, ready_fd=ready_w)
    finally:
        os._exit(status)


def main(argv=None) -> int:
    opts = _parse(sys.argv[1:] if argv is None else argv)
    ready_r, ready_w = os.pipe()
    worker_pid = os.getpid()  # exec keeps it: the worker will have this pid
    child = os.fork()
    if child == 0:
        os.close(ready_r)
        _gateway_child(opts, worker_pid, ready_w)
    os.close(ready_w)
    os.waitpid(child, 0)
    readable, _, _ = select.select([ready_r], [], [], READY_TIMEOUT_S)
    port = os.read(ready_r, 64).decode().strip() if readable else ""
    os.close(ready_r)
    if not port.isdigit():
        print("jobwire.gateway.pair: the gateway did not start", file=sys.stderr)
        return 1
    argv = [a.replace("{gateway}", f"127.0.0.1:{port}") for a in opts.command]
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    sys.exit(main())
