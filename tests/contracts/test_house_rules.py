"""The house rules of issue 13 §1/§2, checked like a lint (decision 022).

- (a) No file under backend/ is over 700 lines unless its first lines say why ("700 lines").
- (b) REST controllers and GraphQL modules pass the tenant's slug through: they do not call the
  door (`reach…`, `require`) or look tenants up by slug themselves. Their imports of
  `auth.permissions` are an import-linter contract (pyproject.toml).
- (c) A domain does not import another domain's repository: an import-linter contract.
- (d) Every public async service function taking a unit of work passes the door (`reach…`,
  `reachable`) or `require` before its first repository call, directly or through a function
  that does.

The lists below are today's known offenders (the domains move to the door in parallel). They
only shrink: a new offender fails, and so does an entry that no longer offends (remove it), so
the lists end empty.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "backend"
DOMAINS = ("tenants", "telephony", "tickets", "knowledge", "billing", "directory", "centre", "open311")
MAX_LINES = 700

# (a) Files over 700 lines without a reason at the top, to be split (issue 13 §2).
LONG_FILES: set[str] = set()

# (b) REST/GraphQL modules and how many door or tenant lookups they still make themselves.
SELF_REACHING: dict[str, int] = {}

# (d) Public service functions that reach a repository before the door.
UNGUARDED: set[str] = set()

DOOR = frozenset({"reach", "reach_seen", "reach_optional", "reach_id", "reachable", "reach_home", "require"})
TENANT_LOOKUPS = frozenset({"tenant_by_slug", "tenant_id_by_slug"})
# Modules that are not services: the thin outer layers, SQL, records, demo data, the door itself.
NOT_SERVICES = ("controller", "gql", "repository", "schemas", "loaders", "demo", "reach")


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _python_files() -> list[Path]:
    return sorted(p for p in BACKEND.rglob("*.py") if "static" not in p.relative_to(BACKEND).parts)


def _domain_modules(*, outer: bool) -> list[Path]:
    """Modules of the domains: the REST/GraphQL ones (outer) or the rest (services and helpers)."""
    found = []
    for domain in DOMAINS:
        for path in sorted((BACKEND / domain).rglob("*.py")):
            parts = path.relative_to(BACKEND / domain).with_suffix("").parts
            layer = parts[0].split("_")[0]  # a split module (`gql_types`) or package (`gql/…`)
            if outer == (layer in ("controller", "gql")):
                found.append(path)
    return found


def _ratchet(found: dict[str, int], allowed: dict[str, int], what: str) -> None:
    """New offenders fail; so do entries that offend less than listed (lower or remove them)."""
    problems = [
        f"{name}: {what} ({count}); pass it through instead"
        for name, count in found.items()
        if count > allowed.get(name, 0)
    ]
    problems += [
        f"{name}: listed with {count}, now {found.get(name, 0)}: lower or remove the entry"
        for name, count in allowed.items()
        if found.get(name, 0) < count
    ]
    assert not problems, "\n".join(sorted(problems))


# (a) ---------------------------------------------------------------------------------------


def test_no_file_under_backend_is_over_700_lines_without_a_reason_at_its_top() -> None:
    found = {}
    for path in _python_files():
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > MAX_LINES and not any("700 lines" in line for line in lines[:20]):
            found[_relative(path)] = 1
    _ratchet(found, dict.fromkeys(LONG_FILES, 1), f"over {MAX_LINES} lines without a reason in its first lines")


# (b) ---------------------------------------------------------------------------------------


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _self_reaching_calls(tree: ast.AST) -> int:
    """Calls of the door or of a tenant lookup; `return await service.tenant_by_slug(…)` is the
    read of the tenant itself (GET /v1/tenants/{slug}) and passes."""
    returned = {
        id(node.value.value if isinstance(node.value, ast.Await) else node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Return) and node.value is not None
    }
    count = 0
    for node in ast.walk(tree):
        name = _called_name(node) if isinstance(node, ast.Call) else None
        if name in DOOR or (name in TENANT_LOOKUPS and id(node) not in returned):
            count += 1
    return count


def test_rest_and_graphql_modules_do_not_reach_tenants_themselves() -> None:
    found = {}
    for path in _domain_modules(outer=True):
        if count := _self_reaching_calls(ast.parse(path.read_text(encoding="utf-8"))):
            found[_relative(path)] = count
    _ratchet(found, SELF_REACHING, "calls the door or looks a tenant up itself")


# (d) ---------------------------------------------------------------------------------------


@dataclass
class _Function:
    module: str
    node: ast.AsyncFunctionDef | ast.FunctionDef
    names: dict[str, str]  # local name -> "module:function" it stands for (this module's and imported)
    modules: dict[str, str]  # local name -> module it stands for
    repositories: set[str]  # local names of repository modules and functions

    @property
    def qualified(self) -> str:
        return f"{self.module}:{self.node.name}"


def _module_name(path: Path, root: Path = ROOT) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def _is_repository(module: str) -> bool:
    return any(part.endswith("repository") or part == "repositories" for part in module.split(".")[1:])


def _read_module(path: Path, root: Path = ROOT) -> list[_Function]:
    module = _module_name(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: dict[str, str] = {}
    modules: dict[str, str] = {}
    repositories: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                local = alias.asname or alias.name
                if _is_repository(f"{node.module}.{alias.name}") or _is_repository(node.module):
                    repositories.add(local)
                names[local] = f"{node.module}:{alias.name}"
                modules[local] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    modules[alias.asname] = alias.name
                    if _is_repository(alias.name):
                        repositories.add(alias.asname)
    functions = [n for n in tree.body if isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef)]
    names.update({f.name: f"{module}:{f.name}" for f in functions})
    return [_Function(module, f, names, modules, repositories) for f in functions]


def _in_order(node: ast.AST) -> Iterator[ast.Call]:
    """Calls in the order they run: arguments before the call; nothing of nested functions or
    lambdas (they run later, if at all)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Lambda | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        yield from _in_order(child)
    if isinstance(node, ast.Call):
        yield node


GUARDED, TOUCHES = "guarded", "touches"  # passes the door first; reaches a repository first


def _callee(function: _Function, call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return function.names.get(call.func.id)
    if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
        module = function.modules.get(call.func.value.id)
        return f"{module}:{call.func.attr}" if module else None
    return None


def _first_decisive(function: _Function, verdicts: dict[str, str]) -> str | None:
    for call in _in_order(function.node):
        name = _called_name(call)
        if name in DOOR:
            return GUARDED
        head = call.func.value if isinstance(call.func, ast.Attribute) else call.func
        if isinstance(head, ast.Name) and head.id in function.repositories:
            return TOUCHES
        callee = _callee(function, call)
        if callee is not None and callee != function.qualified and callee in verdicts:
            return verdicts[callee]
    return None


def _verdicts(functions: list[_Function]) -> dict[str, str]:
    """Whether each function passes the door before touching a repository, also through the
    functions it calls first (a private `_locked` that requires, another service's function)."""
    verdicts: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for function in functions:
            verdict = _first_decisive(function, verdicts)
            if verdict is not None and verdicts.get(function.qualified) != verdict:
                verdicts[function.qualified] = verdict
                changed = True
    return verdicts


def _takes_uow(node: ast.AsyncFunctionDef | ast.FunctionDef) -> bool:
    return any(arg.arg == "uow" for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs])


def _service_functions() -> tuple[list[_Function], dict[str, str]]:
    functions = []
    for path in _domain_modules(outer=False):
        if path.stem not in NOT_SERVICES and not _is_repository(_module_name(path)):
            functions += _read_module(path)
    functions += _read_module(BACKEND / "tenants" / "reach.py")  # the door, for calls through it
    return functions, _verdicts(functions)


def test_public_service_functions_pass_the_door_before_their_first_repository_call() -> None:
    functions, verdicts = _service_functions()
    found = {
        f.qualified: 1
        for f in functions
        if isinstance(f.node, ast.AsyncFunctionDef)
        and not f.node.name.startswith("_")
        and _takes_uow(f.node)
        and f.module != "backend.tenants.reach"
        and verdicts.get(f.qualified) == TOUCHES
    }
    _ratchet(found, dict.fromkeys(UNGUARDED, 1), "reaches a repository before the door (reach…, require)")


# The checks themselves, on small samples: what each must find and what it must let pass.

SAMPLE = """
from auth.permissions import require
from backend.tenants.reach import reach
from backend.tickets import repository


async def _locked(uow, ticket_id):
    require(uow.principal, "op")
    return await repository.get_ticket(uow.conn, ticket_id)


async def guarded(uow, slug):
    tenant = await reach(uow, slug, "op")
    return await repository.list_tickets(uow.conn, tenant.id)


async def guarded_in_the_arguments(uow, ticket_id):
    return await repository.get_ticket(uow.conn, list(require(uow.principal, "op")), ticket_id)


async def guarded_through_a_helper(uow, ticket_id):
    ticket = await _locked(uow, ticket_id)
    return await repository.list_events(uow.conn, ticket.id)


async def unguarded(uow, ticket_id):
    ticket = await repository.get_ticket(uow.conn, ticket_id)
    require(uow.principal, "op")
    return ticket


async def unguarded_through_a_helper(uow, ticket_id):
    await unguarded(uow, ticket_id)
    require(uow.principal, "op")
"""


@pytest.mark.parametrize(
    ("function", "verdict"),
    [
        ("guarded", GUARDED),
        ("guarded_in_the_arguments", GUARDED),
        ("guarded_through_a_helper", GUARDED),
        ("unguarded", TOUCHES),
        ("unguarded_through_a_helper", TOUCHES),
    ],
)
def test_the_door_check_tells_guarded_from_unguarded(tmp_path: Path, function: str, verdict: str) -> None:
    path = tmp_path / "sample.py"
    path.write_text(SAMPLE, encoding="utf-8")
    assert _verdicts(_read_module(path, root=tmp_path))[f"sample:{function}"] == verdict


def test_the_reach_check_counts_lookups_but_not_the_tenant_read_itself() -> None:
    tree = ast.parse(
        "async def read(uow, slug):\n    return await service.tenant_by_slug(uow, slug)\n"
        "async def lookup(uow, slug):\n    tenant = await service.tenant_by_slug(uow, slug)\n"
        "    require(uow.principal, 'op')\n"
    )
    assert _self_reaching_calls(tree) == 2
