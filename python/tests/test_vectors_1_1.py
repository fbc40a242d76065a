"""jobwire.backoff, jobwire.cron and jobwire.recurring give exactly the protocol 1.1 vectors
(conformance/vectors/v1/retry-delays.json and schedule-next.json)."""

import json
from pathlib import Path

import pytest

from jobwire import backoff, recurring
from jobwire.errors import InvalidJob

VECTORS = Path(__file__).resolve().parents[2] / "conformance" / "vectors" / "v1"
RETRY = json.loads((VECTORS / "retry-delays.json").read_text())["cases"]
SCHEDULE_FILE = json.loads((VECTORS / "schedule-next.json").read_text())
SCHEDULE = SCHEDULE_FILE["cases"]


@pytest.mark.parametrize("case", RETRY, ids=[c["id"] for c in RETRY])
def test_retry_delay(case):
    policy = backoff.parse_policy(case["policy"])
    assert backoff.fnv1a32(f"{case['job_id']}:{case['attempt']}".encode()) == case["fnv1a32"]
    if case["outcome"] == "fail":
        assert case["attempt"] >= policy.max_attempts
    else:
        assert case["attempt"] < policy.max_attempts
        assert backoff.retry_delay_ms(policy, case["job_id"], case["attempt"]) == case["delay_ms"]


@pytest.mark.parametrize("case", SCHEDULE, ids=[c["id"] for c in SCHEDULE])
def test_schedule(case):
    d = case["definition"]
    if case["type"] == "invalid":
        with pytest.raises(InvalidJob):
            recurring.validate_definition(d)
            if recurring.next_fire_ms(d, case.get("after_ms", 0)) is None:
                raise InvalidJob("never fires")
        return
    recurring.validate_definition(d)
    if case["type"] == "next":
        assert recurring.next_fire_ms(d, case["after_ms"]) == case["next_ms"]
    else:
        got = recurring.decide(d, case["next_ms"], case["now_ms"])
        assert (got.fire_ms, got.missed, got.last_missed_ms, got.next_ms) == (
            case["fire_ms"],
            case["missed"],
            case["last_missed_ms"],
            case["new_next_ms"],
        )


@pytest.mark.smoke  # fresh machine: the vectors of conformance/ read by the Python package
def test_fire_job_id():
    v = SCHEDULE_FILE["fire_job_id"]
    assert recurring.fire_job_id(v["name"], v["fire_ms"]) == v["id"]
