"""JSON and JUnit reports, and the console summary."""

from __future__ import annotations

import json
import os
import time
import xml.etree.ElementTree as ET
from typing import Any
from pathlib import Path

from . import __version__
from .paths import SPEC_DIR


STATUSES = ("pass", "fail", "skip", "error", "na")


def in_ci() -> bool:
    """CI=true (as CI services set it): nothing may be skipped silently."""
    return os.environ.get("CI", "").lower() == "true"


def is_blocking(r) -> bool:
    """A failure that makes the run fail: any MUST test (or claimed feature) that failed or errored."""
    return r.status in ("fail", "error") and (r.test is None or r.test.level == "MUST")


def ci_problems(reports, mrep) -> list[str]:
    """What fails a run under CI=true besides failed tests: an implementation that was skipped
    (its files are missing) and any test that was skipped. Not applicable is not a skip: it is
    declared (an unclaimed feature, or the manifest's not_applicable)."""
    out = [f"{rep.name}: implementation {rep.status} ({rep.reason})" for rep in reports if rep.status == "skipped"]
    results = [(rep.name, r) for rep in reports for r in rep.results]
    results += [("matrix", r) for r in (mrep.results if mrep else [])]
    out += [f"{name}: {r.id} skipped ({r.message})" for name, r in results if r.status == "skip"]
    return out


def to_json(reports, mrep, duration_s: float) -> dict:
    spec_version = (SPEC_DIR / "VERSION").read_text().strip()
    out: dict[str, Any] = {
        "suite": "jobwire-conformance",
        "suite_version": __version__,
        "spec_version": spec_version,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_s": round(duration_s, 1),
        "implementations": {},
    }
    for rep in reports:
        counts = {s: sum(1 for r in rep.results if r.status == s) for s in STATUSES}
        out["implementations"][rep.name] = {
            "status": rep.status,
            "reason": rep.reason,
            "description": rep.description,
            "mode": rep.mode,
            "features": rep.features,
            "duration_s": rep.duration_s,
            "counts": counts,
            "conformant": rep.status == "ran" and not any(is_blocking(r) for r in rep.results),
            "figures": rep.figures,
            "results": [r.to_json() for r in rep.results],
        }
    if mrep:
        out["matrix"] = {
            "enqueuers": mrep.enqueuers,
            "workers": mrep.workers,
            "table": mrep.table,
            "results": [r.to_json() for r in mrep.results],
        }
    return out


def write_json(path: str, data: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_junit(path: str, reports, mrep) -> None:
    suites = ET.Element("testsuites", name="jobwire-conformance")
    groups = [(f"jobwire-conformance.{rep.name}", rep.results, rep) for rep in reports]
    if mrep:
        groups.append(("jobwire-conformance.matrix", mrep.results, None))
    for name, results, rep in groups:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=name,
            tests=str(len(results)),
            failures=str(sum(1 for r in results if r.status == "fail")),
            errors=str(sum(1 for r in results if r.status == "error")),
            skipped=str(sum(1 for r in results if r.status in ("skip", "na"))),
            time=f"{rep.duration_s if rep else 0:.1f}",
        )
        if rep and rep.status != "ran":
            case = ET.SubElement(suite, "testcase", classname=name, name="implementation")
            ET.SubElement(case, "skipped", message=f"{rep.status}: {rep.reason}")
            suite.set("tests", "1")
            suite.set("skipped", "1")
            continue
        for r in results:
            t = r.test
            case = ET.SubElement(suite, "testcase", classname=name, name=r.id, time=f"{r.duration_s:.2f}")
            props = ET.SubElement(case, "properties")
            if t:
                for k, v in (
                    ("level", t.level),
                    ("feature", t.feature),
                    ("section", t.section),
                    ("description", t.description),
                ):
                    if v:
                        ET.SubElement(props, "property", name=k, value=v)
            if r.status == "fail":
                f = ET.SubElement(case, "failure", type=t.level if t else "MUST", message=r.message[:500])
                f.text = r.message
            elif r.status == "error":
                e = ET.SubElement(case, "error", type="error", message=r.message[:500])
                e.text = r.message
            elif r.status == "skip":
                ET.SubElement(case, "skipped", message=r.message)
            elif r.status == "na":  # JUnit has no "not applicable"; a skipped element says why
                ET.SubElement(case, "skipped", type="not-applicable", message=r.message)
        if rep is None and mrep is not None:
            ET.SubElement(suite, "system-out").text = "rows: enqueuer, columns: worker\n" + mrep.table
        elif rep is not None and rep.figures:
            ET.SubElement(suite, "system-out").text = "figures: " + json.dumps(rep.figures, sort_keys=True)
    ET.indent(suites)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def summary(reports, mrep) -> str:
    lines = []
    for rep in reports:
        if rep.status != "ran":
            lines.append(f"{rep.name}: {rep.status.upper()} ({rep.reason})")
            continue
        c = {s: sum(1 for r in rep.results if r.status == s) for s in STATUSES}
        blocking = [r for r in rep.results if is_blocking(r)]
        verdict = "CONFORMANT" if not blocking else "NOT CONFORMANT"
        lines.append(
            f"{rep.name}: {verdict}: {c['pass']} passed, {c['fail']} failed, {c['error']} errors, "
            f"{c['skip']} skipped, {c['na']} not applicable ({rep.duration_s} s)"
        )
        for r in rep.results:
            if r.status in ("fail", "error", "skip"):
                level = (r.test.level + (f" {r.test.feature}" if r.test.feature else "")) if r.test else "?"
                msg = r.message.strip().replace("\n", " | ")[:400]
                lines.append(f"  {r.status.upper():5} [{level}] {r.id}: {msg}")
        if rep.figures:
            lines.append("  figures: " + ", ".join(f"{k}={v}" for k, v in sorted(rep.figures.items())))
    if mrep:
        lines.append("matrix (rows: enqueuer, columns: worker):")
        lines.append(mrep.table)
        for r in mrep.results:
            if r.status in ("fail", "error"):
                lines.append(f"  {r.status.upper():5} {r.id}: {r.message.strip().replace(chr(10), ' | ')[:400]}")
    return "\n".join(lines)
