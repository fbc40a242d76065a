"""Unit tests of the runner's own helpers: raw JSON slicing, value comparison, argv templates."""

import pytest

from jobwire_conformance import rawjson
from jobwire_conformance.checks import failure_write_problems, raw_member
from jobwire_conformance.impl import Implementation, render


def test_members_keep_raw_text_and_order():
    text = '{ "b" : 1.50 , "a":{"x":[1, 2]},"c":"\\u00e9"}'
    assert rawjson.members(text) == [("b", "1.50"), ("a", '{"x":[1, 2]}'), ("c", '"\\u00e9"')]


@pytest.mark.parametrize("text", ["[1]", '{"a":1', '{"a":1}x', "", '{"a" 1}'])
def test_members_reject_what_is_not_one_object(text):
    with pytest.raises(ValueError):
        rawjson.members(text)


def test_raw_member_is_byte_exact():
    assert raw_member(b'{"failed_at":"x","payload":{"class":"A","n":1.50}}', "payload") == b'{"class":"A","n":1.50}'


@pytest.mark.parametrize(
    "expected,got,ok",
    [
        (9223372036854775807, 9223372036854775807, True),
        (9223372036854775807, 9.223372036854776e18, False),
        (9007199254740993, 9007199254740992, False),
        (1.0, 1, True),
        (0.1, 0.1, True),
        (0.1, 0.10000000000000002, False),
        (-0.0, 0.0, True),
        ("é", "é", True),
        (True, 1, False),
        (None, None, True),
        ([1, {"a": []}], [1, {"a": []}], True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
    ],
)
def test_same_value(expected, got, ok):
    assert (rawjson.same_value(expected, got) is None) is ok


def test_signed_zero_is_compared_only_when_asked():
    assert rawjson.same_value(-0.0, 0, signed_zero=True) is not None
    assert rawjson.same_value(-0.0, -0.0, signed_zero=True) is None


def test_writer_rules():
    good = (
        '{"failed_at":"2026/11/29 08:00:00 UTC","payload":{"class":"A"},"exception":"E","error":"e",'
        '"backtrace":[],"worker":"w:1:q","queue":"q"}'
    )
    assert failure_write_problems(good) == []
    assert failure_write_problems(good.replace('"backtrace":[]', '"backtrace":null'))


def test_render_expands_args_and_keeps_unknown_placeholders():
    argv = render(["x", "--q", "{queues}", "{args...}", "{unknown}"], {"queues": "a,b", "args": ["1", "[2]"]})
    assert argv == ["x", "--q", "a,b", "1", "[2]", "{unknown}"]


def test_worker_cmd_gets_the_standard_flags_appended_or_substituted():
    plain = Implementation.from_command("./w --verbose")
    assert plain.worker_argv[:2] == ["./w", "--verbose"] and "--queues" in plain.worker_argv
    templated = Implementation.from_command("./w -q {queues} -r {redis_url}")
    assert templated.worker_argv == ["./w", "-q", "{queues}", "-r", "{redis_url}"]


def test_an_implementation_without_its_files_is_skipped_not_failed(tmp_path):
    from jobwire_conformance import report
    from jobwire_conformance.runner import Runner

    impl = Implementation(name="ghost", worker_argv=["./nothing"], requires=["no/such/file"])
    runner = Runner("redis://127.0.0.1:1/0", log=lambda *_: None)
    try:
        reports, _ = runner.run([impl])
    finally:
        runner.close()
    assert reports[0].status == "skipped" and "no/such/file" in reports[0].reason
    data = report.to_json(reports, None, 0.0)
    assert data["implementations"]["ghost"]["status"] == "skipped"
    report.write_junit(str(tmp_path / "r.xml"), reports, None)
    assert "<skipped" in (tmp_path / "r.xml").read_text()


def _ghost_manifest(tmp_path, monkeypatch):
    """A manifest whose files are missing, in a manifests folder of its own."""
    from jobwire_conformance import impl

    (tmp_path / "ghost.json").write_text(
        '{"name": "ghost", "worker": {"argv": ["./nothing"]}, "features": [], "requires": ["no/such/file"]}'
    )
    monkeypatch.setattr(impl, "IMPLEMENTATIONS_DIR", tmp_path)


def test_a_missing_implementation_fails_a_ci_run(tmp_path, monkeypatch):
    from jobwire_conformance import cli

    _ghost_manifest(tmp_path, monkeypatch)
    monkeypatch.setenv("CI", "true")
    assert cli.main(["--impl", "ghost", "-q", "--no-figures"]) == 1


def test_a_missing_implementation_is_only_reported_outside_ci(tmp_path, monkeypatch):
    from jobwire_conformance import cli

    _ghost_manifest(tmp_path, monkeypatch)
    monkeypatch.setenv("CI", "false")
    assert cli.main(["--impl", "ghost", "-q", "--no-figures"]) == 0


def test_a_skipped_test_fails_ci_but_not_applicable_does_not():
    from jobwire_conformance import report
    from jobwire_conformance.core import MUST, Result, Test
    from jobwire_conformance.runner import ImplReport

    t = Test("x.y", "protocol.md#1", MUST, "d")
    na = ImplReport("a", results=[Result("x.y", "na", "not applicable: declared", test=t)])
    skipped = ImplReport("b", results=[Result("x.y", "skip", "not run", test=t)])
    assert report.ci_problems([na], None) == []
    assert report.ci_problems([skipped], None) == ["b: x.y skipped (not run)"]


def test_unclaimed_features_and_declared_ids_are_not_applicable():
    from jobwire_conformance.core import MUST, Test

    impl = Implementation(
        name="i",
        worker_argv=["w"],
        features=["job-timeout"],
        not_applicable={"recovery.sigkill.": "no SIGKILL here", "a.b": "why"},
    )
    assert impl.not_applicable_reason(Test("t", "s", MUST, "d", feature="fork-per-job"))
    assert impl.not_applicable_reason(Test("t", "s", MUST, "d", feature="job-timeout")) is None
    assert "no SIGKILL" in impl.not_applicable_reason(Test("recovery.sigkill.x", "s", MUST, "d"))
    assert impl.not_applicable_reason(Test("a.b", "s", MUST, "d"))
    assert impl.not_applicable_reason(Test("a.bc", "s", MUST, "d")) is None


def test_a_held_worker_keeps_its_pid_when_released(tmp_path):
    """The predecessor test plants keys for <host>:<pid> before the worker runs: the pid the runner
    sees at start must be the worker's own once released (the shell execs it)."""
    from types import SimpleNamespace

    from jobwire_conformance.suite_liveness import start_held

    out = tmp_path / "pid"
    impl = Implementation(name="pid", worker_argv=["/bin/sh", "-c", f"echo $$ > {out}"])
    ctx = SimpleNamespace(impl=impl, log_dir=str(tmp_path), ns="jwctest", redis_url="redis://127.0.0.1:1/0", workers=[])
    w, flag = start_held(ctx, "q")
    try:
        assert w.wait(0.3) is None and not out.exists()  # held: nothing ran yet
        open(flag, "w").close()
        assert w.wait(5) == 0
        assert out.read_text().strip() == str(w.pid)
    finally:
        w.kill_all()


@pytest.mark.parametrize(
    "url,cluster",
    [
        ("redis://127.0.0.1:7000/0?cluster=1", True),
        ("redis://h:1/0?x=2&cluster=true", True),
        ("redis://127.0.0.1:7000/0", False),
        ("redis://h:1/0?cluster=0", False),
        ("redis://h:1/0?clusters=1", False),
    ],
)
def test_cluster_urls_are_recognised(url, cluster):
    from jobwire_conformance.redisutil import is_cluster_url

    assert is_cluster_url(url) is cluster


def test_cluster_and_redis_url_together_are_refused(capsys):
    from jobwire_conformance.cli import main

    assert main(["--cluster", "--redis-url", "redis://127.0.0.1:1/0", "--worker-cmd", "true", "--mode", "fork"]) == 2
    assert "not both" in capsys.readouterr().err
