"""jobwire conformance suite: runs the tests of conformance/README.md against any worker.

The runner talks to a worker only through Redis and process signals. Test vectors (plain JSON)
live in conformance/vectors/v1; implementation manifests in conformance/implementations.
Installed from a wheel, the package carries spec/ and the vectors itself (paths.py).
"""

from importlib import metadata as _metadata

from .paths import PACKAGED_DATA as _PACKAGED_DATA
from .paths import REPO_ROOT as _REPO_ROOT


def _release_version() -> str:
    """The root VERSION in a checkout; the version the package was built with when installed."""
    if not _PACKAGED_DATA.is_dir() and _REPO_ROOT and (_REPO_ROOT / "VERSION").is_file():
        return (_REPO_ROOT / "VERSION").read_text(encoding="utf-8").strip()
    try:
        return _metadata.version("jobwire-conformance")
    except _metadata.PackageNotFoundError:
        return "0+unknown"  # a bare source tree, neither built nor installed


__version__ = _release_version()
