import shutil
import sys
from pathlib import Path

import pytest

CONFORMANCE = Path(__file__).resolve().parents[1]
REPO = CONFORMANCE.parent
sys.path.insert(0, str(CONFORMANCE / "src"))

# CI=true: a skipped test fails (the hooks live in the suite's package, one source for every conftest)
from jobwire_conformance.pytest_ci import pytest_make_collect_report, pytest_runtest_makereport  # noqa: E402,F401


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture
def vectors_copy(tmp_path, monkeypatch):
    """A writable copy of vectors/v1 that the self-check reads instead of the real one."""
    from jobwire_conformance import vectors

    copy = tmp_path / "v1"
    shutil.copytree(CONFORMANCE / "vectors" / "v1", copy)
    monkeypatch.setattr(vectors, "VECTORS_DIR", copy)
    return copy
