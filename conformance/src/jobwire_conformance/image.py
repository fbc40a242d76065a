"""Workers under test that run in their own container image (`--image`), through the Docker SDK.

Many implementers ship their worker as an image. The suite then starts the worker as the main
process of a container of that image and does, through the engine, what it does to a `--worker-cmd`
process through the kernel:

- the container uses the host's network (the worker reaches the suite's Redis on 127.0.0.1) and the
  host's pid namespace, so the pid in the worker's id is the container's State.Pid, the pid the
  suite knows, exactly as for a process it spawned itself;
- signals go through the engine (`container.kill(signal=...)`), SIGKILL and SIGSTOP included;
- the worker's output is the container's log (`container.logs()`);
- the worker's processes (the forked child running a job, for the orphan check) are the
  container's processes as the engine lists them (`container.top()`), less the master.

The Docker SDK for Python is an optional dependency: `pip install 'jobwire-conformance[image]'`.
"""

from __future__ import annotations

import os
import socket
import threading
import time

LABEL = "org.jobwire.conformance.worker"  # on every container the suite starts; value: the runner
INSTALL_HINT = "pip install 'jobwire-conformance[image]' (the Docker SDK for Python)"

STATE_AGE_S = 0.1  # how stale a container's state may be (alive(), wait())
_local = threading.local()


def engine():
    """This thread's Docker client (the SDK's HTTP session is not shared between threads)."""
    client = getattr(_local, "client", None)
    if client is None:
        try:
            import docker
        except ImportError as exc:
            raise RuntimeError(f"--image needs the Docker SDK for Python: {INSTALL_HINT}") from exc
        client = _local.client = docker.from_env(timeout=120)
    return client


def preflight(image: str) -> str | None:
    """Why workers of IMAGE cannot be started here (no SDK, no engine, no such image), or None."""
    try:
        client = engine()
    except RuntimeError as exc:  # no SDK installed
        return str(exc)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure here is a setup error, reported as text
        return f"no Docker engine reachable ({type(exc).__name__}: {exc}); DOCKER_HOST selects another"
    import docker.errors

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return f"no image {image!r} in the engine (docker pull or docker build it first)"
    except docker.errors.APIError as exc:
        return f"cannot inspect image {image!r}: {exc}"
    return None


class _EngineProcess:
    """The part of subprocess.Popen the suites use (`w.proc.send_signal`), through the engine."""

    def __init__(self, worker: ImageWorker) -> None:
        self._worker = worker

    def send_signal(self, sig: int) -> None:
        self._worker.signal(sig)

    def poll(self) -> int | None:
        return None if self._worker.alive() else self._worker.returncode

    @property
    def returncode(self) -> int | None:
        return self._worker.returncode


class ImageWorker:
    """One worker container started by the runner; the same interface as impl.WorkerProc."""

    def __init__(
        self, impl, values: dict, log_dir: str, volumes: dict | None = None, extra_env: dict | None = None
    ) -> None:
        from .impl import render

        self.impl = impl
        self.argv = render(impl.worker_argv, values)
        env = {k: render([v], values)[0] for k, v in impl.env.items()}
        env.update(extra_env or {})  # what a test adds (as WorkerProc's extra_env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        run = dict(
            command=self.argv,
            detach=True,
            network_mode="host",
            pid_mode="host",
            environment=env,
            labels={LABEL: f"{socket.gethostname()}:{os.getpid()}"},
            volumes=volumes or {},
        )
        if impl.image_entrypoint:  # --image-cmd: the whole command line, the image's entrypoint replaced
            run.update(entrypoint=self.argv[:1], command=self.argv[1:])
        self.returncode: int | None = None
        self._last_output = ""
        self._state_at = float("-inf")
        self._state_cache: dict = {}
        self.started = time.monotonic()
        self.container = engine().containers.run(impl.image, **run)
        self.container.reload()
        self.pid = int(self.container.attrs["State"]["Pid"])  # 0 if it already exited
        self.proc = _EngineProcess(self)
        self.worker_id: str | None = None

    def _state(self) -> dict:
        """The container's State from the engine, at most STATE_AGE_S old; {} once it is gone.
        The suite polls alive() every 20 ms; asking the engine each time would load it (and a
        loaded machine) with hundreds of requests a second for no better answer."""
        import docker.errors

        if time.monotonic() - self._state_at >= STATE_AGE_S:
            try:
                self.container.reload()
                self._state_cache = self.container.attrs.get("State", {})
            except docker.errors.NotFound:
                self._state_cache = {}
            self._state_at = time.monotonic()
        return self._state_cache

    def signal(self, sig: int) -> None:
        """Send sig to the worker (the container's main process) through the engine."""
        import docker.errors

        if self.alive():
            try:
                self.container.kill(signal=int(sig))
            except docker.errors.APIError:  # it exited in between, as a process may
                pass

    def alive(self) -> bool:
        state = self._state()
        if state.get("Running"):  # a SIGSTOPped worker is alive, as for a process
            return True
        if state.get("Status") in ("exited", "dead"):
            self.returncode = state.get("ExitCode")
        return False

    def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)
        return self.returncode

    def children(self) -> list[int]:
        """Every process of the container except the worker itself (host pids, from the engine)."""
        import docker.errors

        try:
            top = self.container.top()
        except docker.errors.APIError:  # not running: no processes
            return []
        column = top["Titles"].index("PID")
        return [int(row[column]) for row in top.get("Processes") or [] if int(row[column]) != self.pid]

    def kill_all(self) -> None:
        """SIGKILL the worker and whatever it forked, and remove the container (its log is kept)."""
        import docker.errors

        self._last_output = self.output(4000)
        try:
            self.container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError:  # removal already in progress
            self.wait(5)

    def log_bytes(self) -> bytes:
        """Everything the worker wrote so far, read through the engine (as WorkerProc.log_bytes)."""
        import docker.errors

        try:
            return self.container.logs(stdout=True, stderr=True)
        except docker.errors.APIError:
            return self._last_output.encode("utf-8", "replace")

    def output(self, tail: int = 1500) -> str:
        return self.log_bytes()[-tail:].decode("utf-8", "replace")

    def describe(self) -> str:
        status = "running" if self.alive() else f"exited {self.returncode}"
        return (
            f"worker container {self.container.short_id} of {self.impl.image}, pid {self.pid} ({status}); "
            f"last output:\n{self.output(800)}"
        )


def held_impl(impl, hold: str, flag: str):
    """The image's worker command (its entrypoint, or --image-cmd) under `/bin/sh -c HOLD FLAG ...`,
    for the suite's held start (suite_liveness.start_held): the pid is known before the worker runs.
    The image needs /bin/sh; the flag's folder is mounted into the container at the same path."""
    import dataclasses

    argv = list(impl.worker_argv)
    if not impl.image_entrypoint:
        argv = list(engine().images.get(impl.image).attrs["Config"].get("Entrypoint") or []) + argv
    return dataclasses.replace(impl, worker_argv=["/bin/sh", "-c", hold, flag, *argv], image_entrypoint=True)


def start_held(impl, values: dict, log_dir: str, hold: str, flag: str) -> ImageWorker:
    folder = os.path.dirname(flag)
    return ImageWorker(held_impl(impl, hold, flag), values, log_dir, volumes={folder: {"bind": folder, "mode": "ro"}})
