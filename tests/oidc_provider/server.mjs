// Multi-issuer OpenID Connect provider for the test suite.
//
// Usage: node server.mjs CONFIG.json
//
// CONFIG.json:
//   {
//     "port": 0,                      // 0 = let the OS pick a free port
//     "host": "127.0.0.1",            // optional, default 127.0.0.1
//     "exit_on_stdin_close": false,   // optional: exit when stdin reaches EOF (parent died)
//     "issuers": [{
//       "slug": "stadt-soest",        // issuer = http://<host>:<port>/<slug>
//       "audience": "buergerservice", // "aud" of the access tokens
//       "resource": "urn:...",        // optional resource indicator, default urn:oidc-harness:<audience>
//       "access_token_ttl": 600,      // optional, seconds
//       "clients": [{"client_id": "...", "client_secret": "...",
//                    "scope": "space separated allowed scopes",
//                    "extra_claims": {"roles": ["agent"]}}],
//       "jwks": {"keys": [/* private JWKs (RSA or EC P-256), each with kid and alg */]}
//     }]
//   }
//
// Each issuer supports the client_credentials grant (client_secret_basic or
// client_secret_post) and issues RFC 9068 JWT access tokens ("typ": "at+jwt")
// signed with the issuer's key. A request header "X-Harness-Now: <epoch ms>" sets this
// process's clock (for tests that move theirs). Once listening, exactly one line
// "READY <port>" is written to stdout; everything else goes to stderr.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

// oidc-provider prints NOTICEs with console.info (stdout); keep stdout for the READY line.
console.info = console.error;
console.log = console.error;

const DEFAULT_TTL = 600;

// The test process may move its clock (time-machine); it sends its "now" (epoch ms) with each
// request as X-Harness-Now, and this process follows, so iat/exp agree with the tests' clock.
const realNow = Date.now.bind(Date);
let clockOffset = 0;
Date.now = () => realNow() + clockOffset;

function fail(message) {
  console.error(`oidc harness: ${message}`);
  process.exit(1);
}

function loadConfig(path) {
  if (!path) fail('usage: node server.mjs CONFIG.json');
  let config;
  try {
    config = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    fail(`cannot read config ${path}: ${err.message}`);
  }
  if (!Array.isArray(config.issuers) || config.issuers.length === 0) {
    fail('config.issuers must be a non-empty array');
  }
  const slugs = new Set();
  for (const issuer of config.issuers) {
    if (typeof issuer.slug !== 'string' || !/^[A-Za-z0-9._~-]+$/.test(issuer.slug)) {
      fail(`invalid issuer slug ${JSON.stringify(issuer.slug)}`);
    }
    if (slugs.has(issuer.slug)) fail(`duplicate issuer slug ${issuer.slug}`);
    slugs.add(issuer.slug);
    if (typeof issuer.audience !== 'string' || issuer.audience === '') {
      fail(`issuer ${issuer.slug}: audience must be a non-empty string`);
    }
    if (!Array.isArray(issuer.jwks?.keys) || issuer.jwks.keys.length === 0) {
      fail(`issuer ${issuer.slug}: jwks.keys must be a non-empty array`);
    }
  }
  return config;
}

function signingAlg(jwk) {
  if (jwk.alg) return jwk.alg;
  if (jwk.kty === 'RSA') return 'RS256';
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  fail(`cannot infer signing alg for key ${jwk.kid ?? '(no kid)'}`);
  return undefined;
}

function splitScope(scope) {
  return (scope ?? '').split(' ').filter(Boolean);
}

function buildProvider(issuerUrl, spec) {
  const alg = signingAlg(spec.jwks.keys[0]);
  const resource = spec.resource ?? `urn:oidc-harness:${spec.audience}`;
  const ttl = spec.access_token_ttl ?? DEFAULT_TTL;
  const clientSpecs = spec.clients ?? [];
  const extraClaims = new Map(clientSpecs.map((c) => [c.client_id, c.extra_claims ?? {}]));
  const allScopes = new Set(['openid']);
  for (const c of clientSpecs) splitScope(c.scope).forEach((s) => allScopes.add(s));

  const clients = clientSpecs.map((c) => {
    const scope = splitScope(c.scope).join(' ');
    return {
      client_id: c.client_id,
      client_secret: c.client_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
      ...(scope ? { scope } : {}),
    };
  });

  const provider = new Provider(issuerUrl, {
    clients,
    jwks: spec.jwks,
    scopes: [...allScopes],
    clientDefaults: {
      grant_types: ['client_credentials'],
      response_types: [],
      id_token_signed_response_alg: alg,
    },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resourceIndicator, client) => {
          if (resourceIndicator !== resource) throw new errors.InvalidTarget();
          return {
            scope: client.scope ?? '',
            audience: spec.audience,
            accessTokenTTL: ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg } },
          };
        },
      },
    },
    extraTokenClaims: (ctx, token) => {
      const claims = extraClaims.get(token.clientId);
      return claims && Object.keys(claims).length > 0 ? structuredClone(claims) : undefined;
    },
    ttl: { ClientCredentials: ttl },
  });
  provider.on('server_error', (ctx, err) => {
    console.error(`oidc harness [${spec.slug}] server_error:`, err);
  });
  return provider;
}

const config = loadConfig(process.argv[2]);
const host = config.host ?? '127.0.0.1';
const handlers = new Map();

const server = createServer((req, res) => {
  const harnessNow = Number(req.headers['x-harness-now']);
  if (Number.isFinite(harnessNow) && harnessNow > 0) clockOffset = harnessNow - realNow();
  const url = req.url ?? '/';
  const match = /^\/([^/?#]+)(.*)$/.exec(url);
  const handler = match && handlers.get(match[1]);
  if (!handler) {
    res.statusCode = 404;
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ error: 'not_found', issuers: [...handlers.keys()] }));
    return;
  }
  let rest = match[2];
  if (rest === '' || rest.startsWith('?')) rest = `/${rest}`;
  // oidc-provider derives its mount path from req.baseUrl (express style).
  req.baseUrl = `/${match[1]}`;
  req.url = rest;
  handler(req, res);
});

server.on('error', (err) => fail(`server error: ${err.message}`));

server.listen(config.port ?? 0, host, () => {
  const { port } = server.address();
  try {
    for (const spec of config.issuers) {
      const issuerUrl = `http://${host}:${port}/${spec.slug}`;
      handlers.set(spec.slug, buildProvider(issuerUrl, spec).callback());
    }
  } catch (err) {
    console.error(err);
    fail('cannot configure issuers');
  }
  process.stdout.write(`READY ${port}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (config.exit_on_stdin_close) {
  process.stdin.on('end', shutdown);
  process.stdin.on('close', shutdown);
  process.stdin.resume();
}
