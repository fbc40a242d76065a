"""Job handlers used by the worker tests (imported by worker subprocesses with --import)."""

import json
import os

import jobwire
from jobwire import DontPerform, current_job


def _note(text):
    ctx = current_job()
    ctx.redis.rpush(f"{ctx.namespace}:test:notes", text)


@jobwire.job("Hooked")
class Hooked:
    def before_perform(mode):
        _note(f"before:{mode}")
        if mode == "skip":
            raise DontPerform()

    def around_perform(perform, mode):
        _note("around-in")
        perform()
        _note("around-out")

    def perform(mode):
        _note(f"perform:{mode}")
        if mode == "fail":
            raise ValueError("hooked failure")

    def after_perform(mode):
        _note("after")

    def on_failure(exc, mode):
        _note(f"on_failure:{type(exc).__name__}")


@jobwire.job("Exits")
def exits(code):
    raise SystemExit(code)


@jobwire.job("Pid")
def pid():
    _note(json.dumps({"pid": os.getpid(), "ppid": os.getppid()}))


jobwire.default_registry.on("after_fork", lambda job: current_job() is None and None)
