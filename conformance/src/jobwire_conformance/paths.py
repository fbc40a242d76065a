"""Where the suite's data lives: the protocol files (spec/), the vectors and the manifests' schema.

Two layouts, one set of names:

- installed from a wheel or sdist: the build copied spec/, conformance/vectors/ and the two
  schemas into the package as `_data/` (setup.py; never present in the source tree), so the suite
  runs from any folder. No implementation manifests ship: an implementer passes `--manifest`
  or `--worker-cmd`. REPO_ROOT is then None.
- a checkout (an editable install): the files themselves, and conformance/implementations/.

$JOBWIRE_CONFORMANCE_DIR (the conformance/ folder), $JOBWIRE_REPO_ROOT (the repository) and
$JOBWIRE_SPEC_DIR (spec/) override either, as the conformance image does.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
PACKAGED_DATA = PACKAGE / "_data"
# conformance/src/jobwire_conformance -> the repository root (an installed package may sit too near
# / to have one: --target /app puts it at /app/jobwire_conformance)
_CHECKOUT = PACKAGE.parents[2] if len(PACKAGE.parents) > 2 else PACKAGE


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _repo_root() -> Path | None:
    """The jobwire checkout the suite runs from, or None for an installed package."""
    root = _env_path("JOBWIRE_REPO_ROOT")
    if root:
        return root
    conformance_dir = _env_path("JOBWIRE_CONFORMANCE_DIR")
    if conformance_dir:
        return conformance_dir.parent
    if not PACKAGED_DATA.is_dir() and (_CHECKOUT / "spec" / "VERSION").is_file():
        return _CHECKOUT
    return None


REPO_ROOT = _repo_root()
CONFORMANCE_DIR = _env_path("JOBWIRE_CONFORMANCE_DIR") or (REPO_ROOT / "conformance" if REPO_ROOT else PACKAGED_DATA)
SPEC_DIR = _env_path("JOBWIRE_SPEC_DIR") or (REPO_ROOT / "spec" if REPO_ROOT else PACKAGED_DATA / "spec")
VECTORS_DIR = CONFORMANCE_DIR / "vectors" / "v1"
IMPLEMENTATIONS_DIR = CONFORMANCE_DIR / "implementations"  # absent from an installed package
VECTOR_SCHEMA = CONFORMANCE_DIR / "vector.schema.json"
IMPLEMENTATION_SCHEMA = CONFORMANCE_DIR / "implementation.schema.json"
