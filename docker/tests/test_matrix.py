"""The matrix across containers: a client container of each implementation enqueues jobwire.Echo
jobs on the queue of a worker container of each implementation; every job must be echoed by the
worker of its queue (the record's "impl" field) with the arguments it was given."""

from __future__ import annotations

import json
import os

from conftest import ECHO_KEY, IMPLS, RUN_ID, remove, run_container, wait_for

JOBS_PER_CELL = int(os.environ.get("JOBWIRE_CONTAINERS_JOBS", "2"))
EXTRA = {"k": [1.5, True, None]}


def start_worker(engine, images, impl: str, url: str):
    """A worker container of IMPL serving queue ct-IMPL (the image's own entrypoint)."""
    argv = {"python": ["worker", "--import", "jobwire.conformance_jobs"], "node": [], "c": []}[impl]
    return run_container(
        engine,
        images[impl],
        f"worker-{impl}",
        argv + ["--queues", f"ct-{impl}", "--redis-url", url],
        init=True,
        hostname=f"{RUN_ID}-{impl}",
        environment={"REDIS_URL": url},
    )


def enqueue(engine, images, impl: str, url: str, queue: str, *args: str) -> None:
    """One job from a client container of IMPL (each image's own enqueuer); raises if it exits non-zero."""
    image, entrypoint, argv = {
        "python": (images["python"], None, ["enqueue", "--redis-url", url]),
        "node": (images["node"], ["node"], ["enqueue.js", "--redis-url", url, "--"]),
        "c": (images["c"], ["jobwire-enqueue"], ["--redis-url", url]),
    }[impl]
    engine.containers.run(
        image,
        argv + [queue, "jobwire.Echo", *args],
        entrypoint=entrypoint,
        remove=True,
        network_mode="host",
        labels={"org.jobwire.containers": RUN_ID},
    )


def table(rows: list[dict]) -> tuple[str, int]:
    """The 3 x 3 table (PASS, or FAILk: k jobs echoed correctly) and the number of bad cells."""
    bad, lines = 0, ["enqueuer \\ worker   " + "".join(f"{w:>8}" for w in IMPLS)]
    for e in IMPLS:
        cells = []
        for w in IMPLS:
            ok = sorted(
                r["args"][1]
                for r in rows
                if r.get("queue") == f"ct-{w}"
                and r.get("impl") == w
                and r.get("args", [None])[0] == f"from-{e}-to-{w}"
                and r["args"][2:] == [EXTRA]
            )
            good = ok == list(range(1, JOBS_PER_CELL + 1))
            bad += not good
            cells.append("PASS" if good else f"FAIL{len(ok)}")
        lines.append(f"{e:<19}" + "".join(f"{c:>8}" for c in cells))
    return "\n".join(lines), bad


def test_matrix_across_containers(engine, images, redis_ctr):
    redis_ctr.r.flushall()
    workers = [start_worker(engine, images, impl, redis_ctr.url) for impl in IMPLS]
    try:
        for enq in IMPLS:
            for impl in IMPLS:
                for k in range(1, JOBS_PER_CELL + 1):
                    enqueue(
                        engine,
                        images,
                        enq,
                        redis_ctr.url,
                        f"ct-{impl}",
                        f'"from-{enq}-to-{impl}"',
                        str(k),
                        json.dumps(EXTRA),
                    )
        expect = len(IMPLS) ** 2 * JOBS_PER_CELL
        wait_for(lambda: redis_ctr.r.llen(ECHO_KEY) >= expect, 30, 0.2)
        rows = [json.loads(x) for x in redis_ctr.r.lrange(ECHO_KEY, 0, -1)]
        shown, bad = table(rows)
        print(shown)
        logs = "\n".join(f"-- {w.name}:\n{w.logs(tail=10).decode('utf-8', 'replace')}" for w in workers)
        assert bad == 0, f"the matrix across containers (FAILk: k of {JOBS_PER_CELL} jobs echoed):\n{shown}\n{logs}"
    finally:
        remove(*workers)
