from tests.support.world import World, make_tenant
import uuid

async def test_probe(client, world: World) -> None:
    h = world.headers("kreis-soest", "platform-admin")
    slug = f"probe-{uuid.uuid4().hex[:6]}"
    await make_tenant(world.state, slug)
    reqs = [
        ("GET", "/v1/tenants", {"params": {"after": "\x00"}}),
        ("GET", "/v1/tenants", {"params": {"first": "99999999999999999999999"}}),
        ("GET", "/v1/tenants/%00", {}),
        ("GET", "/v1/tenants/a%00b/departments", {}),
        ("PATCH", f"/v1/tenants/{slug}", {"json": {"version": 2**40}}),
        ("PATCH", f"/v1/tenants/{slug}", {"json": {"version": 2**70}}),
        ("PATCH", f"/v1/tenants/{slug}", {"json": {"name": "a\x00b"}}),
        ("PATCH", f"/v1/tenants/{slug}", {"json": {"ags": "\x00"}}),
        ("PATCH", f"/v1/tenants/{slug}", {"json": {"timeZone": "\x00"}}),
        ("PATCH", f"/v1/tenants/{slug}", {"json": {"timeZone": "../../etc/passwd"}}),
        ("PATCH", f"/v1/tenants/{slug}", {"json": {"timeZone": "/etc/localtime"}}),
        ("PATCH", f"/v1/tenants/{slug}", {"json": {"leitwegId": "0" * 12 + "-" + "a" * 30 + "-00"}}),
        ("POST", "/v1/tenants", {"json": {"slug": f"p-{uuid.uuid4().hex[:6]}", "name": "a\x00", "kind": "town"}}),
        ("POST", f"/v1/tenants/{slug}/departments", {"json": {"name": "x\x00"}}),
        ("POST", f"/v1/tenants/{slug}/departments", {"json": {"name": "y", "email": "a\x00@b.c"}}),
        ("POST", f"/v1/tenants/{slug}/identity-issuers", {"json": {"issuer": "https://x\x00", "audience": "a"}}),
        ("POST", f"/v1/tenants/{slug}/identity-issuers", {"json": {"issuer": f"https://{slug}.x", "audience": "a", "roleMapping": {"a\x00": "agent"}}}),
        ("PUT", f"/v1/tenants/{slug}/closing-days/2025-12-24", {"params": {"name": "x\x00"}}),
        ("PUT", f"/v1/tenants/{slug}/closing-days/2025-12-24", {"params": {"name": ""}}),
        ("PUT", f"/v1/tenants/{slug}/closing-days/2025-12-24", {"params": {"name": "x" * 300}}),
        ("PUT", f"/v1/tenants/{slug}/closing-days/99999-12-24", {}),
        ("PUT", f"/v1/tenants/{slug}/closing-days/0001-01-01", {}),
        ("GET", "/v1/agreements", {"params": {"on": "9999-12-31"}}),
        ("GET", "/v1/agreements", {"params": {"on": "0001-01-01"}}),
        ("POST", "/v1/agreements", {"json": {"clientTenantId": str(world.tenant_ids["stadt-soest"]), "startsOn": "9999-12-01"}}),
        ("POST", "/v1/agreements", {"json": {"clientTenantId": str(uuid.uuid4()), "startsOn": "2020-01-01", "scopeNotes": "\x00"}}),
        ("POST", f"/v1/agreements/{uuid.uuid4()}/termination", {"json": {"noticedOn": "9999-12-31"}}),
        ("POST", "/v1/tenants", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
        ("POST", "/v1/tenants", {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}}),
        ("GET", "/v1/tenants/" + "a" * 5000, {}),
    ]
    for method, url, kw in reqs:
        headers = {**h, **kw.pop("headers", {})}
        r = await client.request(method, url, headers=headers, **kw)
        print(method, url[:60], r.status_code, r.text[:200])
