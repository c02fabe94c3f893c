"""A minimal identity provider for sign-in keys: discovery and a JWKS document the test changes
(the real OIDC provider of the suite cannot change its keys while it runs), plus tokens signed
with those keys. Local only: nothing here reaches the internet."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey


class KeyServer:
    """`/.well-known/openid-configuration` and `/jwks.json` of one issuer; `keys` may change."""

    def __init__(self) -> None:
        self.keys: list[ECKey] = []
        self.broken = False  # answer a JWKS document without keys
        self.discovery_fails = False  # answer discovery with 500
        self.hits: list[str] = []  # paths asked for, in order (fetches are counted here)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                if outer.discovery_fails and self.path.endswith("/.well-known/openid-configuration"):
                    self.send_error(500)
                    return
                if self.path.endswith("/.well-known/openid-configuration"):
                    body: Any = {"issuer": outer.issuer, "jwks_uri": outer.issuer + "/jwks.json"}
                elif self.path.endswith("/jwks.json"):
                    body = {"nothing": []} if outer.broken else {"keys": [k.as_dict(private=False) for k in outer.keys]}
                else:
                    self.send_error(404)
                    return
                payload = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}/idp-{uuid.uuid4().hex[:8]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def new_key(self, kid: str) -> ECKey:
        return ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256", "use": "sig"})

    def token(self, key: ECKey, audience: str) -> dict[str, str]:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "sub": "agent-007",
            "roles": ["agent"],
            "iat": now,
            "exp": now + 300,
        }
        signed = jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)
        return {"Authorization": f"Bearer {signed}"}


@contextmanager
def key_server() -> Iterator[KeyServer]:
    server = KeyServer()
    try:
        yield server
    finally:
        server.server.shutdown()
