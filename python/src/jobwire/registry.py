"""Which code runs for which job class, and the hooks around it.

A class name read from Redis maps only to a handler registered here, never to an import
(protocol.md section 7.4). Register a function, or a class with a static `perform` and any of
Resque's job hooks:

    @jobwire.job("Mail")
    def mail(to, subject): ...

    @jobwire.job("Archive")
    class Archive:
        def perform(path): ...                    # static methods: no self
        def before_perform(path): ...             # raise jobwire.DontPerform to skip the job
        def around_perform(perform, path): ...    # must call perform()
        def after_perform(path): ...              # only after success
        def on_failure(exc, path): ...
        def before_enqueue(path): ...             # return False to cancel the enqueue
        def after_enqueue(path): ...

Worker hooks: `registry.on("before_first_fork" | "before_fork" | "after_fork", fn)`; before_fork
and after_fork receive the Job.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Registry", "Handler", "DontPerform", "default_registry", "job"]

WORKER_HOOKS = ("before_first_fork", "before_fork", "after_fork")


class DontPerform(Exception):
    """Raised by before_perform to skip a job silently (it counts as processed, not failed)."""


def _static(target, name):
    hook = getattr(target, name, None)
    return hook if callable(hook) else None


class Handler:
    """A registered job class with its hooks, called with the job's args."""

    def __init__(self, name: str, target) -> None:
        self.name = name
        self.target = target
        if isinstance(target, type):
            self.perform_fn = _static(target, "perform")
            if self.perform_fn is None:
                raise TypeError(f"job class {name}: {target.__name__} has no perform()")
        elif callable(target):
            self.perform_fn = target
        else:
            raise TypeError(f"job class {name}: handler must be a function or a class with perform()")

    def _hook(self, name):
        return _static(self.target, name) if isinstance(self.target, type) else None

    def perform(self, args: list) -> None:
        before, around, after = (self._hook(n) for n in ("before_perform", "around_perform", "after_perform"))
        if before:
            before(*args)
        if around:
            around(lambda: self.perform_fn(*args), *args)
        else:
            self.perform_fn(*args)
        if after:
            after(*args)

    def on_failure(self, exc: BaseException, args: list) -> None:
        hook = self._hook("on_failure")
        if hook:
            hook(exc, *args)

    def before_enqueue(self, *args) -> bool:
        hook = self._hook("before_enqueue")
        return hook is None or hook(*args) is not False

    def after_enqueue(self, *args) -> None:
        hook = self._hook("after_enqueue")
        if hook:
            hook(*args)


class Registry:
    """Handlers by class name, plus worker hooks."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._hooks: dict[str, list[Callable]] = {name: [] for name in WORKER_HOOKS}

    def register(self, name: str, target) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("a job class name is a non-empty string")
        self._handlers[name] = Handler(name, target)

    def job(self, name: str):
        """Decorator form of register()."""

        def decorate(target):
            self.register(name, target)
            return target

        return decorate

    def get(self, name: str) -> Handler | None:
        return self._handlers.get(name)

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def on(self, hook: str, fn: Callable) -> Callable:
        if hook not in self._hooks:
            raise ValueError(f"unknown worker hook {hook!r}; known: {', '.join(WORKER_HOOKS)}")
        self._hooks[hook].append(fn)
        return fn

    def has_hooks(self, hook: str) -> bool:
        return bool(self._hooks[hook])

    def run_hooks(self, hook: str, *args) -> None:
        for fn in self._hooks[hook]:
            fn(*args)


default_registry = Registry()
job = default_registry.job
