"""Hostile payloads against the Python, Node and C workers: a fixed corpus plus a property-based
stream (hypothesis). Every input must become one failure record that a strict RFC 8259 parser
accepts (UTF-8, no NaN/Infinity) with a non-empty error, and the worker must run the next job.

Every input is built to fail (bad bytes, bad JSON, bad types, or a class no worker knows), so a
success would be a bug too. The three workers share one Redis, each on its own queue, and take
each input at the same time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jobwire
from jobwire_conformance.redisutil import RedisServer

pytestmark = pytest.mark.timeout(600)

REPO = Path(__file__).resolve().parents[2]
JOBWIRE = str(Path(sys.executable).with_name("jobwire"))
IMPLS = ("python", "node", "c")
MAX_PAYLOAD = 65536  # small, so "huge" payloads cross it without megabytes per input
TRIED = {"corpus": 0, "generated": 0}


def worker_cmd(impl: str, url: str) -> list[str]:
    queue = f"hostile-{impl}"
    common = (
        "--queues",
        queue,
        "--redis-url",
        url,
        "--heartbeat-ms",
        "500",
        "--lease-ms",
        "5000",
        "--block-timeout-ms",
        "500",
        "--max-payload-bytes",
        str(MAX_PAYLOAD),
    )
    if impl == "python":
        return [JOBWIRE, "worker", *common, "--no-fork", "--import", "jobwire.conformance_jobs"]
    if impl == "node":
        return ["node", str(REPO / "examples-node/worker.js"), *common]
    return [str(REPO / "examples-c/jobwire-worker"), *common]


def strict_json(raw: bytes):
    """RFC 8259 strictly: well-formed UTF-8, no NaN/Infinity, nothing after the value."""
    text = raw.decode("utf-8")  # strict: invalid bytes and encoded surrogates raise

    def refuse(name):
        raise ValueError(f"non-JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


class Rig:
    """One Redis, one worker per implementation; feed() pushes one raw payload to each."""

    def __init__(self, tmp: Path) -> None:
        self.server = RedisServer().start()
        self.r = redis.Redis(port=self.server.port)
        self.client = jobwire.Client(self.server.url)
        self.logs = {impl: open(tmp / f"hostile-{impl}.log", "wb") for impl in IMPLS}
        self.procs = {
            impl: subprocess.Popen(
                worker_cmd(impl, self.server.url),
                stdout=self.logs[impl],
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            for impl in IMPLS
        }
        self.seen = {impl: 0 for impl in IMPLS}

    def failures(self, impl: str) -> list[bytes]:
        return [
            raw for raw in self.r.lrange("resque:failed", 0, -1) if json.loads(raw).get("queue") == f"hostile-{impl}"
        ]

    def feed(self, raw: bytes) -> None:
        """Push raw then an Echo marker to every worker; check one strict failure record each."""
        markers = {}
        for impl in IMPLS:
            self.r.rpush(f"resque:queue:hostile-{impl}", raw)
            markers[impl] = self.client.enqueue(f"hostile-{impl}", "jobwire.Echo", "next")
        deadline = time.monotonic() + 20
        pending = set(IMPLS)
        while pending and time.monotonic() < deadline:
            ran = {json.loads(x)["id"] for x in self.r.lrange("resque:jobwire:conformance:echo", 0, -1)}
            pending = {impl for impl in pending if markers[impl] not in ran}
            time.sleep(0.01)
        for impl in IMPLS:
            assert self.procs[impl].poll() is None, f"{impl} worker exited on {raw[:200]!r}"
            assert impl not in pending, f"{impl} did not run the next job after {raw[:200]!r}"
            records = self.failures(impl)
            assert len(records) == self.seen[impl] + 1, f"{impl}: expected one failure record for {raw[:200]!r}"
            self.seen[impl] += 1
            try:
                record = strict_json(records[-1])
            except ValueError as exc:
                raise AssertionError(f"{impl}: failure record is not strict JSON ({exc}) for {raw[:200]!r}") from exc
            assert isinstance(record.get("error"), str) and record["error"].strip(), record
            assert isinstance(record.get("exception"), str) and record["exception"], record

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for log in self.logs.values():
            log.close()
        self.server.kill()
        self.server.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    rig = Rig(tmp_path_factory.mktemp("hostile"))
    time.sleep(0.5)
    yield rig
    rig.close()
    print(f"\nhostile inputs tried: {TRIED} (each against {len(IMPLS)} workers)")


def job(**fields) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


DEEP = 100_000
CORPUS = [
    b"\xff\xfe\xfd",  # invalid UTF-8
    b'{"class":"jobwire.Echo","args":["\xc3\x28"]}',  # invalid UTF-8 inside a string
    b'{"class":"jobwire.Echo","args":["\xed\xa0\x80"]}',  # an encoded surrogate
    b'{"class":"jobwire.Echo","args":["\xe0\x80\xaf"]}',  # an overlong "/"
    b'{"class":"jobwire.Echo","args":["\xf4\x90\x80\x80"]}',  # above U+10FFFF
    b"",  # empty
    b"   ",
    b"null",
    b"true",
    b"42",
    b'"a string"',
    b"[]",
    b"[1,2]",
    b"{",  # truncated
    b'{"class":"jobwire.Echo","args":[]',
    b'{"class":"jobwire.Echo","args":[NaN]}',  # only lax parsers accept these
    b'{"class":"jobwire.Echo","args":[Infinity]}',
    b'{"class":"jobwire.Echo","args":[-Infinity]}',
    b'{"class":"jobwire.Echo","args":[1,]}',  # trailing comma
    b"{'class':'jobwire.Echo','args':[]}",  # single quotes
    b'{class:"jobwire.Echo",args:[]}',  # unquoted keys
    b'{"class":"jobwire.Echo","args":[01]}',  # leading zero
    b'{"class":"jobwire.Echo","args":[0x10]}',  # hex
    b'{"class":"jobwire.Echo",/* c */"args":[]}',  # comment
    b'\xef\xbb\xbf{"class":"jobwire.Echo","args":[]}',  # byte order mark
    b'{"class":"jobwire.Echo","args":[]} trailing',  # garbage after the value
    b'{"class":"jobwire.Echo","args":["\x00"]}',  # a raw NUL (control char in a string)
    b'{"class":"jobwire\\u0000Echo","args":[]}',  # an escaped NUL in the class
    b'{"class":"jobwire.Echo\x00","args":[]}',
    b"[" * DEEP + b"]" * DEEP,  # deep nesting
    b'{"class":"x","args":' + b"[" * DEEP + b"]" * DEEP + b"}",
    b'{"class":"x","args":[' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"]}",
    job(**{"class": 42, "args": []}),  # wrong types in every field
    job(**{"class": None, "args": []}),
    job(**{"class": ["jobwire.Echo"], "args": []}),
    job(**{"class": "jobwire.Echo", "args": "not a list"}),
    job(**{"class": "jobwire.Echo", "args": {"a": 1}}),
    job(**{"class": "jobwire.Echo", "args": [], "id": 7}),
    job(**{"class": "jobwire.Echo", "args": [], "enqueued_at": "yesterday"}),
    job(**{"args": []}),
    job(**{"class": "", "args": []}),
    job(**{"class": "../../etc/passwd", "args": []}),  # class names like paths and modules
    job(**{"class": "/bin/sh", "args": []}),
    job(**{"class": "os.system", "args": ["true"]}),
    job(**{"class": "subprocess.Popen", "args": [["true"]]}),
    job(**{"class": "__proto__", "args": []}),
    job(**{"class": "constructor", "args": []}),
    job(**{"class": "toString", "args": []}),
    job(**{"class": "hasOwnProperty", "args": []}),
    job(**{"class": "__builtins__", "args": []}),
    job(**{"class": "jobwire.Echo.__class__", "args": []}),
    b'{"class":"x","args":[],"__proto__":{"polluted":1}}',
    job(**{"class": "x" * 100_000, "args": []}),  # huge fields, a payload over the limit
    job(**{"class": "x", "args": ["y" * (MAX_PAYLOAD * 2)]}),
    job(**{"class": "jobwire.Fail", "args": ["e" * 60_000]}),  # a huge error message
    job(**{"class": "jobwire.Fail", "args": ["\u00e9\U0001f600" * 10_000]}),
]


@pytest.mark.smoke  # fresh machine: the Python, Node and C workers side by side
def test_fixed_corpus(rig):
    for raw in CORPUS:
        rig.feed(raw)
        TRIED["corpus"] += 1


KNOWN = {"jobwire.Echo", "jobwire.Fail", "jobwire.Sleep", "jobwire.Crash", "jobwire.Noop"}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
unknown_class = st.text(min_size=1, max_size=40).filter(lambda c: c not in KNOWN)
# a well-formed job for a class nobody has, a job with a field of the wrong type, or raw bytes
hostile = st.one_of(
    st.builds(lambda c, a: job(**{"class": c, "args": a}), unknown_class, st.lists(json_values, max_size=4)),
    st.builds(lambda v: job(**{"class": v, "args": []}), json_values.filter(lambda v: not isinstance(v, str))),
    st.builds(
        lambda v: job(**{"class": "jobwire.Echo", "args": v}), json_values.filter(lambda v: not isinstance(v, list))
    ),
    st.binary(max_size=200).filter(lambda b: not _is_runnable(b)),
)


def _is_runnable(raw: bytes) -> bool:
    """A random byte string that happens to be a valid job for a known class would succeed."""
    try:
        doc = strict_json(raw)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and doc.get("class") in KNOWN


@pytest.mark.smoke  # fresh machine: hypothesis (the fresh machine sets JOBWIRE_HOSTILE_EXAMPLES low)
@settings(
    max_examples=int(__import__("os").environ.get("JOBWIRE_HOSTILE_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=hostile)
def test_generated_inputs(rig, raw):
    rig.feed(raw)
    TRIED["generated"] += 1
