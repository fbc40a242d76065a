"""A fresh machine: the README's setup from nothing, in a container of the bare stand-in Debian 12
base (debootstrap's minbase plus ca-certificates: no Python, no Node, no Redis, no compiler, no
make). The committed files (`git archive HEAD`) are copied in; then, as root on the host's network,
as a new user would: `apt-get install make` (the README's one prerequisite), `make setup`, `make
demo`, the Python smoke tests, the Node tests, the conformance suite's install check against the
Python, Node and C workers built there, and the install of the benchmark's peers (what `make bench`
installs first). Also `scripts/containers.sh clean` where no docker exists at all.

What this proves is the install from nothing, not the code (the host runs every suite in full on
the same commit): that `make setup` installs everything the tests, the demo and the benchmark need,
and that each installed tool runs from that install:
- `make demo`: the Python, Node and C workers and enqueuers, started as the README says; the step
  fails unless all three ran (its first line names the workers found);
- `pytest -m smoke python/tests` (CI=true: nothing skips): the tests marked `smoke`, at least one
  for each thing the install brings (python/README.md, "Tests": the venv of both locks, the
  jobwire and jobwire-conformance editable installs, the generated gRPC stubs, Debian's
  redis-server, chromium, socat and openssl, node_modules);
- the whole Node suite: the machine's Node is Debian's 18 here (the host has 20), so this is the
  one run of the Node tests on the oldest Node the workers support;
- `jobwire-conformance` with tests/install-check.txt's part (tests/install_check.py checks the
  report): the suite and the three workers as built by `make setup`;
- `bench/run.py --install-only`: the benchmark's own venv, npm peers and C enqueuer.

apt uses the Debian mirror of this machine's apt sources (the base was bootstrapped from it); pip
and npm get this machine's index and registry settings, read at run time (containers.sh passes
them). Downloads are kept between runs in $JOBWIRE_CONTAINERS_STATE/fresh-cache (apt's .deb
archive, pip's and npm's caches), like a local mirror: every package is still installed from
nothing in the container; only the bytes are not fetched again.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from conftest import LABELS, ROOT, RUN_ID, remove

BASE = os.environ.get("JOBWIRE_STANDIN_DEBIAN", "jobwire-standin/debian:bookworm")
STATE = Path(os.environ.get("JOBWIRE_CONTAINERS_STATE", "/var/lib/jobwire-containers"))
TIMEOUT = int(os.environ.get("JOBWIRE_FRESH_TIMEOUT", "1800"))

# Each step prints a marker line, so that the log says how long each took.
STEPS = r"""
set -euo pipefail
step() { echo "== step $1 $(date +%s)"; }
cd /jobwire
step bare
for tool in python3 node npm redis-server gcc make docker; do
  if command -v "$tool" >/dev/null; then echo "not a bare machine: $tool is installed"; exit 97; fi
done
step containers-clean
bash scripts/containers.sh clean
step apt-make
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make >/dev/null
step make-setup
make setup
step demo
make demo | tee /tmp/demo.out
grep -q '^demo: .*; workers: python, node, c$' /tmp/demo.out || { echo "make demo did not run all three workers"; exit 96; }
step python-smoke
JOBWIRE_HOSTILE_EXAMPLES=10 .venv/bin/python -m pytest -q -p no:cacheprovider -m smoke python/tests
step node-tests
(cd examples-node && npm test)
step conformance
mapfile -t only < <(awk '!/^#/ && NF { print "--only"; print $1 }' tests/install-check.txt)
.venv/bin/jobwire-conformance --impl python --impl node --impl c --no-figures "${only[@]}" \
  --json /tmp/fresh-conformance.json
.venv/bin/python tests/install_check.py /tmp/fresh-conformance.json
step bench-install
.venv/bin/python bench/run.py --install-only
step done
"""


def checkout_tar() -> bytes:
    """The committed files of the checkout under jobwire/, as a tar (what a clean clone holds)."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", "--prefix=jobwire/", "HEAD"],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, f"git archive HEAD failed: {done.stderr.decode()[-500:]}"
    return done.stdout


def package_env() -> dict:
    """pip's index and npm's registry of this machine (containers.sh read them from its configuration).
    file:// locations are this machine's disk, not reachable in the container: left out."""
    env = {"CI": "true", "DEBIAN_FRONTEND": "noninteractive", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for name, var in (
        ("JW_PIP_INDEX_URL", "PIP_INDEX_URL"),
        ("JW_PIP_EXTRA_INDEX_URL", "PIP_EXTRA_INDEX_URL"),
        ("JW_NPM_REGISTRY", "NPM_CONFIG_REGISTRY"),
    ):
        urls = [u for u in os.environ.get(name, "").split() if u.startswith(("http://", "https://"))]
        if urls:
            env[var] = " ".join(urls)
    return env


def caches() -> dict:
    """Download caches kept between runs (host directories under STATE/fresh-cache)."""
    mounts = {}
    for name, path in (("apt", "/var/cache/apt/archives"), ("pip", "/root/.cache/pip"), ("npm", "/root/.npm")):
        host = STATE / "fresh-cache" / name
        host.mkdir(parents=True, exist_ok=True)
        mounts[str(host)] = {"bind": path, "mode": "rw"}
    return mounts


def step_times(log: str) -> dict[str, int]:
    marks = [line.split()[2:4] for line in log.splitlines() if line.startswith("== step ")]
    return {name: int(marks[i + 1][1]) - int(t) for i, (name, t) in enumerate(marks[:-1])}


def test_fresh_machine_setup_and_tests(engine, images):
    ctr = engine.containers.create(
        BASE,
        ["bash", "-c", STEPS],
        name=f"{RUN_ID}-fresh-machine",
        network_mode="host",
        init=True,
        shm_size="512m",
        environment=package_env(),
        volumes=caches(),
        labels=LABELS,
        working_dir="/",
    )
    try:
        assert ctr.put_archive("/", checkout_tar()), "docker cp of the checkout failed"
        t0 = time.monotonic()
        ctr.start()
        code = ctr.wait(timeout=TIMEOUT)["StatusCode"]
        log = ctr.logs().decode("utf-8", "replace")
    finally:
        remove(ctr)
    (STATE / "fresh-machine.log").write_text(log)
    times = step_times(log)
    print(f"fresh machine: {time.monotonic() - t0:.0f} s; steps (s): {times}")
    assert code == 0, f"exit {code} after steps {times}; log {STATE / 'fresh-machine.log'}, its end:\n{log[-4000:]}"
    assert "done" in [line.split()[2] for line in log.splitlines() if line.startswith("== step ")]
