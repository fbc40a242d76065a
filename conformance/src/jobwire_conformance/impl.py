"""Implementation manifests (conformance/implementations/*.json, or any file given with
--manifest) and worker processes.

A manifest's relative paths (`requires`, each `cwd`, a relative argv[0]) are relative to its root:
the repository root for this repository's manifests, and the folder the suite runs in for
--manifest and --worker-cmd (an implementer's CI runs it from their own checkout's root).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema

from .paths import IMPLEMENTATION_SCHEMA, IMPLEMENTATIONS_DIR, REPO_ROOT, SPEC_DIR
from .redisutil import descendants_of, pid_alive

FEATURES = {
    "kill-running-job": "SIGUSR1 and the kill control command end the running job as jobwire.Killed (protocol.md 7.5)",
    "fork-per-job": "each job runs in a forked child that dies with its master (protocol.md 7.4)",
    "job-timeout": "--job-timeout-ms kills a job that runs too long and fails it as jobwire.Timeout",
    "delayed": "protocol 1.1: the worker promotes due delayed jobs and retries, without a leader (protocol.md 14.3)",
    "retries": "protocol 1.1: retry policies, the backoff formula and attempt history (protocol.md 14.4)",
    "schedules": "protocol 1.1: the worker fires recurring schedules exactly once (protocol.md 14.5)",
    "quiet-idle": "protocol 1.3: an idle worker costs Redis at most 1 command a second at the defaults (protocol.md 16)",
}

# The flags the runner passes a --worker-cmd, from spec/options.json (their one source); every
# option but --concurrency, which the suite never changes.
STANDARD_FLAGS = [
    (o["flag"], o["name"])
    for o in json.loads((SPEC_DIR / "options.json").read_text())["options"]
    if o["name"] != "concurrency"
]

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def render(argv: list[str], values: dict) -> list[str]:
    """Substitute {name} placeholders; an element "{args...}" expands to values["args"]."""
    out = []
    for element in argv:
        if element == "{args...}":
            out.extend(values.get("args", []))
            continue
        out.append(_PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), element))
    return out


@dataclass
class Implementation:
    name: str
    worker_argv: list[str]
    cwd: str = "."
    env: dict = field(default_factory=dict)
    mode: str | None = "fork"
    impl: str | None = None
    features: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    build: dict | None = None
    enqueuer: dict | None = None
    description: str = ""
    matrix_only: bool = False
    worker_id_pid_suffix: bool = False
    # test id (or id prefix ending in ".") -> why it cannot apply; declared in the manifest
    not_applicable: dict = field(default_factory=dict)
    image: str | None = None  # --image: the worker runs in a container of this image (image.py)
    image_entrypoint: bool = False  # --image-cmd given: worker_argv replaces the image's entrypoint
    root: Path | None = None  # what relative paths are relative to (module docstring); None: REPO_ROOT

    @property
    def base(self) -> Path:
        return self.root or REPO_ROOT or Path.cwd()

    @classmethod
    def load(cls, name: str) -> Implementation:
        """One of this repository's manifests, by name (conformance/implementations/NAME.json)."""
        path = IMPLEMENTATIONS_DIR / f"{name}.json"
        if not path.exists():
            raise FileNotFoundError(
                f"no manifest {path}"
                + ("" if REPO_ROOT else " (an installed suite has none: give --manifest FILE or --worker-cmd CMD)")
            )
        return cls.load_file(path, root=REPO_ROOT)

    @classmethod
    def load_file(cls, path: str | Path, root: Path | None = None) -> Implementation:
        """A manifest file, checked against implementation.schema.json (a bad one is a ValueError)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"no manifest {path}") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"manifest {path} is not JSON: {exc}") from None
        schema = json.loads(IMPLEMENTATION_SCHEMA.read_text(encoding="utf-8"))
        problem = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
        if problem is not None:
            where = "/".join(str(p) for p in problem.absolute_path) or "the top level"
            raise ValueError(f"manifest {path}: {problem.message} (at {where}; see implementation.schema.json)")
        worker = data.get("worker") or {}
        return cls(
            name=data.get("name", path.stem),
            worker_argv=worker.get("argv", []),
            cwd=worker.get("cwd", "."),
            env=worker.get("env", {}),
            mode=data.get("mode"),
            impl=data.get("impl"),
            features=data.get("features", []),
            requires=data.get("requires", []),
            build=data.get("build"),
            enqueuer=data.get("enqueuer"),
            description=data.get("description", ""),
            matrix_only=data.get("matrix_only", False),
            not_applicable=data.get("not_applicable", {}),
            root=(root or Path.cwd()).resolve(),
        )

    @classmethod
    def from_command(
        cls, command: str, mode: str | None = None, features: list[str] | None = None, impl: str | None = None
    ) -> Implementation:
        argv = shlex.split(command)
        if not any(_PLACEHOLDER.search(a) for a in argv):
            for flag, name in STANDARD_FLAGS:
                argv += [flag, "{%s}" % name]
        return cls(
            name="worker-cmd",
            worker_argv=argv,
            mode=mode,
            features=features or [],
            impl=impl,
            description=f"--worker-cmd {command}",
            root=Path.cwd().resolve(),
        )

    @classmethod
    def from_image(
        cls,
        image: str,
        command: str | None = None,
        mode: str | None = None,
        features: list[str] | None = None,
        impl: str | None = None,
    ) -> Implementation:
        """--image IMAGE [--image-cmd CMD]: the image's entrypoint, or CMD, plus the standard flags."""
        argv = shlex.split(command or "")
        if not any(_PLACEHOLDER.search(a) for a in argv):
            for flag, name in STANDARD_FLAGS:
                argv += [flag, "{%s}" % name]
        shown = f"--image {image}" + (f" --image-cmd {command}" if command else "")
        return cls(
            name="image",
            worker_argv=argv,
            mode=mode,
            features=features or [],
            impl=impl,
            description=shown,
            image=image,
            image_entrypoint=bool(command),
        )

    def spawn(self, values: dict, log_dir: str, extra_env: dict | None = None):
        """Start one worker: a process of worker_argv, or a container of the image."""
        if self.image:
            from .image import ImageWorker

            return ImageWorker(self, values, log_dir, extra_env=extra_env)
        return WorkerProc(self, values, log_dir, extra_env)

    def missing(self) -> list[str]:
        """Files the manifest requires that do not exist (the implementation is then skipped)."""
        return [p for p in self.requires if not (self.base / p).exists()]

    def has(self, feature: str) -> bool:
        return feature in self.features

    def not_applicable_reason(self, test) -> str | None:
        """Why `test` cannot apply to this implementation, or None: a test of an optional
        feature the manifest does not claim, or an id the manifest declares not applicable."""
        if test.feature and not self.has(test.feature):
            return f"not applicable: optional feature {test.feature!r} not claimed by {self.name}"
        for key, why in self.not_applicable.items():
            if test.id == key or (key.endswith(".") and test.id.startswith(key)):
                return f"not applicable (declared by the {self.name} manifest): {why}"
        return None

    def run_build(self, log) -> str | None:
        """Run the optional build command; returns an error text or None."""
        if not self.build:
            return None
        argv = self.build["argv"]
        cwd = self.base / self.build.get("cwd", ".")
        try:
            done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"build {argv} failed: {exc}"
        if done.returncode != 0:
            return f"build {argv} exited {done.returncode}: {(done.stderr or done.stdout)[-800:]}"
        log(f"built {self.name}: {' '.join(argv)}")
        return None

    def enqueue_argv(self, values: dict) -> tuple[list[str], str]:
        e = self.enqueuer
        if e is None:
            raise RuntimeError(f"{self.name} declares no enqueuer")
        return render(e["argv"], values), str(self.base / e.get("cwd", "."))


class WorkerProc:
    """One worker process started by the runner; output goes to a temporary log file."""

    def __init__(self, impl: Implementation, values: dict, log_dir: str, extra_env: dict | None = None) -> None:
        self.impl = impl
        self.argv = render(impl.worker_argv, values)
        env = dict(os.environ)
        env.update({k: render([v], values)[0] for k, v in impl.env.items()})
        env.update(extra_env or {})  # e.g. JOBWIRE_DEFAULT_RETRY for protocol 1.1 tests
        env.setdefault("PYTHONUNBUFFERED", "1")
        fd, self.log_path = tempfile.mkstemp(prefix=f"{impl.name}-", suffix=".log", dir=log_dir)
        self.log = os.fdopen(fd, "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv,
            cwd=impl.base / impl.cwd,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.worker_id: str | None = None

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def children(self) -> list[int]:
        return descendants_of(self.pid)

    def kill_all(self) -> None:
        """SIGKILL the worker and whatever it forked (by pid: its process group and descendants)."""
        pids = self.children() if self.alive() else []
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in pids:
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.wait(5)
        self.log.close()

    def log_bytes(self) -> bytes:
        """Everything the worker wrote so far (stdout and stderr), b"" when its log is unreadable."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def output(self, tail: int = 1500) -> str:
        return self.log_bytes()[-tail:].decode("utf-8", "replace")

    def describe(self) -> str:
        status = "running" if self.alive() else f"exited {self.proc.returncode}"
        return f"worker pid {self.pid} ({status}); last output:\n{self.output(800)}"


def available() -> list[str]:
    """This repository's manifests by name (none when the suite is installed from a wheel)."""
    return sorted(p.stem for p in IMPLEMENTATIONS_DIR.glob("*.json")) if IMPLEMENTATIONS_DIR.is_dir() else []
