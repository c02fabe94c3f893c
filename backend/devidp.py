"""A development sign-in that works offline: one tiny OIDC issuer per demo tenant.

Only mounted when DEV_SIGNIN_ENABLED (never in production; settings refuse it). Each tenant's
issuer is `<PUBLIC_BASE_URL>/dev-idp/<slug>` with its own RSA key under DATA_DIR, so a token
of one town is not valid for another. `make token` signs with the same key files, so a running
`make run` server accepts what it prints. The verifier reads these keys directly instead of
fetching its own JWKS over HTTP.
"""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey
from litestar import MediaType, Request, Response, Router, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body

from auth.oidc import HttpJWKSSource, JWKSSource
from auth.roles import MACHINE_CLIENT_SCOPES, OPERATOR_ONLY_ROLES, Role
from backend.settings import Settings

AUDIENCE = "buergerservice"
DEMO_TENANTS = ("kreis-soest", "stadt-soest", "stadt-geseke")
DEMO_OPERATOR = "kreis-soest"
DEMO_ROLES = tuple(r.value for r in Role) + tuple(MACHINE_CLIENT_SCOPES)
TOKEN_SECONDS = 8 * 3600
_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def issuer_url(settings: Settings, slug: str) -> str:
    return f"{settings.public_base_url}/dev-idp/{slug}"


def _key_path(settings: Settings, slug: str) -> Path:
    if not _SLUG.match(slug):
        raise ValueError("bad tenant slug")
    return settings.data_dir / "dev-idp" / f"{slug}.jwk.json"


def signing_key(settings: Settings, slug: str) -> RSAKey:
    path = _key_path(settings, slug)
    if path.exists():
        return RSAKey.import_key(json.loads(path.read_text()))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = RSAKey.generate_key(2048, parameters={"kid": f"dev-{slug}-1", "use": "sig", "alg": "RS256"})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(key.as_dict(private=True)))
    tmp.chmod(0o600)
    tmp.replace(path)
    return key


def public_jwks(settings: Settings, slug: str) -> dict[str, Any]:
    return {"keys": [signing_key(settings, slug).as_dict(private=False)]}


def mint_token(settings: Settings, slug: str, role: str) -> str:
    """A token for the demo person (or machine client) with `role` at tenant `slug`."""
    if role not in DEMO_ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(DEMO_ROLES)}")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer_url(settings, slug),
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + TOKEN_SECONDS,
        "jti": f"{slug}-{role}-{now}",
    }
    if role in MACHINE_CLIENT_SCOPES:
        client_id = f"{slug}-{role}-system"
        claims.update(sub=client_id, client_id=client_id, scope=" ".join(sorted(MACHINE_CLIENT_SCOPES[role])))
    else:
        claims.update(sub=f"demo-{role}", client_id="dev-signin", roles=[role])
    key = signing_key(settings, slug)
    return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "at+jwt"}, claims, key)


class DevJWKSSource:
    """Serve dev issuers' keys from disk, everything else over HTTP discovery."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.prefix = f"{settings.public_base_url}/dev-idp/"
        self.settings = settings
        self.http = HttpJWKSSource(http)

    async def discover(self, issuer: str) -> dict[str, Any]:
        if issuer.startswith(self.prefix):
            slug = issuer[len(self.prefix) :]
            if _key_path(self.settings, slug).exists():
                return {"issuer": issuer, "jwks_uri": f"{issuer}/jwks"}
            raise ValueError("unknown dev issuer")
        return await self.http.discover(issuer)

    async def fetch(self, issuer: str) -> dict[str, Any]:
        if issuer.startswith(self.prefix):
            slug = issuer[len(self.prefix) :]
            if _key_path(self.settings, slug).exists():
                return public_jwks(self.settings, slug)
            raise ValueError("unknown dev issuer")
        return await self.http.fetch(issuer)


def jwks_source(settings: Settings, http: httpx.AsyncClient) -> JWKSSource:
    """Where the verifier gets issuers' keys: dev issuers from disk when dev sign-in is on,
    everything else over HTTP through `http` (the outbound client)."""
    return DevJWKSSource(settings, http) if settings.dev_signin_enabled else HttpJWKSSource(http)


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.app_state.settings
    return settings


def _check_slug(slug: str) -> None:
    if slug not in DEMO_TENANTS and not _SLUG.match(slug):
        raise NotFoundException()


@get("/dev-idp/{slug:str}/.well-known/openid-configuration", sync_to_thread=False)
def discovery(request: Request[Any, Any, Any], slug: str) -> dict[str, Any]:
    _check_slug(slug)
    issuer = issuer_url(_settings(request), slug)
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/jwks",
        "token_endpoint": f"{issuer}/token",
        "id_token_signing_alg_values_supported": ["RS256"],
        "grant_types_supported": ["urn:buergerservice:dev-signin"],
    }


@get("/dev-idp/{slug:str}/jwks", sync_to_thread=False)
def jwks(request: Request[Any, Any, Any], slug: str) -> dict[str, Any]:
    _check_slug(slug)
    return public_jwks(_settings(request), slug)


@post("/dev-idp/{slug:str}/token", status_code=200, sync_to_thread=False)
def token(
    request: Request[Any, Any, Any],
    slug: str,
    data: dict[str, str] = Body(media_type=RequestEncodingType.URL_ENCODED),
) -> dict[str, Any]:
    _check_slug(slug)
    try:
        access_token = mint_token(_settings(request), slug, data.get("role", ""))
    except ValueError as error:
        return {"error": "invalid_request", "error_description": str(error)}
    return {"access_token": access_token, "token_type": "Bearer", "expires_in": TOKEN_SECONDS}


def grantable_roles(slug: str) -> tuple[str, ...]:
    """What the demo issuer of `slug` may grant, as the demo data maps it: only the operator's
    grants platform-admin (a town's would be refused at sign-in); the telephone system is the
    operator's, partner systems and the directory's provisioning client (SCIM) the towns'. The
    most common role comes first."""
    operator = slug == DEMO_OPERATOR
    people = [Role.AGENT, *(r for r in Role if r is not Role.AGENT)]
    roles = [r.value for r in people if operator or r not in OPERATOR_ONLY_ROLES]
    return (*roles, *(("telephony",) if operator else ("partner", "provisioning")))


_PAGE_HEAD = (
    '<!doctype html><html lang="de"><head><meta charset="utf-8"><title>{title}</title>'
    '<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><main>'
)


@get("/dev-signin", media_type=MediaType.HTML, sync_to_thread=False)
def signin_page(request: Request[Any, Any, Any]) -> str:
    """A plain, screen-reader friendly page: one form per demo tenant with the roles its issuer
    may grant; the token comes back on a page of its own (`signin_result`)."""
    forms = []
    for slug in DEMO_TENANTS:
        options = "".join(f'<option value="{r}">{r}</option>' for r in grantable_roles(slug))
        forms.append(
            f'<section aria-labelledby="h-{slug}"><h2 id="h-{slug}">{html.escape(slug)}</h2>'
            f'<form method="post" action="/dev-signin"><input type="hidden" name="tenant" value="{slug}">'
            f'<label for="role-{slug}">Rolle</label> <select id="role-{slug}" name="role">{options}</select> '
            f'<button type="submit">Token holen</button></form></section>'
        )
    return (
        _PAGE_HEAD.format(title="Demo-Anmeldung") + "<h1>Demo-Anmeldung (nur Entwicklung)</h1>"
        "<p>Wählen Sie Kommune und Rolle. Das Token als <code>Authorization: Bearer …</code> "
        "in GraphiQL oder der API-Dokumentation verwenden.</p>" + "".join(forms) + "</main></body></html>"
    )


# Copies the token; says so through the live region (screen readers announce it). Falls back
# to selecting the text where the clipboard API is unavailable (plain http on another host).
_COPY_SCRIPT = """<script>
(function () {
  var button = document.getElementById("copy"), field = document.getElementById("token");
  var status = document.getElementById("copy-status");
  button.addEventListener("click", function () {
    function done(ok) { status.textContent = ok ? "Token kopiert." : "Kopieren nicht möglich; bitte markieren."; }
    field.focus(); field.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(function () { done(true); }, function () { done(false); });
    } else {
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      done(ok);
    }
  });
})();
</script>"""


@post("/dev-signin", status_code=200, media_type=MediaType.HTML, sync_to_thread=False)
def signin_result(
    request: Request[Any, Any, Any],
    data: dict[str, str] = Body(media_type=RequestEncodingType.URL_ENCODED),
) -> Response[str]:
    """The token as text, a copy button and a link that opens GraphiQL with the header filled
    in (in the URL fragment, which the browser never sends to a server)."""
    slug, role = data.get("tenant", ""), data.get("role", "")
    if slug not in DEMO_TENANTS or role not in grantable_roles(slug):
        problem = f"Die Rolle {html.escape(role)!s} gibt es bei {html.escape(slug)!s} nicht."
        page = (
            _PAGE_HEAD.format(title="Demo-Anmeldung: Fehler") + f'<h1>Kein Token</h1><p role="alert">{problem}</p>'
            '<p><a href="/dev-signin">Zurück zur Auswahl</a></p></main></body></html>'
        )
        return Response(page, status_code=422, media_type=MediaType.HTML)
    access_token = mint_token(_settings(request), slug, role)
    headers = json.dumps({"Authorization": f"Bearer {access_token}"})
    graphiql = "/graphql#" + urlencode({"headers": headers}, quote_via=quote)
    return Response(
        _PAGE_HEAD.format(title=f"Token für {html.escape(slug)} ({html.escape(role)})")
        + f"<h1>Token für {html.escape(slug)}, Rolle {html.escape(role)}</h1>"
        f"<p>Gültig {TOKEN_SECONDS // 3600} Stunden.</p>"
        '<p><label for="token">Bearer-Token</label></p>'
        f'<textarea id="token" readonly rows="8" cols="80" spellcheck="false">{html.escape(access_token)}</textarea>'
        '<p><button type="button" id="copy">Token kopieren</button> '
        '<span id="copy-status" role="status" aria-live="polite"></span></p>'
        f'<p><a id="graphiql" href="{html.escape(graphiql)}">GraphiQL mit diesem Token öffnen</a></p>'
        '<p><a href="/dev-signin">Andere Rolle wählen</a></p>' + _COPY_SCRIPT + "</main></body></html>",
        media_type=MediaType.HTML,
    )


def dev_idp_router() -> Router:
    handlers = [discovery, jwks, token, signin_page, signin_result]
    return Router(path="/", route_handlers=handlers, include_in_schema=False)
