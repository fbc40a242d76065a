"""Builds every artefact of the repository once per session and installs each outside the checkout.

- the sources are copied (the files git tracks or would track) to a temporary folder and built
  there, so a build needs nothing but committed files and writes nothing into the checkout;
- Python: `python -m build --no-isolation` with the dev venv's locked setuptools (build isolation
  would download setuptools from the registry on every run); sdist and wheel of `jobwire` and
  `jobwire-conformance`, installed into a fresh venv (wheels, `jobwire[web,gateway]`, with the runtime lock as
  constraints) and into a --target folder (built again from the sdists, without the repository);
- Node: `npm pack`, installed into an empty npm project (its dependencies from the registry);
- C: `make install PREFIX=...`.

Every program then runs from an empty folder outside the checkout, with a PATH that leaves out
the dev venv and an environment without JOBWIRE_* or REDIS_URL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobwire_conformance.redisutil import RedisServer

REPO = Path(__file__).resolve().parents[2]
DEV_PYTHON = sys.executable  # the dev venv: build, twine and pip with the locked versions
RUNTIME_LOCK = REPO / "python" / "requirements.lock"
PLAIN_PATH = "/usr/local/bin:/usr/bin:/bin"  # node, npm, make, redis-server; never the dev venv


def run(cmd, cwd=None, env=None, timeout=600, check=True) -> subprocess.CompletedProcess:
    """Run a command; on failure, the assertion shows its output."""
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def clean_env(**extra) -> dict:
    """The environment an outside user has: no dev venv on PATH, no jobwire settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("JOBWIRE_") and k not in ("REDIS_URL", "PYTHONPATH", "VIRTUAL_ENV")
    }
    env["PATH"] = PLAIN_PATH
    env.update(extra)
    return env


@dataclass
class Artefacts:
    dist: Path  # sdists, wheels and the npm tarball
    c_prefix: Path  # the C install tree

    def one(self, pattern: str) -> Path:
        found = sorted(self.dist.glob(pattern))
        assert len(found) == 1, f"expected one {pattern} in {self.dist}, found {found}"
        return found[0]


@dataclass
class Installed:
    venv: Path  # jobwire[web,gateway] and jobwire-conformance from the wheels
    node_project: Path  # an empty npm project with the npm tarball installed
    c_prefix: Path
    elsewhere: Path  # an empty folder outside the checkout to run things from

    @property
    def jobwire(self) -> Path:
        return self.venv / "bin" / "jobwire"

    @property
    def conformance(self) -> Path:
        return self.venv / "bin" / "jobwire-conformance"

    @property
    def node_bin(self) -> Path:
        return self.node_project / "node_modules" / ".bin"


def _source_files() -> list[str]:
    """The checkout's files that git tracks or would track (not ignored), as paths relative to it."""
    proc = run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
    return [p for p in proc.stdout.split("\0") if p]


@pytest.fixture(scope="session")
def work(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("packaging")
    assert REPO not in path.parents, "the packaging test must work outside the checkout"
    return path


@pytest.fixture(scope="session")
def source(work) -> Path:
    """A copy of the sources, symlinks kept as symlinks (python/LICENSE -> ../LICENSE)."""
    root = work / "src"
    for rel in _source_files():
        src = REPO / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the work tree, not yet committed
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)
    return root


@pytest.fixture(scope="session")
def artefacts(source, work) -> Artefacts:
    dist = work / "dist"
    for package in ("python", "conformance"):
        run([DEV_PYTHON, "-m", "build", "--no-isolation", "--outdir", dist, source / package])
    run(["npm", "pack", "--silent", "--pack-destination", dist], cwd=source / "examples-node", env=clean_env())
    prefix = work / "c"
    run(["make", "-s", "-C", source / "examples-c", "install", f"PREFIX={prefix}"], env=clean_env())
    return Artefacts(dist=dist, c_prefix=prefix)


@pytest.fixture(scope="session")
def installed(artefacts, work) -> Installed:
    venv = work / "venv"
    run([DEV_PYTHON, "-m", "venv", venv])
    wheel = artefacts.one("jobwire-*-py3-none-any.whl")
    conformance_wheel = artefacts.one("jobwire_conformance-*-py3-none-any.whl")
    run(
        [venv / "bin" / "pip", "install", "-q", "-c", RUNTIME_LOCK, f"{wheel}[web,gateway]", conformance_wheel],
        env=clean_env(),
    )
    project = work / "node-app"
    project.mkdir()
    (project / "package.json").write_text(json.dumps({"name": "app", "private": True, "type": "module"}))
    run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", artefacts.one("jobwire-*.tgz")],
        cwd=project,
        env=clean_env(),
    )
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return Installed(venv=venv, node_project=project, c_prefix=artefacts.c_prefix, elsewhere=elsewhere)


@pytest.fixture(scope="session")
def redis_url():
    with RedisServer() as server:
        yield server.url
