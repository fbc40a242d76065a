"""JSON and JUnit reports, and the console summary."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from . import __version__
from .paths import SPEC_DIR


def is_blocking(r) -> bool:
    """A failure that makes the run fail: any MUST test (or claimed feature) that failed or errored."""
    return r.status in ("fail", "error") and (r.test is None or r.test.level == "MUST")


def to_json(reports, mrep, duration_s: float) -> dict:
    spec_version = (SPEC_DIR / "VERSION").read_text().strip()
    out = {
        "suite": "jobwire-conformance", "suite_version": __version__, "spec_version": spec_version,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "duration_s": round(duration_s, 1),
        "implementations": {},
    }
    for rep in reports:
        counts = {s: sum(1 for r in rep.results if r.status == s) for s in ("pass", "fail", "skip", "error")}
        out["implementations"][rep.name] = {
            "status": rep.status, "reason": rep.reason, "description": rep.description, "mode": rep.mode,
            "features": rep.features, "duration_s": rep.duration_s, "counts": counts,
            "conformant": rep.status == "ran" and not any(is_blocking(r) for r in rep.results),
            "figures": rep.figures, "results": [r.to_json() for r in rep.results],
        }
    if mrep:
        out["matrix"] = {"enqueuers": mrep.enqueuers, "workers": mrep.workers, "table": mrep.table,
                         "results": [r.to_json() for r in mrep.results]}
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
        suite = ET.SubElement(suites, "testsuite", name=name, tests=str(len(results)),
                              failures=str(sum(1 for r in results if r.status == "fail")),
                              errors=str(sum(1 for r in results if r.status == "error")),
                              skipped=str(sum(1 for r in results if r.status == "skip")),
                              time=f"{rep.duration_s if rep else 0:.1f}")
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
                for k, v in (("level", t.level), ("feature", t.feature), ("section", t.section),
                             ("description", t.description)):
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
        c = {s: sum(1 for r in rep.results if r.status == s) for s in ("pass", "fail", "skip", "error")}
        blocking = [r for r in rep.results if is_blocking(r)]
        verdict = "CONFORMANT" if not blocking else "NOT CONFORMANT"
        lines.append(f"{rep.name}: {verdict}: {c['pass']} passed, {c['fail']} failed, {c['error']} errors, "
                     f"{c['skip']} skipped ({rep.duration_s} s)")
        for r in rep.results:
            if r.status in ("fail", "error"):
                level = r.test.level_name if r.test else "?"
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
