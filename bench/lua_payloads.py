"""Redis time of one work.lua reserve on huge payloads: the checks protocol.md 8.2 asks of the script.

    .venv/bin/python bench/lua_payloads.py [--lua PATH] [--mib N] [--repeat K]

One private redis-server. Each case pushes one payload and times the EVALSHA that reserves it (or
moves it to the failed list): the UTF-8 check, cjson.decode, and for a rejected payload the failure
record (cjson.encode and the escaping of its string). `--lua` times another copy of work.lua (e.g.
the previous version, `git show HEAD~1:spec/lua/work.lua > /tmp/old.lua`) on the same payloads,
and the replies of both are compared byte for byte. Prints milliseconds (median of K runs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import redis

from jobwire_conformance.redisutil import RedisServer

REPO = Path(__file__).resolve().parents[1]
LIMIT = 16 * 1024 * 1024


def cases(mib: int) -> dict[str, bytes]:
    """Payloads of about `mib` MiB: under and over the limit, ASCII and not, valid UTF-8 and not."""
    n = mib * 1024 * 1024
    ascii_job = lambda size: b'{"class":"Big","args":["' + b"a/b" * (size // 3) + b'"]}'  # noqa: E731
    utf8_job = lambda size: b'{"class":"Big","args":["' + "é/€".encode() * (size // 6) + b'"]}'  # noqa: E731
    return {
        "ascii, under the limit (reserved)": ascii_job(LIMIT - 1024),
        "utf-8 text, under the limit (reserved)": utf8_job(LIMIT - 1024),
        "ascii, over the limit (failed)": ascii_job(n),
        "utf-8 text, over the limit (failed)": utf8_job(n),
        "not utf-8, under the limit (failed, hex)": b'{"class":"Big","args":["'
        + b"\xff\xfe" * ((LIMIT - 1024) // 2)
        + b'"]}',
        "quotes, not json (failed)": b'{"class":"Big","args":["' + b'\\"' * ((LIMIT - 1024) // 2),
    }


def time_case(r: redis.Redis, sha: str, raw: bytes) -> tuple[float, list]:
    r.flushall()
    r.zadd("resque:jobwire:leases", {"w:1:q": 2**50})
    r.rpush("resque:queue:q", raw)
    keys = [
        "resque:worker:w:1:q",
        "resque:jobwire:inflight:w:1:q",
        "s1",
        "s2",
        "s3",
        "s4",
        "resque:failed",
        "resque:jobwire:deaths",
        "m",
        "resque:jobwire:leases",
        "resque:pause-all-workers",
        "x",
        "y",
        "resque:queue:q",
        "resque:jobwire:wake:q",
    ]
    args = ["w:1:q", "none", "", "", "2026/01/01 00:00:00 UTC", "2026-01-01T00:00:00Z", 3, LIMIT, "q"]
    t0 = time.perf_counter()
    reply = r.evalsha(sha, len(keys), *keys, *args)
    elapsed = time.perf_counter() - t0
    failed = r.lrange("resque:failed", 0, -1)
    reply = [x if not isinstance(x, bytes) or len(x) < 64 or x == raw else b"<payload>" for x in reply]
    return elapsed * 1000, [reply[:2], [f.replace(b'"failed_at":"2026/01/01 00:00:00 UTC"', b"") for f in failed]]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lua", help="another work.lua to time beside spec/lua/work.lua")
    p.add_argument("--mib", type=int, default=20)
    p.add_argument("--repeat", type=int, default=3)
    o = p.parse_args()
    scripts = {"spec": (REPO / "spec/lua/work.lua").read_text()}
    if o.lua:
        scripts["other"] = Path(o.lua).read_text()
    srv = RedisServer(extra_args=("--proto-max-bulk-len", "64mb", "--lua-time-limit", "60000"))
    srv.start()
    try:
        r = redis.Redis(port=srv.port, socket_timeout=120)
        shas = {name: r.script_load(src) for name, src in scripts.items()}
        print(f"{'payload':44} " + "  ".join(f"{name + ' ms':>10}" for name in shas))
        same = True
        for label, raw in cases(o.mib).items():
            row, replies = [], []
            for sha in shas.values():
                times = []
                for _ in range(o.repeat):
                    ms, reply = time_case(r, sha, raw)
                    times.append(ms)
                row.append(statistics.median(times))
                replies.append(reply)
            same = same and all(x == replies[0] for x in replies)
            print(f"{label:44} " + "  ".join(f"{ms:10.0f}" for ms in row), flush=True)
        if o.lua:
            print("replies and failure records identical" if same else "REPLIES DIFFER")
        return 0 if same else 1
    finally:
        srv.kill()
        srv.close()


if __name__ == "__main__":
    sys.exit(main())
