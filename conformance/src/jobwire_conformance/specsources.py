"""The spec's own consistency: each fact has one machine-readable source, and the prose and the
scripts agree with it.

- spec/keys.json is the one source of key templates; key-layout.md's tables name exactly those keys.
- spec/options.json is the one source of worker options; protocol.md 7.2's table and every
  implementation manifest agree with it.
- spec/lua/manifest.json agrees with each script's header (KEYS, ARGV, the section it cites) and
  with spec/VERSION; helper functions repeated between scripts are byte-identical.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .paths import IMPLEMENTATIONS_DIR, SPEC_DIR

__all__ = ["problems", "lua_header", "lua_helpers"]

# key-layout.md spells placeholders as <ns>, <q>, <id>, <yyyy-mm-dd>.
_PROSE = {
    "{ns}": "<ns>",
    "{queue}": "<q>",
    "{worker_id}": "<id>",
    "{day}": "<yyyy-mm-dd>",
    "{ts}": "<ts>",
    "{item}": "<item>",
    "{name}": "<name>",
}  # the last three: protocol 1.1


def problems(spec_dir: Path = SPEC_DIR, implementations_dir: Path = IMPLEMENTATIONS_DIR) -> list[str]:
    """Every disagreement found, as readable lines; [] when the spec is consistent."""
    out: list[str] = []
    templates = json.loads((spec_dir / "keys.json").read_text())["templates"]
    options_doc = json.loads((spec_dir / "options.json").read_text())
    options = options_doc["options"]
    out += _key_layout_problems(spec_dir, templates)
    out += _options_table_problems(spec_dir, options)
    out += _table_problems(spec_dir, "14.1 Features and options", options_doc.get("options_1_1", []))
    out += _manifest_problems(spec_dir, templates)
    out += _helper_problems(spec_dir)
    out += _implementation_flag_problems(implementations_dir, options)
    return out


def _prose(template: str) -> str:
    for ph, text in _PROSE.items():
        template = template.replace(ph, text)
    return template


def _key_layout_problems(spec_dir: Path, templates: dict[str, str]) -> list[str]:
    """key-layout.md describes exactly the keys of keys.json, no more, no fewer."""
    text = (spec_dir / "key-layout.md").read_text()
    described = set()
    for cell in re.findall(r"^\| `([^|]+)` \|", text, re.M):  # the first column of the key tables
        described.update(re.findall(r"`?(<ns>:[^`]+)`?", cell))
    wanted = {_prose(t): name for name, t in templates.items()}
    out = [
        f"key-layout.md: no row for template {name!r} ({key})" for key, name in wanted.items() if key not in described
    ]
    out += [f"key-layout.md: key {key} is not in spec/keys.json" for key in sorted(described - set(wanted))]
    return out


def _table_problems(spec_dir: Path, heading: str, options: list[dict]) -> list[str]:
    """The options table of protocol.md section `heading` (7.2's, 14.1's) has one row per option
    of its options.json list, with its flag, variable and default, and no other row."""
    text = (spec_dir / "protocol.md").read_text()
    where = "protocol.md " + heading.split(" ", 1)[0]
    section = text.split(f"### {heading}", 1)[-1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `(--[a-z-]+)[^`]*` \| `([A-Z_]+)` \| ([^|]+) \|", section, re.M)
    by_flag = {flag: (env, default.strip()) for flag, env, default in rows}
    out = []
    for o in options:
        row = by_flag.pop(o["flag"], None)
        if row is None:
            out.append(f"{where}: no row for {o['flag']} (spec/options.json)")
            continue
        env, default = row
        if env != o["env"]:
            out.append(f"{where}: {o['flag']} names {env}, options.json {o['env']}")
        want = "(required)" if o.get("required") else str(o["default"])
        if not re.match(r"`?" + re.escape(want) + r"`?( |$)", default):
            out.append(f"{where}: {o['flag']} default {default!r}, options.json {want!r}")
    out += [f"{where}: {flag} is not in spec/options.json" for flag in by_flag]
    return out


def _options_table_problems(spec_dir: Path, options: list[dict]) -> list[str]:
    """protocol.md 7.2's table matches options.json's options; section 11 restates some defaults."""
    text = (spec_dir / "protocol.md").read_text()
    out = _table_problems(spec_dir, "7.2 Configuration", options)
    numbers = text.split("## 11. Numbers", 1)[-1].split("\n## ", 1)[0]
    for label, name in _NUMBERS.items():
        m = re.search(r"^\| " + re.escape(label) + r" \| (\d+)", numbers, re.M)
        number = next((o["default"] for o in options if o["name"] == name), None)
        if not m or int(m.group(1)) != number:
            out.append(f"protocol.md 11: {label!r} is {m.group(1) if m else 'missing'}, options.json {name} {number}")
    return out


# Rows of protocol.md section 11 that restate an option default of options.json.
_NUMBERS = {
    "heartbeat period": "heartbeat_ms",
    "lease (staleness threshold)": "lease_ms",
    "idle block timeout": "block_timeout_ms",
    "deaths before a poison job": "max_deaths",
    "largest payload accepted by a worker": "max_payload_bytes",
}


def lua_header(source: str) -> dict:
    """The documented interface of a script: its name, the section it cites, KEYS and ARGV lines."""
    lines = [ln for ln in source.splitlines() if ln.startswith("--")]
    head = lines[0] if lines else ""
    name = re.match(r"-- ([a-z_]+\.lua):", head)
    section = re.search(r"protocol\.md section (\d+)\.(\d+)", "\n".join(lines[:3]))
    keys, argv, keys_var, argv_var = [], 0, [], False
    for ln in lines:
        m = re.match(r"-- KEYS\[(\d+)\]\s+(\S.*)$", ln)
        if m:
            keys.append((int(m.group(1)), m.group(2)))
            continue
        m = re.match(r"-- KEYS\[[^\]]*\.\.[^\]]*\]\s+(\S.*)$", ln)
        if m:
            keys_var.append(m.group(1))
            continue
        if re.match(r"-- ARGV\[\d+\]\s", ln):
            argv += 1
        elif re.match(r"-- ARGV\[[^\]]*\.\.[^\]]*\]", ln):
            argv_var = True
    return {
        "file": name.group(1) if name else None,
        "section": section.group(1) + section.group(2) if section else None,
        "keys": keys,
        "keys_variadic": keys_var,
        "argv": argv,
        "argv_variadic": argv_var,
    }


def _template_for(manifest_key: str, templates: dict[str, str]) -> str | None:
    """The keys.json template a manifest key name stands for (settle_queue, job_wake: queue, wake)."""
    name = manifest_key.rstrip(".")
    for prefix in ("settle_", "job_"):
        if name.startswith(prefix) and name[len(prefix) :] in templates:
            name = name[len(prefix) :]
    return templates.get(name)


def _key_matches(template: str, described: str) -> bool:
    """True when a header's key description starts with the template, any placeholder allowed."""
    pattern = re.escape(template.replace("{ns}", "\0")).replace("\0", "<ns>")
    pattern = re.sub(r"\\\{[a-z_]+\\\}", "<[^>]+>", pattern)
    return re.match(pattern, described) is not None


def _manifest_problems(spec_dir: Path, templates: dict[str, str]) -> list[str]:
    manifest = json.loads((spec_dir / "lua" / "manifest.json").read_text())
    version = (spec_dir / "VERSION").read_text().strip()
    out = []
    if manifest.get("spec_version") != version:
        out.append(f"lua/manifest.json: spec_version {manifest.get('spec_version')!r}, spec/VERSION {version!r}")
    listed = set()
    for entry in manifest["scripts"].values():
        listed.add(entry["file"])
        where = f"lua/{entry['file']}"
        path = spec_dir / "lua" / entry["file"]
        if not path.is_file():
            out.append(f"{where}: listed in manifest.json but missing")
            continue
        h = lua_header(path.read_text())
        if h["file"] != entry["file"]:
            out.append(f"{where}: its header names {h['file']!r}")
        anchor = entry["section"].split("#", 1)[1]
        if not h["section"] or not anchor.startswith(h["section"] + "-"):
            out.append(f"{where}: its header cites section {h['section']}, manifest.json {entry['section']}")
        fixed = [k for k in entry["keys"] if not k.endswith("...")]
        variadic = [k for k in entry["keys"] if k.endswith("...")]
        if [i for i, _ in h["keys"]] != list(range(1, len(fixed) + 1)):
            out.append(f"{where}: header KEYS {[i for i, _ in h['keys']]}, manifest.json has {len(fixed)} fixed keys")
        for (i, described), key in zip(h["keys"], fixed, strict=False):  # a count mismatch is reported above
            t = _template_for(key, templates)
            if t is None and key not in ("settle_queue", "settle_wake"):
                out.append(f"{where}: manifest key {key!r} is no template of keys.json")
            elif t is not None and not _key_matches(t, described):
                out.append(f"{where}: KEYS[{i}] is {described.split()[0]!r}, manifest.json says {key} ({t})")
        if len(h["keys_variadic"]) != len(variadic):
            out.append(f"{where}: header has {len(h['keys_variadic'])} KEYS ranges, manifest.json {variadic}")
        for described, key in zip(h["keys_variadic"], variadic, strict=False):  # likewise
            t = _template_for(key, templates)
            if t is None or not _key_matches(t, described):
                out.append(f"{where}: KEYS range {described.split()[0]!r}, manifest.json says {key}")
        fixed_argv = [a for a in entry["argv"] if not a.endswith("...")]
        if h["argv"] != len(fixed_argv) or h["argv_variadic"] != (len(fixed_argv) != len(entry["argv"])):
            out.append(
                f"{where}: header ARGV ({h['argv']} fixed, variadic {h['argv_variadic']}) "
                f"disagrees with manifest.json {entry['argv']}"
            )
    for path in sorted((spec_dir / "lua").glob("*.lua")):
        if path.name not in listed:
            out.append(f"lua/{path.name}: not listed in manifest.json")
    return out


def lua_helpers(source: str) -> dict[str, str]:
    """Top-level `local function` definitions of a script, name -> exact text up to its `end`."""
    out = {}
    for m in re.finditer(r"^local function ([A-Za-z_][A-Za-z0-9_]*)\(.*?^end$", source, re.M | re.S):
        out[m.group(1)] = m.group(0)
    return out


def _helper_problems(spec_dir: Path) -> list[str]:
    """Scripts are loaded as they are (no includes), so a helper repeated in two must be identical."""
    seen: dict[str, tuple[str, str]] = {}
    out = []
    for path in sorted((spec_dir / "lua").glob("*.lua")):
        for name, text in lua_helpers(path.read_text()).items():
            if name in seen and seen[name][1] != text:
                out.append(f"lua/{path.name}: helper {name}() differs from the one in lua/{seen[name][0]}")
            seen.setdefault(name, (path.name, text))
    return out


def _implementation_flag_problems(implementations_dir: Path, options: list[dict]) -> list[str]:
    """A manifest passes each placeholder after the flag options.json gives it."""
    flag_of = {o["name"]: o["flag"] for o in options}
    out = []
    for path in sorted(implementations_dir.glob("*.json")):
        argv = json.loads(path.read_text()).get("worker", {}).get("argv", [])
        for i, arg in enumerate(argv):
            m = re.fullmatch(r"\{([a-z_]+)\}", arg)
            if not m or m.group(1) not in flag_of or i == 0:
                continue
            before = argv[i - 1]
            if before.startswith("--") and before != flag_of[m.group(1)]:
                out.append(
                    f"implementations/{path.name}: {{{m.group(1)}}} follows {before}, "
                    f"options.json says {flag_of[m.group(1)]}"
                )
    return out
