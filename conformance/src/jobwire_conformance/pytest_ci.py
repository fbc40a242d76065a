"""pytest hooks: with CI=true a skipped test fails (conformance/README.md, "No silent skips").

A skip outside CI is a convenience (Playwright or chromium missing on a laptop); in CI it hides a
broken setup, so the report is turned into a failure that says what was skipped and why. An
expected failure (xfail) is not a skip and is left alone. Imported by the conftest.py of each
pytest suite: python/tests, conformance/tests.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _fail_skip(rep, what: str) -> None:
    if in_ci() and rep.skipped and not hasattr(rep, "wasxfail"):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"{what} was skipped, and CI=true allows no skip: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip(outcome.get_result(), f"test {item.nodeid}")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skip(outcome.get_result(), f"module {collector.nodeid}")
