"""Finds and loads the protocol files in spec/: version, schemas, Lua scripts, error names,
key templates (keys.json) and worker options (options.json); and the package's release version.

The spec directory is, in order: $JOBWIRE_SPEC_DIR, a copy packaged inside jobwire (`_spec/`,
which the build copies from spec/ into every sdist and wheel; never present in the source tree),
or the repository's spec/ next to python/ (a checkout, an editable install).
"""

from __future__ import annotations

import functools
import json
import os
from importlib import metadata
from pathlib import Path

__all__ = [
    "spec_dir",
    "spec_version",
    "spec_major",
    "schema",
    "lua_source",
    "manifest",
    "errors",
    "key_templates",
    "worker_options",
    "release_version",
]

HERE = Path(__file__).resolve().parent
PACKAGED_SPEC = HERE / "_spec"
# python/src/jobwire -> the repository root, when run from a checkout (an installed package may
# sit too near / to have one: --target /app puts it at /app/jobwire)
CHECKOUT = HERE.parents[2] if len(HERE.parents) > 2 else HERE


@functools.cache
def spec_dir() -> Path:
    candidates = []
    if os.environ.get("JOBWIRE_SPEC_DIR"):
        candidates.append(Path(os.environ["JOBWIRE_SPEC_DIR"]))
    candidates += [PACKAGED_SPEC, CHECKOUT / "spec"]
    for path in candidates:
        if (path / "VERSION").is_file():
            return path
    raise FileNotFoundError("jobwire cannot find the protocol files (spec/VERSION); set JOBWIRE_SPEC_DIR")


@functools.cache
def release_version() -> str:
    """The release version (the repository's root VERSION, one for every component).

    An installed package reports the version its metadata was built with; a checkout reads VERSION
    itself, so that an editable install never shows a version older than the file.
    """
    checkout_version = CHECKOUT / "VERSION"
    if not PACKAGED_SPEC.is_dir() and checkout_version.is_file() and (CHECKOUT / "spec").is_dir():
        return checkout_version.read_text(encoding="utf-8").strip()
    try:
        return metadata.version("jobwire")
    except metadata.PackageNotFoundError:
        return "0+unknown"  # imported from a bare source tree that was never installed or built


@functools.cache
def spec_version() -> str:
    return (spec_dir() / "VERSION").read_text().strip()


def spec_major() -> str:
    return spec_version().split(".")[0]


@functools.cache
def schema(name: str) -> dict:
    """A schema from spec/schemas by short name: "job", "failure", "working-on", ..."""
    return json.loads((spec_dir() / "schemas" / f"{name}.schema.json").read_text())


@functools.cache
def manifest() -> dict:
    return json.loads((spec_dir() / "lua" / "manifest.json").read_text())


@functools.cache
def lua_source(name: str) -> str:
    return (spec_dir() / "lua" / manifest()["scripts"][name]["file"]).read_text()


@functools.cache
def errors() -> dict:
    return json.loads((spec_dir() / "errors.json").read_text())


@functools.cache
def key_templates() -> dict[str, str]:
    """spec/keys.json: template name -> template, the one source of every key name."""
    return dict(json.loads((spec_dir() / "keys.json").read_text())["templates"])


@functools.cache
def worker_options() -> dict:
    """spec/options.json: the worker options of protocol.md 7.2 (flags, variables, defaults)."""
    return json.loads((spec_dir() / "options.json").read_text())
