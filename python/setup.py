"""Build hooks for the `jobwire` sdist and wheel (the metadata is in pyproject.toml).

The protocol files and the release version have one home each in the repository: spec/ and the
root VERSION. A build from the checkout copies them into the build output only (never into the
source tree, where a stale copy would shadow spec/ for an editable install):

- the wheel gets spec/ as jobwire/_spec/ (spec.py finds it there);
- the sdist gets spec/ as src/jobwire/_spec/ and the root VERSION and LICENSE, so that a wheel
  built from the sdist, without the repository, carries the same files;
- the version is the root VERSION (from the sdist's own copy when built from an sdist).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
IN_SDIST = (HERE / "PKG-INFO").exists()  # only an unpacked sdist has PKG-INFO at its top
ROOT = HERE if IN_SDIST else HERE.parent
SPEC = HERE / "src" / "jobwire" / "_spec" if IN_SDIST else ROOT / "spec"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


def release_version() -> str:
    """The root VERSION: the one release version of every component."""
    return (ROOT / "VERSION").read_text(encoding="utf-8").strip()


def copy_spec(target: Path) -> None:
    """spec/ as it is, byte for byte (tests/test_packaging.py compares the wheel's copy)."""
    if not (SPEC / "VERSION").is_file():
        raise SystemExit(f"jobwire build: no protocol files at {SPEC}")
    if target.resolve() == SPEC.resolve():
        return  # building from the sdist: the files are already where the wheel takes them
    shutil.rmtree(target, ignore_errors=True)  # a file deleted from spec/ must not linger from a last build
    shutil.copytree(SPEC, target, ignore=IGNORE)


class BuildPy(build_py):
    """Adds spec/ to the wheel as jobwire/_spec/ (not in editable mode: that reads spec/ itself)."""

    def run(self) -> None:
        super().run()
        if not getattr(self, "editable_mode", False):
            copy_spec(Path(self.build_lib) / "jobwire" / "_spec")


class Sdist(sdist):
    """Adds spec/ and VERSION to the sdist's tree, which then builds without the repository.

    LICENSE is in already: python/LICENSE is a symlink to the root one, which the sdist dereferences.
    """

    def make_release_tree(self, base_dir, files) -> None:
        super().make_release_tree(base_dir, files)
        base = Path(base_dir)
        copy_spec(base / "src" / "jobwire" / "_spec")
        if not IN_SDIST:
            shutil.copyfile(ROOT / "VERSION", base / "VERSION")


setup(version=release_version(), cmdclass={"build_py": BuildPy, "sdist": Sdist})
