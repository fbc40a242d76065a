"""The mutation harness: for every MUST test id, a mutation of a worker under which it fails.

A mutation is one rule of protocol.md broken on purpose, in one of three ways:
  lua     the Python reference worker loading a copy of spec/ whose Lua scripts break one rule
          (JOBWIRE_SPEC_DIR points the worker at the copy; the suite itself keeps the real scripts)
  patch   the Python reference worker with one function replaced (broken_workers/patched_reference.py)
  broken  the tiny worker broken_workers/base.py with one defect
  script  another entry script of broken_workers/ (e.g. a defect of the reference kept in its own file)
Each row names the ids that must fail under it; running a row runs only those ids (`--id`).

    python conformance/tests/mutations.py --unreached            MUST ids no row names (must be none)
    python conformance/tests/mutations.py --all --report reports/mutations.json
    python conformance/tests/mutations.py --mutation lua.fifo --mutation patch.no-pdeathsig

Exit status 1 when a named id did not fail under its mutation, or when an id is unreached.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BROKEN = HERE / "broken_workers"
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(BROKEN))

FEATURES = ["kill-running-job", "fork-per-job", "job-timeout", "delayed", "retries", "schedules", "quiet-idle"]


@dataclass(frozen=True)
class Mutation:
    name: str
    ids: tuple[str, ...]
    lua: tuple[tuple[str, str, str], ...] = ()  # (file in spec/lua, exact text, replacement)
    patch: str | None = None  # a defect of patched_reference.py
    broken: str | None = None  # a defect of base.py
    script: str | None = None  # a file in broken_workers/, run as --worker-cmd with worker_args appended
    features: tuple[str, ...] = tuple(FEATURES)  # claimed for patch and script rows
    worker_args: tuple[str, ...] = ()  # extra `jobwire worker` flags (patch), or the script's arguments
    mode: str = "fork"
    why: str = ""


def lua(name, file, old, new, ids, why, patch=None):
    return Mutation(f"lua.{name}", tuple(ids), ((file, old, new),), patch=patch, why=why)


def patch(name, ids, why="", **kw):
    return Mutation(f"patch.{name}", tuple(ids), patch=name, why=why, **kw)


def broken(name, ids, why=""):
    return Mutation(f"broken.{name}", tuple(ids), broken=name, mode="inline", why=why)


def script(file, ids, why="", **kw):
    """A row for an entry script of broken_workers/: script("sched_poll_only.py", [...], mode="fork")."""
    return Mutation(f"script.{file.removesuffix('.py')}", tuple(ids), script=file, why=why, **kw)


W, H, U = "work.lua", "heartbeat.lua", "unregister.lua"
P, RT, F = "promote.lua", "retry.lua", "fire.lua"
RFC = [f"payload.invalid.rfc8259.{n}" for n in ("nan", "infinity", "hex", "plus", "leading-zero", "trailing-dot")]
ROUNDTRIP = [
    c["id"]
    for c in json.loads((HERE.parent / "vectors/v1/args-roundtrip.json").read_text())["cases"]
    if c["level"] == "MUST"
]

MUTATIONS = [
    # -- work.lua --------------------------------------------------------------------------------
    lua(
        "fifo",
        W,
        "redis.call('LPOP', queue_key)",
        "redis.call('RPOP', queue_key)",
        ["queue.fifo"],
        "reserve takes the newest job",
    ),
    lua(
        "reverse-priority",
        W,
        "for i = 1, nqueues do",
        "for i = nqueues, 1, -1 do",
        ["queue.priority.strict", "queue.wildcard.alphabetical"],
        "reserve scans the queues lowest priority first",
    ),
    lua(
        "crash-poisons-at-once",
        W,
        "if deaths >= max_deaths then",
        "if deaths >= 1 then",
        ["recovery.child-crash.requeued"],
        "a job whose child died once is failed as a poison job instead of going back to its queue",
    ),
    lua(
        "unrunnable-embedded-raw",
        W,
        "elseif exception ~= 'jobwire.InvalidPayload' or not string.find(raw, '^%s*{') then",
        "elseif false then",
        [
            "payload.invalid.json",
            "payload.invalid.not-object",
            "payload.size.too-large",
            "payload.size.multi-mib-too-large",
        ],
        "failure records embed unrunnable payloads verbatim, not as a JSON string",
    ),
    lua(
        "no-class-check",
        W,
        "if type(doc['class']) ~= 'string' or doc['class'] == '' then",
        "if false then",
        ["payload.invalid.no-class"],
        "a payload without class is handed out (and the worker skips the schema)",
        patch="no-schema-validation",
    ),
    lua(
        "invalid-not-counted",
        W,
        "      count(true)\n      skipped = skipped + 1",
        "      skipped = skipped + 1",
        ["stats.failed.invalid"],
        "unrunnable payloads are failed without counting",
    ),
    lua(
        "limit-inclusive",
        W,
        "if #raw > max_bytes then",
        "if #raw >= max_bytes then",
        ["payload.size.at-limit"],
        "a payload of exactly the limit is too large",
    ),
    lua(
        "limit-3mib",
        W,
        "local max_deaths, max_bytes = tonumber(ARGV[7]), tonumber(ARGV[8])",
        "local max_deaths, max_bytes = tonumber(ARGV[7]), math.min(tonumber(ARGV[8]), 3145728)",
        ["payload.size.multi-mib"],
        "the payload limit is capped at 3 MiB",
    ),
    lua(
        "working-on-reencoded",
        W,
        "jstr(ARGV[6]) .. ',\"payload\":' .. raw",
        "jstr(ARGV[6]) .. ',\"payload\":' .. cjson.encode(doc)",
        ["record.working-on"],
        "the working-on record re-encodes the payload",
    ),
    lua(
        "inflight-reencoded",
        W,
        "'queue', queue, 'payload', raw, 'token', token,",
        "'queue', queue, 'payload', cjson.encode(doc), 'token', token,",
        ["record.inflight", "worker.signal.term", "worker.signal.int"],
        "the in-flight hash re-encodes the payload (a job given back changes)",
    ),
    lua(
        "record-kept",
        W,
        "    redis.call('DEL', KEYS[1], KEYS[2])",
        "    redis.call('DEL', KEYS[2])",
        ["record.working-on.cleared"],
        "settling leaves the working-on record",
    ),
    lua(
        "processed-ok-only",
        W,
        "  redis.call('INCRBY', KEYS[3], 1)\n",
        "  if not failed then redis.call('INCRBY', KEYS[3], 1) end\n",
        ["stats.processed.counts-all"],
        "stat:processed leaves failures out",
    ),
    lua(
        "failed-counts-all",
        W,
        "  if failed then\n    redis.call('INCRBY', KEYS[5], 1)",
        "  redis.call('INCRBY', KEYS[5], 1)\n  if failed then",
        ["stats.failed.counts-failures"],
        "stat:failed counts every job",
    ),
    lua(
        "no-per-worker-stats",
        W,
        "  redis.call('INCRBY', KEYS[4], 1)\n",
        "",
        ["stats.per-worker"],
        "stat:processed:<id> is never counted",
    ),
    lua(
        "minutes-renamed",
        W,
        "'processed:' .. minute, 1) == 1 then",
        "'processed-' .. minute, 1) == 1 then",
        ["stats.minutes"],
        "the per-minute field is misnamed",
    ),
    lua(
        "pause-all-ignored",
        W,
        "if pause and string.lower(string.match(pause, '^%s*(.-)%s*$')) == 'true' then",
        "if false then",
        ["queue.pause-all"],
        "<ns>:pause-all-workers is ignored",
    ),
    lua(
        "poison-misnamed",
        W,
        '\',"exception":"jobwire.PoisonJob","error":\' ..\n          jstr(\'job killed its worker \'',
        '\',"exception":"jobwire.Poison","error":\' ..\n          jstr(\'job killed its worker \'',
        ["recovery.poison.crash"],
        "the poison record names another exception",
    ),
    lua(
        "poison-requeued",
        W,
        "        count(true)\n        settled = 'poisoned'",
        "        count(true)\n        redis.call('LPUSH', KEYS[12], payload)\n        settled = 'poisoned'",
        ["recovery.poison.not-retried"],
        "a poisoned job is also pushed back",
    ),
    lua(
        "no-pass-over-rearm",
        W,
        "        if redis.call('LLEN', KEYS[13 + j]) > 0 and redis.call('EXISTS', KEYS[13 + nqueues + j]) == 0 then",
        "        if false then",
        ["worker.block.wake-passed-on"],
        "the marker of a lower-priority queue passed over is not re-armed",
    ),
    lua(
        "decode-error-misnamed",
        W,
        "    return 'jobwire.InvalidJSON', 'payload is not valid JSON: ' .. tostring(doc)",
        "    return 'jobwire.InvalidPayload', 'payload is not valid JSON: ' .. tostring(doc)",
        ["payload.json.lone-surrogate", "payload.invalid.json"],
        "what cjson rejects is failed as InvalidPayload",
    ),
    lua(
        "no-stale-check",
        W,
        "  if held[1] ~= held_token then",
        "  if false then",
        ["recovery.stalled-worker.stale-settle"],
        "a settle with a token no longer held still counts",
    ),
    # -- heartbeat.lua ---------------------------------------------------------------------------
    lua(
        "no-workers-member",
        H,
        "  redis.call('SADD', KEYS[1], id)\n",
        "",
        ["worker.register.workers-set"],
        "registration leaves <ns>:workers alone",
    ),
    lua(
        "started-format",
        H,
        "  redis.call('SET', KEYS[4], ARGV[4])",
        "  redis.call('SET', KEYS[4], ARGV[4] .. ' UTC')",
        ["worker.register.started"],
        "the started value has another format",
    ),
    lua(
        "heartbeat-format",
        H,
        "'%04d-%02d-%02dT%02d:%02d:%02d+00:00'",
        "'%04d-%02d-%02d %02d:%02d:%02d'",
        ["worker.register.heartbeat-value"],
        "the heartbeat value is not ISO 8601",
    ),
    lua(
        "no-info",
        H,
        "    redis.call('HSET', KEYS[5], unpack(ARGV, 6))",
        "    redis.call('HSET', KEYS[5], 'impl', 'x')",
        ["worker.register.info"],
        "the worker info hash is not written",
    ),
    lua(
        "no-meta",
        H,
        "  redis.call('HSETNX', KEYS[6], 'spec_major', ARGV[5])\n",
        "",
        ["worker.register.meta"],
        "spec_major is not recorded",
    ),
    lua(
        "no-spec-check",
        H,
        "  if major and major ~= ARGV[5] then",
        "  if false then",
        ["worker.register.spec-mismatch"],
        "another spec major is accepted",
    ),
    lua(
        "lease-lapsed",
        H,
        "redis.call('ZADD', KEYS[3], now_ms + lease_ms, id)",
        "redis.call('ZADD', KEYS[3], now_ms - 1, id)",
        ["worker.register.lease"],
        "the lease ends before it starts",
    ),
    Mutation(
        "lua.no-expired-peers",
        (
            "recovery.expired-peer",
            "recovery.sigkill.exactly-once",
            "recovery.sigkill.dead-worker-removed",
            "recovery.stalled-worker.reregisters",
        ),
        (
            (H, "  if other ~= id and #result <= 10 then", "  if false then"),
            (H, "        if #expired < 10 then expired[#expired + 1] = w end", "        if false then end"),
        ),
        why="a beat (mode beat or renew) never lists lapsed peers: nobody is recovered",
    ),
    # -- unregister.lua --------------------------------------------------------------------------
    lua(
        "member-kept",
        U,
        "redis.call('SREM', KEYS[2], id)",
        "",
        ["worker.unregister.quit", "worker.signal.quit"],
        "leaving keeps the id in <ns>:workers",
    ),
    lua(
        "requeue-at-tail",
        U,
        "    redis.call('LPUSH', KEYS[16], payload)",
        "    redis.call('RPUSH', KEYS[16], payload)",
        ["worker.signal.term", "worker.signal.int"],
        "a job given back goes to the tail of its queue",
    ),
    lua(
        "recoverer-unnamed",
        U,
        "' was recovered as dead by ' .. ARGV[6]",
        "' was recovered as dead'",
        ["recovery.expired-peer.poison", "worker.register.recovers-predecessor"],
        "the poison record does not name who recovered the job",
    ),
    lua(
        "no-death-on-recovery",
        U,
        "    deaths = redis.call('HINCRBY', KEYS[11], job_key, 1)",
        "    deaths = 0",
        ["recovery.expired-peer.poison", "worker.register.recovers-predecessor"],
        "recovery counts no death: a job that kills its worker is handed out forever",
    ),
    lua(
        "global-stats-dropped",
        U,
        "redis.call('DEL', KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10])",
        "redis.call('DEL', KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[13])",
        ["stats.global-survive-unregister"],
        "leaving deletes stat:processed",
    ),
    # -- promote.lua (protocol 1.1) ---------------------------------------------------------------
    lua(
        "promote-early",
        P,
        "redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_s, 'LIMIT', 0, 1)",
        "redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '+inf', 'LIMIT', 0, 1)",
        ["delayed.promote.on-time", "delayed.promote.wake-earlier"],
        "promotion ignores the due time",
    ),
    lua(
        "timestamps-kept",
        P,
        "      redis.pcall('SREM', prefix .. 'timestamps:' .. raw, 'delayed:' .. ts)\n",
        "",
        ["delayed.promote.cleans-up"],
        "a promoted item stays in its timestamps: set",
    ),
    lua(
        "promote-needs-id",
        P,
        "if type(doc['class']) ~= 'string' or doc['class'] == '' then return 'item has no",
        "if type(doc['class']) ~= 'string' or doc['class'] == '' or doc['id'] == nil then return 'item has no",
        ["delayed.promote.peer-items"],
        "an item without an id (resque-scheduler's, node-resque's) is failed",
    ),
    lua(
        "malformed-dropped",
        P,
        "        redis.call('RPUSH', KEYS[4], item_failure_record(raw, 'delayed ' .. problem, q))\n",
        "",
        ["delayed.promote.malformed"],
        "a malformed delayed item is dropped instead of failed",
    ),
    # -- retry.lua -------------------------------------------------------------------------------
    lua(
        "retry-no-history",
        RT,
        "local payload = add_attempt(held[2], ARGV[4])",
        "local payload = held[2]",
        ["retry.attempts.exhausted", "retry.history.entries"],
        "the attempt entry is not appended: retried forever",
    ),
    lua(
        "retry-no-delay",
        RT,
        "local due_ms = now_ms + tonumber(ARGV[3])",
        "local due_ms = now_ms",
        ["retry.delay.observed", "retry.delay.formula"],
        "a retry falls due at once, whatever its delay",
    ),
    lua(
        "attempts-first",
        RT,
        "  return string.sub(payload, 1, last - 1) .. ',\"attempts\":[' .. entry .. ']' .. string.sub(payload, last)",
        "  return '{\"attempts\":[' .. entry .. '],' .. string.sub(payload, string.find(payload, '{') + 1)",
        ["retry.payload.bytes-kept"],
        "a new attempts member goes first, so the payload's bytes move",
    ),
    # -- fire.lua --------------------------------------------------------------------------------
    lua(
        "fired-not-counted",
        F,
        "  redis.call('HINCRBY', KEYS[2], 'fired', 1)\n",
        "",
        ["schedule.fire.counters"],
        "the schedule hash never counts fired",
    ),
    lua(
        "fire-not-advanced",
        F,
        "redis.call('ZADD', KEYS[1], ARGV[5], name)",
        "redis.call('ZADD', KEYS[1], ARGV[2], name)",
        ["schedule.cron.next", "schedule.missed.counted"],
        "firing leaves the next fire time where it was",
    ),
    lua(
        "missed-not-counted",
        F,
        "  redis.call('HINCRBY', KEYS[2], 'missed', missed)\n",
        "",
        ["schedule.missed.counted"],
        "missed fire times are not counted",
    ),
    lua(
        "broken-not-recorded",
        F,
        "  redis.call('HSET', KEYS[2], 'error', ARGV[9], 'error_ms', string.format('%d', now_ms))\n",
        "",
        ["schedule.broken.reported"],
        "a broken schedule is parked without its error",
    ),
    # -- the Python reference with one defect -----------------------------------------------------
    patch("echo-mangles-args", ROUNDTRIP, "jobwire.Echo changes every argument"),
    patch(
        "ints-through-double",
        [
            "payload.args.roundtrip.int64.max",
            "payload.args.roundtrip.int64.min",
            "payload.args.roundtrip.int.beyond-double",
        ],
        "integers decoded as doubles",
    ),
    patch("echo-wrong-worker", ["conformance.echo.record"], "the echo record names another worker"),
    patch(
        "none",
        ["worker.fork.child-per-job"],
        "runs jobs in the master while claiming fork-per-job",
        worker_args=("--no-fork",),
        mode="inline",
    ),
    patch(
        "child-runs-two-jobs",
        ["worker.fork.child-per-job"],
        "each child runs two jobs (a reused child or standby): pids repeat, none is the master's",
    ),
    patch(
        "no-quiet-look", ["worker.idle.quiet-cost"], "an idle worker calls work.lua and promote.lua after every block"
    ),
    patch(
        "idle-beats-ignore-lapse",
        ["recovery.quiet-idle.next-lapse"],
        "idle beats ignore the next lapse: a peer lapsing between two is recovered a period late",
    ),
    patch(
        "drop-without-shutdown",
        ["worker.signal.control-after-interrupt"],
        "a connection dropped after a signal stays open in the standby child: its BLPOP eats the next command",
    ),
    patch(
        "failure-record-embeds-object", RFC + ["payload.json.rfc8259-only"], "the Python failure-record bug of issue 11"
    ),
    patch(
        "no-schema-validation",
        [
            "payload.invalid.args-not-array",
            "payload.invalid.class-too-long",
            "payload.invalid.id-too-long",
            "payload.invalid.enqueued-at",
        ],
        "payloads job.schema.json rejects are run",
    ),
    patch(
        "unknown-class-message",
        ["payload.invalid.unknown-class", "payload.invalid.unknown-class.escaped"],
        "UnknownClass with another message",
    ),
    patch("rejects-huge-exponent", ["payload.json.huge-exponent"], "1e400 failed as InvalidJSON"),
    patch("record-ascii-escapes", ["failure.record.string-escaping"], "record strings escape non-ASCII"),
    patch("fail-message-str", ["conformance.fail.non-string"], "jobwire.Fail's message is str(), not JSON"),
    patch("sleep-int-only", ["conformance.sleep.float"], "jobwire.Sleep rejects a float"),
    patch(
        "wildcard-sorts-all",
        ["queue.wildcard.explicit-first", "queue.wildcard.explicit-last"],
        "the named queue loses its place next to *",
    ),
    patch(
        "ignores-peers-at-register",
        ["recovery.expired-peer.at-register"],
        "peers listed at register wait for the first beat",
    ),
    patch(
        "accepts-bad-options",
        ["worker.options.lease-too-short", "worker.options.bad-queues"],
        "bad options are accepted",
    ),
    patch(
        "accepts-cluster-database",
        ["worker.options.cluster-database"],
        "a cluster URL naming database 3 is not refused before connecting",
    ),
    patch("usage-text-on-error", ["worker.options.usage-one-line"], "bad usage prints the usage text too"),
    patch("pause-shown-after-job", ["worker.signal.pause-while-busy"], "state shows paused only after the job"),
    patch("cont-ignored", ["worker.signal.cont-after-stop-resumes"], "SIGCONT does not resume"),
    patch("dies-on-invalid-json", ["payload.invalid.worker-survives"] + RFC, "exits on a payload it cannot parse"),
    patch("exit-on-redis-error", ["redis.restart", "redis.outage"], "exits when Redis goes away"),
    patch("no-pdeathsig", ["recovery.sigkill.no-orphan"], "the child outlives a SIGKILLed master"),
    patch("crash-reason-vague", ["recovery.poison.crash-reason"], "the crash reason names no signal"),
    patch("wildcard-drops-last", ["queue.wildcard.all"], "a * worker misses a queue"),
    patch("wildcard-no-reread", ["queue.wildcard.new-queue"], "a * worker never re-reads <ns>:queues"),
    patch("wildcard-keeps-invalid", ["queue.wildcard.skips-invalid-names"], "a * worker takes invalid names"),
    patch(
        "block-ignores-wake",
        ["worker.block.wake", "worker.idle.latency"],
        "an idle worker blocks on its control list only: a job waits for the next beat",
    ),
    patch("quit-as-term", ["worker.signal.quit"], "SIGQUIT gives the job back"),
    patch("term-as-quit", ["worker.signal.term"], "SIGTERM waits for the job"),
    patch("int-ignored", ["worker.signal.int"], "SIGINT is ignored"),
    patch("usr2-ignored", ["worker.signal.pause-resume"], "SIGUSR2 does not pause"),
    patch("usr1-ignored", ["worker.signal.usr1-kill"], "SIGUSR1 does not kill the job"),
    patch("pause-command-ignored", ["control.pause-resume"], "the pause command is ignored"),
    patch("quit-command-ignored", ["control.quit"], "the quit command is ignored"),
    patch("unknown-command-quits", ["control.unknown-ignored"], "an unknown command stops the worker"),
    patch("kill-ignores-token", ["control.kill-token"], "kill <other token> kills the job"),
    patch("bare-kill-ignored", ["control.kill"], "a bare kill is ignored"),
    patch("job-timeout-ignored", ["worker.job-timeout"], "--job-timeout-ms is never enforced"),
    patch(
        "id-reversed-queues",
        ["worker.register.id-format", "worker.id.wildcard-list"],
        "the id lists the queues in another order",
    ),
    patch(
        "no-predecessor-recovery",
        ["worker.register.recovers-predecessor"],
        "a dead predecessor's job under the worker's own id is handed out again",
    ),
    patch(
        "ignores-unknown-beat",
        ["worker.heartbeat.unknown-reregisters"],
        "a beat answered 'unknown' is ignored; work.lua's 'expired' makes it register only after the job",
    ),
    patch(
        "never-reregisters",
        ["recovery.stalled-worker.reregisters", "worker.heartbeat.unknown-reregisters"],
        "told 'unknown' or 'expired', the worker never registers again",
    ),
    patch("title-without-state", ["worker.process-title"], "a SHOULD, proved too: the title shows no state"),
    patch("no-promote-while-busy", ["delayed.promote.while-busy"], "the beats during a job promote nothing"),
    patch("retry-false-ignored", ["retry.policy.opt-out"], "retry false and max_attempts 1 get the default policy"),
    patch("default-retry-ignored", ["retry.policy.default"], "--default-retry is never applied"),
    patch(
        "retries-protocol-failures",
        ["retry.policy.not-for-protocol-failures"],
        "an unknown class is retried under the default policy (5 attempts, 1 s doubling)",
    ),
    patch("retry-also-fails", ["retry.success-after-retry"], "a retried attempt also leaves a failure record"),
    patch("fire-payload-sorted", ["schedule.fire.payload"], "a fire's payload members are sorted"),
    script("sched_poll_only.py", ["delayed.promote.wake-earlier"], "promotes only when it beats"),
    script("sched_random_jitter.py", ["retry.delay.formula"], "the jitter comes from a random generator"),
    script(
        "sched_ignores_attempts.py",
        ["retry.attempts.exhausted", "retry.history.entries"],
        "every failed attempt counts as the first",
    ),
    script("sched_racy_fire.py", ["schedule.fire.exactly-once"], "fires with RPUSH + ZADD, not fire.lua"),
    script("sched_racy_promote.py", ["delayed.promote.exactly-once"], "promotes with LRANGE + RPUSH + DEL"),
    # -- the tiny broken worker ------------------------------------------------------------------
    broken("pop-without-record", ["recovery.sigkill.exactly-once"], "LPOP with nothing recorded"),
    broken(
        "wrong-failure-format",
        ["failure.record.key-order", "payload.extra-fields.preserved", "payload.whitespace.preserved"],
        "the failure record re-encodes and sorts",
    ),
    broken("ignores-priority", ["queue.priority.strict"], "queues in reverse order"),
    script(
        "deaf_when_idle.py",
        ["worker.idle.quiet"],
        "the blocking read gives up with the block: a dropped connection and a warning every block timeout (issue 13)",
        mode="inline",
        features=(),
        worker_args=("worker", "--import", "jobwire.conformance_jobs", "--no-fork"),
    ),
    script(
        "blocks_through_signals.py",
        ["worker.signal.prompt-while-blocked"],
        "a signal is noticed only when the BLPOP returns",
        mode="inline",
        features=(),
    ),
    broken(
        "beat-after-block",
        ["worker.heartbeat.advances", "worker.block.beat-bounded"],
        "an idle worker beats only between whole block timeouts",
    ),
    broken("no-beat-while-busy", ["worker.heartbeat.while-busy"], "no beat while a job runs"),
    broken("reserve-only-on-wake", ["worker.block.plain-resque-client"], "queues are read only after a wake marker"),
    broken("echo-omits-null-id", ["resque.payload.ruby"], "an id-less job's echo has no id"),
    broken("record-no-queue", ["failure.record.schema"], "the record has no queue"),
    broken("record-backtrace-string", ["failure.record.backtrace", "failure.record.schema"], "backtrace is a string"),
    broken("record-iso-failed-at", ["failure.record.failed-at"], "failed_at in ISO 8601"),
    broken("record-error-trimmed", ["failure.record.error-exact"], "the error keeps only its first line"),
    broken("record-exception-protocol-name", ["failure.record.exception"], "a job error named jobwire.*"),
    broken("record-worker-host-pid", ["failure.record.worker-queue"], "worker is host:pid"),
    broken("exits-after-failure", ["failure.worker-survives"], "the worker exits after a failed job"),
]

# The CI sample: one of each kind, every row aimed at issue 11's tests, and two cheap protocol 1.1 rows
# (about 2 minutes).
SAMPLE = [
    "lua.fifo",
    "lua.no-death-on-recovery",
    "lua.no-expired-peers",
    "patch.failure-record-embeds-object",
    "patch.ignores-unknown-beat",
    "patch.no-predecessor-recovery",
    "patch.no-pdeathsig",
    "broken.beat-after-block",
    "broken.reserve-only-on-wake",
    "broken.echo-omits-null-id",
    "lua.attempts-first",
    "script.sched_random_jitter",
    "patch.drop-without-shutdown",
    "patch.child-runs-two-jobs",
    "patch.no-quiet-look",
    "patch.idle-beats-ignore-lapse",
    "lua.crash-poisons-at-once",
]


def must_ids() -> list[str]:
    """Every MUST id of the suite (a feature's tests are MUST for an implementation claiming it)."""
    from jobwire_conformance import runner  # noqa: F401 - registers the groups
    from jobwire_conformance.core import all_tests

    return [t.id for t in all_tests() if t.level == "MUST"]


def unreached() -> list[str]:
    named = {i for m in MUTATIONS for i in m.ids}
    return [i for i in must_ids() if i not in named]


def by_name(name: str) -> Mutation:
    return next(m for m in MUTATIONS if m.name == name)


def mutated_spec(m: Mutation, into: Path) -> Path:
    """A copy of spec/ with the mutation's Lua edits; each edit must match exactly once."""
    spec = into / "spec"
    shutil.copytree(REPO / "spec", spec)
    for file, old, new in m.lua:
        path = spec / "lua" / file
        text = path.read_text()
        if text.count(old) != 1:
            raise ValueError(f"{m.name}: {old!r} occurs {text.count(old)} times in spec/lua/{file}")
        path.write_text(text.replace(old, new))
    return spec


def command(m: Mutation, report: Path) -> list[str]:
    """The jobwire-conformance command line that runs exactly the mutation's ids."""
    cmd = [
        sys.executable,
        "-m",
        "jobwire_conformance.cli",
        "--json",
        str(report),
        "-q",
        "--no-figures",
        "--no-build",
        "--jobs",
        "4",
    ]
    if m.broken:
        cmd += ["--worker-cmd", f"{sys.executable} {BROKEN / 'base.py'} --defect {m.broken}", "--mode", "inline"]
    elif m.patch or m.script:
        if m.patch:
            argv = [
                str(BROKEN / "patched_reference.py"),
                m.patch,
                "worker",
                "--import",
                "jobwire.conformance_jobs",
                *m.worker_args,
            ]
        else:
            argv = [str(BROKEN / m.script), *m.worker_args]
        cmd += ["--worker-cmd", " ".join([sys.executable, *argv]), "--mode", m.mode]
        if m.patch:
            cmd += ["--impl-name", "python"]
        for f in m.features:
            cmd += ["--feature", f]
    else:
        cmd += ["--impl", "python"]
    for test_id in m.ids:
        cmd += ["--id", test_id]
    return cmd


def run(m: Mutation) -> dict:
    """Run the mutation's ids against the mutated worker: {name, ok, duration_s, statuses, messages}."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jobwire-mutation-") as tmp:
        env = dict(os.environ)
        if m.lua:
            env["JOBWIRE_SPEC_DIR"] = str(mutated_spec(m, Path(tmp)))
        env.pop("CI", None)  # the mutated run fails on purpose; CI's no-skip rule is checked below
        report = Path(tmp) / "report.json"
        done = subprocess.run(command(m, report), cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        results, have_report = {}, report.exists()
        if have_report:
            data = json.loads(report.read_text())
            results = {r["id"]: r for impl in data["implementations"].values() for r in impl["results"]}
    statuses = {i: results.get(i, {}).get("status", "missing") for i in m.ids}
    return {
        "name": m.name,
        "why": m.why,
        "ok": all(s == "fail" for s in statuses.values()),
        "exit_status": done.returncode,
        "duration_s": round(time.monotonic() - t0, 1),
        "statuses": statuses,
        "messages": {i: (results.get(i, {}).get("message") or "")[:300] for i in m.ids if statuses[i] != "fail"},
        "output": "" if have_report else (done.stdout + done.stderr)[-1500:],
    }


def run_many(mutations: list[Mutation], jobs: int) -> list[dict]:
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(run, mutations))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--all", action="store_true", help="run every mutation")
    p.add_argument("--sample", action="store_true", help="run the CI sample")
    p.add_argument("--mutation", action="append", default=[], help="run this mutation (repeatable)")
    p.add_argument("--unreached", action="store_true", help="list the MUST ids no mutation names, and exit")
    p.add_argument("--list", action="store_true", help="list the mutations and exit")
    p.add_argument("--report", help="write a JSON report here")
    p.add_argument("--jobs", "-j", type=int, default=2, help="mutations run at once (default 2)")
    o = p.parse_args(argv)
    missing = unreached()
    if o.list:
        for m in MUTATIONS:
            print(f"{m.name}\t{', '.join(m.ids)}\t{m.why}")
        return 0
    if o.unreached:
        print("\n".join(missing) if missing else "every MUST id is named by a mutation")
        return 1 if missing else 0
    chosen = MUTATIONS if o.all else [by_name(n) for n in (SAMPLE if o.sample else o.mutation)]
    t0 = time.monotonic()
    results = run_many(chosen, o.jobs)
    failed = [r for r in results if not r["ok"]]
    for r in results:
        print(
            f"{'ok  ' if r['ok'] else 'MISS'} {r['name']} ({r['duration_s']} s): "
            + ", ".join(f"{i}={s}" for i, s in r["statuses"].items())
        )
        for i, msg in r["messages"].items():
            print(f"       {i}: {msg}")
        if r["output"]:
            print("       " + r["output"].replace("\n", "\n       "))
    proven = {i for r in results if r["ok"] for i in r["statuses"]}
    not_proven = [i for i in must_ids() if i not in proven] if o.all else []
    summary = {
        "mutations": len(MUTATIONS),
        "ran": len(results),
        "must_ids": len(must_ids()),
        "unreached": missing,
        "not_proven_by_this_run": not_proven,
        "missed": [r["name"] for r in failed],
        "duration_s": round(time.monotonic() - t0, 1),
        "results": results,
    }
    if o.report:
        Path(o.report).parent.mkdir(parents=True, exist_ok=True)
        Path(o.report).write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"{len(results)} mutations in {summary['duration_s']} s; {len(failed)} missed; "
        f"unreached MUST ids: {missing or 'none'}" + (f"; not proven by this run: {not_proven}" if o.all else "")
    )
    return 1 if failed or missing or not_proven else 0


if __name__ == "__main__":
    sys.exit(main())
