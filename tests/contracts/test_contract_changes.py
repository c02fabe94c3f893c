"""The breaking-change check CI runs (`make contract-check`, decision 021): it fails on a removed
field, a removed operation and a narrowed type, passes on additions and on breaks listed as
intended, and copes with a clone that has no earlier version."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from backend import contract_changes
from backend.contract_changes import graphql_breaks, openapi_breaks
from backend.settings import PROJECT_ROOT

SDL = (PROJECT_ROOT / "graphql" / "schema.graphql").read_text()
OPENAPI: dict[str, Any] = json.loads((PROJECT_ROOT / "openapi" / "openapi.json").read_text())


def _without_line(sdl: str, line: str) -> str:
    assert line in sdl
    return sdl.replace(line, "", 1)


# --------------------------------------------------------------------------- GraphQL


def test_a_removed_graphql_field_is_breaking() -> None:
    changed = _without_line(SDL, "  slug: String!\n")
    breaks = graphql_breaks(SDL, changed)
    assert breaks and all(b.startswith("GraphQL FIELD_REMOVED") for b in breaks), breaks


def test_a_narrowed_graphql_argument_is_breaking() -> None:
    # an optional argument with a default made required: queries leaving it out stop validating
    match = re.search(r"(withinDays): Int = null", SDL)
    assert match is not None
    changed = SDL.replace(match.group(0), f"{match.group(1)}: Int!", 1)
    breaks = graphql_breaks(SDL, changed)
    assert any(b.startswith("GraphQL ARG_CHANGED_KIND") for b in breaks), breaks


def test_graphql_additions_are_not_breaking() -> None:
    changed = SDL.replace("type Query {\n", "type Query {\n  newThing: String\n", 1) + "\ntype Extra {\n  x: Int\n}\n"
    assert graphql_breaks(SDL, changed) == []


# --------------------------------------------------------------------------- OpenAPI


def test_a_removed_operation_is_breaking() -> None:
    changed = copy.deepcopy(OPENAPI)
    del changed["paths"]["/v1/me"]
    assert openapi_breaks(OPENAPI, changed) == ["OpenAPI GET /v1/me: operation removed"]


def test_a_removed_response_member_is_breaking() -> None:
    changed = copy.deepcopy(OPENAPI)
    me = changed["paths"]["/v1/me"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    answer = contract_changes._Diff(changed, changed).resolve(changed, me)
    member = sorted(answer["properties"])[0]
    del answer["properties"][member]
    breaks = openapi_breaks(OPENAPI, changed)
    assert f"OpenAPI GET /v1/me: response 200: member `{member}` removed" in breaks, breaks


def test_a_narrowed_request_type_is_breaking() -> None:
    old = {
        "paths": {
            "/v1/things": {
                "post": {
                    "operationId": "addThing",
                    "parameters": [{"name": "limit", "in": "query", "schema": {"type": ["integer", "string"]}}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}},
                    },
                    "responses": {"201": {"description": "made"}},
                }
            }
        },
        "components": {
            "schemas": {
                "Thing": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "maxLength": 100},
                        "kind": {"type": "string", "enum": ["a", "b"]},
                        "note": {"oneOf": [{"type": "string"}, {"type": "null"}]},
                    },
                }
            }
        },
    }
    new = copy.deepcopy(old)
    thing = new["components"]["schemas"]["Thing"]
    thing["properties"]["note"] = {"type": "string"}
    thing["properties"]["kind"]["enum"] = ["a"]
    thing["properties"]["name"]["maxLength"] = 50
    new["paths"]["/v1/things"]["post"]["parameters"][0]["schema"] = {"type": "integer"}
    assert sorted(openapi_breaks(old, new)) == [
        "OpenAPI POST /v1/things: query parameter `limit`: no longer accepts string",
        "OpenAPI POST /v1/things: request body.kind: no longer accepts b",
        "OpenAPI POST /v1/things: request body.name: maxLength tightened to 50",
        "OpenAPI POST /v1/things: request body.note: no longer accepts null",
    ]
    # the other way round widens what is accepted: nothing breaks
    assert openapi_breaks(new, old) == []


def test_openapi_additions_are_not_breaking() -> None:
    changed = copy.deepcopy(OPENAPI)
    changed["paths"]["/v1/new-things"] = {"get": {"operationId": "listNewThings", "responses": {}}}
    me = changed["paths"]["/v1/me"]["get"]
    me["parameters"] = [*me.get("parameters", []), {"name": "extra", "in": "query", "required": False}]
    schema = contract_changes._Diff(changed, changed).resolve(
        changed, me["responses"]["200"]["content"]["application/json"]["schema"]
    )
    schema["properties"]["newMember"] = {"type": "string"}
    assert openapi_breaks(OPENAPI, changed) == []


def test_a_changed_operation_id_is_breaking() -> None:
    changed = copy.deepcopy(OPENAPI)
    changed["paths"]["/v1/me"]["get"]["operationId"] = "whoAmI"
    assert openapi_breaks(OPENAPI, changed) == ["OpenAPI GET /v1/me: operationId getMe became whoAmI"]


def test_the_current_contracts_have_readable_unique_operation_ids() -> None:
    ids = [op["operationId"] for item in OPENAPI["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for operation_id in ids:
        assert operation_id[0].islower() and operation_id.isalnum(), operation_id
        assert not operation_id.startswith("V1"), operation_id


# --------------------------------------------------------------------------- the check in a repository


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True, capture_output=True
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for name in ("graphql/schema.graphql", "openapi/openapi.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "first")
    return tmp_path


def _commit_without_me(repo: Path) -> None:
    document = json.loads((repo / "openapi/openapi.json").read_text())
    del document["paths"]["/v1/me"]
    (repo / "openapi/openapi.json").write_text(json.dumps(document))
    _git(repo, "commit", "-qam", "drop /v1/me")


def test_a_single_commit_has_nothing_to_compare_with(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert contract_changes.main(repo) == 0
    assert "skipped" in capsys.readouterr().out


def test_a_break_fails_the_check_unless_listed_as_intended(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _commit_without_me(repo)
    assert contract_changes.main(repo) == 1
    out = capsys.readouterr()
    assert "BREAKING OpenAPI GET /v1/me: operation removed" in out.out
    assert "contracts/intended-breaking.txt" in out.err

    (repo / "contracts").mkdir()
    (repo / "contracts/intended-breaking.txt").write_text(
        "# agreed\nOpenAPI GET /v1/me: operation removed # the partner towns moved to GraphQL me\n"
    )
    assert contract_changes.main(repo) == 0
    assert "intended OpenAPI GET /v1/me: operation removed" in capsys.readouterr().out


def test_the_last_release_tag_is_the_baseline(repo: Path) -> None:
    _git(repo, "tag", "v1.0.0")
    _commit_without_me(repo)
    (repo / "README").write_text("later")
    _git(repo, "add", "README")
    _git(repo, "commit", "-qm", "unrelated")
    # the previous commit already lacks /v1/me; the release still had it
    assert contract_changes.baseline(repo) == ("v1.0.0", "release tag v1.0.0")
    assert contract_changes.main(repo) == 1


def test_a_shallow_clone_passes_with_a_note(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    _commit_without_me(repo)
    clone = tmp_path_factory.mktemp("shallow") / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)], check=True)
    assert contract_changes.baseline(clone) is None
    assert contract_changes.main(clone) == 0


def test_this_repository_has_no_unintended_break() -> None:
    base = contract_changes.baseline()
    if base is None:
        return  # a shallow clone: the test above covers that case
    _found, bad = contract_changes.check(base[0])
    assert bad == [], bad
