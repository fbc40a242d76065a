"""The conformance suite against the worker of each image, started by `jobwire-conformance --image`
(conformance/src/jobwire_conformance/image.py) through the engine, with the mode and features the
implementation's manifest in conformance/implementations/ claims. Redis is a container too.

Each run is the part of the suite that tests what an image can break (tests/install-check.txt:
every Lua script, schema and spec file the image carries, its entry point and environment, every
signal through the engine, the orphan check through the engine's process list); the full suite
runs against the same sources on this machine (scripts/conformance.sh). The one difference of
runtime, the stand-in Node image's Debian Node 18, also runs the whole Node test suite in the
fresh-machine test.

The Python and Node workers are driven by the suite installed on this machine (the recipe
`pip install 'jobwire-conformance[image]'`); the C worker by the suite in its own image, given the
engine's socket (the recipe for a CI that only runs containers). A failed MUST test fails the run:
nothing is retried.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import IMAGES, ROOT, RUN_ID, install_check, manifest

# The worker command in each image (--image-cmd replaces the image's entrypoint); None: the image's
# own entrypoint, with the suite's standard flags as its arguments.
IMAGE_CMD = {
    "python": "jobwire worker --import jobwire.conformance_jobs",
    "node": "node worker.js --concurrency 1",
    "c": None,
}
REPORTS = ROOT / "reports"


def suite_args(impl: str, redis_url: str, report_dir: str) -> list[str]:
    """The arguments of jobwire-conformance for the worker of IMPL's image."""
    m = manifest(impl)
    args = [
        "--image",
        IMAGES[impl],
        "--redis-url",
        redis_url,
        "--impl-name",
        m["impl"],
        "--no-figures",
        "--jobs",
        "2",
        *install_check.only_args(),
        "--json",
        f"{report_dir}/containers-{impl}.json",
        "--junit",
        f"{report_dir}/containers-{impl}.xml",
    ]
    if IMAGE_CMD[impl]:
        args += ["--image-cmd", IMAGE_CMD[impl]]
    if m.get("mode"):
        args += ["--mode", m["mode"]]
    for feature in m.get("features", []):
        args += ["--feature", feature]
    return args


def report(impl: str) -> dict:
    """The JSON report of IMPL's image run (empty when there is none)."""
    try:
        return json.loads((REPORTS / f"containers-{impl}.json").read_text())
    except (OSError, ValueError):
        return {}


def summary(impl: str) -> str:
    """What went wrong by the JSON report (a failed test, a prefix that selected nothing), for the assertion message."""
    data = report(impl)
    return "\n".join(install_check.report_problems(data)) or json.dumps(data)[:1000]


@pytest.mark.parametrize("impl", ["python", "node"])
def test_suite_from_this_machine(engine, images, redis_ctr, impl):
    redis_ctr.r.flushall()
    REPORTS.mkdir(exist_ok=True)
    cmd = [str(Path(sys.executable).with_name("jobwire-conformance")), *suite_args(impl, redis_ctr.url, str(REPORTS))]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    print(done.stdout[-600:])
    assert done.returncode == 0, f"{' '.join(cmd)}\nexit {done.returncode}\n{summary(impl)}\n{done.stderr[-2000:]}"
    assert "CONFORMANT" in done.stdout and " 0 failed" in done.stdout
    assert not install_check.report_problems(report(impl)), summary(impl)


def test_suite_in_its_image(engine, images, redis_ctr):
    """The runner in the conformance image drives the C worker's image through the engine's socket."""
    impl = "c"
    redis_ctr.r.flushall()
    REPORTS.mkdir(exist_ok=True)
    # The runner's temporary folder at the same path on the host: the suite mounts files of it
    # (the held start's flag) into the worker containers it starts.
    tmp = tempfile.mkdtemp(prefix="jobwire-runner-tmp-")
    runner = engine.containers.run(
        images["conformance"],
        suite_args(impl, redis_ctr.url, "/reports"),
        name=f"{RUN_ID}-conformance-{impl}",
        detach=True,
        network_mode="host",
        pid_mode="host",
        labels={"org.jobwire.containers": RUN_ID},
        environment={"TMPDIR": tmp},
        volumes={
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
            str(REPORTS): {"bind": "/reports", "mode": "rw"},
            tmp: {"bind": tmp, "mode": "rw"},
        },
    )
    try:
        code = runner.wait(timeout=900)["StatusCode"]
        out = runner.logs().decode("utf-8", "replace")
    finally:
        runner.remove(force=True)
    print(out[-600:])
    assert code == 0, f"exit {code}\n{summary(impl)}\n{out[-2000:]}"
    assert "CONFORMANT" in out
    assert not install_check.report_problems(report(impl)), summary(impl)


def broken_cases() -> dict:
    """conformance/tests/test_broken_workers.py's table: worker -> (--only, must fail, must pass)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "broken_cases", ROOT / "conformance" / "tests" / "test_broken_workers.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CASES


@pytest.mark.parametrize("worker", ["pop_without_record", "ignores_priority"])
def test_suite_fails_a_broken_worker_image(engine, images, redis_ctr, tmp_path, worker):
    """--image can fail: a broken worker of conformance/tests/broken_workers, run from the
    conformance image (which carries them), fails exactly the tests aimed at its defect."""
    only, must_fail, must_pass = broken_cases()[worker]
    redis_ctr.r.flushall()
    report = tmp_path / "report.json"
    cmd = [
        str(Path(sys.executable).with_name("jobwire-conformance")),
        "--image",
        images["conformance"],
        "--image-cmd",
        f"python /app/conformance/tests/broken_workers/{worker}.py",
        "--mode",
        "inline",
        "--redis-url",
        redis_ctr.url,
        "--no-figures",
        "--json",
        str(report),
    ]
    for prefix in only:
        cmd += ["--only", prefix]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    results = {
        r["id"]: r for impl in json.loads(report.read_text())["implementations"].values() for r in impl["results"]
    }
    assert done.returncode == 1, done.stdout[-1500:] + done.stderr[-1500:]
    for test_id in must_fail:
        assert results[test_id]["status"] == "fail", (test_id, results[test_id])
    for test_id in must_pass:
        assert results[test_id]["status"] == "pass", (test_id, results[test_id])
