"""The exported contracts (SDL and OpenAPI), computed from the code without a server."""

from __future__ import annotations

from typing import Any

from backend.settings import Settings


def graphql_sdl() -> str:
    from backend.gql_schema import create_schema

    return create_schema(Settings()).as_str() + "\n"


def openapi_document() -> dict[str, Any]:
    from backend.main import create_app

    app = create_app(Settings(database_url="postgresql://unused/unused", redis_url="redis://unused"))
    return app.openapi_schema.to_schema()
