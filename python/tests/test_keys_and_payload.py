"""Key names against spec/key-layout.md, and payload / failure-record building."""

import json
import re
import uuid

import pytest

from jobwire import keys as keysmod
from jobwire import payload, spec
from jobwire.errors import InvalidJob
from jobwire.keys import Keys

REPO_ROOT = spec.spec_dir().parent


def test_templates_come_from_keys_json():
    doc = json.loads((spec.spec_dir() / "keys.json").read_text())
    assert keysmod.TEMPLATES == doc["templates"]


@pytest.mark.parametrize("name,template", sorted(keysmod.TEMPLATES.items()))
def test_key_builder_follows_each_template(name, template):
    k = Keys("ns{x}")
    values = {
        "ns": "ns{x}",
        "queue": "high",
        "worker_id": "h:1:high,low",
        "day": "2026-11-29",
        "ts": "1764403260",
        "item": '{"class":"X"}',
        "name": "nightly",
    }  # the last three: 1.1
    expected = template.format(**values)
    attr = getattr(k, name)
    got = attr if isinstance(attr, str) else attr(*[values[p] for p in re.findall(r"{(\w+)}", template)[1:]])
    assert got == expected


def test_new_payload_has_class_args_id_and_time_in_order():
    raw = payload.new_payload("Mail", ["a", 1], tag="x")
    doc = json.loads(raw)
    assert list(doc) == ["class", "args", "id", "enqueued_at", "tag"]
    assert re.fullmatch(r"[0-9a-f]{32}", doc["id"])
    assert raw.startswith(b'{"class":"Mail","args":["a",1],')


def test_new_id_is_the_hex_of_a_random_version_4_uuid():
    ids = {payload.new_id() for _ in range(500)}
    assert len(ids) == 500
    for job_id in ids:
        parsed = uuid.UUID(hex=job_id)
        assert parsed.hex == job_id and parsed.version == 4 and parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize("job_class,args", [("", []), (7, []), ("X", [float("nan")]), ("X", [object()])])
def test_new_payload_rejects_bad_jobs(job_class, args):
    with pytest.raises(InvalidJob):
        payload.new_payload(job_class, args)


def test_bulk_payloads_are_the_bytes_new_job_writes():
    pairs = [("Mail", ["a", 1]), ("Mail", []), ("Ünï", ["a\ud800", {"x": 1.5}, None]), ("Mail", ("t",))]
    built = payload.new_jobs(pairs)
    assert len({job_id for job_id, _ in built}) == len(pairs)
    for (job_id, raw), (job_class, args) in zip(built, pairs, strict=True):
        stamp = json.loads(raw)["enqueued_at"]
        document = {"class": job_class, "args": list(args), "id": job_id, "enqueued_at": stamp}
        assert raw == payload.dumps(document)
        parsed = uuid.UUID(hex=job_id)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize(
    "job_class,args", [("", []), (7, []), ("X", [float("nan")]), ("X", [object()]), ("x" * 1025, [])]
)
def test_bulk_payloads_reject_bad_jobs(job_class, args):
    with pytest.raises(InvalidJob):
        payload.new_jobs([("Fine", [1]), (job_class, args)])


@pytest.mark.parametrize("name", ["", "a:b", "a b", "*", "a,b", "x" * 256, "tab\t"])
def test_bad_queue_names(name):
    with pytest.raises(InvalidJob):
        payload.validate_queue_name(name)


def test_failure_record_embeds_payload_verbatim_in_resque_order():
    raw = b'{"class":"X","args":[1.0,12345678901234567890123],"extra":{"k":[]}}'
    record = payload.failure_record(
        raw, "ValueError", "bad <b>", ["a.py:1:in `f'"], "h:1:q", "q", failed_at="2026/11/29 08:00:00 UTC"
    )
    assert raw in record
    doc = json.loads(record)
    assert list(doc) == ["failed_at", "payload", "exception", "error", "backtrace", "worker", "queue"]
    assert doc["error"] == "bad <b>"


@pytest.mark.parametrize("number", ["NaN", "-Infinity", "0x1F", "+1", "017", "1."])
def test_failure_record_is_strict_json_for_payloads_lua_cjson_lets_through(number):
    raw = b'{"class":"X","args":[%s]}' % number.encode()

    def reject(name):
        raise ValueError(name)

    doc = json.loads(payload.failure_record(raw, "jobwire.InvalidJSON", "m", [], "w", "q"), parse_constant=reject)
    assert doc["payload"] == raw.decode()


def test_failure_record_keeps_non_object_payload_as_string():
    doc = json.loads(payload.failure_record(b"not json", "E", "m", [], "w", "q"))
    assert doc["payload"] == "not json"


@pytest.mark.parametrize(
    "raw,reason",
    [
        (b'{"class":"X","args":{}}', "args"),
        (b'{"class":"X","id":""}', "id"),
        (b'{"class":"X","enqueued_at":-1}', "enqueued_at"),
        (b"[" * 100000, "JSON"),
    ],
)
def test_job_decode_reports_why(raw, reason):
    with pytest.raises(InvalidJob, match=reason):
        payload.Job.decode("q", raw)


@pytest.mark.parametrize("raw", [b'{"class":"X","args":[NaN]}', b'{"class":"X","args":[Infinity]}'])
def test_job_decode_rejects_what_rfc_8259_does(raw):
    with pytest.raises(InvalidJob, match="not valid JSON"):
        payload.Job.decode("q", raw)


def job_schema_vectors():
    data = json.loads((REPO_ROOT / "conformance/vectors/v1/schemas/job.json").read_text())
    groups = data if isinstance(data, list) else data.get("groups", data.get("cases", [data]))
    for group in groups:
        for case in group["tests"]:
            yield pytest.param(case["data"], case["valid"], id=f"{group['description']}: {case['description']}"[:80])


@pytest.mark.parametrize("document,valid", list(job_schema_vectors()))
def test_fast_path_never_accepts_what_the_schema_rejects(document, valid):
    if payload._certainly_valid(document):
        assert valid
    assert (payload.schema_error(document) is None) == valid
