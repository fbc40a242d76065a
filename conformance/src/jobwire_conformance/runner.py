"""Runs groups of tests against implementations, in parallel where safe, and the matrix."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import matrix
from .core import GROUPS, Context, Group, Result, run_group
from .figures import FIGURE_GROUPS
from .impl import Implementation

# importing the suites registers their groups
from . import suite_json, suite_payload, suite_queue, suite_recovery, suite_worker  # noqa: F401,E402
from . import suite_scheduling  # noqa: F401,E402  (protocol 1.1 features)
from . import suite_idle  # noqa: F401,E402


@dataclass
class ImplReport:
    name: str
    status: str = "ran"  # ran, skipped, error
    reason: str = ""
    description: str = ""
    mode: str | None = None
    features: list[str] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    duration_s: float = 0.0


@dataclass
class MatrixReport:
    enqueuers: list[str]
    workers: list[str]
    results: list[Result] = field(default_factory=list)
    table: str = ""


class Runner:
    def __init__(
        self,
        redis_url: str,
        jobs: int = 4,
        only=None,
        skip=None,
        figures: bool = True,
        build: bool = True,
        log=print,
        ids=None,
    ) -> None:
        self.redis_url = redis_url
        self.jobs = jobs
        self.only = only
        self.skip = skip
        self.ids = set(ids) if ids else None  # exact test ids (--id): run only these
        self.figures = figures and not only and not self.ids
        self.build = build
        self.log = log
        self.log_dir = tempfile.mkdtemp(prefix="jobwire-conformance-logs-")
        self._lock = threading.Lock()

    def prepare(self, impl: Implementation) -> ImplReport:
        rep = ImplReport(impl.name, description=impl.description, mode=impl.mode, features=list(impl.features))
        missing = impl.missing()
        if missing:
            rep.status, rep.reason = "skipped", f"not present yet: {', '.join(missing)}"
            return rep
        if impl.image:
            from .image import preflight

            err = preflight(impl.image)
            if err:
                rep.status, rep.reason = "error", err
                return rep
        if self.build:
            err = impl.run_build(self.log)
            if err:
                rep.status, rep.reason = "error", err
        return rep

    def run(
        self, impls: list[Implementation], with_matrix: bool = False
    ) -> tuple[list[ImplReport], MatrixReport | None]:
        reports = {impl.name: self.prepare(impl) for impl in impls}
        tasks = []
        for impl in impls:
            if reports[impl.name].status != "ran":
                self.log(f"{impl.name}: {reports[impl.name].status}: {reports[impl.name].reason}")
                continue
            for g in GROUPS:
                tasks.append((g.weight, impl, g))
        tasks.sort(key=lambda t: -t[0])
        started = {name: time.monotonic() for name in reports}
        mrep = None

        def one(task):
            _, impl, g = task
            t0 = time.monotonic()
            results, figs = run_group(g, impl, self.redis_url, self.log_dir, self.only, self.skip, self.ids)
            if not results:
                return
            with self._lock:
                reports[impl.name].results.extend(results)
                reports[impl.name].figures.update(figs)
                bad = [r.id for r in results if r.status in ("fail", "error")]
                self.log(
                    f"{impl.name}: {g.name}: {len(results)} tests, "
                    f"{'failed: ' + ', '.join(bad) if bad else 'ok'} ({time.monotonic() - t0:.1f} s)"
                )

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = [pool.submit(one, t) for t in tasks]
            if with_matrix:
                mrep = self.run_matrix(pool)
            for f in futures:
                f.result()
        if self.figures:  # measured alone, one implementation at a time, so the numbers mean something
            for impl in impls:
                if reports[impl.name].status == "ran":
                    for g in FIGURE_GROUPS:
                        reports[impl.name].figures.update(self._figures(impl, g))
        order = {t.id: n for n, t in enumerate(t for g in GROUPS for t in g.tests)}
        for rep in reports.values():
            rep.results.sort(key=lambda r: order.get(r.id, 1 << 30))
            rep.duration_s = round(time.monotonic() - started[rep.name], 1)
        return list(reports.values()), mrep

    def close(self) -> None:
        """Remove the worker logs (their tails are already in the failure messages)."""
        shutil.rmtree(self.log_dir, ignore_errors=True)

    def _figures(self, impl, g) -> dict:
        ctx = Context(impl, self.redis_url, self.log_dir, g)
        try:
            g.run(ctx)
        except Exception as exc:  # noqa: BLE001 - figures never fail a run
            ctx.figures["error"] = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            ctx.cleanup()
        return ctx.figures

    # -- matrix ----------------------------------------------------------------------------------

    def run_matrix(self, pool) -> MatrixReport:
        def load(name):
            try:
                impl = Implementation.load(name)
            except FileNotFoundError:
                return None
            return None if impl.missing() else impl

        manifests = {n: load(n) for n in sorted(set(matrix.ENQUEUERS) | set(matrix.WORKERS))}
        enqueuers = {n: (manifests[n] if manifests[n] and manifests[n].enqueuer else None) for n in matrix.ENQUEUERS}
        mrep = MatrixReport(list(matrix.ENQUEUERS), list(matrix.WORKERS))
        scratch = Group("matrix", matrix.enqueuer_tests(matrix.ENQUEUERS), None)
        first = manifests.get("python") or next((m for m in manifests.values() if m), None)
        ctx = Context(first, self.redis_url, self.log_dir, scratch) if first else None
        for name in matrix.ENQUEUERS:
            for kind, check in (("payload", matrix.check_enqueuer), ("routed", matrix.check_routed)):
                test = next(t for t in scratch.tests if t.id == f"enqueue.{name}.{kind}")
                enq = enqueuers[name]
                if enq is None or ctx is None:
                    r = Result(test.id, "skip", f"enqueuer {name} not available")
                else:
                    try:
                        r = check(ctx, name, enq)
                    except Exception as exc:  # noqa: BLE001
                        r = Result(test.id, "error", f"{type(exc).__name__}: {exc}")
                r.test = test
                mrep.results.append(r)
        if ctx:
            ctx.cleanup()

        def column(wname):
            worker = manifests.get(wname)
            cells = {}
            if worker is None:
                for e in matrix.ENQUEUERS:
                    cells[e] = Result(f"matrix.{e}.{wname}", "skip", f"worker {wname} not available")
                return wname, cells
            g = Group("matrix", [], None)
            c = Context(worker, self.redis_url, self.log_dir, g)
            try:
                cells = matrix.run_column(c, worker, enqueuers)
            finally:
                c.cleanup()
            return wname, cells

        columns = dict(f.result() for f in [pool.submit(column, w) for w in matrix.WORKERS])
        cells = {}
        for e in matrix.ENQUEUERS:
            for w in matrix.WORKERS:
                r = columns[w][e]
                r.test = matrix.Test(
                    r.id,
                    matrix.P13,
                    matrix.MUST,
                    f"a jobwire.Echo job enqueued by {e} runs on the {w} worker with its arguments intact",
                )
                mrep.results.append(r)
                cells[(e, w)] = {"pass": "PASS", "fail": "FAIL", "skip": "skip", "error": "ERROR"}[r.status]
        mrep.table = matrix.render_table(cells, matrix.ENQUEUERS, matrix.WORKERS)
        self.log("matrix:\n" + mrep.table)
        return mrep


# issue 11's liveness tests register their groups too (imported here, after the other suites)
from . import suite_liveness  # noqa: F401,E402
from . import suite_quiet  # noqa: F401,E402  (protocol 1.3 feature quiet-idle)
