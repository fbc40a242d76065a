"""Protocol 1.0.1 edges: which JSON a worker runs (5.1), how strings are escaped in records (6.2),
the UnknownClass message (7.4), and the conformance classes' arguments (10)."""

from __future__ import annotations

import json

from .checks import raw_member
from .core import MUST, SHOULD, Test, group

P51 = "protocol.md#51-schema-semantics-and-json-parsing"
P62 = "protocol.md#62-failure-record"
P74 = "protocol.md#74-running-a-job"
P10 = "protocol.md#10-conformance-job-classes"

# Text lua-cjson lets through although RFC 8259 forbids it (protocol.md 5.1).
LENIENT = ["01", "+1", "1.", "-inf", "0x10", "NaN", "Infinity", "-Infinity"]
# Every character 6.2 names: escaped ones and ones that must stay raw.
SPECIAL = 'a"b\\c</script>&/\u2028\u2029\x7f\x01\x1f\t\n\u00e9\U0001f600'


def _js(text: str) -> bytes:
    """A string encoded as JSON.stringify does (protocol.md 6.2)."""
    return json.dumps(text, ensure_ascii=False).encode()


def _record_keeping(ctx, raw: bytes):
    """The failure record whose payload is raw kept as a JSON string, or None."""
    for rec in ctx.failures():
        member = raw_member(rec, "payload")
        try:
            if member is not None and json.loads(member) == raw.decode():
                return rec, json.loads(rec)
        except ValueError:
            continue
    return None, None


@group(
    Test(
        "payload.json.rfc8259-only",
        P51,
        MUST,
        "payloads lua-cjson accepts but RFC 8259 forbids (01, +1, 1., -inf, 0x10, NaN, Infinity) fail as InvalidJSON",
    ),
    Test(
        "payload.json.lone-surrogate",
        P51,
        MUST,
        "a payload with a lone surrogate escape fails as jobwire.InvalidJSON, raw bytes kept",
    ),
    Test("payload.json.huge-exponent", P51, MUST, "a payload with 1e400 in args is not failed as jobwire.InvalidJSON"),
    Test("payload.json.huge-exponent.runs", P51, SHOULD, "a payload with 1e400 in args runs"),
    Test(
        "payload.invalid.unknown-class.escaped",
        P74,
        MUST,
        "the UnknownClass message quotes the class as a JSON string: quotes and tabs escaped",
    ),
    Test(
        "failure.record.string-escaping",
        P62,
        MUST,
        "strings in failure records are escaped as JSON.stringify does: no \\/, no \\u007f, U+2028 raw",
    ),
    Test(
        "conformance.fail.non-string",
        P10,
        MUST,
        "jobwire.Fail with a non-string message fails with its compact JSON, with none as jobwire.Fail",
    ),
    Test("conformance.sleep.float", P10, MUST, "jobwire.Sleep accepts a float number of milliseconds"),
)
def json_edges(ctx):
    w = ctx.start_worker("jx")
    lenient = [
        ('{"class":"jobwire.Echo","args":[%s],"id":"lenient%d"}' % (n, i)).encode() for i, n in enumerate(LENIENT)
    ]
    surrogate = b'{"class":"jobwire.Echo","args":["\\ud800"],"id":"surrogate1"}'
    huge = b'{"class":"jobwire.Echo","args":[1e400],"id":"hugeexp01"}'
    cls = 'No"Such\tClass/\u00e9'
    unknown = json.dumps({"class": cls, "args": [], "id": "unknownesc"}, ensure_ascii=False).encode()
    not_json = ('{"class":"jobwire.Echo","args":["\x7f</>&\u2028"').encode()
    for raw in lenient + [surrogate, huge, unknown, not_json]:
        ctx.push_raw("jx", raw)
    fails = {"failstr01": [SPECIAL], "failnum01": [42], "failarr01": [["a", 1, None]], "failnone1": []}
    for job_id, args in fails.items():
        _, raw = ctx.payload("jobwire.Fail", args, job_id=job_id)
        ctx.push_raw("jx", raw)
    sleep_id = ctx.enqueue("jx", "jobwire.Sleep", [1.5])
    last = ctx.enqueue("jx", "jobwire.Echo", ["last"])
    ctx.require(ctx.wait_echo(last, 15) is not None, f"the last job did not run: {w.describe()}")

    bad = []
    for raw in lenient:
        rec, doc = _record_keeping(ctx, raw)
        if not doc or doc.get("exception") != "jobwire.InvalidJSON":
            bad.append(f"{raw.decode()}: {doc.get('exception') if doc else 'ran or no record'}")
    ctx.check("payload.json.rfc8259-only", not bad, "; ".join(bad))
    rec, doc = _record_keeping(ctx, surrogate)
    ctx.check(
        "payload.json.lone-surrogate",
        doc is not None and doc.get("exception") == "jobwire.InvalidJSON",
        f"record {rec!r}",
    )
    rec, doc = ctx.wait_failure("hugeexp01", 0.1)
    ran = ctx.echo_for("hugeexp01")
    ctx.check(
        "payload.json.huge-exponent",
        ran or (doc is not None and doc.get("exception") != "jobwire.InvalidJSON"),
        f"failed as {doc and doc.get('exception')!r}: {rec!r}"[:400],
    )
    ctx.check("payload.json.huge-exponent.runs", bool(ran), f"did not run; record {rec!r}"[:400])

    rec, doc = ctx.wait_failure("unknownesc", 0.1)
    want = "no handler registered for class " + json.dumps(cls, ensure_ascii=False)
    ctx.check(
        "payload.invalid.unknown-class.escaped",
        doc is not None and doc.get("exception") == "jobwire.UnknownClass" and doc.get("error") == want,
        f"error {doc and doc.get('error')!r}, expected {want!r}",
    )

    problems = []
    rec, doc = ctx.wait_failure("failstr01", 0.1)
    if rec is None or raw_member(rec, "error") != _js(SPECIAL):
        problems.append(
            f"jobwire.Fail record's error bytes {rec and raw_member(rec, 'error')!r}, expected {_js(SPECIAL)!r}"
        )
    for rec in ctx.failures():  # every string member of every record, e.g. work.lua's for the non-JSON payload
        try:
            doc = json.loads(rec)
        except ValueError:
            continue
        for name in ("failed_at", "exception", "error", "worker", "queue"):
            if isinstance(doc.get(name), str) and raw_member(rec, name) != _js(doc[name]):
                problems.append(f"{name} written as {raw_member(rec, name)!r}, expected {_js(doc[name])!r}")
        if isinstance(doc.get("payload"), str) and raw_member(rec, "payload") != _js(doc["payload"]):
            problems.append(f"payload string written as {raw_member(rec, 'payload')!r}")
    ctx.check("failure.record.string-escaping", not problems, "; ".join(problems)[:900])

    got = {}
    for job_id in ("failnum01", "failarr01", "failnone1"):
        _, doc = ctx.wait_failure(job_id, 0.1)
        got[job_id] = doc and doc.get("error")
    ctx.check(
        "conformance.fail.non-string",
        got == {"failnum01": "42", "failarr01": '["a",1,null]', "failnone1": "jobwire.Fail"},
        f"errors {got}",
    )
    ctx.check(
        "conformance.sleep.float",
        bool(ctx.echo_for(sleep_id)),
        f"jobwire.Sleep [1.5] did not echo; record {ctx.failure_for(sleep_id)!r}"[:400],
    )
