"""The pages behind problem+json `type` URIs: `/problems` lists every error code, and
`/problems/<code>` says what one means and what a client does about it — HTML for people,
JSON for programs that ask for it (`Accept: application/json`). Open without a token, like
the documentation it belongs to."""

from __future__ import annotations

import html
from typing import Any

from litestar import MediaType, Request, Response, Router, get

from backend.errors import MEANINGS, PROBLEM_TYPE_BASE, TITLES, ErrorCode, NotFound, problem_slug
from backend.i18n import _l

_BY_SLUG = {problem_slug(code): code for code in ErrorCode}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – Bürgerservice API</title>
<style>
body {{ font: 1rem/1.5 system-ui, sans-serif; color: #1a1a1a; background: #fff; max-width: 46rem;
  margin: 2rem auto; padding: 0 1rem; }}
a {{ color: #0645ad; }}
code {{ background: #f3f3f3; padding: 0 .2em; }}
dt {{ font-weight: bold; margin-top: 1rem; }}
</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""


def describe(code: ErrorCode) -> dict[str, Any]:
    statuses, meaning = MEANINGS[code]
    return {
        "type": PROBLEM_TYPE_BASE + problem_slug(code),
        "code": code.value,
        "title": TITLES[code],
        "statuses": list(statuses),
        "description": meaning,
    }


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    best = request.accept.best_match([MediaType.HTML, MediaType.JSON, "application/problem+json"], MediaType.HTML)
    return best != MediaType.HTML


def _entry(item: dict[str, Any]) -> str:
    statuses = ", ".join(str(s) for s in item["statuses"])
    return (
        f'<dt><a href="{html.escape(item["type"])}">{html.escape(item["title"])}</a> '
        f"(<code>{item['code']}</code>, HTTP {statuses})</dt><dd>{html.escape(item['description'])}</dd>"
    )


@get("/problems", sync_to_thread=False)
def list_problems(request: Request[Any, Any, Any]) -> Response[Any]:
    items = [describe(code) for code in ErrorCode]
    if _wants_json(request):
        return Response(items, media_type=MediaType.JSON)
    body = (
        "<h1>Errors of the Bürgerservice API</h1>\n<p>Every error answer is RFC 9457 problem+json; its "
        "<code>type</code> links to one of these pages, its <code>code</code> is the stable name to "
        "program against.</p>\n<dl>" + "".join(_entry(item) for item in items) + "</dl>"
    )
    return Response(_PAGE.format(title="Errors", body=body), media_type=MediaType.HTML)


@get("/problems/{slug:str}", sync_to_thread=False)
def show_problem(request: Request[Any, Any, Any], slug: str) -> Response[Any]:
    code = _BY_SLUG.get(slug)
    if code is None:
        raise NotFound(_l("no error code is called {slug}; /problems lists them", slug=slug[:60]))
    item = describe(code)
    if _wants_json(request):
        return Response(item, media_type=MediaType.JSON)
    body = (
        f"<h1>{html.escape(item['title'])}</h1>\n<dl><dt>Code</dt><dd><code>{item['code']}</code></dd>"
        f"<dt>HTTP status</dt><dd>{', '.join(str(s) for s in item['statuses'])}</dd>"
        f"<dt>What it means, what to do</dt><dd>{html.escape(item['description'])}</dd></dl>\n"
        '<p><a href="/problems">All error codes</a></p>'
    )
    return Response(_PAGE.format(title=html.escape(item["title"]), body=body), media_type=MediaType.HTML)


def problem_pages_router() -> Router:
    return Router(path="/", route_handlers=[list_problems, show_problem], include_in_schema=False)
