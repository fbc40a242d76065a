"""The spec's JSON Schemas, with $ref between them resolved (working-on -> job)."""

from __future__ import annotations

import functools
import json

import jsonschema
from referencing import Registry, Resource

from .paths import SPEC_DIR


@functools.cache
def _registry() -> tuple[Registry, dict]:
    by_name = {}
    resources = []
    for path in sorted((SPEC_DIR / "schemas").glob("*.schema.json")):
        doc = json.loads(path.read_text())
        by_name[path.name.removesuffix(".schema.json")] = doc
        resources.append((doc["$id"], Resource.from_contents(doc)))
    return Registry().with_resources(resources), by_name


def names() -> list[str]:
    return sorted(_registry()[1])


def schema(name: str) -> dict:
    return _registry()[1][name]


@functools.cache
def validator(name: str):
    registry, by_name = _registry()
    return jsonschema.Draft202012Validator(by_name[name], registry=registry)


def validator_for(schema_doc: dict):
    return jsonschema.Draft202012Validator(schema_doc, registry=_registry()[0])


def errors(name: str, document) -> str | None:
    """The best validation error against spec schema `name`, or None when valid."""
    error = jsonschema.exceptions.best_match(validator(name).iter_errors(document))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"[:400]
