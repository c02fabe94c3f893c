"""The newcomer's first sign-in: `/dev-signin` offers each demo tenant only the roles its
issuer may grant (a town's platform-admin token was refused), and shows the token with a
labelled copy button, a live region that announces the copy, and a link that opens GraphiQL
with the Authorization header filled in (in the fragment, never sent to a server)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

import httpx

from backend import devidp
from backend.state import unit_of_work
from backend.tenants import service
from backend.tenants.schemas import IdentityIssuerInput
from backend.web.ui import graphiql_html
from tests.support.world import World, make_tenant, system_principal


class Page(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.options: dict[str, list[str]] = {}
        self._select: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.elements.append((tag, values))
        if tag == "select":
            self._select = values["id"]
            self.options[self._select] = []
        elif tag == "option" and self._select:
            self.options[self._select].append(values["value"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None

    def find(self, tag: str, **attrs: str) -> dict[str, str]:
        return next(a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items()))


async def test_each_tenant_offers_only_the_roles_it_may_grant(client: httpx.AsyncClient) -> None:
    page = Page((await client.get("/dev-signin")).text)
    for town in ("stadt-soest", "stadt-geseke"):
        roles = page.options[f"role-{town}"]
        assert roles[0] == "agent"  # preselected: a role that signs in
        assert "platform-admin" not in roles and "telephony" not in roles and "partner" in roles
    operator = page.options["role-kreis-soest"]
    assert operator[0] == "agent" and "platform-admin" in operator and "telephony" in operator


async def test_the_token_page_copies_and_opens_graphiql_with_the_header(
    client: httpx.AsyncClient, world: World
) -> None:
    # The session app's dev issuer for stadt-soest, trusted by a tenant of this test.
    tenant_id: UUID = await make_tenant(world.state, f"dev-{world.suffix}")
    async with unit_of_work(world.state, system_principal(tenant_id, {tenant_id})) as uow:
        await service.add_identity_issuer(
            uow,
            f"dev-{world.suffix}",
            IdentityIssuerInput(
                issuer=devidp.issuer_url(world.state.settings, "stadt-soest"),
                audience=devidp.AUDIENCE,
                role_mapping={"agent": "agent"},
            ),
        )
    response = await client.post("/dev-signin", data={"tenant": "stadt-soest", "role": "agent"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = Page(response.text)
    field = page.find("textarea", id="token")
    assert "readonly" in field
    assert page.find("label", **{"for": "token"})
    token = re.search(r'<textarea id="token"[^>]*>([^<]+)</textarea>', response.text)
    assert token is not None
    button = page.find("button", id="copy")
    assert button["type"] == "button"  # a real button: focusable, Enter and Space work
    live = page.find("span", id="copy-status")
    assert live["role"] == "status" and live["aria-live"] == "polite"
    assert "copy-status" in response.text.split("<script>")[1]  # the script announces there
    link = urlsplit(page.find("a", id="graphiql")["href"])
    assert link.path == "/graphql" and not link.query  # the token is not in what the server sees
    headers = json.loads(unquote(parse_qs(link.fragment)["headers"][0]))
    assert headers == {"Authorization": f"Bearer {token.group(1)}"}
    me = await client.get("/v1/me", headers=headers)
    assert me.status_code == 200 and me.json()["roles"] == ["agent"]

    refused = await client.post("/dev-signin", data={"tenant": "stadt-soest", "role": "platform-admin"})
    assert refused.status_code == 422 and 'role="alert"' in refused.text and "textarea" not in refused.text


def test_graphiql_takes_the_header_from_the_fragment_and_drops_it() -> None:
    page = graphiql_html()
    assert 'fragment.get("headers")' in page and "headers: initialHeaders" in page
    assert 'window.history.replaceState(null, "", window.location.pathname + window.location.search)' in page
