"""A tiny jobwire worker with one deliberate defect, to prove the conformance suite can fail.

    python base.py --defect NAME --queues a,b [standard flags]

Defects (each entry script in this folder picks one):
  pop-without-record    LPOPs the job and runs it with nothing in Redis: a SIGKILL loses the job
  wrong-failure-format  re-encodes the payload and sorts the record's keys: bytes and order change
  ignores-priority      reserves from the configured queues in reverse order
  blocks-through-signals  no defect of its own: like every defect here it notices a signal only
                        when its BLPOP returns (redis-py retries the call after EINTR), which
                        protocol.md 7.9 forbids
It runs inline (no fork) and implements only what those tests touch; it is not a reference.

More defects, used through --defect by conformance/tests/mutations.py:
  beat-after-block      blocks for the whole block timeout: beats only between blocks (8.3)
  no-beat-while-busy    runs a job without beating (this worker never beats during a job; named
                        for the mutation table)
  reserve-only-on-wake  looks at its queues only when a wake marker arrives: plain RPUSH unseen
  echo-omits-null-id    jobwire.Echo leaves "id" out when the payload has none
  record-no-queue, record-backtrace-string, record-iso-failed-at, record-error-trimmed,
  record-exception-protocol-name, record-worker-host-pid
                        one failure-record field wrong (protocol.md 6.2)
  exits-after-failure   exits after settling a failed job"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from jobwire_conformance.redisutil import Keys, Scripts, client, utc  # noqa: E402


def main(defect: str | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--defect", default=defect)
    p.add_argument("--queues", required=True)
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--namespace", default="resque")
    for flag in (
        "--heartbeat-ms",
        "--lease-ms",
        "--block-timeout-ms",
        "--max-deaths",
        "--job-timeout-ms",
        "--max-payload-bytes",
    ):
        p.add_argument(flag, type=int, default=0)
    o = p.parse_args()
    r = client(o.redis_url)
    k, s = Keys(o.namespace), Scripts(r)
    queues = o.queues.split(",")
    wid = f"{socket.gethostname()}:{os.getpid()}:{o.queues}"
    stop = []
    signal.signal(signal.SIGQUIT, lambda *_: stop.append("quit"))
    signal.signal(signal.SIGTERM, lambda *_: stop.append("term"))
    hb_keys = [k.workers(), k.heartbeats(), k.leases(), k.worker_started(wid), k.worker_info(wid), k.meta()]
    s.call(
        "heartbeat",
        hb_keys,
        [
            wid,
            o.lease_ms,
            "register",
            utc("%Y-%m-%d %H:%M:%S +0000"),
            "1",
            "impl",
            "broken",
            "impl_version",
            "0",
            "spec",
            "1.0.0",
            "host",
            socket.gethostname(),
            "pid",
            str(os.getpid()),
            "queues",
            o.queues,
            "started_ms",
            str(int(time.time() * 1000)),
            "mode",
            "inline",
            "state",
            "idle",
        ],
    )
    next_beat = time.monotonic() + o.heartbeat_ms / 1000
    pending = ("none", "", "")
    order = list(reversed(queues)) if o.defect == "ignores-priority" else queues

    def run(queue: str, raw: bytes):
        doc = json.loads(raw)
        cls, args = doc.get("class"), doc.get("args", [])
        try:
            if cls in ("jobwire.Echo", "jobwire.Sleep"):
                if cls == "jobwire.Sleep":
                    time.sleep(args[0] / 1000)
                echo = {
                    "id": doc.get("id"),
                    "args": args,
                    "worker": wid,
                    "queue": queue,
                    "pid": os.getpid(),
                    "impl": "broken",
                }
                if o.defect == "echo-omits-null-id" and echo["id"] is None:
                    del echo["id"]
                r.rpush(k.conformance_echo(), json.dumps(echo))
                return None
            if cls == "jobwire.Noop":
                return None
            if cls == "jobwire.Fail":
                return ("RuntimeError", str(args[0]) if args else "")
            return ("jobwire.UnknownClass", f'no handler registered for class "{cls}"')
        except Exception as exc:  # noqa: BLE001
            return (type(exc).__name__, str(exc))

    def record(queue, raw, exc, msg) -> str:
        if o.defect == "wrong-failure-format":
            return json.dumps(
                {
                    "backtrace": [],
                    "error": msg,
                    "exception": exc,
                    "failed_at": utc("%Y/%m/%d %H:%M:%S UTC"),
                    "payload": json.loads(raw),
                    "queue": queue,
                    "worker": wid,
                },
                sort_keys=True,
            )
        failed_at, backtrace, worker = utc("%Y/%m/%d %H:%M:%S UTC"), "[]", wid
        if o.defect == "record-iso-failed-at":
            failed_at = utc("%Y-%m-%dT%H:%M:%SZ")
        elif o.defect == "record-backtrace-string":
            backtrace = '"base.py:1"'
        elif o.defect == "record-error-trimmed":
            msg = msg.strip().splitlines()[0] if msg.strip() else msg
        elif o.defect == "record-exception-protocol-name":
            exc = "jobwire.InvalidPayload"  # a protocol error's name (errors.json) for a job's own error
        elif o.defect == "record-worker-host-pid":
            worker = wid.rsplit(":", 1)[0]
        rec = '{"failed_at":%s,"payload":%s,"exception":%s,"error":%s,"backtrace":%s,"worker":%s,"queue":%s}' % (
            json.dumps(failed_at),
            raw.decode(),
            json.dumps(exc),
            json.dumps(msg),
            backtrace,
            json.dumps(worker),
            json.dumps(queue),
        )
        if o.defect == "record-no-queue":
            rec = rec[: rec.rindex(',"queue":')] + "}"
        return rec

    while not stop:
        if time.monotonic() >= next_beat:
            s.call("heartbeat", hb_keys, [wid, o.lease_ms, "beat", "", "1"])
            next_beat = time.monotonic() + o.heartbeat_ms / 1000
        if o.defect == "pop-without-record":
            for q in order:
                raw = r.lpop(k.queue(q))
                if raw:
                    outcome = run(q, raw)
                    r.incr(k.stat_processed())
                    if outcome:
                        r.incr(k.stat_failed())
                        r.rpush(k.failed(), record(q, raw, *outcome))
                    break
            else:
                time.sleep(0.05)
            continue
        op, token, arg = pending
        keys = k.work_keys(wid, order)
        reply = s.call(
            "work",
            keys,
            [
                wid,
                op,
                token,
                arg,
                utc("%Y/%m/%d %H:%M:%S UTC"),
                utc("%Y-%m-%dT%H:%M:%SZ"),
                o.max_deaths or 3,
                o.max_payload_bytes or 16777216,
                *order,
            ],
        )
        pending = ("none", "", "")
        if reply[1] == b"job":
            token, queue, raw = reply[2].decode(), reply[3].decode(), reply[4]
            outcome = run(queue, raw)
            pending = ("ok", token, "") if outcome is None else ("fail", token, record(queue, raw, *outcome))
            if outcome is not None and o.defect == "exits-after-failure":
                break
        elif reply[1] == b"expired":
            s.call("heartbeat", hb_keys, [wid, o.lease_ms, "register", utc("%Y-%m-%d %H:%M:%S +0000"), "1"])
        else:
            timeout = max(o.block_timeout_ms, 100) / 1000
            if o.defect != "beat-after-block":  # the block ends at the next beat (protocol.md 8.3)
                timeout = min(timeout, max(0.01, next_beat - time.monotonic()))
            while True:
                woke = r.blpop([k.control(wid)] + [k.wake(q) for q in order], timeout=timeout)
                if woke or o.defect != "reserve-only-on-wake" or stop:
                    break
                if time.monotonic() >= next_beat:
                    s.call("heartbeat", hb_keys, [wid, o.lease_ms, "beat", "", "1"])
                    next_beat = time.monotonic() + o.heartbeat_ms / 1000
    if pending[0] != "none":
        s.call(
            "work",
            k.work_keys(wid, []),
            [wid, *pending, utc("%Y/%m/%d %H:%M:%S UTC"), utc("%Y-%m-%dT%H:%M:%SZ"), 3, 16777216],
        )
    s.call(
        "unregister",
        k.unregister_keys(wid),
        [wid, "self", "", utc("%Y/%m/%d %H:%M:%S UTC"), 3, wid],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
