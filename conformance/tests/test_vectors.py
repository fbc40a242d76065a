"""The suite checks itself: vectors agree with the spec, and the checker notices when they do not."""

import json

from jobwire_conformance import vectors


def test_every_vector_agrees_with_the_spec():
    problems, count = vectors.check_all()
    assert problems == []
    assert count > 100


def _edit(path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def test_a_flipped_schema_verdict_is_caught(vectors_copy):
    _edit(vectors_copy / "schemas" / "job.json", lambda d: d[0]["tests"][0].update(valid=False))
    problems, _ = vectors.check_all(run_lua=False)
    assert any("class alone is valid" in p for p in problems)


def test_a_wrong_key_is_caught(vectors_copy):
    _edit(vectors_copy / "keys.json", lambda d: d["cases"][0].update(key="resque:queuez"))
    problems, _ = vectors.check_all(run_lua=False)
    assert any("the template gives" in p for p in problems)


def test_a_missing_key_template_is_caught(vectors_copy):
    _edit(vectors_copy / "keys.json", lambda d: d.update(cases=[c for c in d["cases"] if c["template"] != "control"]))
    problems, _ = vectors.check_all(run_lua=False)
    assert any("'control'" in p for p in problems)


def test_a_duplicate_id_is_caught(vectors_copy):
    _edit(vectors_copy / "deaths.json", lambda d: d["cases"][1].update(id=d["cases"][0]["id"]))
    problems, _ = vectors.check_all(run_lua=False)
    assert any("also in" in p for p in problems)


def test_a_dangling_spec_link_is_caught(vectors_copy):
    _edit(
        vectors_copy / "failure-records.json",
        lambda d: d["cases"][0].update(specification=["protocol.md#99-no-such-section"]),
    )
    problems, _ = vectors.check_all(run_lua=False)
    assert any("#99-no-such-section" in p for p in problems)


def test_a_should_description_is_caught(vectors_copy):
    _edit(vectors_copy / "deaths.json", lambda d: d["cases"][0].update(description="a crash should requeue"))
    problems, _ = vectors.check_all(run_lua=False)
    assert any("vector.schema.json" in p for p in problems)


def test_a_wrong_death_outcome_is_caught(vectors_copy):
    _edit(vectors_copy / "deaths.json", lambda d: d["cases"][2].update(outcome="requeued", deaths_after=3))
    problems, _ = vectors.check_all()
    assert any("spec/lua gives outcome 'poisoned'" in p for p in problems)


def test_a_failure_record_writer_rule_is_caught(vectors_copy):
    _edit(vectors_copy / "failure-records.json", lambda d: d["cases"][3].update(valid_write=True))
    problems, _ = vectors.check_all(run_lua=False)
    assert any("write-valid=False" in p for p in problems)


def test_slugs_follow_github():
    assert vectors.slug("7.5 Signals and the control channel") == "75-signals-and-the-control-channel"
    assert vectors.slug("8.5 Unregister (leave)") == "85-unregister-leave"
    assert (
        vectors.slug("Resque keys (shared with Ruby Resque and node-resque)")
        == "resque-keys-shared-with-ruby-resque-and-node-resque"
    )
