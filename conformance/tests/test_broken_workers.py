"""The suite proves it can fail: each deliberately broken worker fails exactly the tests aimed at
its defect, and the Python reference worker passes the same tests."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BROKEN = HERE / "broken_workers"

# worker script -> (--only prefixes, ids that must fail, ids that must pass)
CASES = {
    "pop_without_record": (["recovery.sigkill"], ["recovery.sigkill.exactly-once"], []),
    "wrong_failure_format": (
        ["failure.record", "payload.extra-fields"],
        ["failure.record.key-order", "payload.extra-fields.preserved"],
        ["failure.record.error-exact", "failure.record.failed-at", "failure.record.schema"],
    ),
    "ignores_priority": (["queue.priority", "queue.fifo"], ["queue.priority.strict"], ["queue.fifo"]),
    "blocks_through_signals": (["worker.signal.prompt"], ["worker.signal.prompt-while-blocked"], []),
}


def run_suite(tmp_path, name, args):
    report = tmp_path / f"{name}.json"
    cmd = [sys.executable, "-m", "jobwire_conformance.cli", "--json", str(report), "-q", "--no-figures", *args]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240)
    data = json.loads(report.read_text())
    results = {r["id"]: r for impl in data["implementations"].values() for r in impl["results"]}
    return done.returncode, results, done.stdout + done.stderr


@pytest.mark.parametrize("worker", sorted(CASES))
def test_broken_worker_fails_its_tests(tmp_path, worker):
    only, must_fail, must_pass = CASES[worker]
    args = ["--worker-cmd", f"{sys.executable} {BROKEN / (worker + '.py')}", "--mode", "inline"]
    for prefix in only:
        args += ["--only", prefix]
    code, results, output = run_suite(tmp_path, worker, args)
    assert code == 1, output
    for test_id in must_fail:
        assert results[test_id]["status"] == "fail", (test_id, results[test_id], output)
    for test_id in must_pass:
        assert results[test_id]["status"] == "pass", (test_id, results[test_id], output)


def test_reference_worker_passes_the_same_tests(tmp_path):
    if not (REPO / ".venv" / "bin" / "jobwire").exists():
        pytest.skip("the Python reference worker is not installed")
    args = ["--impl", "python"]
    for only, _, _ in CASES.values():
        for prefix in only:
            args += ["--only", prefix]
    code, results, output = run_suite(tmp_path, "python", args)
    assert code == 0, output
    for _only, must_fail, must_pass in CASES.values():
        for test_id in must_fail + must_pass:
            assert results[test_id]["status"] == "pass", (test_id, results[test_id], output)
