"""Finds and loads the protocol files in spec/: version, schemas, Lua scripts, error names,
key templates (keys.json) and worker options (options.json).

The spec directory is, in order: $JOBWIRE_SPEC_DIR, a copy packaged inside jobwire (`_spec/`,
for installed wheels and images), or the repository's spec/ next to python/.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

__all__ = ["spec_dir", "spec_version", "spec_major", "schema", "lua_source", "manifest", "errors",
           "key_templates", "worker_options"]


@functools.cache
def spec_dir() -> Path:
    candidates = []
    if os.environ.get("JOBWIRE_SPEC_DIR"):
        candidates.append(Path(os.environ["JOBWIRE_SPEC_DIR"]))
    here = Path(__file__).resolve().parent
    candidates += [here / "_spec", here.parents[2] / "spec"]
    for path in candidates:
        if (path / "VERSION").is_file():
            return path
    raise FileNotFoundError(
        "jobwire cannot find the protocol files (spec/VERSION); set JOBWIRE_SPEC_DIR"
    )


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
