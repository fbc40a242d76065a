"""Queue names and --queues against the shared vectors (conformance/vectors/v1/queue-names.json)."""

import json

import pytest

from jobwire import queues, spec
from jobwire.errors import InvalidJob

CASES = json.loads((spec.spec_dir().parent / "conformance" / "vectors" / "v1" / "queue-names.json").read_text())[
    "cases"
]


@pytest.mark.parametrize("case", [c for c in CASES if "name" in c], ids=lambda c: c["id"])
def test_queue_name_rule(case):
    assert queues.is_valid_queue_name(case["name"]) is case["valid"]


@pytest.mark.parametrize("case", [c for c in CASES if "queues" in c], ids=lambda c: c["id"])
def test_queues_grammar_and_expansion(case):
    if case["parsed"] is None:
        with pytest.raises(InvalidJob):
            queues.parse_queues(case["queues"])
        return
    parsed = queues.parse_queues(case["queues"])
    assert parsed == case["parsed"]
    if "known" in case:
        known = [n.encode() for n in case["known"]] + [b"\xff\xfe"]  # not UTF-8: skipped too
        assert queues.expand_queues(parsed, known) == case["expanded"]
