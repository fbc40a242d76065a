"""jobwire beside RQ, Celery, Dramatiq, node-resque and BullMQ, on one private Redis, in one run.

    make bench                           (full: 3 rounds, under 10 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick   (CI: a few thousand jobs, 1 round, under 2 minutes)

Each round runs, for every worker (in an order rotated per round): a processing run of pre-filled
no-op jobs (rate between the echo markers first and last; Redis commands and Redis CPU per job
from INFO commandstats / INFO cpu deltas, commands inside Lua scripts counted), then an idle run
(enqueue-to-echo latency probes, idle Redis commands per second with a blocking call still
waiting counted as issued, idle RSS of the worker's process tree). Enqueue rates come once per
round. Each figure is the median over rounds, with min-max. The peers are installed from their
registries into bench/.venv (bench/requirements.lock) and bench/peers/node_modules (npm ci);
a peer that cannot be installed or run fails the run. Writes results.json, results.md (tables
with jobwire-to-peer ratios) and results.png into bench/latest/ (full) or bench/out-quick/.
Compare ratios of one run: other processes share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

import jobwire
from jobwire_conformance.redisutil import RedisServer

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
PEERS = BENCH / "peers"
BIN = Path(sys.executable).parent
BVENV = BENCH / ".venv"
BPY = BVENV / "bin" / "python"
JOBWIRE_ECHO = "resque:jobwire:conformance:echo"
PEER_ECHO = "bench:echo"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class System:
    """One worker kind: how to start it, fill its queue and probe it."""

    name: str
    family: str  # jobwire, rq, celery, dramatiq, node-resque, bullmq
    cmd: list[str]
    jobs: int  # jobs of a full processing run
    env: dict = field(default_factory=dict)

    @property
    def echo_key(self) -> str:
        return JOBWIRE_ECHO if self.family == "jobwire" else PEER_ECHO


def baseline_systems(base: Path) -> list[System]:
    """jobwire's workers as another checkout builds them (say main, before a change), so that a
    change is measured before and after in one run: the same rows, named "... @base"."""
    out = []
    for s in systems():
        if s.family == "jobwire":
            cmd = [c if c.startswith(str(BIN)) else c.replace(str(REPO), str(base)) for c in s.cmd]
            env = {"PYTHONPATH": str(base / "python/src"), "JOBWIRE_SPEC_DIR": str(base / "spec")}
            out.append(System(f"{s.name} @base", "jobwire", cmd, s.jobs, env))
    return out


def systems() -> list[System]:
    jw = [str(BIN / "jobwire"), "worker", "--queues", "bench", "--import", "jobwire.conformance_jobs"]
    # Node's jobs in the worker process (--no-fork), as BullMQ's and node-resque's are.
    node = ["node", str(REPO / "examples-node/worker.js"), "--queues", "bench", "--no-fork"]
    peer_env = {"PYTHONPATH": str(PEERS)}
    b = str(BVENV / "bin")
    celery = [
        f"{b}/celery",
        "-A",
        "pyjobs:celery_app",
        "worker",
        "-Q",
        "bench",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-l",
        "WARNING",
    ]
    nodepeer = ["node", str(PEERS / "node_peers.mjs"), "worker"]
    return [
        System("jobwire python fork", "jobwire", jw, 1200),
        System("jobwire python --no-fork", "jobwire", [*jw, "--no-fork"], 10000),
        System("jobwire node c1", "jobwire", node, 10000),
        System("jobwire node c50", "jobwire", [*node, "--concurrency", "50"], 15000),
        System("jobwire c fork", "jobwire", [str(REPO / "examples-c/jobwire-worker"), "--queues", "bench"], 3000),
        System("rq fork (Worker)", "rq", [f"{b}/rq", "worker", "--quiet", "bench"], 100, env=peer_env),
        System(
            "rq SimpleWorker",
            "rq",
            [f"{b}/rq", "worker", "--quiet", "-w", "rq.worker.SimpleWorker", "bench"],
            1000,
            env=peer_env,
        ),
        System("celery prefork -c1", "celery", [*celery, "-P", "prefork", "-c", "1"], 2000, env=peer_env),
        System("celery solo", "celery", [*celery, "-P", "solo"], 2000, env=peer_env),
        System(
            "dramatiq 1 proc x 8 threads",
            "dramatiq",
            [f"{b}/dramatiq", "pyjobs", "-p", "1", "-t", "8", "-Q", "bench"],
            4000,
            env=peer_env,
        ),
        System("node-resque (timeout 5 ms)", "node-resque", [*nodepeer, "node-resque", "1"], 5000),
        System("bullmq c1", "bullmq", [*nodepeer, "bullmq", "1"], 6000),
        System("bullmq c50", "bullmq", [*nodepeer, "bullmq", "50"], 15000),
        System("floor: redis-py BLPOP loop", "floor", [str(BPY), str(PEERS / "floor.py")], 10000, env=peer_env),
    ]


# ---- installing the peers -------------------------------------------------------------------


def run_checked(cmd, **kw) -> subprocess.CompletedProcess:
    """Run a command; a failure stops the bench with the command's own output (never a skip)."""
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(map(str, cmd))} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def install_peers() -> None:
    """bench/.venv from bench/requirements.lock, bench/peers/node_modules by npm ci, and the C
    enqueue program; each only when its input changed (a stamp holds the lock it was made from)."""
    lock = (BENCH / "requirements.lock").read_text()
    stamp = BVENV / "lock.stamp"
    if not stamp.exists() or stamp.read_text() != lock:
        run_checked(["python3", "-m", "venv", str(BVENV)])
        run_checked([str(BVENV / "bin/pip"), "install", "-q", "-r", str(BENCH / "requirements.lock")])
        stamp.write_text(lock)
    nlock = (PEERS / "package-lock.json").read_text()
    nstamp = PEERS / "node_modules" / "lock.stamp"
    if not nstamp.exists() or nstamp.read_text() != nlock:
        run_checked(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEERS)
        nstamp.write_text(nlock)
    c = REPO / "examples-c"
    run_checked(["make", "-C", str(c), "-s", "libjobwire.a", "jobwire-worker"])
    flags = run_checked(["pkg-config", "--cflags", "--libs", "hiredis", "jansson", "libmd"]).stdout.split()
    run_checked(
        [
            "cc",
            "-std=c99",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            f"-I{c}",
            str(BENCH / "c_enqueue.c"),
            str(c / "libjobwire.a"),
            *flags,
            "-lm",
            "-o",
            str(BVENV / "c_enqueue"),
        ]
    )


# ---- processes ------------------------------------------------------------------------------


def spawn(system: System, url: str) -> subprocess.Popen:
    env = {**os.environ, "REDIS_URL": url, "JOBWIRE_SPEC_DIR": str(REPO / "spec"), **system.env}
    if "PYTHONPATH" in system.env and "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = f"{system.env['PYTHONPATH']}:{os.environ['PYTHONPATH']}"
    return subprocess.Popen(
        system.cmd, env=env, cwd=PEERS, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def stop(proc: subprocess.Popen) -> None:
    """SIGKILL to the worker's whole session (pool children too): its shutdown is not measured, and
    Redis is flushed before the next run."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def descendants(pid: int) -> list[int]:
    """pid and every live process below it (from /proc/*/stat)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def rss_mib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            total += next(
                int(x.split()[1]) for x in Path(f"/proc/{p}/status").read_text().splitlines() if x.startswith("VmRSS")
            )
        except (OSError, StopIteration):
            pass
    return total / 1024


def cpu_s(pids: list[int]) -> float:
    """user+sys CPU of the processes and of their reaped children (a fork worker's job children)."""
    total = 0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in f[11:15])
    return total / CLK_TCK


def worker_failed(proc: subprocess.Popen, system: System, what: str):
    err = proc.stderr.read().decode(errors="replace")[-3000:] if proc.poll() is not None else "(still running)"
    raise SystemExit(f"bench: {system.name}: {what}\n{err}")


def blpop(r, proc, system: System, timeout: float) -> float:
    """Wait for the next echo of system's worker; a worker that died or hung fails the run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if r.blpop(system.echo_key, timeout=1):
            return time.perf_counter()
        if proc.poll() is not None:
            worker_failed(proc, system, "the worker exited")
    worker_failed(proc, system, f"no echo within {timeout:.0f} s")


# ---- Redis counters -------------------------------------------------------------------------

HARNESS_COMMANDS = ("cmdstat_info",)


def counters(r) -> dict:
    """Commands completed (commandstats, scripts' inner calls included, INFO excluded), blocked
    clients, and Redis CPU seconds."""
    stats = r.info("commandstats")
    calls = sum(v["calls"] for k, v in stats.items() if k not in HARNESS_COMMANDS)
    cpu = r.info("cpu")
    return {
        "calls": calls,
        "blocked": int(r.info("clients")["blocked_clients"]),
        "cpu": float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
    }


# ---- filling and probing --------------------------------------------------------------------


def fill(system: System, url: str, n: int) -> None:
    """Echo marker, n-2 no-ops, echo marker, with the system's own client."""
    if system.family == "jobwire":
        jobs = [("jobwire.Echo", [])] + [("jobwire.Noop", [])] * (n - 2) + [("jobwire.Echo", [])]
        client = jobwire.Client(url)
        for i in range(0, n, 1000):
            client.enqueue_many("bench", jobs[i : i + 1000])
    elif system.family in ("rq", "celery", "dramatiq", "floor"):
        run_checked(
            [str(BPY), str(PEERS / "pyclient.py"), "fill", system.family, str(n)],
            cwd=PEERS,
            env={**os.environ, "REDIS_URL": url},
            timeout=120,
        )
    else:
        run_checked(
            ["node", str(PEERS / "node_peers.mjs"), "fill", system.family, str(n)],
            env={**os.environ, "REDIS_URL": url},
            timeout=120,
        )


def probe(system: System, url: str, r, proc, samples: int) -> list[float]:
    if system.family == "jobwire":
        sys.path.insert(0, str(PEERS))
        from common import latency_loop

        client = jobwire.Client(url)
        return latency_loop(lambda: client.enqueue("bench", "jobwire.Echo"), r, JOBWIRE_ECHO, samples)
    cmd = (
        [str(BPY), str(PEERS / "pyclient.py")]
        if system.family in ("rq", "celery", "dramatiq", "floor")
        else ["node", str(PEERS / "node_peers.mjs")]
    )
    out = run_checked(
        [*cmd, "probe", system.family, str(samples)], cwd=PEERS, env={**os.environ, "REDIS_URL": url}, timeout=120
    )
    return json.loads(out.stdout)


def pct(values: list[float], p: float) -> float:
    """The p-th percentile, nearest rank (p99 of 150 samples is the 149th smallest)."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s))) - 1))]


# ---- one measurement each -------------------------------------------------------------------


def measure(system: System, url: str, r, n: int, samples: int, window: float | None) -> dict:
    """One worker process: first the processing run, then, once it has drained its queue and sits
    idle, the latency probes and (in the first round only: these figures barely move) its idle
    Redis commands per second and idle RSS."""
    r.flushall()
    fill(system, url, n)
    before = counters(r)
    proc = spawn(system, url)
    try:
        first = blpop(r, proc, system, 60)
        last = blpop(r, proc, system, 300)
        worker_cpu = cpu_s(descendants(proc.pid))
        after = counters(r)
        calls = after["calls"] - before["calls"] - 2  # the harness's two BLPOPs
        out = {
            "jobs": n,
            "jobs_per_s": (n - 1) / (last - first),
            "redis_cmds_per_job": calls / n,
            "redis_cpu_us_per_job": (after["cpu"] - before["cpu"]) * 1e6 / n,
            "worker_cpu_us_per_job": worker_cpu * 1e6 / n,
        }
        lat = probe(system, url, r, proc, samples)
        out.update(p50_ms=pct(lat, 50), p99_ms=pct(lat, 99), samples=len(lat))
        if window:
            time.sleep(1.0)
            before = counters(r)
            time.sleep(window)
            after = counters(r)
            pids = descendants(proc.pid)
            # Commands issued in the window: those completed, plus a blocking call still waiting at
            # its end, minus one already waiting at its start (counted when it completes).
            issued = after["calls"] - before["calls"] + after["blocked"] - before["blocked"]
            out.update(idle_cmds_per_s=issued / window, rss_main_mib=rss_mib(pids[:1]), rss_tree_mib=rss_mib(pids))
        if proc.poll() is not None:
            worker_failed(proc, system, "the worker exited while idle")
    finally:
        stop(proc)
    return out


def enqueue_rates(url: str, r, n: int) -> dict:
    r.flushall()
    client = jobwire.Client(url, namespace="bench-enqueue")
    client.enqueue("q", "jobwire.Noop")
    rates = {}
    start = time.perf_counter()
    for i in range(n):
        client.enqueue("q", "jobwire.Noop", i)
    rates["jobwire-python one by one"] = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(0, n * 4, 1000):
        client.enqueue_many("q", [("jobwire.Noop", [j]) for j in range(i, i + 1000)])
    rates["jobwire-python bulk"] = n * 4 / (time.perf_counter() - start)
    plain = redis.Redis.from_url(url)
    payload = json.dumps({"class": "jobwire.Noop", "args": []})
    plain.rpush("plain", payload)
    start = time.perf_counter()
    for _ in range(n):
        plain.rpush("plain", payload)
    rates["redis-py RPUSH round-trip loop"] = n / (time.perf_counter() - start)
    env = {**os.environ, "REDIS_URL": url, "JOBWIRE_SPEC_DIR": str(REPO / "spec")}
    rates.update(json.loads(run_checked([str(BVENV / "c_enqueue"), url, str(n)], env=env, timeout=120).stdout))
    rates.update(
        json.loads(run_checked(["node", str(PEERS / "node_peers.mjs"), "enqueue", str(n)], env=env, timeout=300).stdout)
    )
    py_n = max(200, n // 4)  # the Python peers enqueue at 1-4k/s
    rates.update(
        json.loads(
            run_checked(
                [str(BPY), str(PEERS / "pyclient.py"), "enqueue", str(py_n)], cwd=PEERS, env=env, timeout=300
            ).stdout
        )
    )
    r.flushall()
    return rates


# ---- summary --------------------------------------------------------------------------------


def summarize(rounds: list[dict]) -> dict:
    """Per figure: the median over rounds and its min-max."""

    def fold(values):
        return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}

    out = {"enqueue": {}, "workers": {}}
    for name in rounds[0]["enqueue"]:
        out["enqueue"][name] = fold([rd["enqueue"][name] for rd in rounds])
    for name in rounds[0]["workers"]:
        metrics = rounds[0]["workers"][name]  # the first round has every metric
        out["workers"][name] = {
            m: fold([rd["workers"][name][m] for rd in rounds if m in rd["workers"][name]]) for m in metrics
        }
    return out


# (what, numerator, denominator or a fixed figure, the issue's target ratio)
TARGETS = [
    (
        "python fork vs celery prefork -c1",
        ("jobwire python fork", "jobs_per_s"),
        ("celery prefork -c1", "jobs_per_s"),
        1.0,
    ),
    (
        "python --no-fork vs rq SimpleWorker",
        ("jobwire python --no-fork", "jobs_per_s"),
        ("rq SimpleWorker", "jobs_per_s"),
        15.0,
    ),
    ("python --no-fork vs celery solo", ("jobwire python --no-fork", "jobs_per_s"), ("celery solo", "jobs_per_s"), 3.0),
    ("node c1 vs bullmq c1", ("jobwire node c1", "jobs_per_s"), ("bullmq c1", "jobs_per_s"), 1.5),
    ("node c50 vs bullmq c50", ("jobwire node c50", "jobs_per_s"), ("bullmq c50", "jobs_per_s"), 1.5),
    ("c fork vs 3,000 jobs/s", ("jobwire c fork", "jobs_per_s"), 3000.0, 1.0),
    (
        "python enqueue one by one vs redis-py loop",
        ("enqueue", "jobwire-python one by one"),
        ("enqueue", "redis-py RPUSH round-trip loop"),
        0.9,
    ),
    (
        "python bulk enqueue vs bullmq addBulk",
        ("enqueue", "jobwire-python bulk"),
        ("enqueue", "bullmq addBulk bulk"),
        5.0,
    ),
]
LOWER_IS_BETTER = [  # (what, numerator, denominator or a fixed figure); met when the ratio <= 1
    ("node c1 idle cmds/s vs bullmq c1", ("jobwire node c1", "idle_cmds_per_s"), ("bullmq c1", "idle_cmds_per_s")),
    ("node c50 idle cmds/s vs bullmq c50", ("jobwire node c50", "idle_cmds_per_s"), ("bullmq c50", "idle_cmds_per_s")),
]


def figure(summary: dict, ref) -> float:
    if isinstance(ref, float):
        return ref
    where, metric = ref
    if where == "enqueue":
        return summary["enqueue"][metric]["median"]
    return summary["workers"][where][metric]["median"]


def ratio_rows(summary: dict, judge_idle: bool = True) -> list[dict]:
    """The issue's targets as ratios. Idle figures from --quick's 2 s window are shown, not judged
    (a 5 s heartbeat may fall outside it); a ratio against a peer's zero is n/a, not a huge number."""
    rows = []
    for what, num, den, target in TARGETS:
        ratio = figure(summary, num) / figure(summary, den)
        rows.append({"what": what, "ratio": ratio, "target": f">= {target:g}", "met": ratio >= target})
    for what, num, den in LOWER_IS_BETTER:
        den_value = figure(summary, den)
        ratio = figure(summary, num) / den_value if den_value > 0 else None
        met = ratio <= 1.0 if ratio is not None and judge_idle else None
        rows.append({"what": what, "ratio": ratio, "target": "<= 1", "met": met})
    for name, w in summary["workers"].items():
        if name.endswith(" @base") and name[:-6] in summary["workers"]:
            rows.append(
                {
                    "what": f"{name[:-6]}: this checkout vs @base (jobs/s)",
                    "ratio": summary["workers"][name[:-6]]["jobs_per_s"]["median"] / w["jobs_per_s"]["median"],
                    "target": "> 1",
                    "met": None,
                }
            )
    for name, w in summary["workers"].items():
        if name.startswith("jobwire") and not name.endswith(" @base"):
            rows.append(
                {
                    "what": f"{name} p99 enqueue-to-start (ms)",
                    "ratio": w["p99_ms"]["median"],
                    "target": "< 3",
                    "met": w["p99_ms"]["median"] < 3,
                }
            )
            rows.append(
                {
                    "what": f"{name} idle cmds/s",
                    "ratio": w["idle_cmds_per_s"]["median"],
                    "target": "<= 1",
                    "met": w["idle_cmds_per_s"]["median"] <= 1 if judge_idle else None,
                }
            )
    return rows


def spread(f: dict, fmt: str) -> str:
    if f["n"] == 1:
        return format(f["median"], fmt)
    return f"{format(f['median'], fmt)} ({format(f['min'], fmt)}-{format(f['max'], fmt)})"


def markdown(summary: dict, meta: dict) -> str:
    lines = [
        f"Run {meta['date']} on {meta['machine']}; {meta['rounds']} round(s), median (min-max).",
        "",
        "| worker | jobs/s | p50 / p99 ms | Redis cmds/job | Redis CPU us/job | worker CPU us/job "
        "| idle cmds/s | idle RSS MiB (tree) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, w in summary["workers"].items():
        lines.append(
            f"| {name} | {spread(w['jobs_per_s'], ',.0f')} | {w['p50_ms']['median']:.2f} / "
            f"{w['p99_ms']['median']:.2f} | {w['redis_cmds_per_job']['median']:.1f} | "
            f"{w['redis_cpu_us_per_job']['median']:.0f} | {w['worker_cpu_us_per_job']['median']:.0f} | "
            f"{w['idle_cmds_per_s']['median']:.2f} | {w['rss_main_mib']['median']:.1f} "
            f"({w['rss_tree_mib']['median']:.1f}) |"
        )
    lines += ["", "| enqueue | jobs/s |", "| --- | ---: |"]
    for name, f in summary["enqueue"].items():
        lines.append(f"| {name} | {spread(f, ',.0f')} |")
    lines += ["", "| target (issue #14) | ratio | target | met |", "| --- | ---: | --- | --- |"]
    for row in summary["ratios"]:
        lines.append(
            f"| {row['what']} | {'n/a' if row['ratio'] is None else format(row['ratio'], '.2f')} | {row['target']} | {'-' if row['met'] is None else 'yes' if row['met'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


README = REPO / "README.md"
README_BEGIN, README_END = "<!-- make bench: begin -->", "<!-- make bench: end -->"


def update_readme(table: str, meta: dict) -> None:
    """Put a full run's tables into the root README between its two markers, so that the README
    shows the latest committed run and no figure is copied by hand."""
    text = README.read_text()
    head, sep, rest = text.partition(README_BEGIN)
    _, sep2, tail = rest.partition(README_END)
    if not sep or not sep2:
        raise SystemExit(f"bench: {README} lacks the markers {README_BEGIN} ... {README_END}")
    body = (
        f"`make bench` ({meta['date']}, {meta['machine']}; {meta['rounds']} rounds in {meta['seconds']} s; other\n"
        "processes may share the cores, so compare ratios within the run, not numbers across runs).\n"
        "One worker process each, no-op jobs; jobs/s is the median (min-max) of the rounds; p50/p99 is\n"
        "enqueue to the job's first write with an idle worker; idle cmds/s counts every command, those\n"
        "inside Lua scripts and a blocking call still waiting included. bench/README.md says how each\n"
        "figure is taken.\n\n![make bench chart](bench/latest/results.png)\n\n"
        + table.split("\n", 2)[2]  # the tables, without results.md's first line (said above)
    )
    README.write_text(f"{head}{README_BEGIN}\n{body}{README_END}{tail}")


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    return f"{os.cpu_count()} cores {model}, {platform.system()} {platform.release()}, Redis {redis_version}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few thousand jobs, 1 round (CI)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3, --quick 1)")
    parser.add_argument("--only", help="comma-separated worker names to run (default: all)")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="CHECKOUT",
        help="also run jobwire's workers from this checkout (built), as rows '... @base'",
    )
    parser.add_argument("--out", type=Path, help="output folder (default bench/latest, --quick bench/out-quick)")
    parser.add_argument(
        "--install-only", action="store_true", help="install the peers (and build C's enqueuer), run nothing"
    )
    opts = parser.parse_args()
    if opts.install_only:
        install_peers()
        return 0
    rounds = opts.rounds or (1 if opts.quick else 3)
    # The idle window is a whole number of every worker's idle cycle (jobwire 1.2: 5 s; a quiet
    # idle worker, protocol.md 16: 10 s; the peers: 1 s), so a periodic call is counted as often
    # as it happens, not 0 or 2 times by the window's phase.
    scale, samples, window = (0.15, 20, 2.0) if opts.quick else (1.0, 100, 10.0)
    out_dir = opts.out or BENCH / ("out-quick" if opts.quick else "latest")
    chosen = systems()
    if opts.baseline:
        chosen = [*chosen[:5], *baseline_systems(opts.baseline.resolve()), *chosen[5:]]
    if opts.only:
        chosen = [s for s in chosen if s.name in opts.only.split(",")]
    began = time.monotonic()
    install_peers()
    server = RedisServer().start()
    r = redis.Redis.from_url(server.url)
    results = []
    try:
        for k in range(rounds):
            t0 = time.monotonic()
            rd = {"enqueue": enqueue_rates(server.url, r, int(6000 * scale)), "workers": {}}
            print(f"round {k + 1}/{rounds}: enqueue {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
            order = chosen[k % len(chosen) :] + chosen[: k % len(chosen)]  # no worker always first
            for system in order:
                n = max(20, int(system.jobs * scale))
                t0 = time.monotonic()
                k_samples = max(10, samples // (5 if system.jobs < 1000 else 1))  # RQ fork is slow
                rd["workers"][system.name] = measure(system, server.url, r, n, k_samples, window if k == 0 else None)
                print(
                    f"round {k + 1}/{rounds}: {system.name} ({n} jobs) {time.monotonic() - t0:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
            rd["workers"] = {s.name: rd["workers"][s.name] for s in chosen}
            results.append(rd)
    finally:
        server.close()
    summary = summarize(results)
    summary["ratios"] = ratio_rows(summary, judge_idle=not opts.quick) if not opts.only else []
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "rounds": rounds,
        "quick": opts.quick,
        "seconds": round(time.monotonic() - began),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps({"meta": meta, "summary": summary, "rounds": results}, indent=2))
    table = markdown(summary, meta)
    (out_dir / "results.md").write_text(table)
    run_checked([str(BPY), str(PEERS / "chart.py"), str(out_dir / "results.json"), str(out_dir / "results.png")])
    if out_dir == BENCH / "latest" and not opts.only and not opts.baseline:
        update_readme(table, meta)
    print(table)
    print(f"bench: {meta['seconds']} s; wrote {out_dir}/results.{{json,md,png}}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
