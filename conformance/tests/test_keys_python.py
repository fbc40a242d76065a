"""python/src/jobwire/keys.py builds exactly the key vectors (vectors/v1/keys.json)."""

import json
from pathlib import Path

import pytest

jobwire_keys = pytest.importorskip("jobwire.keys")

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "v1"
CASES = [case for name in ("keys.json", "keys-1.1.json") for case in json.loads((VECTORS / name).read_text())["cases"]]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_python_keys_match_the_vectors(case):
    keys = jobwire_keys.Keys(case["ns"])
    built = getattr(keys, case["template"])
    arg = next((case[f] for f in ("queue", "worker_id", "day", "ts", "item", "name") if f in case), None)
    if callable(built):
        built = built(arg)
    else:
        assert arg is None, f"{case['template']} takes no argument in Python but the template has one"
    assert built == case["key"]


def test_python_templates_are_keys_json():
    from jobwire_conformance.redisutil import key_templates

    assert jobwire_keys.TEMPLATES == key_templates()
