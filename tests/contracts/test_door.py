"""Every public service function that takes a unit of work passes the tenant door (issue 13).

A lint in the form of a test: in the services of tickets, telephony and tenants, the first call
that matters in each public function taking `uow` is the door (`reach.*`) or the permission
matrix (`require`), never a repository. A call to another function of the same module counts as
that function's first call (`events` → `get_ticket` → the door).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "backend"
SERVICES = [
    "tickets/service.py",
    "tickets/webhook_service.py",
    "telephony/service.py",
    "tenants/service.py",
]
DOOR = {"reach", "reach_optional", "reach_id", "reachable", "reach_home", "require"}
REPOSITORIES = {"repository", "webhook_repository"}
# Answers why a function may do without the door.
EXEMPT = {
    "tickets/service.py:audit_replay": "re-sends an answer the caller was given before; the tickets it names are "
    "read within the caller's row tenants and the answer is dropped when one is out of reach",
    "tenants/service.py:tenant_by_slug": "a delegate to the door itself, for billing until it moves",
    "tenants/service.py:tenant_id_by_slug": "a delegate to the door itself, for billing until it moves",
}


def _calls(node: ast.AST) -> list[ast.Call]:
    found = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
    return sorted(found, key=lambda c: (c.lineno, c.col_offset))


def _kind(call: ast.Call, local: dict[str, ast.AST], seen: frozenset[str]) -> str | None:
    """'door', 'repository', or None when the call decides nothing."""
    func = call.func
    if isinstance(func, ast.Name):
        if func.id in DOOR:
            return "door"
        if func.id in local and func.id not in seen:
            return _first(local[func.id], local, seen | {func.id})
        return None
    if isinstance(func, ast.Attribute):
        owner = func.value
        if isinstance(owner, ast.Name) and owner.id == "reach" and func.attr in DOOR:
            return "door"
        if isinstance(owner, ast.Name) and owner.id in REPOSITORIES:
            return "repository"
        if isinstance(owner, ast.Attribute) and owner.attr == "conn":  # uow.conn.fetch…
            return "repository"
    return None


def _first(function: ast.AST, local: dict[str, ast.AST], seen: frozenset[str]) -> str | None:
    for call in _calls(function):
        kind = _kind(call, local, seen)
        if kind is not None:
            return kind
    return None


def _public_uow_functions(path: str) -> list[tuple[str, ast.AST, dict[str, ast.AST]]]:
    tree = ast.parse((ROOT / path).read_text())
    local: dict[str, ast.AST] = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    return [
        (name, node, local)
        for name, node in local.items()
        if not name.startswith("_")
        and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(a.arg == "uow" for a in node.args.args)
    ]


@pytest.mark.parametrize("path", SERVICES)
def test_public_service_functions_pass_the_door_before_any_repository(path: str) -> None:
    functions = _public_uow_functions(path)
    assert functions
    wrong = [
        name
        for name, node, local in functions
        if f"{path}:{name}" not in EXEMPT and _first(node, local, frozenset({name})) != "door"
    ]
    assert wrong == []


@pytest.mark.parametrize("path", SERVICES)
def test_the_private_helpers_of_old_are_gone(path: str) -> None:
    text = (ROOT / path).read_text()
    for helper in ("def _reachable(", "def _reachable_tenant(", "def find_tenant_by_slug("):
        assert helper not in text
