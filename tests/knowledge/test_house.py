"""The shape of the knowledge domain (issue 13): every GraphQL type shows its Struct, and an
article's content is one value that reaches every place it is shown. (That every public rule
asks the tenant door first is checked for all domains in tests/contracts/test_house_rules.py.)"""

from __future__ import annotations

import msgspec

from backend.api.mapping import MIRRORS
from backend.gql_schema import create_schema
from backend.knowledge import gql, schemas
from backend.settings import load_settings


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
