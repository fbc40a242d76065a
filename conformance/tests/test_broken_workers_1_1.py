"""The protocol 1.1 tests can fail: the Python reference worker with one deliberate defect each
(broken_workers/sched_base.py) fails exactly the tests aimed at that defect and passes the others
named here; the unbroken reference passes them all (test_broken_workers.py runs it for 1.0)."""

import sys

import pytest

from test_broken_workers import BROKEN, REPO, run_suite

FEATURES = ["--feature", "delayed", "--feature", "retries", "--feature", "schedules"]
# worker script -> (--only prefixes, ids that must fail, ids that must pass)
CASES = {
    "sched_poll_only": (
        ["delayed.promote.on-time", "delayed.promote.wake-earlier", "delayed.promote.cleans-up"],
        ["delayed.promote.wake-earlier"],
        ["delayed.promote.cleans-up"],
    ),  # on-time: one sample, luck may pass it
    "sched_random_jitter": (["retry.delay", "retry.payload"], ["retry.delay.formula"], ["retry.payload.bytes-kept"]),
    "sched_ignores_attempts": (
        ["retry.attempts", "retry.history", "retry.success"],
        ["retry.attempts.exhausted", "retry.history.entries"],
        [],
    ),
    "sched_racy_fire": (["schedule.fire"], ["schedule.fire.exactly-once"], []),
    "sched_racy_promote": (["delayed.promote.exactly-once"], ["delayed.promote.exactly-once"], []),
}


@pytest.mark.parametrize("worker", sorted(CASES))
def test_broken_1_1_worker_fails_its_tests(tmp_path, worker):
    if not (REPO / ".venv" / "bin" / "jobwire").exists():
        pytest.skip("the Python reference worker is not installed")
    only, must_fail, must_pass = CASES[worker]
    args = ["--worker-cmd", f"{sys.executable} {BROKEN / (worker + '.py')}", "--mode", "fork", *FEATURES]
    for prefix in only:
        args += ["--only", prefix]
    code, results, output = run_suite(tmp_path, worker, args)
    assert code == 1, output
    for test_id in must_fail:
        assert results[test_id]["status"] == "fail", (test_id, results[test_id], output)
    for test_id in must_pass:
        assert results[test_id]["status"] == "pass", (test_id, results[test_id], output)


def test_reference_worker_passes_the_1_1_tests(tmp_path):
    if not (REPO / ".venv" / "bin" / "jobwire").exists():
        pytest.skip("the Python reference worker is not installed")
    code, results, output = run_suite(
        tmp_path, "python", ["--impl", "python", "--only", "delayed", "--only", "retry", "--only", "schedule"]
    )
    assert code == 0, output
    assert sum(1 for r in results.values() if r["status"] == "pass") == 22, output
