// panva's oidc-provider, configured like the donjon side of bench/oidc_tokens.py:
// one client_credentials client (client_secret_basic), one client that
// introspects, JWT access tokens (RFC 9068, ES256 like donjon's default web key)
// for one resource server and opaque ones for another through resource
// indicators, introspection enabled, the in-memory adapter, and GET /healthz as
// the server's own minimal route (a Koa middleware in front of the provider, so
// it crosses the same stack).
//
// Usage: node oidc_provider_server.mjs \
//   '<json: port, issuer, machine, introspector, resources {jwt, opaque}, scope, jwk>'
// Prints "listening" once it serves.

import Provider, { errors } from "oidc-provider";

const config = JSON.parse(process.argv[2]);

const provider = new Provider(config.issuer, {
  clients: [
    {
      client_id: config.machine.id,
      client_secret: config.machine.secret,
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: "client_secret_basic",
      // Only an EC key is configured (no RS256 key for the default).
      id_token_signed_response_alg: "ES256",
    },
    {
      client_id: config.introspector.id,
      client_secret: config.introspector.secret,
      grant_types: [],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: "client_secret_basic",
      // Only an EC key is configured (no RS256 key for the default).
      id_token_signed_response_alg: "ES256",
    },
  ],
  jwks: { keys: [config.jwk] },
  scopes: ["openid", config.scope],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => config.resources.jwt,
      useGrantedResource: () => true,
      // Two resource servers: one gets JWT access tokens (not stored, and so not
      // introspectable by oidc-provider), one gets opaque ones (stored, introspectable).
      getResourceServerInfo: (_ctx, resource) => {
        const format = { [config.resources.jwt]: "jwt", [config.resources.opaque]: "opaque" }[
          resource
        ];
        if (!format) {
          throw new errors.InvalidTarget();
        }
        return {
          scope: config.scope,
          audience: resource,
          accessTokenTTL: 12 * 60 * 60,
          accessTokenFormat: format,
          ...(format === "jwt" ? { jwt: { sign: { alg: "ES256" } } } : {}),
        };
      },
    },
  },
});

provider.use(async (ctx, next) => {
  if (ctx.method === "GET" && ctx.path === "/healthz") {
    ctx.type = "text/plain";
    ctx.body = "ok";
    return;
  }
  await next();
});

provider.listen(config.port, "127.0.0.1", () => {
  console.log("listening");
});
