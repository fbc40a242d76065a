"""Where enqueue-to-start time goes, hop by hop, for one worker of bench/run.py (jobwire's rows).

    .venv/bin/python bench/hops.py "jobwire python fork" [--probes 300] [--json FILE]

bench/run.py's p50/p99 is one number from just before the enqueue call to the moment the probe
job's own RPUSH is seen. This splits it with Redis MONITOR, which stamps every command as it
arrives (commands run inside Lua scripts are left out), on the same clock as time.time() here:

  send     harness calls enqueue -> its EVALSHA arrives at Redis   (client and loopback)
  wake     enqueue arrives -> the worker's next command arrives     (BLPOP reply, the worker's loop,
                                                                     its reserve call)
  start    reserve arrives -> the job's RPUSH arrives               (reply, hand-off to the child or
                                                                     handler, the job's connection)
  see      the job's RPUSH arrives -> the harness's BLPOP returns

MONITOR (read by a redis-cli process) costs Redis some time per command, so the totals run a
little above run.py's; compare the hops with each other. Each hop's p50 / p99 / max in ms is printed (and written as JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import subprocess
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (bench/run.py: the systems, their filling, spawning and stopping)

from jobwire_conformance.redisutil import RedisServer  # noqa: E402

import jobwire  # noqa: E402

HOPS = ("send", "wake", "start", "see", "total")


def parse_monitor(path: Path) -> list:
    """(time, client port, command, args) for each command in redis-cli's MONITOR output, those
    run inside Lua scripts left out. A line: 1764403200.123456 [0 127.0.0.1:5555] "RPUSH" "k" "v"."""
    events = []
    for line in path.read_text(errors="replace").splitlines():
        stamp, _, rest = line.partition(" [")
        where, _, command = rest.partition("] ")
        if not command or where.endswith(" lua"):
            continue
        words = [w.strip('"') for w in command.split(" ")]
        events.append((float(stamp), where.rsplit(":", 1)[-1], words[0].upper(), words[1:]))
    return events


def probe_hops(name: str, probes: int) -> dict:
    system = next(s for s in run.systems() if s.name == name)
    if system.family != "jobwire":
        raise SystemExit("bench/hops.py times jobwire's workers (their probe job is jobwire.Echo)")
    with RedisServer() as server:
        r = redis.Redis.from_url(server.url)
        run.fill(system, server.url, 20)
        proc = run.spawn(system, server.url)
        try:
            run.blpop(r, proc, system, 60)
            run.blpop(r, proc, system, 60)
            # redis-cli, not a thread here: parsing MONITOR in this process would slow the probes
            log = Path(tempfile.mkstemp(prefix="jobwire-hops-", suffix=".log")[1])
            with log.open("wb") as out:
                monitor = subprocess.Popen(["redis-cli", "-u", server.url, "monitor"], stdout=out)
            time.sleep(0.3)
            client = jobwire.Client(server.url)
            client.enqueue("warm", "jobwire.Noop")  # the client's connection and script, made before timing
            info = client.redis.execute_command("CLIENT", "INFO").decode()  # the one pooled connection
            harness_port = next(w for w in info.split() if w.startswith("addr=")).rsplit(":", 1)[1]
            marks = []
            for _ in range(probes):
                time.sleep(0.015)
                begin = time.time()
                client.enqueue("bench", "jobwire.Echo")
                r.blpop(run.JOBWIRE_ECHO, timeout=10)
                marks.append((begin, time.time()))
            time.sleep(0.2)
            monitor.terminate()
            monitor.wait(5)
        finally:
            run.stop(proc)
    events = parse_monitor(log)
    log.unlink()
    return split(events, marks, harness_port)


def split(events: list, marks: list, harness_port: str) -> dict:
    """Each probe's hops from the MONITOR stream between its begin and end."""
    hops: dict[str, list[float]] = {h: [] for h in HOPS}
    for begin, end in marks:
        window = [e for e in events if begin - 0.001 <= e[0] <= end]
        enq = next((e for e in window if e[2] == "EVALSHA" and e[1] == harness_port), None)
        if enq is None:
            continue
        after = [e for e in window if e[0] >= enq[0] and e[1] != harness_port]
        reserve = next((e for e in after if e[2] in ("EVALSHA", "EVAL")), None)
        write = next((e for e in after if e[2] == "RPUSH" and run.JOBWIRE_ECHO in " ".join(e[3])), None)
        if reserve is None or write is None:
            continue
        for hop, ms in zip(
            HOPS,
            (enq[0] - begin, reserve[0] - enq[0], write[0] - reserve[0], end - write[0], end - begin),
            strict=True,
        ):
            hops[hop].append(ms * 1000)
    return {hop: summary(values) for hop, values in hops.items()}


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(run.pct(values, 50), 3),
        "p99": round(run.pct(values, 99), 3),
        "max": round(max(values), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("worker", help="a jobwire row of bench/run.py, e.g. 'jobwire python fork'")
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    opts = parser.parse_args()
    figures = probe_hops(opts.worker, opts.probes)
    print(f"{opts.worker}: {opts.probes} probes, ms")
    for hop, f in figures.items():
        if f["n"]:
            print(f"  {hop:<6} p50 {f['p50']:7.3f}  p99 {f['p99']:7.3f}  max {f['max']:7.3f}  (n {f['n']})")
    if opts.json:
        opts.json.write_text(json.dumps({"worker": opts.worker, "hops_ms": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
