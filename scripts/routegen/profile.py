"""Builds Portcullis route profiles from what `umbraco.py` read, the node-checks reference and
Portcullis's own overlay, emits them as TOML and compares a profile with what Umbraco does."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .umbraco import Checkout, Endpoint, openapi_path

METHOD_ORDER = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}
METHOD_WORD = {"GET": "get", "POST": "create", "PUT": "update", "DELETE": "delete", "PATCH": "patch"}
# Body references that name a parent: `null` there means the tree root (UMBRACO.md §5).
NULL_IS_ROOT = {"parent.id", "target.id"}


@dataclass
class Check:
    kind: str
    node: str
    verbs: list[str] = field(default_factory=list)
    scope: str = "node"
    null: str = "reject"
    when: str | None = None

    def key(self) -> tuple:
        return (self.kind, self.node, tuple(sorted(self.verbs)), self.scope, self.null, self.when)


@dataclass
class Route:
    method: str
    path: str
    policy: str  # sections | admin | backoffice | anonymous
    sections: list[str] = field(default_factory=list)
    cultures: str | None = None
    decode_path: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    comment: str = ""
    notes: list[str] = field(default_factory=list)
    # Portcullis decisions stricter than Umbraco (kept out of the Umbraco comparison).
    stricter: list[str] = field(default_factory=list)
    id: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)


def reference_checks(entry: dict, notes: list[str]) -> tuple[list[Check], str | None]:
    """Translates one node-checks reference entry (docs/ROUTES.md, "Checks")."""
    checks: list[Check] = []
    cultures = None
    kind_override = entry.get("node_kind") if str(entry.get("node_kind", "")).endswith("-version") else None
    for ch in entry["checks"]:
        if ch.get("cultures_from"):
            cultures = ch["cultures_from"]
        if ch["resource"] == "dictionary":
            continue
        verbs = [ch["verb"]] if ch.get("verb") else []
        params = ch.get("node_param")
        where = ch.get("node_param_in")
        if ch["resource"] == "user" and params is None:
            notes.append("check on the calling user itself: no node source to express; omitted")
            continue
        if params is None:
            node_list = ["recycle-bin" if ch.get("scope") == "recycle-bin" else "root"]
        else:
            params = params if isinstance(params, list) else [params]
            wheres = where if isinstance(where, list) else [where] * len(params)
            node_list = [f"{w}:{p}" for p, w in zip(params, wheres)]
        for node in node_list:
            field_ = node.split(":", 1)[-1]
            checks.append(Check(
                kind=kind_override or ch["resource"],
                node=node,
                verbs=verbs,
                scope="branch" if ch.get("scope") == "branch" else "node",
                null="root" if node.startswith("body:") and field_ in NULL_IS_ROOT else "reject",
            ))
    return checks, cultures


def umbraco_routes(co: Checkout, reference: list[dict]) -> list[Route]:
    """The routes exactly as Umbraco's source and the reference say (no Portcullis overlay)."""
    ref = {(e["method"], e["path"]): e for e in reference}
    out = []
    for ep in co.endpoints:
        r = Route(ep.method, ep.template, ep.policy, list(ep.sections), decode_path=list(ep.decode_params),
                  comment=f"{ep.controller}.{ep.action}", notes=list(ep.notes))
        entry = ref.get(ep.key)
        if entry is not None:
            r.checks, r.cultures = reference_checks(entry, r.notes)
        out.append(r)
    return out


def apply_overlay(routes: list[Route], overlay: dict, major: str) -> None:
    """Adds Portcullis's endpoints and stricter checks for Umbraco `major` (in place)."""
    by_key = {r.key: r for r in routes}
    for e in overlay.get("endpoint", []):
        if major in e["versions"]:
            r = Route(e["method"], e["path"], e.get("policy", "sections"), e.get("sections", []),
                      comment=e["comment"])
            r.stricter.append(e["why"])
            routes.append(r)
            by_key[r.key] = r
    for c in overlay.get("check", []):
        r = by_key.get((c["method"], c["path"]))
        if r is None:
            continue  # not served by this version
        r.checks.append(Check(c["kind"], c["node"], c.get("verbs", []), c.get("scope", "node"),
                              c.get("null", "reject"), c.get("when")))
        r.stricter.append(c["why"])


def _kebab(s: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", s).lower()


def _parts(path: str) -> tuple[str, list[str], list[str]]:
    segs = path.split("/")[4:]  # after /umbraco/management/api
    version = segs[0]
    literals = [_kebab(s) for s in segs[1:] if not s.startswith("{")]
    params = [_kebab(s.strip("{}*").split(":")[0]) for s in segs[1:] if s.startswith("{")]
    return version, literals, params


def assign_ids(all_routes: list[Route]) -> list[str]:
    """Sets `id` on every route; routes with the same (method, path) share it across versions.
    The scheme is stated in the emitted file's header. Returns the problems found."""
    unique: dict[tuple[str, str], list[Route]] = {}
    for r in all_routes:
        unique.setdefault(r.key, []).append(r)
    groups: dict[tuple[str, tuple[str, ...]], list[tuple[str, str]]] = {}
    for key in unique:
        version, literals, _ = _parts(key[1])
        groups.setdefault((version, tuple(literals)), []).append(key)
    ids: dict[tuple[str, str], str] = {}
    for (version, literals), keys in groups.items():
        base = (f"{version}." if version != "v1" else "") + ".".join(literals)
        if len(keys) == 1:
            ids[keys[0]] = base
            continue
        by_word: dict[str, list[tuple[str, str]]] = {}
        for k in keys:
            by_word.setdefault(f"{base}.{METHOD_WORD[k[0]]}", []).append(k)
        for word_id, ks in by_word.items():
            if len(ks) == 1:
                ids[ks[0]] = word_id
                continue
            for k in ks:
                params = _parts(k[1])[2]
                ids[k] = word_id + (".by-" + "-".join(params) if params else "")
    problems = []
    seen: dict[str, tuple[str, str]] = {}
    for k, i in ids.items():
        if i in seen:
            problems.append(f"route id `{i}` given to {seen[i]} and {k}")
        seen[i] = k
        for r in unique[k]:
            r.id = i
    return problems


def sort_key(r: Route) -> tuple:
    version, _, _ = _parts(r.path)
    rest = "/".join(r.path.split("/")[5:])
    return (version.count("."), rest, METHOD_ORDER[r.method])


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_list(xs: list[str]) -> str:
    return "[" + ", ".join(_toml_str(x) for x in xs) + "]"


def emit(routes: list[Route], header: str, other: set[tuple[str, str]], other_label: str) -> str:
    """The profile file text. `other`: the keys the other version serves (for comments)."""
    lines = [header.rstrip(), "", 'api = "management"', 'prefix = "/umbraco/management/api"', ""]
    for r in sorted(routes, key=sort_key):
        only = "" if r.key in other else f" · not in {other_label}"
        lines.append(f"# {r.comment}{only}")
        for n in r.notes:
            lines.append(f"# note: {n}")
        for s in r.stricter:
            lines.append(f"# portcullis: {s}")
        lines += ["[[route]]", f"id = {_toml_str(r.id)}", f"method = {_toml_str(r.method)}",
                  f"path = {_toml_str(r.path)}"]
        if r.policy == "sections":
            lines.append(f"sections = {_toml_list(r.sections)}")
        else:
            lines.append(f"policy = {_toml_str(r.policy)}")
        if r.cultures:
            lines.append(f"cultures = {_toml_str(r.cultures)}")
        if r.decode_path:
            lines.append(f"decode_path = {_toml_list(r.decode_path)}")
        for c in r.checks:
            lines += ["", "[[route.check]]", f"kind = {_toml_str(c.kind)}", f"node = {_toml_str(c.node)}"]
            if c.verbs:
                lines.append(f"verbs = {_toml_list(c.verbs)}")
            if c.scope != "node":
                lines.append(f"scope = {_toml_str(c.scope)}")
            if c.null != "reject":
                lines.append(f"null = {_toml_str(c.null)}")
            if c.when:
                lines.append(f"when = {_toml_str(c.when)}")
        lines.append("")
    return "\n".join(lines)


def _shape(policy: str, sections, cultures, checks) -> dict:
    return {
        "policy": policy,
        "sections": sorted(s.lower() for s in sections) if policy == "sections" else [],
        "cultures": cultures or None,
        "checks": sorted(checks),
    }


def compare(expected: list[Route], profile: dict) -> dict[str, list[str]]:
    """How `profile` (a parsed profile file) differs from `expected`, by kind: `differs` (an
    endpoint both have, classified differently), `missing` (served, not in the profile) and
    `extra` (in the profile, not served)."""
    want = {(r.method, openapi_path(r.path)): r for r in expected}
    have = {(d["method"], openapi_path(d["path"])): d for d in profile.get("route", [])}
    out: dict[str, list[str]] = {"differs": [], "missing": [], "extra": []}
    for k in sorted(want.keys() - have.keys()):
        out["missing"].append(f"{k[0]} {k[1]}")
    for k in sorted(have.keys() - want.keys()):
        out["extra"].append(f"{k[0]} {k[1]}")
    for k in sorted(want.keys() & have.keys()):
        r, d = want[k], have[k]
        exp = _shape(r.policy, r.sections, r.cultures, [c.key() for c in r.checks])
        got_checks = [Check(c["kind"], c["node"], c.get("verbs", []), c.get("scope", "node"),
                            c.get("null", "reject"), c.get("when")).key() for c in d.get("check", [])]
        got = _shape("sections" if "sections" in d else d["policy"], d.get("sections", []), d.get("cultures"),
                     got_checks)
        diffs = [f"{f} {got[f]} where expected {exp[f]}" for f in ("policy", "sections", "cultures", "checks")
                 if exp[f] != got[f]]
        if diffs:
            out["differs"].append(f"{k[0]} {k[1]}: " + "; ".join(diffs))
    return out
