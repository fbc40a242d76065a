"""Payload tests: arguments round-trip, extra fields, invalid and oversized payloads, failure records."""

from __future__ import annotations

import json
import time

from . import schemas
from .checks import FAILED_AT, FAILURE_KEYS, failure_write_problems, raw_member
from .core import MUST, SHOULD, Failed, Test, group
from .paths import SPEC_DIR, VECTORS_DIR
from .rawjson import same_value

P5 = "protocol.md#5-the-job-payload"
P62 = "protocol.md#62-failure-record"
P74 = "protocol.md#74-running-a-job"
P10 = "protocol.md#10-conformance-job-classes"
P82 = "protocol.md#82-settle-and-reserve"

PROTOCOL_ERRORS = {e["name"] for e in json.loads((SPEC_DIR / "errors.json").read_text())["exceptions"]}
ROUNDTRIP = json.loads((VECTORS_DIR / "args-roundtrip.json").read_text())["cases"]
FORK_JOBS = 6  # at least this many jobs give pids to worker.fork.child-per-job


@group(
    *[Test(c["id"], c["specification"][0], c["level"], c["description"]) for c in ROUNDTRIP],
    Test(
        "conformance.echo.record",
        P10,
        MUST,
        "jobwire.Echo writes {id,args,worker,queue,pid,impl} with the worker id and queue",
    ),
    Test(
        "worker.fork.child-per-job",
        "protocol.md#74-running-a-job",
        MUST,
        f"each job runs in a process of its own: {FORK_JOBS} or more jobs echo as many distinct pids, "
        "none the master's",
        feature="fork-per-job",
    ),
)
def roundtrip(ctx):
    w = ctx.start_worker("rt")
    sent = {}
    # the echo-record and fork checks need jobs even when no round-trip id is selected (--id)
    cases = [c for c in ROUNDTRIP if ctx.wants(c["id"])] or ROUNDTRIP[:FORK_JOBS]
    if ctx.wants("worker.fork.child-per-job") and len(cases) < FORK_JOBS:
        cases += [c for c in ROUNDTRIP if c not in cases][: FORK_JOBS - len(cases)]
    for case in cases:
        job_id = f"{abs(hash(case['id'])):x}{int(time.time() * 1e6):x}"[:32]
        if case["args_json"] is None:
            raw = '{"class":"jobwire.Echo","id":"%s"}' % job_id
            expected = []
        else:
            raw = '{"class":"jobwire.Echo","args":%s,"id":"%s"}' % (case["args_json"], job_id)
            expected = json.loads(case["args_json"])
        ctx.push_raw("rt", raw.encode("utf-8"))
        sent[case["id"]] = (job_id, expected, case["compare"] == "signed-zero")
    deadline = time.monotonic() + 10
    pids = {}  # job id -> the pid its echo names
    for test_id, (job_id, expected, signed_zero) in sent.items():
        echo = ctx.wait_echo(job_id, max(0.1, deadline - time.monotonic()))
        if echo is None:
            failure = ctx.failure_for(job_id)
            why = f"; it failed: {failure[0][0][:300]!r}" if failure else ""
            if ctx.wants(test_id):
                ctx.fail(test_id, f"no echo record for job {job_id}{why}")
            ctx.fail("conformance.echo.record", f"no echo record for job {job_id}{why}")
            continue
        why = same_value(expected, echo.get("args"), "args", signed_zero)
        if ctx.wants(test_id):
            ctx.check(test_id, why is None, f"{why}; echo record {echo['_raw'][:300]!r}")
        if ctx.wants("conformance.echo.record"):
            problems = []
            for name, want in (("worker", w.worker_id), ("queue", "rt"), ("id", job_id)):
                if echo.get(name) != want:
                    problems.append(f"{name} is {echo.get(name)!r}, expected {want!r}")
            if not isinstance(echo.get("pid"), int) or isinstance(echo.get("pid"), bool):
                problems.append(f"pid {echo.get('pid')!r} is not an integer")
            if not isinstance(echo.get("impl"), str) or not echo.get("impl"):
                problems.append(f"impl {echo.get('impl')!r} is not a non-empty string")
            elif ctx.impl.impl and echo["impl"] != ctx.impl.impl:
                problems.append(f"impl is {echo['impl']!r}, the manifest says {ctx.impl.impl!r}")
            ctx.check("conformance.echo.record", not problems, "; ".join(problems))
        pids[job_id] = echo.get("pid")
    if ctx.wants("worker.fork.child-per-job"):
        _check_child_per_job(ctx, w, sent, pids)


def _check_child_per_job(ctx, w, sent: dict, pids: dict) -> None:
    """Every job echoed, each from a pid no other job and not the master had: a child (or a
    standby, protocol.md 7.4) that ran two jobs, or a job run in the master, fails."""
    seen: dict[object, list[str]] = {}
    for job_id, pid in pids.items():
        seen.setdefault(pid, []).append(job_id)
    shared = {str(pid): ids for pid, ids in seen.items() if len(ids) > 1}
    problems = []
    if len(pids) < FORK_JOBS or len(pids) < len(sent):
        problems.append(f"only {len(pids)} of {len(sent)} jobs echoed")
    if w.pid in seen:
        problems.append(f"{len(seen[w.pid])} jobs ran in the master {w.pid}")
    if shared:
        problems.append(f"pids that ran more than one job: {shared}")
    ctx.check(
        "worker.fork.child-per-job",
        not problems,
        "; ".join(problems) + f" (pids {sorted(map(str, seen))}; the master is {w.pid})",
    )


@group(
    Test(
        "payload.extra-fields.preserved",
        P5,
        MUST,
        "unknown payload fields, big numbers and float spellings survive byte for byte into the failure record",
    ),
    Test(
        "payload.extra-fields.beyond-int64",
        P5,
        SHOULD,
        "unknown fields holding numbers no double or int64 can hold do not stop the job from running",
    ),
    Test(
        "payload.whitespace.preserved",
        P5,
        MUST,
        "a non-compact payload is embedded in its failure record byte for byte",
    ),
    Test("failure.record.schema", P62, MUST, "a jobwire.Fail record validates against failure.schema.json"),
    Test(
        "failure.record.key-order",
        P62,
        MUST,
        "failure record keys are failed_at, payload, exception, error, backtrace, worker, queue in order",
    ),
    Test("failure.record.failed-at", P62, MUST, "failed_at is '%Y/%m/%d %H:%M:%S UTC'"),
    Test(
        "failure.record.error-exact",
        P74,
        MUST,
        "jobwire.Fail's message is the record's error exactly (quotes, unicode, newlines)",
    ),
    Test("failure.record.exception", P74, MUST, "exception names the error type: a non-empty string"),
    Test("failure.record.worker-queue", P62, MUST, "worker is the worker id and queue the job's queue"),
    Test("failure.record.backtrace", P62, MUST, "backtrace is an array of strings"),
    Test("failure.worker-survives", P74, MUST, "a failing job does not stop the worker"),
)
def failure_records(ctx):
    w = ctx.start_worker("fq")
    message = 'boom "quoted" \\ back\nslash ünïcödé 😀 \t end'
    extra = (
        '{"class":"jobwire.Fail","args":[%s],"id":"extra0001","enqueued_at":1764403200123,'
        '"zz_unknown":{"nested":[1,2.50,"\\u00e9",1e2]},"big":9223372036854775807,'
        '"float":1.50,"neg":-0.0,"queue":"fq"}'
    ) % json.dumps(message)
    huge = (
        '{"class":"jobwire.Fail","args":["huge"],"id":"huge00001","huge":123456789012345678901234567890,"tiny":1e-400}'
    )
    spaced = '{ "class" : "jobwire.Fail" ,\n  "args" : [ "spaced" ] , "id" : "spaced0001" }'
    ctx.push_raw("fq", extra.encode())
    ctx.push_raw("fq", spaced.encode())
    ctx.push_raw("fq", huge.encode())
    after = ctx.enqueue("fq", "jobwire.Echo", ["after failures"])
    raw, doc = ctx.wait_failure("extra0001", 8)
    if raw is None:
        raise Failed(f"no failure record for the jobwire.Fail job within 8 s: {w.describe()}")
    ctx.check(
        "payload.extra-fields.preserved",
        raw_member(raw, "payload") == extra.encode(),
        f"record payload {raw_member(raw, 'payload')!r} differs from the pushed {extra!r}",
    )
    why = schemas.errors("failure", doc)
    ctx.check("failure.record.schema", why is None, f"{why}: {raw[:400]!r}")
    keys = list(doc.keys())
    ctx.check("failure.record.key-order", keys[:7] == FAILURE_KEYS, f"keys in order: {keys}")
    ctx.check(
        "failure.record.failed-at",
        bool(FAILED_AT.match(str(doc.get("failed_at")))),
        f"failed_at {doc.get('failed_at')!r}",
    )
    ctx.check(
        "failure.record.error-exact", doc.get("error") == message, f"error {doc.get('error')!r}, expected {message!r}"
    )
    ctx.check(
        "failure.record.exception",
        isinstance(doc.get("exception"), str) and doc["exception"] != "" and doc["exception"] not in PROTOCOL_ERRORS,
        f"exception {doc.get('exception')!r} (a job error names the language's error type)",
    )
    ctx.check(
        "failure.record.worker-queue",
        doc.get("worker") == w.worker_id and doc.get("queue") == "fq",
        f"worker {doc.get('worker')!r} queue {doc.get('queue')!r}; expected {w.worker_id!r} and 'fq'",
    )
    bt = doc.get("backtrace")
    ctx.check(
        "failure.record.backtrace",
        isinstance(bt, list) and all(isinstance(x, str) for x in bt),
        f"backtrace {bt!r}"[:300],
    )
    raw2, _ = ctx.wait_failure("spaced0001", 5)
    ctx.check(
        "payload.whitespace.preserved",
        raw2 is not None and raw_member(raw2, "payload") == spaced.encode(),
        f"record {raw2!r} does not embed {spaced!r} verbatim"[:500],
    )
    raw3, doc3 = ctx.wait_failure("huge00001", 5)
    ctx.check(
        "payload.extra-fields.beyond-int64",
        raw3 is not None
        and raw_member(raw3, "payload") == huge.encode()
        and doc3.get("error") == "huge"
        and doc3.get("exception") not in PROTOCOL_ERRORS,
        f"a payload with an integer beyond int64 and a float underflowing to 0 in unknown fields: "
        f"record {raw3[:400] if raw3 else None!r}",
    )
    ctx.check(
        "failure.worker-survives",
        ctx.wait_echo(after, 5) is not None and w.alive(),
        f"the Echo job after two failures did not run: {w.describe()}",
    )


INVALID = [
    # (test id, raw payload, exception, payload kept as a JSON string?, error check, description)
    (
        "payload.invalid.json",
        b'{"class":"jobwire.Echo","args":[1,',
        "jobwire.InvalidJSON",
        True,
        None,
        "a payload that is not JSON fails as jobwire.InvalidJSON, raw bytes kept as a string",
    ),
    (
        "payload.invalid.not-object",
        b'["jobwire.Echo",[1]]',
        "jobwire.InvalidPayload",
        True,
        None,
        "a JSON array payload fails as jobwire.InvalidPayload, raw bytes kept as a string",
    ),
    (
        "payload.invalid.no-class",
        b'{"args":[1],"id":"noclass01"}',
        "jobwire.InvalidPayload",
        False,
        None,
        "a payload without class fails as jobwire.InvalidPayload, payload kept verbatim",
    ),
    (
        "payload.invalid.args-not-array",
        b'{"class":"jobwire.Echo","args":{"a":1},"id":"argsobj01"}',
        "jobwire.InvalidPayload",
        False,
        None,
        "args that are not an array fail as jobwire.InvalidPayload",
    ),
    (
        "payload.invalid.class-too-long",
        ('{"class":"%s","args":[],"id":"longcls01"}' % ("C" * 1025)).encode(),
        "jobwire.InvalidPayload",
        False,
        None,
        "a class longer than 1024 characters fails as jobwire.InvalidPayload",
    ),
    (
        "payload.invalid.id-too-long",
        ('{"class":"jobwire.Echo","args":[],"id":"%s"}' % ("i" * 65)).encode(),
        "jobwire.InvalidPayload",
        False,
        None,
        "an id longer than 64 characters fails as jobwire.InvalidPayload",
    ),
    (
        "payload.invalid.enqueued-at",
        b'{"class":"jobwire.Echo","args":[],"id":"negtime01","enqueued_at":-5}',
        "jobwire.InvalidPayload",
        False,
        None,
        "a negative enqueued_at fails as jobwire.InvalidPayload",
    ),
    (
        "payload.invalid.unknown-class",
        b'{"class":"No.Such.Class","args":[1],"id":"unknown01","x":1.50}',
        "jobwire.UnknownClass",
        False,
        'no handler registered for class "No.Such.Class"',
        "an unregistered class fails as jobwire.UnknownClass with the exact message",
    ),
    (
        "payload.size.too-large",
        ('{"class":"jobwire.Echo","args":["%s"],"id":"toolarge1"}' % ("x" * 5000)).encode(),
        "jobwire.PayloadTooLarge",
        True,
        None,
        "a payload over --max-payload-bytes fails as jobwire.PayloadTooLarge, raw bytes kept",
    ),
]


# Payloads lua-cjson accepts (so work.lua hands them out) that RFC 8259 forbids: the worker's own
# parser must reject them (protocol.md 7.4, the jobwire.InvalidJSON row) and its failure record
# must keep them as a JSON string, so that the record itself stays valid JSON.
RFC8259 = [
    (
        f"payload.invalid.rfc8259.{name}",
        ('{"class":"jobwire.Echo","args":[%s],"id":"rfc%s"}' % (number, name)).encode(),
        "jobwire.InvalidJSON",
        True,
        None,
        f"a payload holding {number} (lua-cjson lets it through) fails as jobwire.InvalidJSON; the record keeps "
        "it as a JSON string and is valid JSON itself",
    )
    for name, number in (
        ("nan", "NaN"),
        ("infinity", "-Infinity"),
        ("hex", "0x1F"),
        ("plus", "+1"),
        ("leading-zero", "017"),
        ("trailing-dot", "1."),
    )
]


def _at_limit(limit: int) -> bytes:
    head, tail = '{"class":"jobwire.Echo","args":["', '"],"id":"atlimit01"}'
    return (head + "y" * (limit - len(head) - len(tail)) + tail).encode()


@group(
    *[
        Test(i, P74 if exc in ("jobwire.UnknownClass",) or not kept else P82, MUST, d)
        for i, _, exc, kept, _, d in INVALID
    ],
    *[Test(i, P74, MUST, d) for i, _, _, _, _, d in RFC8259],
    Test(
        "payload.size.at-limit", "protocol.md#72-configuration", MUST, "a payload of exactly --max-payload-bytes runs"
    ),
    Test(
        "payload.invalid.worker-survives",
        P5,
        MUST,
        "after every invalid payload the worker is alive and runs the next job",
    ),
    Test(
        "stats.failed.invalid",
        "key-layout.md#resque-keys-shared-with-ruby-resque-and-node-resque",
        MUST,
        "each invalid payload counts in stat:processed and stat:failed",
    ),
)
def invalid_payloads(ctx):
    limit = 4096
    w = ctx.start_worker("inv", max_payload_bytes=limit)
    for _, raw, *_ in INVALID + RFC8259:
        ctx.push_raw("inv", raw)
    ctx.push_raw("inv", _at_limit(limit))
    after = ctx.enqueue("inv", "jobwire.Echo", ["after invalid"])
    echo = ctx.wait_echo(after, 10)
    ctx.check(
        "payload.invalid.worker-survives",
        echo is not None and w.alive(),
        f"the Echo job after the invalid payloads did not run: {w.describe()}",
    )
    records = ctx.failures()
    for test_id, raw, exception, kept_as_string, error, _ in INVALID + RFC8259:
        if not ctx.wants(test_id):
            continue
        match = None
        for rec in records:
            member = raw_member(rec, "payload")
            if member is None:
                continue
            if kept_as_string:
                try:
                    if json.loads(member).encode() == raw:
                        match = rec
                except (ValueError, AttributeError):
                    pass
            elif member == raw:
                match = rec
        if match is None:
            ctx.fail(
                test_id,
                f"no failure record embeds the payload {raw[:120]!r} "
                f"{'as a JSON string' if kept_as_string else 'verbatim'}; records: "
                f"{[r[:160] for r in records]}"[:900],
            )
            continue
        problems = failure_write_problems(match)
        if problems:
            ctx.fail(test_id, "; ".join(problems) + f": {match[:300]!r}")
            continue
        doc = json.loads(match)
        if doc.get("exception") != exception:
            problems.append(f"exception {doc.get('exception')!r}, expected {exception!r}")
        if error is not None and doc.get("error") != error:
            problems.append(f"error {doc.get('error')!r}, expected {error!r}")
        if not doc.get("error"):
            problems.append("error is empty")
        if doc.get("worker") != w.worker_id or doc.get("queue") != "inv":
            problems.append(f"worker/queue {doc.get('worker')!r}/{doc.get('queue')!r}")
        ctx.check(test_id, not problems, "; ".join(problems))
    at = ctx.wait_echo("atlimit01", 2)
    ctx.check("payload.size.at-limit", at is not None, "the payload of exactly the limit did not run")
    if ctx.wants("stats.failed.invalid"):
        n = len(INVALID) + len(RFC8259)
        ctx.wait_for(lambda: int(ctx.r.get(ctx.k.stat_processed()) or 0) >= n + 2, 3)  # the last settle
        processed = int(ctx.r.get(ctx.k.stat_processed()) or 0)
        failed = int(ctx.r.get(ctx.k.stat_failed()) or 0)
        ctx.check(
            "stats.failed.invalid",
            failed == n and processed == n + 2,
            f"stat:failed {failed} (expected {n}), stat:processed {processed} (expected {n + 2})",
        )


def _text_of(nbytes: int) -> str:
    """A string of about nbytes UTF-8 bytes mixing ASCII, 2-byte and 4-byte characters."""
    unit = "ü😀0123456789abcdef"  # 22 bytes
    return unit * (nbytes // len(unit.encode()) + 1)


@group(
    Test("payload.size.multi-mib", P5, MUST, "a 3 MiB payload under the default limit runs and echoes intact"),
    Test(
        "payload.size.multi-mib-too-large",
        P74,
        MUST,
        "a 3 MiB payload over a 2 MiB limit fails as jobwire.PayloadTooLarge with its bytes kept",
    ),
    weight=2,
)
def large_payloads(ctx):
    ctx.start_worker("big", max_payload_bytes=2 * 1024 * 1024)
    big_arg = _text_of(3 * 1024 * 1024)
    job_id, raw = ctx.payload("jobwire.Echo", [big_arg, 1], job_id="bigtoolarge")
    ctx.push_raw("big", raw)
    rec, doc = ctx.wait_failure("bigtoolarge", 15)
    ok = rec is not None and doc.get("exception") == "jobwire.PayloadTooLarge" and doc.get("payload") == raw.decode()
    ctx.check(
        "payload.size.multi-mib-too-large",
        ok,
        "no PayloadTooLarge record keeping the raw bytes"
        if rec is None
        else f"record exception {doc.get('exception')!r}; payload kept: {doc.get('payload') == raw.decode()}",
    )
    ctx.start_worker("big2")
    big_arg = _text_of(3 * 1024 * 1024 + 1000)
    job_id, raw = ctx.payload("jobwire.Echo", [big_arg, 2], job_id="bigpayload")
    ctx.require(len(raw) > 3 * 1024 * 1024 - 1, f"test payload only {len(raw)} bytes")
    ctx.push_raw("big2", raw)
    echo = ctx.wait_echo("bigpayload", 15)
    if echo is None:
        ctx.fail(
            "payload.size.multi-mib",
            f"no echo for the {len(raw)}-byte payload; failures: {[r[:200] for r in ctx.failures()]}",
        )
    else:
        ctx.check(
            "payload.size.multi-mib",
            echo.get("args") == [big_arg, 2],
            "the echoed arguments differ from the 3 MiB argument sent",
        )
