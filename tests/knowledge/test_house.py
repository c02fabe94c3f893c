"""The shape of the knowledge domain (issue 13): every public rule passes the tenant door before
it reads or writes, every GraphQL type shows its Struct, and an article's content is one value
that reaches every place it is shown."""

from __future__ import annotations

import ast
import inspect
from types import ModuleType

import msgspec

from backend.api.mapping import MIRRORS
from backend.gql_schema import create_schema
from backend.knowledge import gql, importing, schemas, search, service
from backend.settings import load_settings

# Calls that answer "may this principal do this on this tenant?" (backend/tenants/reach.py, and
# knowledge's town context and workflow union built on it).
DOOR = {
    "town_context",
    "reachable_for_any",
    "reach",
    "reach_id",
    "reach_home",
    "reach_optional",
    "reachable",
    "require",
}
DATA = {"repository", "search_repository"}


def _calls(function: ast.AsyncFunctionDef | ast.FunctionDef) -> list[ast.Call]:
    return sorted(
        (node for node in ast.walk(function) if isinstance(node, ast.Call)), key=lambda c: (c.lineno, c.col_offset)
    )


def _name(call: ast.Call) -> tuple[str | None, str]:
    """(module or object, function) of a call: `repository.find_article` → ("repository", "find_article")."""
    if isinstance(call.func, ast.Attribute):
        base = call.func.value
        if isinstance(base, ast.Attribute):  # uow.conn.fetch
            return base.attr, call.func.attr
        return (base.id if isinstance(base, ast.Name) else None), call.func.attr
    return None, call.func.id if isinstance(call.func, ast.Name) else ""


def unguarded(module: ModuleType) -> list[str]:
    return unguarded_in(inspect.getsource(module), module.__name__)


def unguarded_in(source: str, module_name: str) -> list[str]:
    """Public async functions taking a unit of work whose first database call comes before any
    call to the door (directly, or through a function of the same module or a public function of
    the service, which this test checks on its own)."""
    tree = ast.parse(source)
    functions = {f.name: f for f in tree.body if isinstance(f, ast.AsyncFunctionDef | ast.FunctionDef)}
    guarded: dict[str, bool] = {}

    def passes(name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name in guarded:
            return guarded[name]
        for call in _calls(functions[name]):
            owner, called = _name(call)
            if called in DOOR:
                guarded[name] = True
                return True
            if owner in DATA or owner == "conn":
                guarded[name] = False
                return False
            local = owner is None and called in functions and called not in seen
            if (local and passes(called, seen | {name})) or (owner == "service" and not called.startswith("_")):
                guarded[name] = True  # the service's public functions are checked on their own
                return True
        guarded[name] = False
        return False

    public = [
        name
        for name, f in functions.items()
        if isinstance(f, ast.AsyncFunctionDef) and not name.startswith("_") and any(a.arg == "uow" for a in f.args.args)
    ]
    return [f"{module_name}.{name}" for name in public if not passes(name)]


def test_every_public_knowledge_rule_passes_the_door_before_the_database() -> None:
    modules = [service, search, importing]
    assert all(unguarded(m) == [] for m in modules), [unguarded(m) for m in modules]


def test_a_rule_that_reads_before_asking_the_door_is_named() -> None:
    source = """
async def leaky(uow, article_id):
    article = await repository.find_article(uow.conn, article_id)
    await town_context(uow, "article:read", None)

async def careful(uow, slug):
    ctx = await town_context(uow, "article:read", slug)
    return await repository.list_synonyms(uow.conn, ctx.town_id, ctx.owner_ids)

async def through_a_helper(uow, article_id):
    article = await _own(uow, article_id)
    return await repository.list_versions(uow.conn, [article.tenant_id], [article.id])

async def _own(uow, article_id):
    reachable = reach.reachable(uow, "article:draft-read")
    return await repository.find_own_article(uow.conn, list(reachable), article_id)
"""
    assert unguarded_in(source, "sketch") == ["sketch.leaky"]


def test_every_knowledge_graphql_type_mirrors_its_struct() -> None:
    create_schema(load_settings({}))
    mirrored = {m.gql_type for m in MIRRORS}
    # Connections, search results and payloads wrap lists and errors; they show no one Struct.
    wrappers = ("Connection", "SearchResult", "Payload")
    types = [
        value
        for name, value in vars(gql).items()
        if isinstance(value, type)
        and hasattr(value, "__strawberry_definition__")
        and value.__module__ == gql.__name__
        and not name.startswith("Knowledge")  # the root mixins
        and not any(w in value.__strawberry_definition__.name for w in wrappers)
        and value is not gql.ArticleInputGQL  # its `sections` may be null (see below)
    ]
    assert len(types) >= 20
    assert [t.__name__ for t in types if t not in mirrored] == []


def test_an_articles_content_reaches_every_place_it_is_shown() -> None:
    """One field added to `ArticleContent` must be stored (`VersionBody`), shown to agents
    (`ArticleView`), written by editors (GraphQL `ArticleInput`) and read from imports."""
    content = set(schemas.ArticleContent.__struct_fields__)
    assert content <= set(schemas.VersionBody.__struct_fields__)
    assert content <= set(schemas.ArticleView.__struct_fields__)
    assert content <= set(schemas.ImportRow.__struct_fields__)
    graphql_input = {f.python_name for f in gql.ArticleInputGQL.__strawberry_definition__.fields}  # type: ignore[attr-defined]
    assert graphql_input == set(schemas.ArticleInput.__struct_fields__)
    row = msgspec.convert(
        {"externalId": "x-1", "title": "  Sperrmüll ", "summary": "Abholung ", "searchTerms": ["Müll"]},
        schemas.ImportRow,
    )
    typed = schemas.ArticleInput(title="Sperrmüll", summary="Abholung", search_terms=["Müll"], change_note="import")
    assert row.content() == typed.content()
    assert schemas.version_body(row) == schemas.version_body(typed)
