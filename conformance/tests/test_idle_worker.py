"""The no-deaf-window test can fail: the Python worker whose blocking read timeout equals its block
timeout (broken_workers/deaf_when_idle.py, the state before issue 13) fails worker.idle.quiet; the
reference worker passes it (scripts/conformance.sh runs it against every implementation)."""

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def test_deaf_worker_fails_the_idle_test(tmp_path):
    python = REPO / ".venv" / "bin" / "python"
    worker = (
        f"{python} {HERE / 'broken_workers' / 'deaf_when_idle.py'} worker --import jobwire.conformance_jobs --no-fork"
    )
    report = tmp_path / "deaf.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobwire_conformance.cli",
            "--json",
            str(report),
            "-q",
            "--no-figures",
            "--worker-cmd",
            worker,
            "--mode",
            "inline",
            "--feature",
            "quiet-idle",  # the reference worker it patches blocks 2 x block-timeout (protocol.md 16.3)
            "--impl-name",
            "python",
            "--only",
            "worker.idle",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout + done.stderr
    results = {
        r["id"]: r for impl in json.loads(report.read_text())["implementations"].values() for r in impl["results"]
    }
    assert done.returncode == 1, output
    quiet = results["worker.idle.quiet"]
    assert quiet["status"] == "fail" and "Redis unavailable" in quiet["message"], (quiet, output)
