"""The suite proves every MUST id can fail: the mutation table names a failing mutation for each,
and the CI sample of that table is run (JOBWIRE_MUTATIONS=all runs every row; see mutations.py)."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mutations  # noqa: E402

CHOSEN = [m.name for m in mutations.MUTATIONS] if os.environ.get("JOBWIRE_MUTATIONS") == "all" else mutations.SAMPLE


def test_every_must_id_is_named_by_a_mutation():
    assert mutations.unreached() == []


def test_every_named_id_is_a_test_of_the_suite():
    from jobwire_conformance.core import all_tests

    known = {t.id for t in all_tests()}
    assert [(m.name, i) for m in mutations.MUTATIONS for i in m.ids if i not in known] == []


def test_names_are_unique_and_the_sample_is_in_the_table():
    names = [m.name for m in mutations.MUTATIONS]
    assert len(names) == len(set(names))
    assert set(mutations.SAMPLE) <= set(names)


@pytest.mark.parametrize("m", [m for m in mutations.MUTATIONS if m.lua], ids=lambda m: m.name)
def test_each_lua_edit_applies_exactly_once(tmp_path, m):
    spec = mutations.mutated_spec(m, tmp_path)
    for file, _, _ in m.lua:
        assert (spec / "lua" / file).read_text() != (mutations.REPO / "spec" / "lua" / file).read_text()


def test_every_patch_still_applies_to_the_reference():
    import subprocess

    done = subprocess.run(
        [sys.executable, str(mutations.BROKEN / "patched_reference.py"), "--check-all"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_defect_exists():
    import patched_reference  # noqa: F401 - broken_workers is on sys.path through mutations

    base = (mutations.BROKEN / "base.py").read_text()
    for m in mutations.MUTATIONS:
        if m.patch:
            assert m.patch in patched_reference.DEFECTS, m.name
        if m.broken:
            assert m.broken in base, m.name
        if m.script:
            assert (mutations.BROKEN / m.script).is_file(), m.name


def test_the_chosen_mutations_fail_the_ids_they_name():
    """The CI sample (or every row), two or three at a time: each named id must fail."""
    results = mutations.run_many([mutations.by_name(n) for n in CHOSEN], jobs=3 if len(CHOSEN) > 20 else 2)
    missed = [r for r in results if not r["ok"]]
    assert missed == [], missed
