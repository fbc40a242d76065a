"""The `jobwire` command line (also `python -m jobwire`).

    jobwire worker --queues high,low --import myapp.jobs
    jobwire enqueue QUEUE CLASS [JSON_ARG ...] [--at TIME | --in SECONDS]
    jobwire scheduled list|remove ID|run ID          (delayed jobs, protocol 1.1)
    jobwire retrying list|remove ID|run ID           (jobs waiting for their next attempt)
    jobwire schedule list|set NAME ...|remove NAME|run NAME   (recurring schedules)
    jobwire info | queues | workers | version
    jobwire failed list|retry ID|remove ID|clear
    jobwire control WORKER_ID pause|resume|quit|kill [TOKEN]
    jobwire web --host 127.0.0.1 --port 8080 [--insecure-no-auth]
    jobwire gateway --listen 127.0.0.1:7460

Redis comes from --redis-url or $REDIS_URL; the namespace from --namespace (default resque).
Both options go before or after the subcommand (after it, they win).
Errors print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import logging
import os
import sys
from typing import NoReturn

import redis as redis_lib

from . import __version__, options, spec
from .client import Client
from .durable import DEFAULT_WAIT_TIMEOUT_MS
from .errors import InvalidJob, JobwireError
from .queues import parse_queues

EXIT_ERROR, EXIT_USAGE = 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse, but bad usage is one line on stderr and exit status 2 (protocol.md 7.2), not the
    usage text first; the subcommands' parsers are of this class too (argparse's parser_class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _global_options(defaults: bool) -> _Parser:
    """--redis-url and --namespace, accepted before and after every subcommand.

    Only the top-level parser sets a default (None: options.resolve_connection fills in the
    variable or options.json's default later). A subcommand's copy uses SUPPRESS, so that
    `jobwire --namespace NS enqueue ...` keeps NS instead of the subparser writing its own default
    over it (argparse copies every attribute a subparser sets onto the shared namespace).
    """
    common = _Parser(add_help=False)
    for name in ("redis_url", "namespace"):  # every command's; defaults and variables from options.json
        o = options.BY_NAME[name]
        common.add_argument(
            o["flag"],
            dest=name,
            default=None if defaults else argparse.SUPPRESS,
            help=f"{o['help']} (default {o['default']}, ${o['env']})",
        )
    return common


def _parser() -> argparse.ArgumentParser:
    common = _global_options(defaults=False)
    parser = _Parser(
        prog="jobwire", description="jobwire: Resque-compatible jobs on Redis", parents=[_global_options(defaults=True)]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    w = sub.add_parser("worker", parents=[common], help="run a worker", allow_abbrev=False)
    options.add_worker_arguments(w, skip=("redis_url", "namespace"))
    w.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE to register its job handlers (repeatable)",
    )
    w.add_argument("--no-fork", action="store_true", help="run jobs in the worker process instead of a child per job")
    w.add_argument("--verbose", "-v", action="store_true")

    e = sub.add_parser("enqueue", parents=[common], help="enqueue a job; prints its id")
    e.add_argument("queue")
    e.add_argument("job_class", metavar="CLASS")
    e.add_argument("args", nargs="*", metavar="JSON_ARG", help="each argument as JSON (a bare word is a string)")
    when = e.add_mutually_exclusive_group()
    when.add_argument(
        "--at", metavar="TIME", help="run at TIME: ISO 8601 (UTC unless it has an offset) or Unix seconds"
    )
    when.add_argument("--in", dest="in_seconds", type=float, metavar="SECONDS", help="run SECONDS from now")

    for name, what in (("scheduled", "delayed jobs"), ("retrying", "jobs waiting for their next attempt")):
        s = sub.add_parser(name, parents=[common], help=what)
        ssub = s.add_subparsers(dest="action", required=True, metavar="ACTION")
        sl = ssub.add_parser("list", parents=[common])
        sl.add_argument("--start", type=int, default=0)
        sl.add_argument("--count", type=int, default=50)
        for action in ("remove", "run"):
            ssub.add_parser(action, parents=[common]).add_argument("job_id")

    sc = sub.add_parser("schedule", parents=[common], help="recurring schedules")
    scsub = sc.add_subparsers(dest="action", required=True, metavar="ACTION")
    scsub.add_parser("list", parents=[common])
    ss = scsub.add_parser("set", parents=[common], help="create or replace a schedule")
    ss.add_argument("name")
    every = ss.add_mutually_exclusive_group(required=True)
    every.add_argument("--cron", help="five fields, UTC: minute hour day-of-month month day-of-week")
    every.add_argument("--every-ms", type=int, help="a fixed interval in ms")
    ss.add_argument("--start-ms", type=int, help="with --every-ms: the first fire time (default 0)")
    ss.add_argument("--queue", required=True)
    ss.add_argument("--class", dest="job_class", required=True)
    ss.add_argument("--retry", metavar="POLICY", help="retry policy of the jobs (JSON)")
    ss.add_argument("--misfire-grace-ms", type=int)
    ss.add_argument(
        "--arg",
        dest="args",
        action="append",
        default=[],
        metavar="JSON_ARG",
        help="one job argument as JSON (repeatable; a bare word is a string)",
    )
    for action in ("remove", "run"):
        scsub.add_parser(action, parents=[common]).add_argument("name")

    e.add_argument(
        "--wait-replicas",
        type=int,
        default=0,
        metavar="N",
        help="durable enqueue: succeed only once N replicas have the job (WAIT, protocol.md 15.4)",
    )
    e.add_argument(
        "--wait-timeout-ms",
        type=int,
        default=DEFAULT_WAIT_TIMEOUT_MS,
        metavar="MS",
        help=f"with --wait-replicas: how long to wait (default {DEFAULT_WAIT_TIMEOUT_MS})",
    )
    rt = sub.add_parser("route", parents=[common], help="namespace groups: list, show or set a queue's route")
    rt.add_argument("queue", nargs="?")
    rt.add_argument("group", nargs="?", help="the group to route QUEUE to (its namespace {home:group})")
    rt.add_argument("--home", action="store_true", help="route QUEUE to the home namespace again")
    sub.add_parser("info", parents=[common], help="pending, processed, failed, workers (every namespace)")
    sub.add_parser("queues", parents=[common], help="queues and their sizes")
    sub.add_parser("workers", parents=[common], help="registered workers")
    sub.add_parser("version", parents=[common], help="package and protocol versions")

    f = sub.add_parser("failed", parents=[common], help="the failed list")
    fsub = f.add_subparsers(dest="action", required=True, metavar="ACTION")
    fl = fsub.add_parser("list", parents=[common])
    fl.add_argument("--start", type=int, default=0)
    fl.add_argument("--count", type=int, default=20)
    for name in ("retry", "remove"):
        fsub.add_parser(name, parents=[common]).add_argument("job_id")
    fsub.add_parser("clear", parents=[common])

    c = sub.add_parser("control", parents=[common], help="send pause, resume, quit or kill to a worker")
    c.add_argument("worker_id")
    c.add_argument("verb", choices=["pause", "resume", "quit", "kill"])
    c.add_argument("token", nargs="?", default="")

    web = sub.add_parser("web", parents=[common], help="serve the web UI")
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8080)
    web.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve beyond loopback without authentication (a proxy in front must guard it)",
    )

    from .gateway.command import add_parser as add_gateway_parser  # no grpc import until it runs

    add_gateway_parser(sub, common)
    return parser


def _json_arg(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _print_json(value) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _time_arg(text: str):
    """--at: Unix seconds, or ISO 8601 (a time without an offset is UTC)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise JobwireError(f"--at {text!r} is neither Unix seconds nor an ISO 8601 time") from None


def _utc(ms) -> str:
    if ms is None or ms in ("", float("inf")):
        return "never"
    moment = datetime.datetime.fromtimestamp(float(ms) / 1000, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _scheduling(client: Client, opts) -> None:
    """scheduled / retrying / schedule subcommands (protocol.md 14)."""
    if opts.command == "scheduled":
        if opts.action == "list":
            for job in client.scheduled(opts.start, opts.count):
                print(f"{job.key}\t{_utc(job.ts * 1000)}\t{job.queue}\t{job.job_class}")
        elif not (client.remove_scheduled if opts.action == "remove" else client.enqueue_scheduled_now)(opts.job_id):
            raise JobwireError(f"scheduled job {opts.job_id} was promoted or removed meanwhile")
    elif opts.command == "retrying":
        if opts.action == "list":
            for retrying in client.retrying(opts.start, opts.count):
                last = retrying.attempts[-1] if retrying.attempts else {}
                print(
                    f"{retrying.key}\t{_utc(retrying.due_ms)}\t{retrying.queue}\t{retrying.job_class}"
                    f"\tattempt {len(retrying.attempts) + 1}"
                    f"\t{last.get('exception', '')}: {last.get('error', '')}"
                )
        elif not (client.remove_retrying if opts.action == "remove" else client.retry_now)(opts.job_id):
            raise JobwireError(f"retrying job {opts.job_id} was promoted or removed meanwhile")
    elif opts.action == "list":
        for s in client.schedules():
            d = s.definition or {}
            when = d.get("cron") or (f"every {d['every_ms']} ms" if "every_ms" in d else "?")
            print(
                f"{s.name}\t{when}\tnext {_utc(s.next_ms)}\t{d.get('queue', '')}\t{d.get('class', '')}"
                f"\tfired {s.state.get('fired', 0)}\tmissed {s.state.get('missed', 0)}"
                + (f"\terror: {s.state['error']}" if s.state.get("error") else "")
            )
    elif opts.action == "set":
        definition = {"queue": opts.queue, "class": opts.job_class, "args": [_json_arg(a) for a in opts.args]}
        if opts.cron:
            definition["cron"] = opts.cron
        else:
            definition["every_ms"] = opts.every_ms
            if opts.start_ms is not None:
                definition["start_ms"] = opts.start_ms
        if opts.retry:
            definition["retry"] = _json_arg(opts.retry)
        if opts.misfire_grace_ms is not None:
            definition["misfire_grace_ms"] = opts.misfire_grace_ms
        print(_utc(client.set_schedule(opts.name, definition)))
    elif opts.action == "remove":
        if not client.remove_schedule(opts.name):
            raise JobwireError(f"no schedule {opts.name}")
    elif opts.action == "run":
        print(client.run_schedule_now(opts.name))


def _worker(opts) -> int:
    from .prefork import Supervisor
    from .worker import Config, Worker

    values = options.resolve(opts)
    logging.basicConfig(
        level=logging.DEBUG if opts.verbose else logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    sys.path.insert(0, os.getcwd())
    for module in opts.imports:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise JobwireError(f"cannot import {module}: {exc}") from None
    try:
        config = Config(
            queues=parse_queues(values["queues"]),
            namespace=values["namespace"],
            redis_url=values["redis_url"],
            heartbeat_ms=values["heartbeat_ms"],
            lease_ms=values["lease_ms"],
            block_timeout_ms=values["block_timeout_ms"],
            max_deaths=values["max_deaths"],
            job_timeout_ms=values["job_timeout_ms"],
            max_payload_bytes=values["max_payload_bytes"],
            fork=not opts.no_fork,
            default_retry=values["default_retry"],
            scheduler=values["scheduler"],
        )
    except (ValueError, InvalidJob) as exc:
        raise options.UsageError(str(exc)) from None
    if values["concurrency"] > 1:
        return Supervisor(config, values["concurrency"]).run()
    return Worker(config).run()


def _info(client: Client) -> dict:
    """The home namespace's figures (as before) and, under "namespaces", every namespace's
    (protocol.md 15.2), the home's included."""
    per = {c.keys.ns: c.info() for c in client.namespace_clients()}
    return {**per[client.keys.ns], "namespaces": per}


def _route(client: Client, opts) -> None:
    """jobwire route [QUEUE [GROUP | --home]]: list the routing table, show or set one route."""
    if opts.queue is None:
        for queue, group in sorted(client.router.table().items()):
            print(f"{queue}\t{group}\t{client.router.namespace_for(queue)}")
    elif opts.group is None and not opts.home:
        print(client.router.namespace_for(opts.queue))
    else:
        client.router.set_route(opts.queue, None if opts.home else opts.group)
        print(client.router.namespace_for(opts.queue))


def _run(opts) -> int:
    opts.redis_url, opts.namespace = options.resolve_connection(opts)
    if opts.command == "version":
        print(f"jobwire {__version__} (protocol {spec.spec_version()})")
        return 0
    if opts.command == "worker":
        return _worker(opts)
    if opts.command == "gateway":
        from .gateway.command import run as run_gateway

        return run_gateway(opts)
    if opts.command == "web":
        from .web import serve

        return serve(opts.redis_url, opts.namespace, opts.host, opts.port, insecure_no_auth=opts.insecure_no_auth)
    client = Client(
        opts.redis_url,
        opts.namespace,
        wait_replicas=getattr(opts, "wait_replicas", 0),
        wait_timeout_ms=getattr(opts, "wait_timeout_ms", DEFAULT_WAIT_TIMEOUT_MS),
    )
    if opts.command == "enqueue":
        args = [_json_arg(a) for a in opts.args]
        if opts.at is not None:
            print(client.enqueue_at(opts.queue, _time_arg(opts.at), opts.job_class, *args))
        elif opts.in_seconds is not None:
            print(client.enqueue_in(opts.queue, opts.in_seconds, opts.job_class, *args))
        else:
            print(client.enqueue(opts.queue, opts.job_class, *args))
    elif opts.command in ("scheduled", "retrying", "schedule"):
        _scheduling(client, opts)
    elif opts.command == "info":
        _print_json(_info(client))
    elif opts.command == "route":
        _route(client, opts)
    elif opts.command == "queues":
        for name, size in client.queues().items():
            print(f"{name}\t{size}")
    elif opts.command == "workers":
        for w in client.workers():
            job = (w.working_on or {}).get("payload", {})
            doing = f"{w.working_on.get('queue')} {job.get('class')}" if w.working_on else ""
            print(f"{w.id}\t{w.info.get('impl', '?')}\t{w.state}\t{doing}")
    elif opts.command == "failed":
        if opts.action == "list":
            for f in client.failed(opts.start, opts.count):
                print(f"{f.key}\t{f.get('queue')}\t{f.job_class}\t{f.get('exception')}: {f.get('error')}")
        elif opts.action == "retry":
            if not client.retry_failed(opts.job_id):
                raise JobwireError(f"failure {opts.job_id} was retried or removed meanwhile")
        elif opts.action == "remove":
            client.remove_failed(opts.job_id)
        elif opts.action == "clear":
            client.clear_failed()
    elif opts.command == "control":
        client.control(opts.worker_id, f"{opts.verb} {opts.token}".strip())
    return 0


def main(argv=None) -> int:
    opts = _parser().parse_args(argv)
    try:
        return _run(opts)
    except options.UsageError as exc:
        print(f"jobwire: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except JobwireError as exc:
        print(f"jobwire: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (redis_lib.RedisError, redis_lib.exceptions.RedisClusterException) as exc:  # the latter: no node reached
        print(f"jobwire: Redis error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
