"""`--manifest PATH`: an implementer's own manifest, its relative paths taken from the folder the
suite runs in (conformance/README.md step 4), checked against implementation.schema.json first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from jobwire_conformance.impl import STANDARD_FLAGS, Implementation

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONFORMANCE = str(Path(sys.executable).with_name("jobwire-conformance"))
JOBWIRE = Path(sys.executable).with_name("jobwire")


def manifest(tmp_path: Path, **fields) -> Path:
    data = {
        "name": "mine",
        "impl": "python",
        "mode": "fork",
        "requires": ["build/my-worker"],
        "worker": {
            "argv": ["build/my-worker"] + [x for flag, name in STANDARD_FLAGS for x in (flag, "{%s}" % name)],
            "cwd": ".",
        },
        "features": [],
    }
    data.update(fields)
    path = tmp_path / "jobwire-conformance.json"
    path.write_text(json.dumps(data))
    return path


def test_relative_paths_follow_the_current_folder(tmp_path, monkeypatch):
    path = manifest(tmp_path)
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "my-worker").write_text("")
    monkeypatch.chdir(tmp_path)
    assert Implementation.load_file(path.name).missing() == []
    monkeypatch.chdir(REPO)
    assert Implementation.load_file(path).missing() == ["build/my-worker"]


def test_a_worker_named_relative_to_the_current_folder_runs(tmp_path):
    """From an implementer's folder: build/my-worker (a wrapper around the Python worker) passes."""
    path = manifest(tmp_path)
    (tmp_path / "build").mkdir()
    wrapper = tmp_path / "build" / "my-worker"
    wrapper.write_text(f'#!/bin/sh\nexec {JOBWIRE} worker --import jobwire.conformance_jobs "$@"\n')
    wrapper.chmod(0o755)
    proc = subprocess.run(
        [
            CONFORMANCE,
            "--manifest",
            path.name,
            "--only",
            "worker.register",
            "--no-figures",
            "--quiet",
            "--json",
            "r.json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rep = json.loads((tmp_path / "r.json").read_text())["implementations"]["mine"]
    assert rep["status"] == "ran" and rep["counts"]["pass"] > 0 and rep["counts"]["fail"] == 0


def test_a_missing_required_file_skips_instead_of_failing(tmp_path):
    path = manifest(tmp_path)
    proc = subprocess.run(
        [CONFORMANCE, "--manifest", path.name, "--no-figures", "--quiet", "--json", "r.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    rep = json.loads((tmp_path / "r.json").read_text())["implementations"]["mine"]
    assert rep["status"] == "skipped" and "build/my-worker" in rep["reason"], (proc.stdout, rep)


def test_bad_manifests_are_one_clear_line(tmp_path):
    for content, expected in [
        ("{nope", "is not JSON"),
        (json.dumps({"name": "Bad Name", "worker": {"argv": ["w"]}, "features": []}), "Bad Name"),
        (None, "no manifest"),
    ]:
        path = tmp_path / "m.json"
        if content is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(content)
        proc = subprocess.run([CONFORMANCE, "--manifest", str(path)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("jobwire-conformance: ") and expected in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
