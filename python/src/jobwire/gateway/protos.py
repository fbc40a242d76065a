"""Generates the gRPC stubs of spec/proto into the package as `jobwire.v1` (never committed).

protoc names a generated module after its .proto path, so spec/proto/jobwire/v1/worker.proto
becomes `jobwire/v1/worker_pb2.py` and imports its neighbours as `jobwire.v1.*`: generating into
python/src (the directory that holds the `jobwire` package) makes those imports resolve inside
this package. This module imports nothing of jobwire, so a build hook can load it by path:

    python -m jobwire.gateway.protos                 # `make setup`: generate if stale
    generate(proto_root, package_parent)             # a wheel build hook (setup.py / backend)
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["generate", "ensure", "default_paths", "PROTO_FILES"]

PROTO_FILES = ("common.proto", "producer.proto", "admin.proto", "worker.proto")
_INIT = '"""Generated from spec/proto/jobwire/v1 by jobwire.gateway.protos; do not edit or commit."""\n'


def default_paths() -> tuple[Path, Path]:
    """(spec/proto, the directory holding the jobwire package) for a source checkout."""
    package_parent = Path(__file__).resolve().parents[2]  # python/src
    return package_parent.parents[1] / "spec" / "proto", package_parent


def _outputs(package_parent: Path) -> list[Path]:
    out = package_parent / "jobwire" / "v1"
    return [out / f"{Path(name).stem}_pb2.py" for name in PROTO_FILES] + [out / "__init__.py"]


def generate(proto_root: Path, package_parent: Path) -> list[Path]:
    """Run grpcio-tools' protoc on every file; returns the files written. Raises on failure."""
    from grpc_tools import protoc  # build-time dependency only
    import grpc_tools

    includes = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/*.proto
    sources = [str(Path("jobwire") / "v1" / name) for name in PROTO_FILES]
    argv = [
        "protoc",
        f"-I{proto_root}",
        f"-I{includes}",
        f"--python_out={package_parent}",
        f"--pyi_out={package_parent}",
        f"--grpc_python_out={package_parent}",
        *sources,
    ]
    if protoc.main(argv) != 0:
        raise RuntimeError(f"protoc failed on {proto_root}: {' '.join(argv)}")
    (package_parent / "jobwire" / "v1" / "__init__.py").write_text(_INIT)
    return _outputs(package_parent)


def ensure(proto_root: Path | None = None, package_parent: Path | None = None) -> bool:
    """Generate when a stub is missing or older than its .proto; True when it generated."""
    default_root, default_parent = default_paths()
    proto_root, package_parent = proto_root or default_root, package_parent or default_parent
    newest = max((proto_root / "jobwire" / "v1" / n).stat().st_mtime for n in PROTO_FILES)
    outputs = _outputs(package_parent)
    if all(p.exists() and p.stat().st_mtime >= newest for p in outputs):
        return False
    generate(proto_root, package_parent)
    return True


if __name__ == "__main__":
    changed = ensure(*(Path(a) for a in sys.argv[1:3]))
    print("jobwire.gateway.protos: stubs generated" if changed else "jobwire.gateway.protos: stubs up to date")
