"""The worker options of protocol.md 7.2 and 14.1, read from spec/options.json (their one source).

Each option is taken from its flag, else from its environment variable when that is set and not
empty, else from its default. Bad values are usage errors (exit status 2, options.json
"exit_codes").
"""

from __future__ import annotations

import argparse
import os
import re

from . import redisurl, spec

__all__ = [
    "OPTIONS",
    "OPTIONS_1_1",
    "DEFAULTS",
    "UsageError",
    "add_worker_arguments",
    "resolve",
    "resolve_connection",
    "check_constraints",
]

OPTIONS: list[dict] = spec.worker_options()["options"]
# protocol.md 14.1: what a worker claiming delayed/retries/schedules takes besides 7.2's options
OPTIONS_1_1: list[dict] = spec.worker_options()["options_1_1"]
BY_NAME: dict[str, dict] = {o["name"]: o for o in OPTIONS + OPTIONS_1_1}
DEFAULTS: dict = {o["name"]: o["default"] for o in OPTIONS + OPTIONS_1_1}
_METAVAR = {"integer": "N", "json": "POLICY", "enum": "MODE"}
_DIGITS = re.compile(r"[0-9]+")


class UsageError(Exception):
    """A bad option value or a broken constraint: the worker exits with status 2."""


def add_worker_arguments(parser: argparse.ArgumentParser, skip=()) -> None:
    """Declare every option's flag; values stay raw strings until resolve() reads them."""
    for o in OPTIONS + OPTIONS_1_1:
        if o["name"] in skip:
            continue
        flags = [o["flag"]]
        if o["name"] == "concurrency":
            flags.insert(0, "--processes")  # Python's historical name for the same option
        parser.add_argument(
            *flags,
            dest=o["name"],
            default=None,
            metavar=_METAVAR.get(o["type"], "VALUE"),
            help=f"{o['help']} ({'required' if o.get('required') else 'default ' + str(o['default'])}, ${o['env']})",
        )


def resolve(opts: argparse.Namespace, env=os.environ) -> dict:
    """Flag, else non-empty variable, else default; integers checked against their minimum, an enum
    against its values (a JSON option stays text: its reader checks it)."""
    values = {}
    for o in OPTIONS + OPTIONS_1_1:
        raw = getattr(opts, o["name"], None)
        source = o["flag"]
        if raw is None and env.get(o["env"]):
            raw, source = env[o["env"]], "$" + o["env"]
        if raw is None:
            values[o["name"]] = o["default"]
            continue
        if o["type"] == "integer":
            if not _DIGITS.fullmatch(raw) or int(raw) < o.get("minimum", 0):
                raise UsageError(f"{source} must be an integer >= {o.get('minimum', 0)} of ASCII digits, not {raw!r}")
            values[o["name"]] = int(raw)
        elif o["type"] == "enum" and raw not in o["values"]:
            raise UsageError(f"{source} is {', '.join(o['values'][:-1])} or {o['values'][-1]}, not {raw!r}")
        else:
            values[o["name"]] = raw
    if not values["queues"]:
        raise UsageError(f"the worker needs --queues (or ${BY_NAME['queues']['env']}), e.g. --queues high,low")
    check_constraints(values)
    return values


def check_constraints(values: dict) -> None:
    """options.json "constraints": the lease must outlast two beats."""
    if values["lease_ms"] <= 2 * values["heartbeat_ms"]:
        raise UsageError(f"--lease-ms ({values['lease_ms']}) must exceed 2 x --heartbeat-ms ({values['heartbeat_ms']})")


def resolve_connection(opts: argparse.Namespace, env=os.environ) -> tuple[str, str]:
    """--redis-url and --namespace, which every command takes: flag, variable, default."""
    out = []
    for name in ("redis_url", "namespace"):
        o = BY_NAME[name]
        out.append(getattr(opts, name, None) or env.get(o["env"]) or o["default"])
    try:
        redisurl.parse(out[0])  # a bad URL is bad usage, found before anything connects
    except redisurl.InvalidRedisUrl as exc:
        raise UsageError(str(exc)) from None
    return out[0], out[1]
