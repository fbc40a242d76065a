"""spec/ has one source per fact, and the self-check notices each kind of disagreement with it."""

import json
import shutil

import pytest

from jobwire_conformance import specsources


@pytest.fixture
def spec_copy(tmp_path, repo):
    copy = tmp_path / "spec"
    shutil.copytree(repo / "spec", copy)
    impls = tmp_path / "implementations"
    shutil.copytree(repo / "conformance" / "implementations", impls)
    return copy, impls


def _problems(spec_copy):
    return specsources.problems(*spec_copy)


def test_the_spec_agrees_with_its_sources(repo):
    assert specsources.problems() == []


def test_a_key_template_key_layout_lacks_is_caught(spec_copy):
    keys = spec_copy[0] / "keys.json"
    doc = json.loads(keys.read_text())
    doc["templates"]["extra"] = "{ns}:jobwire:extra"
    keys.write_text(json.dumps(doc))
    assert any("no row for template 'extra'" in p for p in _problems(spec_copy))


def test_a_key_layout_row_without_template_is_caught(spec_copy):
    keys = spec_copy[0] / "keys.json"
    doc = json.loads(keys.read_text())
    del doc["templates"]["deaths"]
    keys.write_text(json.dumps(doc))
    assert any("<ns>:jobwire:deaths is not in spec/keys.json" in p for p in _problems(spec_copy))


def test_a_wrong_default_in_protocol_md_is_caught(spec_copy):
    md = spec_copy[0] / "protocol.md"
    md.write_text(md.read_text().replace("| `JOBWIRE_LEASE_MS` | 30000 |", "| `JOBWIRE_LEASE_MS` | 20000 |"))
    assert any("--lease-ms default" in p for p in _problems(spec_copy))


def test_a_wrong_1_1_default_in_protocol_md_is_caught(spec_copy):
    md = spec_copy[0] / "protocol.md"
    md.write_text(md.read_text().replace("| `JOBWIRE_SCHEDULER` | `all`", "| `JOBWIRE_SCHEDULER` | `promote`"))
    assert any("protocol.md 14.1: --scheduler default" in p for p in _problems(spec_copy))


def test_a_1_1_option_missing_from_options_json_is_caught(spec_copy):
    options = spec_copy[0] / "options.json"
    doc = json.loads(options.read_text())
    doc["options_1_1"] = [o for o in doc["options_1_1"] if o["name"] != "default_retry"]
    options.write_text(json.dumps(doc))
    assert any("protocol.md 14.1: --default-retry is not in spec/options.json" in p for p in _problems(spec_copy))


def test_a_lua_header_missing_a_key_is_caught(spec_copy):
    lua = spec_copy[0] / "lua" / "failed_retry.lua"
    lua.write_text(lua.read_text().replace("-- KEYS[5]  <ns>:jobwire:wake-new-queue\n", ""))
    assert any("failed_retry.lua: header KEYS" in p for p in _problems(spec_copy))


def test_a_lua_header_naming_the_wrong_key_is_caught(spec_copy):
    lua = spec_copy[0] / "lua" / "enqueue.lua"
    lua.write_text(lua.read_text().replace("-- KEYS[3]  <ns>:jobwire:wake:<q>", "-- KEYS[3]  <ns>:jobwire:woke:<q>"))
    assert any("enqueue.lua: KEYS[3]" in p for p in _problems(spec_copy))


def test_a_lua_header_citing_another_section_is_caught(spec_copy):
    lua = spec_copy[0] / "lua" / "heartbeat.lua"
    lua.write_text(lua.read_text().replace("protocol.md section 8.4.", "protocol.md section 8.3."))
    assert any("heartbeat.lua: its header cites section 83" in p for p in _problems(spec_copy))


def test_a_diverging_repeated_helper_is_caught(spec_copy):
    lua = spec_copy[0] / "lua" / "unregister.lua"
    text = lua.read_text()
    assert "if c == '/' then return '/' .. hex end" in text
    lua.write_text(text.replace("if c == '/' then return '/' .. hex end", "if c == '/' then return hex end", 1))
    assert any("helper jstr() differs" in p for p in _problems(spec_copy))


def test_a_manifest_version_behind_spec_version_is_caught(spec_copy):
    (spec_copy[0] / "VERSION").write_text("9.9.9\n")
    assert any("spec_version" in p for p in _problems(spec_copy))


def test_an_implementation_passing_a_placeholder_after_the_wrong_flag_is_caught(spec_copy):
    path = spec_copy[1] / "c.json"
    path.write_text(path.read_text().replace('"--lease-ms", "{lease_ms}"', '"--lease", "{lease_ms}"'))
    assert any("{lease_ms} follows --lease" in p for p in _problems(spec_copy))


def test_a_wrong_number_in_section_11_is_caught(spec_copy):
    md = spec_copy[0] / "protocol.md"
    md.write_text(md.read_text().replace("| deaths before a poison job | 3 |", "| deaths before a poison job | 4 |"))
    assert any("deaths before a poison job" in p for p in _problems(spec_copy))
