"""Where the suite's data lives: the repository root, spec/ and conformance/."""

from __future__ import annotations

import os
from pathlib import Path

CONFORMANCE_DIR = Path(os.environ.get("JOBWIRE_CONFORMANCE_DIR") or Path(__file__).resolve().parents[2])
REPO_ROOT = Path(os.environ.get("JOBWIRE_REPO_ROOT") or CONFORMANCE_DIR.parent)
SPEC_DIR = REPO_ROOT / "spec"
VECTORS_DIR = CONFORMANCE_DIR / "vectors" / "v1"
IMPLEMENTATIONS_DIR = CONFORMANCE_DIR / "implementations"
VECTOR_SCHEMA = CONFORMANCE_DIR / "vector.schema.json"
IMPLEMENTATION_SCHEMA = CONFORMANCE_DIR / "implementation.schema.json"
