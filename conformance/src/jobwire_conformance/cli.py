"""jobwire-conformance: run the conformance suite against jobwire workers.

    jobwire-conformance                         every implementation manifest, plus the matrix
    jobwire-conformance --impl python --impl node --json r.json --junit r.xml
    jobwire-conformance --worker-cmd './my-worker' --mode fork --feature kill-running-job
    jobwire-conformance --manifest ci/jobwire-conformance.json   your own implementation manifest
    jobwire-conformance --image my/worker:1.2 --image-cmd 'my-worker --verbose' --mode fork
    jobwire-conformance --matrix                the cross-language matrix only
    jobwire-conformance --check-vectors         the suite's own self-check
    jobwire-conformance --list                  every test id with its level and spec section

Exit status: 0 when every MUST test passed, 1 when one failed, 2 on a usage or setup error.
With CI=true a skipped implementation (its files missing) or a skipped test also exits 1; a test
that is not applicable (an unclaimed feature, the manifest's not_applicable) does not.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import __version__, report
from .core import GROUPS
from .impl import FEATURES, Implementation, available
from .redisutil import ClusterServer, RedisServer, client, is_cluster_url


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jobwire-conformance",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument(
        "--impl",
        action="append",
        default=[],
        metavar="NAME",
        help="implementation manifest conformance/implementations/NAME.json (repeatable; 'all')",
    )
    p.add_argument(
        "--manifest",
        action="append",
        default=[],
        metavar="PATH",
        help="an implementation manifest file (conformance/README.md); its relative paths are "
        "relative to the current folder (repeatable)",
    )
    p.add_argument(
        "--worker-cmd",
        metavar="CMD",
        help="test this worker command; the standard flags are appended unless CMD has {placeholders}",
    )
    p.add_argument(
        "--image",
        metavar="IMAGE",
        help="test the worker of this container image, started through the Docker engine "
        "(host network and pid namespace; needs jobwire-conformance[image])",
    )
    p.add_argument(
        "--image-cmd",
        metavar="CMD",
        help="with --image: the worker command in the image (replaces its entrypoint); "
        "the standard flags are appended unless CMD has {placeholders}",
    )
    p.add_argument(
        "--mode", choices=["fork", "inline"], help="with --worker-cmd or --image: the mode the worker reports"
    )
    p.add_argument(
        "--feature",
        action="append",
        default=[],
        choices=sorted(FEATURES),
        help="with --worker-cmd or --image: an optional feature the worker claims (repeatable)",
    )
    p.add_argument("--impl-name", help="with --worker-cmd or --image: the impl name it reports (checked when given)")
    p.add_argument("--matrix", action="store_true", help="run the cross-language matrix")
    p.add_argument("--json", metavar="FILE", help="write the JSON report here")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report here")
    p.add_argument(
        "--redis-url",
        metavar="URL",
        help="use this EMPTY Redis database instead of starting redis-server (?cluster=1: an empty Redis Cluster)",
    )
    p.add_argument(
        "--cluster",
        action="store_true",
        help="run on a Redis Cluster: 3 masters and 3 replicas started here on loopback ports "
        "(namespaces get a hash tag; groups that need a private redis-server are not applicable)",
    )
    p.add_argument("--only", action="append", default=[], metavar="ID_PREFIX", help="run only tests whose id starts so")
    p.add_argument("--skip", action="append", default=[], metavar="ID_PREFIX", help="skip tests whose id starts so")
    p.add_argument(
        "--id",
        action="append",
        default=[],
        metavar="ID",
        dest="ids",
        help="run only the test with exactly this id (repeatable; with --only/--skip: both apply)",
    )
    p.add_argument("--jobs", "-j", type=int, default=4, help="test groups run at once (default 4)")
    p.add_argument("--no-figures", action="store_true", help="do not measure throughput and latency")
    p.add_argument("--no-build", action="store_true", help="do not run the manifests' build commands")
    p.add_argument("--check-vectors", action="store_true", help="check the test vectors against the spec and exit")
    p.add_argument("--list", action="store_true", help="list the tests and exit")
    p.add_argument("--quiet", "-q", action="store_true")
    p.add_argument(
        "--version", action="version", version=f"jobwire-conformance {__version__} (protocol {_spec_version()})"
    )
    return p


def _spec_version() -> str:
    """The protocol version of the spec/ the suite tests against (packaged, or the checkout's)."""
    from .paths import SPEC_DIR

    try:
        return (SPEC_DIR / "VERSION").read_text(encoding="utf-8").strip()
    except OSError:
        return "unknown: no spec/VERSION"


def main(argv=None) -> int:
    opts = _parser().parse_args(argv)
    if opts.list:
        from . import runner  # noqa: F401 - registers the groups

        for g in GROUPS:
            for t in g.tests:
                # the level as the reports give it (MUST, SHOULD), then the feature that gates it
                print(f"{t.id}\t{t.level}\t{t.feature or '-'}\t{t.section}\t{t.description}")
        return 0
    if opts.check_vectors:
        from .vectors import check_all, spec_link_warnings

        problems, count = check_all()
        for line in problems:
            print(line)
        for line in spec_link_warnings():
            print(f"warning (spec, not the suite): {line}")
        print(f"{count} vectors checked, {len(problems)} problems")
        return 1 if problems else 0
    from .runner import Runner

    log = (lambda *_: None) if opts.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    impls: list[Implementation] = []
    names = opts.impl
    if opts.image_cmd and not opts.image:
        print("jobwire-conformance: --image-cmd needs --image", file=sys.stderr)
        return 2
    if not names and not opts.worker_cmd and not opts.image and not opts.matrix and not opts.manifest:
        if not available():
            print(
                "jobwire-conformance: nothing to test: give --manifest FILE, --worker-cmd CMD or --image IMAGE "
                "(an installed suite has no manifests of its own)",
                file=sys.stderr,
            )
            return 2
        names = ["all"]
        opts.matrix = True
    for name in names:
        for n in [m for m in available() if not Implementation.load(m).matrix_only] if name == "all" else [name]:
            try:
                impls.append(Implementation.load(n))
            except (FileNotFoundError, ValueError) as exc:
                known = f" (known: {', '.join(available())})" if available() else ""
                print(f"jobwire-conformance: {exc}{known}", file=sys.stderr)
                return 2
    if opts.matrix and not available():
        print(
            "jobwire-conformance: --matrix runs this repository's implementations: run it from a jobwire "
            "checkout (or set JOBWIRE_REPO_ROOT to one)",
            file=sys.stderr,
        )
        return 2
    for path in opts.manifest:
        try:
            impls.append(Implementation.load_file(path))
        except (FileNotFoundError, ValueError) as exc:
            print(f"jobwire-conformance: {exc}", file=sys.stderr)
            return 2
    if opts.worker_cmd:
        impls.append(Implementation.from_command(opts.worker_cmd, opts.mode, opts.feature, opts.impl_name))
    if opts.image:
        impls.append(Implementation.from_image(opts.image, opts.image_cmd, opts.mode, opts.feature, opts.impl_name))

    server: RedisServer | ClusterServer | None = None
    if opts.cluster and opts.redis_url:
        print(
            "jobwire-conformance: give --cluster (a cluster started here) or --redis-url URL?cluster=1, not both",
            file=sys.stderr,
        )
        return 2
    if opts.redis_url:
        try:
            size = client(opts.redis_url).dbsize()
        except Exception as exc:  # noqa: BLE001
            print(f"jobwire-conformance: cannot reach {opts.redis_url}: {exc}", file=sys.stderr)
            return 2
        if size:
            print(
                f"jobwire-conformance: refusing to run: {opts.redis_url} holds {size} keys; "
                "give an empty database (the suite writes and deletes keys freely)",
                file=sys.stderr,
            )
            return 2
        url = opts.redis_url
    elif opts.cluster:
        server = ClusterServer().start()
        url = server.url
        log(f"Redis Cluster (3 masters, 3 replicas) on ports {', '.join(map(str, server.ports))}: {url}")
    else:
        single = RedisServer().start()
        server, url = single, single.url
        log(f"redis-server pid {single.proc.pid if single.proc else '?'} on {url}")
    t0 = time.monotonic()
    run = Runner(
        url,
        jobs=opts.jobs,
        only=opts.only or None,
        skip=opts.skip or None,
        figures=not opts.no_figures,
        build=not opts.no_build,
        log=log,
        ids=opts.ids or None,
    )
    try:
        reports, mrep = run.run(impls, with_matrix=opts.matrix)
    finally:
        run.close()
        if server:
            server.close()
        else:
            _clean(url)
    duration = time.monotonic() - t0
    data = report.to_json(reports, mrep, duration)
    if opts.json:
        report.write_json(opts.json, data)
    if opts.junit:
        report.write_junit(opts.junit, reports, mrep)
    print(report.summary(reports, mrep))
    print(f"total {duration:.1f} s")
    blocking = [r for rep in reports for r in rep.results if report.is_blocking(r)]
    if mrep:
        blocking += [r for r in mrep.results if report.is_blocking(r)]
    errors = [rep for rep in reports if rep.status == "error"]
    ci = report.ci_problems(reports, mrep) if report.in_ci() else []
    for line in ci:
        print(f"CI=true, nothing may be skipped: {line}", file=sys.stderr)
    return 1 if blocking or errors or ci else 0


def _clean(url: str) -> None:
    """Delete the keys of the suite's namespaces from a database that was empty when it started."""
    r = client(url)
    for key in r.scan_iter(match="*jwc*" if is_cluster_url(url) else "jwc*", count=1000):
        r.delete(key)


if __name__ == "__main__":
    sys.exit(main())
