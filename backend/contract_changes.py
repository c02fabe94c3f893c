"""Breaking changes between two versions of our published contracts (decision 021).

`python -m backend.contract_changes` (`make contract-check`, run by CI) compares
graphql/schema.graphql and openapi/openapi.json with their versions at the last release tag
(`v*`) before this commit, or at the previous commit when there is no tag, and fails on a
change that can break a client that worked against the old version — unless the change is
listed in contracts/intended-breaking.txt.

GraphQL: graphql-core's `find_breaking_changes` (the reference implementation's rules).
OpenAPI: the rules below, written here because no maintained differ runs on these machines
(oasdiff is a Go binary, npm's optic 1.0.9 does not start, openapi-diff is not in the npm
index here). They follow oasdiff's breaking-change checks for what our document uses:
removed operations and changed operation ids; new required parameters or body members and
narrowed request types or enums; removed or newly optional response members, widened
response types, removed success statuses.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import build_schema, find_breaking_changes

ROOT = Path(__file__).resolve().parent.parent
SDL = "graphql/schema.graphql"
OPENAPI = "openapi/openapi.json"
INTENDED = "contracts/intended-breaking.txt"
METHODS = ("get", "put", "post", "patch", "delete")
Json = dict[str, Any]


# --------------------------------------------------------------------------- GraphQL


def graphql_breaks(old_sdl: str, new_sdl: str) -> list[str]:
    changes = find_breaking_changes(build_schema(old_sdl), build_schema(new_sdl))
    return [f"GraphQL {change.type.name}: {change.description}" for change in changes]


# --------------------------------------------------------------------------- OpenAPI


@dataclass
class _Diff:
    old: Json
    new: Json

    def resolve(self, document: Json, schema: Any) -> Json:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 20:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = document.get("components", {}).get("schemas", {}).get(name, {})
            seen += 1
        return schema if isinstance(schema, dict) else {}

    def types(self, document: Json, schema: Json) -> set[str]:
        """The JSON types a schema admits; empty: unconstrained."""
        schema = self.resolve(document, schema)
        declared = schema.get("type")
        found = set(declared if isinstance(declared, list) else [declared] if declared else [])
        for key in ("oneOf", "anyOf"):
            for member in schema.get(key, []):
                member_types = self.types(document, member)
                if not member_types:
                    return set()
                found |= member_types
        if "$ref" in schema or "properties" in schema:
            found.add("object")
        return found

    def schema(self, where: str, old: Any, new: Any, *, request: bool, depth: int = 0) -> Iterator[str]:
        """Changes of a schema that break a client sending (request) or reading (response) it."""
        if depth > 12:
            return
        old_s, new_s = self.resolve(self.old, old), self.resolve(self.new, new)
        old_t, new_t = self.types(self.old, old_s), self.types(self.new, new_s)
        if old_t and new_t:
            if request and old_t - new_t:
                yield f"{where}: no longer accepts {', '.join(sorted(old_t - new_t))}"
            if not request and new_t - old_t:
                yield f"{where}: may now be {', '.join(sorted(new_t - old_t))}"
        elif request and old_t != new_t and not old_t:
            yield f"{where}: now only {', '.join(sorted(new_t))}"
        old_enum, new_enum = set(map(str, old_s.get("enum", []))), set(map(str, new_s.get("enum", [])))
        if request and old_enum and new_enum and old_enum - new_enum:
            yield f"{where}: no longer accepts {', '.join(sorted(old_enum - new_enum))}"
        if request and new_enum and not old_enum:
            yield f"{where}: now only accepts {', '.join(sorted(new_enum))}"
        if request:
            for key, tighter in (("maxLength", min), ("maximum", min), ("minLength", max), ("minimum", max)):
                if key in new_s and (key not in old_s or tighter(old_s[key], new_s[key]) != old_s[key]):
                    yield f"{where}: {key} tightened to {new_s[key]}"
        old_props, new_props = old_s.get("properties", {}), new_s.get("properties", {})
        old_req, new_req = set(old_s.get("required", [])), set(new_s.get("required", []))
        for name, old_prop in old_props.items():
            if name not in new_props:
                if request and new_s.get("additionalProperties", False) is not True:
                    yield f"{where}: member `{name}` no longer accepted"
                elif not request:
                    yield f"{where}: member `{name}` removed"
                continue
            if not request and name in old_req and name not in new_req:
                yield f"{where}: member `{name}` no longer always present"
            yield from self.schema(f"{where}.{name}", old_prop, new_props[name], request=request, depth=depth + 1)
        if request:
            for name in sorted(new_req - old_req):
                yield f"{where}: member `{name}` now required"
        if "items" in old_s and "items" in new_s:
            yield from self.schema(f"{where}[]", old_s["items"], new_s["items"], request=request, depth=depth + 1)

    def operation(self, label: str, old: Json, new: Json) -> Iterator[str]:
        if old.get("operationId") and old.get("operationId") != new.get("operationId"):
            yield f"{label}: operationId {old['operationId']} became {new.get('operationId')}"
        old_params = {(p.get("in"), p.get("name")): p for p in old.get("parameters", [])}
        for p in new.get("parameters", []):
            key = (p.get("in"), p.get("name"))
            before = old_params.get(key)
            if p.get("required") and (before is None or not before.get("required")):
                yield f"{label}: {p.get('in')} parameter `{p.get('name')}` now required"
            if before is not None:
                yield from self.schema(
                    f"{label}: {p.get('in')} parameter `{p.get('name')}`",
                    before.get("schema", {}),
                    p.get("schema", {}),
                    request=True,
                )
        old_body, new_body = old.get("requestBody") or {}, new.get("requestBody") or {}
        if new_body.get("required") and not old_body.get("required"):
            yield f"{label}: request body now required"
        for media, content in (old_body.get("content") or {}).items():
            after = (new_body.get("content") or {}).get(media)
            if after is None:
                yield f"{label}: request body {media} no longer accepted"
            else:
                yield from self.schema(
                    f"{label}: request body", content.get("schema", {}), after.get("schema", {}), request=True
                )
        new_responses = new.get("responses", {})
        for status, response in old.get("responses", {}).items():
            if not status.startswith("2"):
                continue
            after = new_responses.get(status)
            if after is None:
                yield f"{label}: response {status} removed"
                continue
            for media, content in (response.get("content") or {}).items():
                after_content = (after.get("content") or {}).get(media)
                if after_content is None:
                    yield f"{label}: response {status} {media} removed"
                else:
                    yield from self.schema(
                        f"{label}: response {status}",
                        content.get("schema", {}),
                        after_content.get("schema", {}),
                        request=False,
                    )

    def breaks(self) -> Iterator[str]:
        for path, item in self.old.get("paths", {}).items():
            for method in METHODS:
                if method not in item:
                    continue
                label = f"OpenAPI {method.upper()} {path}"
                after = self.new.get("paths", {}).get(path, {}).get(method)
                if after is None:
                    yield f"{label}: operation removed"
                else:
                    yield from self.operation(label, item[method], after)


def openapi_breaks(old: Json, new: Json) -> list[str]:
    return list(dict.fromkeys(_Diff(old, new).breaks()))


# --------------------------------------------------------------------------- the check


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def baseline(root: Path = ROOT) -> tuple[str, str] | None:
    """(revision, what it is): the last release tag before this commit, else the previous commit."""
    tag = _git(root, "describe", "--tags", "--abbrev=0", "--match", "v*", "HEAD^")
    if tag:
        return tag, f"release tag {tag}"
    parent = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^")
    if parent:
        return parent, f"previous commit {parent[:12]}"
    return None  # a single commit, or a shallow clone of one


def intended(root: Path = ROOT) -> set[str]:
    path = root / INTENDED
    if not path.is_file():
        return set()
    lines = (line.split(" # ", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def unintended(breaks: list[str], allowed: set[str]) -> list[str]:
    return [change for change in breaks if change not in allowed]


def check(revision: str, root: Path = ROOT) -> tuple[list[str], list[str]]:
    """(all breaking changes, the ones not marked as intended) of the working tree's contracts
    against `revision`; a contract missing there (it is new) has nothing to break."""
    found: list[str] = []
    old_sdl = _git(root, "show", f"{revision}:{SDL}")
    if old_sdl is not None:
        found += graphql_breaks(old_sdl + "\n", (root / SDL).read_text(encoding="utf-8"))
    old_openapi = _git(root, "show", f"{revision}:{OPENAPI}")
    if old_openapi is not None:
        found += openapi_breaks(json.loads(old_openapi), json.loads((root / OPENAPI).read_text(encoding="utf-8")))
    return found, unintended(found, intended(root))


def main(root: Path = ROOT) -> int:
    base = baseline(root)
    if base is None:
        print("contract check: no earlier version to compare with (single commit or shallow clone); skipped")
        return 0
    revision, what = base
    found, bad = check(revision, root)
    for change in found:
        print(("BREAKING " if change in bad else "intended ") + change)
    if bad:
        print(
            f"contract check: {len(bad)} breaking change(s) against {what}. Keep the old shape, or, if the "
            f"break is agreed with the clients, add the lines above (without 'BREAKING ') to "
            f"{INTENDED} with a reason after ' # '.",
            file=sys.stderr,
        )
        return 1
    print(f"contract check: no unintended breaking change against {what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
