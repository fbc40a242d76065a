"""Build hooks for the `jobwire-conformance` sdist and wheel (the metadata is in pyproject.toml).

The suite needs the protocol files (spec/), its vectors and the two schemas of conformance/.
Each has one home in the repository; a build from the checkout copies them into the build output
as jobwire_conformance/_data/ (paths.py finds them there), never into the source tree:

- the wheel gets _data/ directly;
- the sdist gets src/jobwire_conformance/_data/ and the root VERSION, so that a wheel built from
  the sdist, without the repository, carries the same files;
- the version is the root VERSION (the sdist's own copy when built from an sdist).
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
PACKAGED = HERE / "src" / "jobwire_conformance" / "_data"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


def sources() -> dict[str, Path]:
    """Each entry of _data/ and where it comes from."""
    if IN_SDIST:
        return {p.name: p for p in PACKAGED.iterdir()}
    return {
        "spec": ROOT / "spec",
        "vectors": HERE / "vectors",
        "vector.schema.json": HERE / "vector.schema.json",
        "implementation.schema.json": HERE / "implementation.schema.json",
    }


def release_version() -> str:
    """The root VERSION: the one release version of every component."""
    return (ROOT / "VERSION").read_text(encoding="utf-8").strip()


def copy_data(target: Path) -> None:
    """The files as they are, byte for byte (tests/packaging compares the wheel's copy)."""
    if target.resolve() == PACKAGED.resolve():
        return  # building from the sdist: the files are already where the wheel takes them
    shutil.rmtree(target, ignore_errors=True)  # a file deleted at the source must not linger
    target.mkdir(parents=True)
    for name, source in sources().items():
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=IGNORE)
        else:
            shutil.copyfile(source, target / name)


class BuildPy(build_py):
    """Adds _data/ to the wheel (not in editable mode: that reads the checkout's files)."""

    def run(self) -> None:
        super().run()
        if not getattr(self, "editable_mode", False):
            copy_data(Path(self.build_lib) / "jobwire_conformance" / "_data")


class Sdist(sdist):
    """Adds _data/ and VERSION to the sdist's tree, which then builds without the repository."""

    def make_release_tree(self, base_dir, files) -> None:
        super().make_release_tree(base_dir, files)
        base = Path(base_dir)
        copy_data(base / "src" / "jobwire_conformance" / "_data")
        if not IN_SDIST:
            shutil.copyfile(ROOT / "VERSION", base / "VERSION")


setup(version=release_version(), cmdclass={"build_py": BuildPy, "sdist": Sdist})
