"""scripts/containers.sh on a machine with no docker client (issue 9: with no /usr/bin/docker its
`docker` wrapper called itself until bash crashed with exit 139).

Each run is in a private mount namespace (unshare -m) where /dev/null is bind-mounted over every
`docker` on PATH and over /usr/bin/docker: no executable docker is left anywhere the script looks,
while the rest of the machine (and the engine other tests use) is untouched.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile

from conftest import ROOT

SCRIPT = str(ROOT / "scripts" / "containers.sh")


def docker_clients() -> list[str]:
    """Every docker file the script could run: /usr/bin/docker and each one on PATH."""
    found = ["/usr/bin/docker"] + [os.path.join(d, "docker") for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    return sorted({os.path.realpath(p) for p in found if os.path.isfile(p)} | {p for p in found if os.path.isfile(p)})


def without_docker(args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """bash scripts/containers.sh ARGS with every docker client masked; its own state in a temp dir."""
    masks = [f"mount --bind /dev/null {shlex.quote(p)}" for p in docker_clients()]
    check = '! [ -x "$(type -P docker)" ] && [ ! -x /usr/bin/docker ]'  # the premise, checked
    script = " && ".join(masks + [check, f"exec bash {shlex.quote(SCRIPT)} {args}"])
    with tempfile.TemporaryDirectory() as state:
        full = {**os.environ, "JOBWIRE_CONTAINERS_STATE": state, **(env or {})}
        return subprocess.run(
            ["unshare", "-m", "bash", "-c", script], capture_output=True, text=True, timeout=120, env=full
        )


def test_clean_without_docker_exits_0():
    done = without_docker("clean")
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-1500:]}"
    assert "no docker client here" in done.stderr


def test_docker_named_in_the_environment_does_not_recurse():
    # DOCKER=docker used to make the wrapper call itself (bash dies with SIGSEGV, exit 139).
    done = without_docker("clean", {"DOCKER": "docker"})
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-1500:]}"


def test_engine_without_a_client_fails_clearly():
    # docker.io counts as installed here, but its client is masked: a clear error, not a crash.
    done = without_docker("engine")
    assert done.returncode == 1, f"exit {done.returncode}: {done.stderr[-1500:]}"
    assert "no docker client" in done.stderr


def test_the_issue_command_exits_0():
    """The reproduction of issue 9, as written there."""
    assert os.path.isfile("/usr/bin/docker"), "docker.io's client is installed by containers.sh before the tests"
    done = subprocess.run(
        ["unshare", "-m", "bash", "-c", "mount --bind /dev/null /usr/bin/docker && bash scripts/containers.sh clean"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        # another docker client on PATH (not masked here) must not remove the
        # containers of the tests running now: it finds no engine
        env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-1500:]}"


def test_sdk_pin_is_the_extra_of_the_suite():
    """docker/requirements.txt locks the SDK the `image` extra of jobwire-conformance names: one version."""
    import re

    lock = re.search(r"^docker==(\S+)$", (ROOT / "docker" / "requirements.txt").read_text(), re.M)
    extra = re.search(r'^image = \["docker==([^"]+)"\]', (ROOT / "conformance" / "pyproject.toml").read_text(), re.M)
    assert lock and extra and lock.group(1) == extra.group(1), (lock and lock.group(0), extra and extra.group(0))
