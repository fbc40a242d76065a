"""Issue 9's "done when": every artefact is built, installed outside the checkout, and works there.

The fixtures (conftest.py) build and install; each test here checks one promise of the packages:
the protocol files they carry are spec/'s bytes, every version agrees with VERSION, the metadata
passes `twine check`, and the installed programs enqueue, work, serve the web UI and pass the
conformance suite, run by the installed jobwire-conformance, from an empty folder.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

import pytest
import redis

from conftest import DEV_PYTHON, REPO, RUNTIME_LOCK, clean_env, run
from jobwire_conformance.redisutil import free_port

sys.path.insert(0, str(REPO / "tests"))
import install_check  # noqa: E402  (tests/install_check.py: the part of the suite an install runs)

VERSION = (REPO / "VERSION").read_text().strip()
SPEC_VERSION = (REPO / "spec" / "VERSION").read_text().strip()


# -- the files a package carries --------------------------------------------------------------


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (bytecode caches left out), by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")
    }


def in_zip(path: Path, prefix: str) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n[len(prefix) :]: z.read(n) for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")}


def in_tar(path: Path, prefix: str) -> dict[str, bytes]:
    with tarfile.open(path) as t:
        return {
            m.name[len(prefix) :]: t.extractfile(m).read()
            for m in t.getmembers()
            if m.isfile() and m.name.startswith(prefix)
        }


SPEC = tree(REPO / "spec")
VECTORS = tree(REPO / "conformance" / "vectors")
# What the Node package and the C install carry: every spec file but the Markdown prose.
RUNTIME_SPEC = {k: v for k, v in SPEC.items() if not k.endswith(".md")}


def conformance_data(files: dict[str, bytes]) -> dict[str, dict[str, bytes]]:
    """A jobwire_conformance/_data/ listing split into its parts."""
    parts = {"spec": {}, "vectors": {}, "schemas": {}}
    for name, data in files.items():
        head, _, rest = name.partition("/")
        if head in ("spec", "vectors"):
            parts[head][rest] = data
        else:
            parts["schemas"][name] = data
    return parts


CONFORMANCE_SCHEMAS = {
    n: (REPO / "conformance" / n).read_bytes() for n in ("vector.schema.json", "implementation.schema.json")
}


def test_python_packages_carry_spec_byte_for_byte(artefacts, work):
    wheel = artefacts.one("jobwire-*-py3-none-any.whl")
    sdist = artefacts.one("jobwire-*.tar.gz")
    assert in_zip(wheel, "jobwire/_spec/") == SPEC
    assert in_tar(sdist, f"jobwire-{VERSION}/src/jobwire/_spec/") == SPEC
    for name, files in [
        ("wheel", in_zip(artefacts.one("jobwire_conformance-*.whl"), "jobwire_conformance/_data/")),
        (
            "sdist",
            in_tar(
                artefacts.one("jobwire_conformance-*.tar.gz"),
                f"jobwire_conformance-{VERSION}/src/jobwire_conformance/_data/",
            ),
        ),
    ]:
        parts = conformance_data(files)
        assert parts["spec"] == SPEC, name
        assert parts["vectors"] == VECTORS, name
        assert parts["schemas"] == CONFORMANCE_SCHEMAS, name


def test_source_tree_holds_no_copy(artefacts):
    """The builds copy into their output only: a copy in src/ would shadow spec/ for the dev venv."""
    for copy in ("python/src/jobwire/_spec", "conformance/src/jobwire_conformance/_data"):
        assert not (REPO / copy).exists(), copy


def test_installed_copies_are_used(installed):
    """The installed packages read their own copies, byte-identical to spec/."""
    code = (
        "import jobwire.spec as s, jobwire_conformance.paths as p; "
        "print(s.spec_dir()); print(p.SPEC_DIR); print(p.VECTORS_DIR); print(p.REPO_ROOT)"
    )
    out = run([installed.venv / "bin" / "python", "-c", code], cwd=installed.elsewhere, env=clean_env())
    spec_dir, conf_spec, vectors, repo_root = out.stdout.split()
    assert Path(spec_dir).parent.name == "jobwire" and installed.venv in Path(spec_dir).parents
    assert tree(Path(spec_dir)) == SPEC and tree(Path(conf_spec)) == SPEC
    assert tree(Path(vectors)) == tree(REPO / "conformance" / "vectors" / "v1")
    assert repo_root == "None"


def pins(text: str) -> set[str]:
    """name==version lines of a lock or of `pip freeze`, names normalised as PEP 503 does."""
    out = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out.add(f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}")
    return out


def test_runtime_lock_is_exactly_what_installs(installed):
    """jobwire[web,gateway] and jobwire-conformance pull in every package of requirements.lock and no other:
    the lock is complete (every transitive pin) and holds nothing they do not need."""
    freeze = run([installed.venv / "bin" / "pip", "freeze", "--exclude-editable"], env=clean_env()).stdout
    ours = {p for p in pins(freeze) if not p.startswith(("jobwire==", "jobwire-conformance=="))}
    assert ours == pins(RUNTIME_LOCK.read_text())


def test_installed_gateway_has_its_stubs(installed):
    """The wheel carries the gRPC stubs generated from spec/proto at build time (jobwire[gateway])."""
    run(
        [installed.venv / "bin" / "python", "-c", "import jobwire.v1.worker_pb2, jobwire.v1.producer_pb2_grpc"],
        cwd=installed.elsewhere,
        env=clean_env(),
    )
    out = run([installed.jobwire, "gateway", "--help"], cwd=installed.elsewhere, env=clean_env()).stdout
    assert "--listen" in out


def test_sdists_build_and_install_without_the_repository(artefacts, work, installed):
    """pip builds each sdist in a folder of its own (no spec/ beside it) and installs the result."""
    target = work / "from-sdists"
    run(
        [
            DEV_PYTHON,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            target,
            artefacts.one("jobwire-*.tar.gz"),
            artefacts.one("jobwire_conformance-*.tar.gz"),
        ],
        env=clean_env(),
    )
    assert tree(target / "jobwire" / "_spec") == SPEC
    assert conformance_data(tree(target / "jobwire_conformance" / "_data"))["spec"] == SPEC
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import jobwire, jobwire_conformance; "
        "print(jobwire.__file__, jobwire.__version__, jobwire.spec.spec_dir(), jobwire_conformance.__version__)"
    )
    out = run([installed.venv / "bin" / "python", "-c", code, target], cwd=installed.elsewhere, env=clean_env())
    module, version, spec_dir, conformance_version = out.stdout.split()
    assert Path(module).is_relative_to(target) and Path(spec_dir) == target / "jobwire" / "_spec"
    assert version == conformance_version == VERSION


def test_npm_tarball_and_c_install_carry_spec(artefacts):
    assert in_tar(artefacts.one("jobwire-*.tgz"), "package/spec/") == RUNTIME_SPEC
    assert tree(artefacts.c_prefix / "share" / "jobwire") == RUNTIME_SPEC


# -- one version --------------------------------------------------------------------------------


def test_every_version_is_VERSION(artefacts, installed):
    """The wheels, the sdists, the npm package and every program name VERSION (and spec/VERSION)."""
    for pattern, member in [
        ("jobwire-*-py3-none-any.whl", f"jobwire-{VERSION}.dist-info/METADATA"),
        ("jobwire_conformance-*.whl", f"jobwire_conformance-{VERSION}.dist-info/METADATA"),
    ]:
        with zipfile.ZipFile(artefacts.one(pattern)) as z:
            assert f"\nVersion: {VERSION}\n" in z.read(member).decode()
    for pattern, member in [
        ("jobwire-*.tar.gz", f"jobwire-{VERSION}/PKG-INFO"),
        ("jobwire_conformance-*.tar.gz", f"jobwire_conformance-{VERSION}/PKG-INFO"),
    ]:
        with tarfile.open(artefacts.one(pattern)) as t:
            assert f"\nVersion: {VERSION}\n" in t.extractfile(member).read().decode()
    with tarfile.open(artefacts.one("jobwire-*.tgz")) as t:
        assert json.loads(t.extractfile("package/package.json").read())["version"] == VERSION
    assert json.loads((REPO / "examples-node" / "package.json").read_text())["version"] == VERSION
    programs = {
        "jobwire": [installed.jobwire, "version"],
        "jobwire-conformance": [installed.conformance, "--version"],
        "jobwire-worker": [installed.c_prefix / "bin" / "jobwire-worker", "--version"],
        "jobwire-node-worker": [installed.node_bin / "jobwire-node-worker", "--version"],
    }
    for name, cmd in programs.items():
        out = run(cmd, cwd=installed.elsewhere, env=clean_env()).stdout.strip()
        assert out == f"{name} {VERSION} (protocol {SPEC_VERSION})", out
    enqueue_tools = {  # they name the release only
        "jobwire-enqueue": [installed.c_prefix / "bin" / "jobwire-enqueue", "--version"],
        "jobwire-node-enqueue": [installed.node_bin / "jobwire-node-enqueue", "--version"],
    }
    for name, cmd in enqueue_tools.items():
        out = run(cmd, cwd=installed.elsewhere, env=clean_env()).stdout.strip()
        assert re.fullmatch(
            rf"{re.escape(name)} {re.escape(VERSION)}( \(protocol {re.escape(SPEC_VERSION)}\))?", out
        ), out


def test_twine_check(artefacts):
    files = sorted(artefacts.dist.glob("*.whl")) + sorted(artefacts.dist.glob("*.tar.gz"))
    assert len(files) == 4
    run([DEV_PYTHON, "-m", "twine", "check", "--strict", *files])


# -- the installed programs at work ----------------------------------------------------------------


def enqueuers(installed, url: str, ns: str) -> dict[str, list[str]]:
    """The installed enqueue commands, each before its QUEUE CLASS ARGS."""
    return {
        "python": [installed.jobwire, "--redis-url", url, "--namespace", ns, "enqueue"],
        "c": [installed.c_prefix / "bin" / "jobwire-enqueue", "--redis-url", url, "--namespace", ns],
        "node": [installed.node_bin / "jobwire-node-enqueue", "--redis-url", url, "--namespace", ns, "--"],
    }


def workers(installed, url: str, ns: str, queue: str) -> dict[str, list[str]]:
    timings = ["--heartbeat-ms", "200", "--lease-ms", "1500", "--block-timeout-ms", "500"]
    common = ["--queues", queue, "--redis-url", url, "--namespace", ns, *timings]
    return {
        "python": [installed.jobwire, "worker", "--import", "jobwire.conformance_jobs", *common],
        "c": [installed.c_prefix / "bin" / "jobwire-worker", *common],
        "node": [installed.node_bin / "jobwire-node-worker", *common],
    }


def echoes(r: redis.Redis, ns: str) -> list[dict]:
    return [json.loads(x) for x in r.lrange(f"{ns}:jobwire:conformance:echo", 0, -1)]


def wait_for(predicate, timeout=20.0, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")


def stop(procs) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_installed_enqueuers_and_workers(installed, redis_url):
    """Each installed enqueuer (Python, C, Node) sends a job to each installed worker, which runs it."""
    ns = f"pkg{uuid.uuid4().hex[:8]}"
    r = redis.Redis.from_url(redis_url)
    procs = [
        subprocess.Popen(
            [str(c) for c in workers(installed, redis_url, ns, f"to-{name}")[name]],
            cwd=installed.elsewhere,
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in ("python", "c", "node")
    ]
    try:
        sent = {}
        for enq, cmd in enqueuers(installed, redis_url, ns).items():
            for worker in ("python", "c", "node"):
                out = run(
                    [*cmd, f"to-{worker}", "jobwire.Echo", json.dumps(f"{enq}->{worker}")],
                    cwd=installed.elsewhere,
                    env=clean_env(),
                ).stdout.strip()
                sent[out] = (enq, worker)
        got = wait_for(lambda: (e := echoes(r, ns)) and len(e) >= len(sent) and e, message="nine echoes")
        seen = {e["id"]: (e["args"], e["impl"], e["queue"]) for e in got}
        for job_id, (enq, worker) in sent.items():
            assert seen[job_id] == ([f"{enq}->{worker}"], worker, f"to-{worker}")
    finally:
        stop(procs)
        r.close()


def test_installed_web_ui(installed, redis_url):
    """`pip install 'jobwire[web]'` serves the UI: its page, its static files and its API."""
    ns = f"pkg{uuid.uuid4().hex[:8]}"
    run(
        [installed.jobwire, "--redis-url", redis_url, "--namespace", ns, "enqueue", "web-q", "C", "1"],
        cwd=installed.elsewhere,
        env=clean_env(),
    )
    port = free_port()
    proc = subprocess.Popen(
        [str(installed.jobwire), "web", "--redis-url", redis_url, "--namespace", ns, "--port", str(port)],
        cwd=installed.elsewhere,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def get(path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as resp:
                return resp.status, resp.read().decode()
        except OSError:
            return None

    try:
        status, page = wait_for(lambda: get("/"), message="the web UI")
        assert status == 200 and "web-q" in page and VERSION in page
        assert get("/static/app.css")[0] == 200
        assert "web-q" in get("/api/queues")[1]
    finally:
        stop([proc])


def installed_manifest(installed, name: str) -> dict:
    """This repository's manifest NAME, with its worker program swapped for the installed one.

    The claimed mode, impl and features stay the repository's (one source for them); the
    checkout-relative parts (build, requires, enqueuer) go.
    """
    data = json.loads((REPO / "conformance" / "implementations" / f"{name}.json").read_text())
    program = {
        "python": [str(installed.jobwire)],
        "c": [str(installed.c_prefix / "bin" / "jobwire-worker")],
        "node": [str(installed.node_bin / "jobwire-node-worker")],
    }[name]
    argv = data["worker"]["argv"]
    first_flag = next(i for i, a in enumerate(argv) if a.startswith("--") or a == "worker")
    data["worker"] = {"argv": program + argv[first_flag:], "cwd": "."}
    data["requires"] = program[:1]
    for key in ("build", "enqueuer", "$comment"):
        data.pop(key, None)
    return data


def test_installed_conformance_against_installed_workers(installed, work):
    """The installed jobwire-conformance, given --manifest files, passes the installed workers.

    It runs the part of the suite that exercises what the packages carry (tests/install-check.txt:
    every Lua script, schema and spec file, the entry points and signals); the full suite runs
    against the same sources in scripts/conformance.sh."""
    paths = []
    for name in ("python", "c", "node"):
        path = installed.elsewhere / f"{name}.json"
        path.write_text(json.dumps(installed_manifest(installed, name), indent=2))
        paths += ["--manifest", path.name]
    report = installed.elsewhere / "conformance.json"
    proc = run(
        [
            installed.conformance,
            *paths,
            *install_check.only_args(),
            "--no-figures",
            "--quiet",
            "--json",
            report.name,
            "--junit",
            "conformance.xml",
        ],
        cwd=installed.elsewhere,
        env=clean_env(),
        check=False,
        timeout=900,
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    impls = data.get("implementations", {})
    assert proc.returncode == 0 and set(impls) == {"python", "c", "node"}, proc.stdout[-4000:] + proc.stderr[-2000:]
    for name, rep in impls.items():
        assert rep["status"] == "ran" and rep["conformant"], (name, rep.get("reason"))
    assert not install_check.report_problems(data), install_check.report_problems(data)
    assert (installed.elsewhere / "conformance.xml").is_file()


# -- conformance/README.md's CI recipe -------------------------------------------------------------


def recipe_block(marker: str) -> str:
    """The fenced block right after `<!-- ci-recipe:MARKER ...-->` in conformance/README.md."""
    text = (REPO / "conformance" / "README.md").read_text()
    m = re.search(r"<!-- ci-recipe:" + re.escape(marker) + r"\b[^>]*-->\s*```[a-z]*\n(.*?)\n\s*```", text, re.S)
    assert m, f"no ci-recipe:{marker} block in conformance/README.md"
    return re.sub(r"^ {3}", "", m.group(1), flags=re.M)  # the manifest sits in a list item


def test_conformance_readme_ci_recipe(artefacts, work):
    """The pip recipe, line for line, in an empty folder, against the C worker built by make setup.

    Three substitutions only: the worker's path (the recipe's build/my-worker), the package (the
    wheel built here instead of the one on the registry, with the runtime lock as constraints), and
    the part of the suite the run selects (tests/install-check.txt: the recipe's own lines are what
    is proven here; the C worker passes the full suite in scripts/conformance.sh).
    """
    worker = REPO / "examples-c" / "jobwire-worker"
    assert worker.is_file(), "make setup builds examples-c/jobwire-worker"
    folder = work / "implementer"
    folder.mkdir()
    manifest = json.loads(recipe_block("manifest"))
    assert manifest["requires"] == ["build/my-worker"] and manifest["worker"]["argv"][0] == "build/my-worker"
    manifest["requires"] = [str(worker)]
    manifest["worker"]["argv"][0] = str(worker)
    manifest["impl"] = "c"
    (folder / "jobwire-conformance.json").write_text(json.dumps(manifest))
    script = recipe_block("pip")
    wheel = artefacts.one("jobwire_conformance-*.whl")
    assert script.count("pip install jobwire-conformance") == 1
    script = script.replace("pip install jobwire-conformance", f"pip install -q -c {RUNTIME_LOCK} {wheel}")
    assert script.count("--junit conformance.xml") == 1
    script = script.replace("--junit conformance.xml", "--junit conformance.xml " + " ".join(install_check.only_args()))
    proc = run(["bash", "-euo", "pipefail", "-c", script], cwd=folder, env=clean_env(), check=False, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"jobwire-conformance {VERSION} (protocol {SPEC_VERSION})" in proc.stdout
    report = json.loads((folder / "conformance.json").read_text())
    (rep,) = report["implementations"].values()
    assert rep["conformant"] and rep["counts"]["fail"] == 0
    assert not install_check.report_problems(report), install_check.report_problems(report)
    assert (folder / "conformance.xml").is_file()


def test_installed_suite_without_a_checkout_says_what_it_needs(installed):
    """No manifests ship with the package: a run that needs them says so instead of skipping all."""
    for args, message in [([], "--manifest"), (["--matrix"], "checkout"), (["--impl", "c"], "--manifest")]:
        proc = run([installed.conformance, *args], cwd=installed.elsewhere, env=clean_env(), check=False)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not JSON"),
        ('{"name": "x", "worker": {"argv": ["w"]}, "features": ["telepathy"]}', "telepathy"),
    ],
)
def test_bad_manifest_is_one_clear_line(installed, content, message):
    path = installed.elsewhere / f"bad-{uuid.uuid4().hex[:6]}.json"
    path.write_text(content)
    proc = run([installed.conformance, "--manifest", path], cwd=installed.elsewhere, env=clean_env(), check=False)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
