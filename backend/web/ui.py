"""Serve GraphiQL and the OpenAPI docs without any CDN.

Strawberry's GraphiQL page and litestar's OpenAPI UI normally load their
JavaScript and CSS from public CDNs (unpkg, jsDelivr). Many municipal networks
have no internet access, and those pages then stay blank. This module serves
the vendored copies in ``backend/static`` (see ``backend/static/README.md``)
and builds pages that reference only those local files.

Wiring in ``backend/main.py``::

    from litestar import Litestar
    from litestar.openapi import OpenAPIConfig
    from strawberry.litestar import make_graphql_controller

    from backend.web.ui import local_graphiql, openapi_render_plugins, static_assets_router

    GraphQLController = local_graphiql(
        make_graphql_controller(schema, path="/graphql", context_getter=...)
    )

    app = Litestar(
        route_handlers=[GraphQLController, static_assets_router(), ...],
        openapi_config=OpenAPIConfig(
            title="...",
            version="...",
            path="/docs",
            render_plugins=openapi_render_plugins(),
        ),
    )

Resulting routes:

* ``GET /graphql`` with ``Accept: text/html`` serves the local GraphiQL page.
  Queries and mutations go to ``POST /graphql``. Subscriptions use
  ``ws(s)://<host>/graphql`` (graphql-transport-ws). Pass
  ``graphql_ide=None`` to ``make_graphql_controller`` to turn the IDE off,
  for example in production. ``local_graphiql`` keeps that switch.
* ``GET /docs`` serves Swagger UI and ``GET /docs/openapi.json`` the schema.
* ``GET /static/...`` serves the vendored assets. The URLs contain the
  package versions, so the assets are sent with
  ``Cache-Control: public, max-age=31536000, immutable``.

If the app is served below a path prefix (for example
``https://host/buergerservice/``), pass the public prefix of the static route
as ``static_path`` to ``local_graphiql``, ``graphiql_html`` and
``openapi_render_plugins``. The mount path of ``static_assets_router`` stays
``/static``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from strawberry.litestar.controller import GraphQLController

if TYPE_CHECKING:
    from litestar import Request, Router

__all__ = [
    "GRAPHIQL_VERSION",
    "REACT_VERSION",
    "STATIC_DIR",
    "STATIC_PATH",
    "SWAGGER_UI_VERSION",
    "OfflineSwaggerRenderPlugin",
    "graphiql_html",
    "local_graphiql",
    "openapi_render_plugins",
    "static_assets_router",
]

#: Directory with the vendored assets (``backend/static``).
STATIC_DIR: Path = Path(__file__).resolve().parent.parent / "static"
#: URL path the assets are served under.
STATIC_PATH = "/static"

# Keep these in sync with the directory names in backend/static (see its README).
GRAPHIQL_VERSION = "3.9.0"
REACT_VERSION = "18.3.1"
SWAGGER_UI_VERSION = "5.35.0"

#: Assets may be cached forever: a new version lives under a new URL.
_ASSET_CACHE_CONTROL = CacheControlHeader(public=True, max_age=31_536_000, immutable=True)

#: ``data:,`` is an empty icon. The browser then requests neither
#: ``/favicon.ico`` nor litestar's default favicon from jsDelivr.
_NO_FAVICON = '<link rel="icon" href="data:,">'

# Defaults of litestar's ``CSRFConfig``. GraphiQL sends the token like strawberry's page.
_CSRF_COOKIE = "csrftoken"
_CSRF_HEADER = "x-csrftoken"

_DEFAULT_QUERY = """\
# Willkommen in der GraphQL-Konsole.
#
# Abfrage ausführen: Strg+Enter
# Vorschläge: Strg+Leertaste
# Schema-Doku: Buch-Symbol links
#
# Anmeldung: im Reiter "Headers" z. B.
#   {"Authorization": "Bearer <Token>"}
# eintragen. Abfragen senden die Header
# per HTTP, Subscriptions als Payload
# von connection_init.

{
  __typename
}
"""


def _asset_urls(static_path: str) -> dict[str, str]:
    base = static_path.rstrip("/")
    return {
        "graphiql_js": f"{base}/graphiql-{GRAPHIQL_VERSION}/graphiql.min.js",
        "graphiql_css": f"{base}/graphiql-{GRAPHIQL_VERSION}/graphiql.min.css",
        "react_js": f"{base}/react-{REACT_VERSION}/react.production.min.js",
        "react_dom_js": f"{base}/react-dom-{REACT_VERSION}/react-dom.production.min.js",
        "swagger_js": f"{base}/swagger-ui-dist-{SWAGGER_UI_VERSION}/swagger-ui-bundle.js",
        "swagger_preset_js": f"{base}/swagger-ui-dist-{SWAGGER_UI_VERSION}/swagger-ui-standalone-preset.js",
        "swagger_css": f"{base}/swagger-ui-dist-{SWAGGER_UI_VERSION}/swagger-ui.css",
    }


def static_assets_router(path: str = STATIC_PATH) -> Router:
    """Build a router that serves ``backend/static`` under ``path``.

    The router is left out of the OpenAPI schema. Responses carry a long,
    immutable ``Cache-Control`` header. Register it next to the GraphQL
    controller: ``Litestar(route_handlers=[..., static_assets_router()])``.
    """
    return create_static_files_router(
        path=path,
        directories=[STATIC_DIR],
        name="offline_ui_static",
        cache_control=_ASSET_CACHE_CONTROL,
        include_in_schema=False,
    )


# The page script is static. All values come from the JSON block ("graphiql-config"),
# so no request data ends up in executable code. Do not put "//" comments in here:
# the tests scan the page for anything that looks like a URL.
_GRAPHIQL_TEMPLATE = Template(
    """\
<!doctype html>
<html lang="de">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="robots" content="noindex">
    <title>$title</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="$graphiql_css">
    <style>
      html, body { height: 100%; margin: 0; width: 100%; overflow: hidden; }
      #graphiql { height: 100vh; display: flex; }
      .offline-ui-hint { font-family: system-ui, sans-serif; margin: 2rem; }
      /* Contrast of at least 4.5:1 (WCAG 2.1 AA; make a11y): GraphiQL's faint secondary and
         tertiary text, its info blue and CodeMirror's grey line numbers fell short (2.5-4.3). */
      .graphiql-container, .CodeMirror-info, .CodeMirror-lint-tooltip, .graphiql-dialog,
      .graphiql-tooltip, [data-radix-popper-content-wrapper] {
        --alpha-secondary: .9;
        --alpha-tertiary: .8;
      }
      body:not(.graphiql-dark) .graphiql-container { --color-info: 208, 100%, 36%; }
      .graphiql-container .CodeMirror-linenumber { color: hsla(var(--color-neutral), .85); }
    </style>
    <script src="$react_js"></script>
    <script src="$react_dom_js"></script>
    <script src="$graphiql_js"></script>
  </head>
  <body>
    <main id="graphiql" aria-label="$title">
      <p class="offline-ui-hint">GraphiQL wird geladen …</p>
    </main>
    <noscript>
      <p class="offline-ui-hint">Für die GraphQL-Konsole muss JavaScript aktiviert sein.</p>
    </noscript>
    <script id="graphiql-config" type="application/json">$config</script>
    <script>
      (function () {
        "use strict";
        var config = JSON.parse(document.getElementById("graphiql-config").textContent);
        var params = new URLSearchParams(window.location.search);

        function resolveUrl(value) {
          var url = new URL(value || "", window.location.href);
          url.hash = "";
          if (!value) {
            url.search = "";
          }
          return url;
        }

        function readCookie(name) {
          var prefix = name + "=";
          var parts = document.cookie ? document.cookie.split("; ") : [];
          for (var i = 0; i < parts.length; i++) {
            if (parts[i].indexOf(prefix) === 0) {
              return decodeURIComponent(parts[i].slice(prefix.length));
            }
          }
          return null;
        }

        var httpUrl = resolveUrl(config.endpoint);
        var wsUrl = config.subscriptionsEndpoint
          ? resolveUrl(config.subscriptionsEndpoint)
          : new URL(httpUrl.href);
        if (wsUrl.protocol === "http:") {
          wsUrl.protocol = "ws:";
        } else if (wsUrl.protocol === "https:") {
          wsUrl.protocol = "wss:";
        }

        var defaultHeaders = {};
        var csrfToken = readCookie(config.csrfCookie);
        if (csrfToken) {
          defaultHeaders[config.csrfHeader] = csrfToken;
        }

        /* graphiql 3.9: headers from the header editor are merged into every HTTP
           request and used as connection_init payload (connectionParams) of the
           graphql-ws client that is opened for each subscription. */
        var fetcher = GraphiQL.createFetcher({
          url: httpUrl.href,
          headers: defaultHeaders,
          subscriptionUrl: wsUrl.href
        });

        var initialQuery = params.get("q") || undefined;
        var initialVariables = params.get("variables") || undefined;
        /* /dev-signin links here with the Authorization header in the fragment (#headers=…),
           which browsers never send to a server: fill the header editor with it, then drop
           it from the address bar and history. */
        var fragment = new URLSearchParams(window.location.hash.slice(1));
        var initialHeaders = fragment.get("headers") || undefined;
        if (initialHeaders) {
          window.history.replaceState(null, "", window.location.pathname + window.location.search);
        }

        function updateUrl(key, value) {
          if (value) {
            params.set(key, value);
          } else {
            params.delete(key);
          }
          var search = params.toString();
          window.history.replaceState(null, "", window.location.pathname + (search ? "?" + search : ""));
        }

        function App() {
          return React.createElement(GraphiQL, {
            fetcher: fetcher,
            defaultQuery: config.defaultQuery,
            query: initialQuery,
            variables: initialVariables,
            headers: initialHeaders,
            onEditQuery: function (value) { updateUrl("q", value); },
            onEditVariables: function (value) { updateUrl("variables", value); },
            defaultEditorToolsVisibility: "headers",
            isHeadersEditorEnabled: true,
            shouldPersistHeaders: false,
            inputValueDeprecation: true
          });
        }

        /* CodeMirror's hidden text areas carry no name: screen readers announced four unnamed
           "edit text" fields. Name each after the editor it belongs to, as GraphiQL draws them. */
        var root = document.getElementById("graphiql");
        function nameEditors() {
          var areas = root.querySelectorAll(".CodeMirror textarea:not([aria-label])");
          for (var i = 0; i < areas.length; i++) {
            var area = areas[i];
            var tool = area.closest(".graphiql-editor-tool");
            var name = "GraphQL-Abfrage";
            if (area.closest(".graphiql-response")) {
              name = "Antwort des Servers";
            } else if (tool) {
              var editors = tool.querySelectorAll(".graphiql-editor");
              name = editors.length > 1 && editors[1].contains(area) ? "HTTP-Header (JSON)" : "Variablen (JSON)";
            }
            area.setAttribute("aria-label", name);
          }
        }
        new MutationObserver(nameEditors).observe(root, { childList: true, subtree: true });

        ReactDOM.createRoot(root).render(React.createElement(App));
      })();
    </script>
  </body>
</html>
"""
)


def _json_for_html(value: object) -> str:
    """Serialise ``value`` so that it is safe inside a ``<script>`` element."""
    return (
        json.dumps(value, ensure_ascii=False)
        .replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def graphiql_html(
    endpoint: str = "/graphql",
    subscriptions_endpoint: str | None = None,
    *,
    static_path: str = STATIC_PATH,
    title: str = "GraphQL-Konsole (GraphiQL)",
) -> str:
    """Render a GraphiQL page that loads its assets only from ``static_path``.

    Args:
        endpoint: URL of the GraphQL HTTP endpoint. It can be absolute or
            relative to the page. An empty string means the page's own URL
            without its query string, as on strawberry's page.
        subscriptions_endpoint: WebSocket URL for subscriptions
            (graphql-transport-ws). ``None`` derives it from ``endpoint``
            (``http`` becomes ``ws``, ``https`` becomes ``wss``).
        static_path: Public URL prefix of :func:`static_assets_router`.
        title: Document title.

    Headers typed into GraphiQL's header editor (for example
    ``{"Authorization": "Bearer ..."}``) go out as HTTP headers on queries and
    mutations. For subscriptions they are the ``connection_init`` payload,
    because browsers cannot set headers on WebSockets. The page does not
    store them in ``localStorage``. A ``csrftoken`` cookie, if present, is
    sent as ``x-csrftoken``.
    """
    config = {
        "endpoint": endpoint,
        "subscriptionsEndpoint": subscriptions_endpoint,
        "csrfCookie": _CSRF_COOKIE,
        "csrfHeader": _CSRF_HEADER,
        "defaultQuery": _DEFAULT_QUERY,
    }
    urls = {key: html.escape(url, quote=True) for key, url in _asset_urls(static_path).items()}
    return _GRAPHIQL_TEMPLATE.substitute(
        title=html.escape(title, quote=True),
        config=_json_for_html(config),
        **urls,
    )


class _LocalGraphiQLMixin:
    """Replaces strawberry's CDN-based IDE page (``graphql_ide_html``)."""

    local_graphiql_subscriptions_endpoint: ClassVar[str | None] = None
    local_graphiql_static_path: ClassVar[str] = STATIC_PATH

    @property
    def graphql_ide_html(self) -> str:
        # endpoint="" means the page posts to its own URL, so the controller path
        # and any proxy prefix work without configuration.
        return graphiql_html(
            endpoint="",
            subscriptions_endpoint=self.local_graphiql_subscriptions_endpoint,
            static_path=self.local_graphiql_static_path,
        )


_ControllerT = TypeVar("_ControllerT", bound=GraphQLController[Any, Any])


def local_graphiql(
    controller_cls: type[_ControllerT],
    *,
    subscriptions_endpoint: str | None = None,
    static_path: str = STATIC_PATH,
) -> type[_ControllerT]:
    """Return a subclass of ``controller_cls`` whose GraphiQL page is served offline.

    ``controller_cls`` is the class returned by
    ``strawberry.litestar.make_graphql_controller``. Strawberry's litestar
    controller answers an IDE request (``GET`` with ``Accept: text/html`` and
    no ``query`` parameter) in ``render_graphql_ide`` with
    ``self.graphql_ide_html``. The subclass overrides that property with
    :func:`graphiql_html`. Everything else stays as it is: path, schema,
    context getter, subscription protocols, and ``graphql_ide=None`` to turn
    the IDE off.

    Usage in ``backend/main.py``::

        GraphQLController = local_graphiql(make_graphql_controller(schema, path="/graphql"))
        app = Litestar(route_handlers=[GraphQLController, static_assets_router()])
    """
    if not (isinstance(controller_cls, type) and issubclass(controller_cls, GraphQLController)):
        msg = f"expected a strawberry litestar GraphQLController subclass, got {controller_cls!r}"
        raise TypeError(msg)
    namespace: dict[str, Any] = {
        "__module__": controller_cls.__module__,
        "__qualname__": f"LocalGraphiQL{controller_cls.__qualname__}",
        "__doc__": controller_cls.__doc__,
        "local_graphiql_subscriptions_endpoint": subscriptions_endpoint,
        "local_graphiql_static_path": static_path,
    }
    new_cls = type(
        f"LocalGraphiQL{controller_cls.__name__}",
        (_LocalGraphiQLMixin, controller_cls),
        namespace,
    )
    return cast("type[_ControllerT]", new_cls)


# Swagger UI as shipped fails WCAG 2.1 AA contrast (make a11y, decision 021): white method
# badges on light colours (1.6-3.6:1), grey and green small text. Our colours reach at least 4.5:1.
# The server picker lists one server ("/"): hidden, it was an unnamed <select> for screen readers.
_SWAGGER_STYLE = """<style>
body { margin: 0; padding: 0; }
.swagger-ui .opblock .opblock-summary-method { color: #000; }
.swagger-ui .json-schema-2020-12-expand-deep-button { color: #4d4d4d; }
.swagger-ui .info .title small pre { background: #4f5663; }
.swagger-ui .info .title small.version-stamp pre { background: #3b6e00; }
.swagger-ui .info .link, .swagger-ui .info a { color: #1d5fa8; }
.swagger-ui .btn.authorize, .swagger-ui .btn.authorize span { color: #1a6e45; border-color: #1a6e45; }
.swagger-ui .btn.authorize svg { fill: #1a6e45; }
.swagger-ui .scheme-container .servers-title, .swagger-ui .scheme-container .servers { display: none; }
.swagger-ui .parameter__in { color: #555; }
.swagger-ui .microlight span[style*="211, 99, 99"], .swagger-ui .microlight span[style*="d36363"] {
  color: #ff9b9b !important;
}
</style>
<script>
  /* Swagger UI's example pickers are selects without a name: name them for screen readers. */
  document.addEventListener("DOMContentLoaded", function () {
    new MutationObserver(function () {
      var pickers = document.querySelectorAll("select.examples-select-element:not([aria-label])");
      for (var i = 0; i < pickers.length; i++) {
        pickers[i].setAttribute("aria-label", "Example");
      }
    }).observe(document.body, { childList: true, subtree: true });
  });
</script>"""


class OfflineSwaggerRenderPlugin(SwaggerRenderPlugin):
    """litestar's Swagger UI plugin with local assets, no favicon and ``lang="de"``, made usable
    with a screen reader: operations without deep links (a link nested in the summary button made
    every operation an interactive control inside another, axe `nested-interactive`), and our
    contrast fixes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(style=_SWAGGER_STYLE, **kwargs)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        page = super().render(request, openapi_schema)
        page = page.replace(b"deepLinking: true", b"deepLinking: false", 1)
        return page.replace(b"<html>", b'<html lang="de">', 1)


def openapi_render_plugins(
    *,
    static_path: str = STATIC_PATH,
    path: str | Sequence[str] = "/",
) -> list[OpenAPIRenderPlugin]:
    """Build OpenAPI render plugins that work without internet access.

    Use them as ``OpenAPIConfig(path="/docs", render_plugins=openapi_render_plugins())``.
    Swagger UI is then at ``/docs`` and the schema at ``/docs/openapi.json``,
    which litestar always adds. Swagger UI's assets come from
    :func:`static_assets_router`. Litestar's default favicon (jsDelivr) is
    replaced by an empty ``data:`` icon.
    """
    urls = _asset_urls(static_path)
    return [
        OfflineSwaggerRenderPlugin(
            version=SWAGGER_UI_VERSION,
            js_url=urls["swagger_js"],
            css_url=urls["swagger_css"],
            standalone_preset_js_url=urls["swagger_preset_js"],
            path=path,
            favicon=_NO_FAVICON,
        )
    ]
