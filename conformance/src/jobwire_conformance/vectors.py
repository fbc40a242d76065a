"""The suite's self-check: vector files, their verdicts against the spec, ids and spec links.

Levels (style-exemplars.md section 9): every vector file validates against vector.schema.json;
schema vectors agree with spec/schemas; failure-record vectors agree with the schema and the
writer rules; key vectors agree with key-layout.md and cover every template; death vectors agree
with spec/lua (run in a throwaway redis-server); ids are unique; every spec link resolves.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema

from . import schemas, specsources
from .checks import failure_write_problems
from .impl import FEATURES
from .paths import IMPLEMENTATION_SCHEMA, IMPLEMENTATIONS_DIR, SPEC_DIR, VECTOR_SCHEMA, VECTORS_DIR
from .redisutil import key_templates
from . import vectors_1_1


def slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors() -> dict[str, set[str]]:
    out = {}
    for path in SPEC_DIR.glob("*.md"):
        out[path.name] = {slug(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*$", path.read_text(), re.M)}
    return out


def link_problem(link: str, known: dict[str, set[str]]) -> str | None:
    if "#" not in link:
        return f"{link}: no #anchor"
    doc, anchor = link.split("#", 1)
    if doc not in known:
        return f"{link}: no spec/{doc}"
    if anchor not in known[doc]:
        return f"{link}: spec/{doc} has no heading with anchor #{anchor}"
    return None


def vector_files() -> list[Path]:
    return sorted(VECTORS_DIR.rglob("*.json"))


def _links(doc) -> list[str]:
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == "specification" and isinstance(v, list):
                out += v
            else:
                out += _links(v)
    elif isinstance(doc, list):
        for v in doc:
            out += _links(v)
    return out


def _ids(doc) -> list[str]:
    cases = doc if isinstance(doc, list) else doc.get("cases", [])
    return [c["id"] for c in cases if isinstance(c, dict) and "id" in c]


def check_all(run_lua: bool = True) -> tuple[list[str], int]:
    problems: list[str] = []
    count = 0
    meta = json.loads(VECTOR_SCHEMA.read_text())
    meta_validator = jsonschema.Draft202012Validator(meta)
    known = anchors()
    seen_ids: dict[str, str] = {}
    key_templates_seen: set[str] = set()
    templates = key_templates()
    deaths_cases = []
    for path in vector_files():
        rel = path.relative_to(VECTORS_DIR)
        try:
            doc = json.loads(path.read_text())
        except ValueError as exc:
            problems.append(f"{rel}: not JSON: {exc}")
            continue
        for err in meta_validator.iter_errors(doc):
            problems.append(
                f"{rel}: does not match vector.schema.json: {err.message[:200]} at "
                f"{'/'.join(map(str, err.absolute_path))}"
            )
        for test_id in _ids(doc):
            if test_id in seen_ids:
                problems.append(f"{rel}: id {test_id} also in {seen_ids[test_id]}")
            seen_ids[test_id] = str(rel)
        for link in _links(doc):
            why = link_problem(link, known)
            if why:
                problems.append(f"{rel}: {why}")
        if isinstance(doc, list):  # JSON-Schema-Test-Suite shape
            for case in doc:
                try:
                    v = schemas.validator_for(case["schema"])
                except Exception as exc:  # noqa: BLE001
                    problems.append(f"{rel}: {case.get('id')}: bad schema: {exc}")
                    continue
                descriptions = set()
                for t in case["tests"]:
                    count += 1
                    if t["description"] in descriptions:
                        problems.append(f"{rel}: {case['id']}: duplicate description {t['description']!r}")
                    descriptions.add(t["description"])
                    valid = v.is_valid(t["data"])
                    if valid != t["valid"]:
                        problems.append(
                            f"{rel}: {case['id']}: {t['description']!r}: the spec schema says "
                            f"{'valid' if valid else 'invalid'}, the vector says "
                            f"{'valid' if t['valid'] else 'invalid'}"
                        )
            continue
        kind = doc.get("kind")
        for case in doc.get("cases", []):
            count += 1
            if kind == "keys":
                t = templates.get(case["template"])
                if t is None:
                    problems.append(f"{rel}: {case['id']}: no template {case['template']!r} in spec/keys.json")
                    continue
                key_templates_seen.add(case["template"])
                for field, ph in (
                    ("queue", "{queue}"),
                    ("worker_id", "{worker_id}"),
                    ("day", "{day}"),
                    ("ts", "{ts}"),
                    ("item", "{item}"),
                    ("name", "{name}"),
                ):
                    if (ph in t) != (field in case):
                        problems.append(f"{rel}: {case['id']}: {field} {'missing' if ph in t else 'not used'}")
                want = (
                    t.replace("{ns}", case["ns"])
                    .replace("{queue}", case.get("queue", ""))
                    .replace("{worker_id}", case.get("worker_id", ""))
                    .replace("{day}", case.get("day", ""))
                    .replace("{ts}", case.get("ts", ""))
                    .replace("{item}", case.get("item", ""))
                    .replace("{name}", case.get("name", ""))
                )
                if want != case["key"]:
                    problems.append(f"{rel}: {case['id']}: key {case['key']!r}, the template gives {want!r}")
            elif kind == "failure-records":
                try:
                    record = json.loads(case["record"])
                    read_ok = schemas.validator("failure").is_valid(record)
                except ValueError:
                    read_ok = False
                write_ok = not failure_write_problems(case["record"])
                if read_ok != case["valid_read"]:
                    problems.append(f"{rel}: {case['id']}: failure.schema.json says read-valid={read_ok}")
                if write_ok != case["valid_write"]:
                    problems.append(
                        f"{rel}: {case['id']}: the writer rules say write-valid={write_ok}: "
                        f"{failure_write_problems(case['record'])}"
                    )
            elif kind == "deaths":
                deaths_cases.append((rel, case))
            elif kind in ("retry-delays", "schedule-next"):
                problems += [f"{rel}: {p}" for p in vectors_1_1.check_case(kind, case)]
            elif kind == "args-roundtrip":
                if case["args_json"] is not None:
                    try:
                        if not isinstance(json.loads(case["args_json"]), list):
                            problems.append(f"{rel}: {case['id']}: args_json is not an array")
                    except ValueError as exc:
                        problems.append(f"{rel}: {case['id']}: args_json is not JSON: {exc}")
    for name in sorted(set(templates) - key_templates_seen):
        problems.append(f"keys.json: no vector for key template {name!r} of spec/keys.json")
    if not templates:
        problems.append("spec/keys.json: no templates found")
    problems += specsources.problems()  # keys.json, options.json, lua headers and helpers
    # the runner's own tests link to spec headings too
    from .core import GROUPS
    from . import runner  # noqa: F401 - registers the groups

    test_ids = set()
    for g in GROUPS:
        for t in g.tests:
            if t.id in test_ids and g.name != "roundtrip":
                problems.append(f"test id {t.id} declared twice")
            test_ids.add(t.id)
            why = link_problem(t.section, known)
            if why:
                problems.append(f"test {t.id}: {why}")
            if len(t.description) > 150 or re.search(r"(?i)\bshould\b|\btest that\b", t.description):
                problems.append(f"test {t.id}: description breaks the style rule: {t.description!r}")
            if t.level not in ("MUST", "SHOULD") or (t.feature and t.feature not in FEATURES):
                problems.append(f"test {t.id}: unknown level {t.level!r} or feature {t.feature!r}")
    manifest_validator = jsonschema.Draft202012Validator(json.loads(IMPLEMENTATION_SCHEMA.read_text()))
    for path in sorted(IMPLEMENTATIONS_DIR.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except ValueError as exc:
            problems.append(f"implementations/{path.name}: not JSON: {exc}")
            continue
        for err in manifest_validator.iter_errors(doc):
            problems.append(
                f"implementations/{path.name}: {err.message[:200]} at {'/'.join(map(str, err.absolute_path))}"
            )
        if doc.get("name") != path.stem:
            problems.append(f"implementations/{path.name}: name {doc.get('name')!r} differs from the file name")
    if run_lua and deaths_cases:
        problems += check_deaths(deaths_cases)
    return problems, count


def spec_link_warnings() -> list[str]:
    """Links inside spec/ artefacts themselves (lua/manifest.json sections) that do not resolve."""
    known = anchors()
    out = []
    manifest = json.loads((SPEC_DIR / "lua" / "manifest.json").read_text())
    for name, script in manifest["scripts"].items():
        why = link_problem(script["section"], known)
        if why:
            out.append(f"spec/lua/manifest.json scripts.{name}.section: {why}")
    return out


def check_deaths(cases) -> list[str]:
    """Run each death vector through spec/lua in a throwaway redis-server."""
    from .core import Context  # noqa: F401
    from .redisutil import Keys, RedisServer, Scripts, client, utc

    problems = []
    server = RedisServer().start()
    try:
        r = client(server.url)
        for n, (rel, case) in enumerate(cases):
            ns = f"dv{n}"
            k, s = Keys(ns), Scripts(r)
            wid, q = "host:1:q", "q"
            doc = {"class": "A", "args": []}
            if "job_id" in case:
                doc["id"] = case["job_id"]
            raw = json.dumps(doc, separators=(",", ":"))
            s.call(
                "heartbeat",
                [k.workers(), k.heartbeats(), k.leases(), k.worker_started(wid), k.worker_info(wid), k.meta()],
                [wid, 60000, "register", utc("%Y-%m-%d %H:%M:%S +0000"), "1"],
            )
            r.rpush(k.queue(q), raw)
            base_keys = k.work_keys(wid, [], settle_queue=q)
            argv = [
                wid,
                "none",
                "",
                "",
                utc("%Y/%m/%d %H:%M:%S UTC"),
                utc("%Y-%m-%dT%H:%M:%SZ"),
                case["max_deaths"],
                16777216,
            ]
            reply = s.call("work", k.work_keys(wid, [q], settle_queue=q), argv + [q])
            token = reply[2]
            job_key = r.hget(k.inflight(wid), "job_key")
            if case["deaths_before"]:
                r.hset(k.deaths(), job_key, case["deaths_before"])
            ev = case["event"]
            if ev in ("ok", "fail", "crash"):
                arg = (
                    (
                        '{"failed_at":"x","payload":%s,"exception":"E","error":"e","backtrace":[],"worker":"%s",'
                        '"queue":"q"}' % (raw, wid)
                    )
                    if ev == "fail"
                    else ("child 1 killed by signal 9" if ev == "crash" else "")
                )
                argv2 = [wid, ev, token, arg] + argv[4:]
                settled = s.call("work", base_keys, argv2)[0].decode()
                outcome = {"ok": "done", "failed": "failed", "requeued": "requeued", "poisoned": "poisoned"}.get(
                    settled, settled
                )
            else:
                if ev == "expired":
                    r.zadd(k.leases(), {wid: 1})
                res = s.call(
                    "unregister",
                    k.unregister_keys(wid, q),
                    [wid, ev, q, utc("%Y/%m/%d %H:%M:%S UTC"), case["max_deaths"], "recoverer:2:q"],
                )
                outcome = res[1].decode()
            deaths = r.hget(k.deaths(), job_key) if job_key is not None else None
            after = int(deaths) if deaths is not None else None
            if outcome != case["outcome"] or after != case["deaths_after"]:
                problems.append(
                    f"{rel}: {case['id']}: spec/lua gives outcome {outcome!r}, deaths {after}; "
                    f"the vector says {case['outcome']!r}, {case['deaths_after']}"
                )
            if outcome == "requeued" and r.lindex(k.queue(q), 0) != raw.encode():
                problems.append(f"{rel}: {case['id']}: the requeued payload is not at the head of its queue")
            if outcome == "poisoned":
                rec = r.lindex(k.failed(), -1)
                if not rec or json.loads(rec).get("exception") != "jobwire.PoisonJob":
                    problems.append(f"{rel}: {case['id']}: no jobwire.PoisonJob record")
        r.close()
    finally:
        server.close()
    return problems
