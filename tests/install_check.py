"""The part of the conformance suite run against an installed or packaged worker: the id prefixes of
tests/install-check.txt (the file says why that part is enough). Used by tests/packaging and
docker/tests; run as a program it checks a JSON report of such a run:

    python tests/install_check.py REPORT.json    # exit 1, with one line a problem, if any
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

LIST = Path(__file__).with_name("install-check.txt")


def prefixes() -> list[str]:
    """The id prefixes, in the file's order (comments and blank lines left out)."""
    lines = LIST.read_text().splitlines()
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]


def only_args() -> list[str]:
    """jobwire-conformance's arguments that select the part: `--only PREFIX` for each prefix."""
    return [arg for prefix in prefixes() for arg in ("--only", prefix)]


def problems(results: list[dict]) -> list[str]:
    """What is wrong with one worker's results of such a run: a test that neither passed nor was
    not applicable, or a prefix that selected no test at all (a renamed id must not shrink the part)."""
    bad = [
        f"{r['id']}: {r['status']}: {str(r.get('message', ''))[:300]}"
        for r in results
        if r["status"] not in ("pass", "na")
    ]
    ids = [r["id"] for r in results]
    bad += [f"{prefix}: selected no test" for prefix in prefixes() if not any(i.startswith(prefix) for i in ids)]
    return bad


def report_problems(report: dict) -> list[str]:
    """problems() of every implementation of a jobwire-conformance JSON report, each named."""
    impls = report.get("implementations", {})
    if not impls:
        return ["the report names no implementation"]
    out = []
    for name, rep in impls.items():
        if rep.get("status") != "ran":
            out.append(f"{name}: {rep.get('status')}: {rep.get('reason')}")
        out += [f"{name}: {p}" for p in problems(rep.get("results", []))]
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/install_check.py REPORT.json", file=sys.stderr)
        return 2
    bad = report_problems(json.loads(Path(argv[0]).read_text()))
    for line in bad:
        print(f"install check: {line}")
    if not bad:
        print(f"install check: every prefix of {LIST.name} ran and passed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
