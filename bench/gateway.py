"""A gateway-hosted worker next to the Node Redis-native one, on one private Redis, in one run.

    .venv/bin/python bench/gateway.py [--quick]      (also run by `make bench`)

Every row runs the same no-op jobs with one Node worker process at concurrency 1 or 8, measured by
bench/redis_rows.py's functions (jobs/s from the first reserve to the last `stat:processed`;
enqueue-to-reserve and enqueue-to-done latency of an idle worker). The gateway row adds one
`jobwire gateway` process on loopback between the worker and Redis. Prints a table and writes
bench/gateway-results.json. Ratios of one run, not promises.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import redis_rows as base  # noqa: E402  (the Redis-native rows' functions)

from jobwire_conformance.redisutil import RedisServer, free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ROWS = ("node c1", "node gateway c1", "node c8", "node gateway c8")


def start_gateway(url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(base.BIN / "jobwire"), "gateway", "--listen", f"127.0.0.1:{port}", "--redis-url", url, "--conformance"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"127.0.0.1:{port}"
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the gateway did not start")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    opts = parser.parse_args()
    scale = 0.1 if opts.quick else 1.0
    server = RedisServer().start()
    gateway, address = start_gateway(server.url)
    thin = str(REPO / "examples-node/gateway-worker.js")
    base.WORKERS["node gateway c1"] = lambda q: ["node", thin, "--gateway", address, "--queues", q]
    base.WORKERS["node gateway c8"] = lambda q: [
        "node",
        thin,
        "--gateway",
        address,
        "--queues",
        q,
        "--concurrency",
        "8",
    ]
    results = {}
    try:
        for name in ROWS:
            row = base.bench_processing(server.url, name, int(20000 * scale))
            row.update(base.bench_latency(server.url, name, int(500 * scale) or 20))
            results[name] = row
        results["gateway_rss_mib"] = rss_mib(gateway.pid)
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(15)
        server.close()
    print(
        f"\n{'worker (no-op jobs)':<20}{'jobs/s':>10}{'cmds/job':>10}{'reserve p50/p99 ms':>22}{'done p50/p99 ms':>20}"
    )
    for name in ROWS:
        r = results[name]
        print(
            f"{name:<20}{r['jobs_per_s']:>10,.0f}{r['redis_commands_per_job']:>10.1f}"
            f"{r['reserve_p50_ms']:>11.2f} /{r['reserve_p99_ms']:>7.2f}{r['done_p50_ms']:>11.2f} /{r['done_p99_ms']:>7.2f}"
        )
    print(f"gateway RSS after the runs: {results['gateway_rss_mib']:.1f} MiB")
    (REPO / "bench" / "gateway-results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
