"""The OIDC provider harness issues real, verifiable JWT access tokens per municipality."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from tests.support.oidc import ClientSpec, IssuerSpec, OIDCProvider, OIDCProviderError

AUDIENCE = "buergerservice"
SOEST = "stadt-soest"
UNNA = "kreis-unna"


def _fetch_jwks(issuer: str) -> KeySet:
    discovery = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == issuer
    jwks: dict[str, Any] = httpx.get(discovery["jwks_uri"], timeout=10).json()
    for key in jwks["keys"]:
        assert "d" not in key, "jwks_uri must only publish public keys"
    return KeySet.import_key_set(jwks)  # type: ignore[arg-type]


def _registry(issuer: str) -> JWTClaimsRegistry:
    return JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": AUDIENCE},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
    )


def test_provider_issues_verifiable_access_tokens_per_issuer() -> None:
    issuers = [
        IssuerSpec(
            slug=SOEST,
            audience=AUDIENCE,
            alg="RS256",
            clients=[
                ClientSpec(
                    client_id="soest-agent",
                    client_secret="soest secret/+%",
                    scope="calls:read calls:write",
                    extra_claims={"roles": ["agent"], "org": SOEST},
                ),
            ],
        ),
        IssuerSpec(
            slug=UNNA,
            audience=AUDIENCE,
            alg="ES256",
            clients=[
                ClientSpec(
                    client_id="unna-bot",
                    client_secret="unna-secret",
                    scope="calls:read",
                )
            ],
        ),
    ]
    with OIDCProvider(issuers) as op:
        soest_iss = op.issuer_url(SOEST)
        unna_iss = op.issuer_url(UNNA)
        assert soest_iss == f"http://127.0.0.1:{op.port}/{SOEST}"

        soest_jwks = _fetch_jwks(soest_iss)
        unna_jwks = _fetch_jwks(unna_iss)
        assert op.public_jwks(SOEST)["keys"][0]["kid"] == soest_jwks.keys[0].kid

        # RS256 issuer, client with extra claims and client_secret_basic.
        token = jwt.decode(op.token(SOEST, "soest-agent"), soest_jwks, algorithms=["RS256"])
        _registry(soest_iss).validate(token.claims)
        assert token.header["typ"] == "at+jwt"
        assert token.header["alg"] == "RS256"
        assert token.header["kid"] == op.private_key(SOEST).kid
        assert token.claims["iss"] == soest_iss
        assert token.claims["aud"] == AUDIENCE
        assert token.claims["client_id"] == "soest-agent"
        assert token.claims["sub"] == "soest-agent"
        assert token.claims["scope"] == "calls:read calls:write"
        assert token.claims["roles"] == ["agent"]
        assert token.claims["org"] == SOEST
        assert token.claims["exp"] > token.claims["iat"]

        # Narrower scope request, client_secret_post.
        narrow = jwt.decode(
            op.token(SOEST, "soest-agent", "calls:read", auth_method="client_secret_post"),
            soest_jwks,
            algorithms=["RS256"],
        )
        assert narrow.claims["scope"] == "calls:read"

        # ES256 issuer, client without extra claims.
        unna = jwt.decode(op.token(UNNA, "unna-bot"), unna_jwks, algorithms=["ES256"])
        _registry(unna_iss).validate(unna.claims)
        assert unna.header["typ"] == "at+jwt"
        assert unna.header["alg"] == "ES256"
        assert unna.claims["iss"] == unna_iss
        assert unna.claims["client_id"] == "unna-bot"
        assert unna.claims["scope"] == "calls:read"
        assert "roles" not in unna.claims

        # A token from issuer A does not verify with issuer B's keys (and vice versa),
        # neither via kid lookup nor when B's key is presented under A's kid.
        soest_token = op.token(SOEST, "soest-agent")
        unna_token = op.token(UNNA, "unna-bot")
        any_alg = ["RS256", "ES256"]
        with pytest.raises(JoseError):
            jwt.decode(soest_token, unna_jwks, algorithms=any_alg)
        with pytest.raises(JoseError):
            jwt.decode(unna_token, soest_jwks, algorithms=any_alg)
        for token_value, own_slug, foreign_slug in (
            (soest_token, SOEST, UNNA),
            (unna_token, UNNA, SOEST),
        ):
            impostor = {
                **op.public_jwks(foreign_slug)["keys"][0],
                "kid": op.private_key(own_slug).kid,
            }
            with pytest.raises(JoseError):
                jwt.decode(
                    token_value,
                    KeySet.import_key_set({"keys": [impostor]}),
                    algorithms=any_alg,
                )

        # A forged token signed with Soest's real key verifies against Soest's JWKS.
        forged = op.sign(
            SOEST,
            {"iss": soest_iss, "aud": AUDIENCE, "sub": "x", "exp": 2**31, "iat": 0},
        )
        assert jwt.decode(forged, soest_jwks, algorithms=["RS256"]).claims["sub"] == "x"

        # Errors are reported, not swallowed.
        assert op.token_response(SOEST, "soest-agent", client_secret="wrong").status_code == 401
        wrong_resource = op.token_response(SOEST, "soest-agent", resource="urn:other")
        assert wrong_resource.status_code == 400
        assert wrong_resource.json()["error"] == "invalid_target"
        with pytest.raises(OIDCProviderError, match="invalid_scope"):
            op.token(UNNA, "unna-bot", "openid")
