"""Build hooks for the `jobwire` sdist and wheel (the metadata is in pyproject.toml).

The protocol files and the release version have one home each in the repository: spec/ and the
root VERSION. A build from the checkout copies them into the build output only (never into the
source tree, where a stale copy would shadow spec/ for an editable install):

- the wheel gets spec/ as jobwire/_spec/ (spec.py finds it there);
- the sdist gets spec/ as src/jobwire/_spec/ and the root VERSION and LICENSE, so that a wheel
  built from the sdist, without the repository, carries the same files;
- the version is the root VERSION (from the sdist's own copy when built from an sdist);
- the wheel gets the gateway's gRPC stubs (jobwire/v1/), generated from spec/proto.
"""

from __future__ import annotations

import importlib.util
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


def generate_gateway_stubs(build_lib: Path) -> None:
    """The gRPC stubs of spec/proto as jobwire/v1/ (jobwire[gateway]), by gateway/protos.py.

    protos.py imports nothing of jobwire, so it is loaded by path. It needs grpcio-tools, which
    the dev venv has (requirements-dev.lock); a build without it leaves the stubs out and says so
    (`jobwire gateway` then reports them missing), so that the images, which do not serve the
    gateway, need no protoc.
    """
    proto_root = SPEC / "proto"
    if not proto_root.is_dir():
        return
    try:
        import grpc_tools  # noqa: F401
    except ImportError:
        print("jobwire build: WARNING: grpcio-tools missing, the wheel has no gateway stubs (jobwire/v1)")
        return
    spec = importlib.util.spec_from_file_location("_jobwire_protos", HERE / "src" / "jobwire" / "gateway" / "protos.py")
    protos = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(protos)
    protos.generate(proto_root, build_lib)


class BuildPy(build_py):
    """Adds spec/ to the wheel as jobwire/_spec/ and the gateway stubs as jobwire/v1/ (not in
    editable mode: that reads spec/ itself, and `make setup` generates the stubs in src/)."""

    def run(self) -> None:
        super().run()
        if not getattr(self, "editable_mode", False):
            copy_spec(Path(self.build_lib) / "jobwire" / "_spec")
            generate_gateway_stubs(Path(self.build_lib))


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
