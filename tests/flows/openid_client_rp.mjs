// A relying party built on panva's openid-client (a certified RP library), driven by
// tests/flows/test_openid_client.py. Phase "start" prints the authorization URL (with
// PKCE S256, state, nonce); phase "finish" takes the callback URL the login produced,
// exchanges the code, refreshes, calls userinfo and builds the end_session URL.
// Input: one JSON object in argv[2]; output: one JSON object on stdout.
import * as client from 'openid-client'

const input = JSON.parse(process.argv[2])
// A public client (no secret) authenticates with its client id alone.
const config = await client.discovery(
  new URL(input.issuer),
  input.clientId,
  input.clientSecret ? { client_secret: input.clientSecret } : undefined,
  input.clientSecret ? client.ClientSecretBasic(input.clientSecret) : client.None(),
  { execute: [client.allowInsecureRequests] },
)
const meta = config.serverMetadata()

if (input.phase === 'client-credentials') {
  const tokens = await client.clientCredentialsGrant(config, { scope: input.scope })
  console.log(JSON.stringify({ accessToken: tokens.access_token, scope: tokens.scope, expiresIn: tokens.expires_in }))
} else if (input.phase === 'introspect') {
  console.log(JSON.stringify(await client.tokenIntrospection(config, input.token)))
} else if (input.phase === 'revoke') {
  await client.tokenRevocation(config, input.token)
  console.log(JSON.stringify({ revoked: true }))
} else if (input.phase === 'device-start') {
  // RFC 8628: the device asks, prints its codes, and exits; 'device-poll' resumes.
  const response = await client.initiateDeviceAuthorization(config, { scope: input.scope })
  console.log(JSON.stringify(response))
} else if (input.phase === 'device-poll') {
  const tokens = await client.pollDeviceAuthorizationGrant(config, input.deviceResponse)
  const claims = tokens.claims()
  console.log(JSON.stringify({ claims, scope: tokens.scope, hasRefresh: Boolean(tokens.refresh_token) }))
} else if (input.phase === 'dpop-start') {
  // RFC 9449: a DPoP key for the whole flow (exported, so 'dpop-finish' can use it),
  // its thumbprint as dpop_jkt (§10) to bind the code to it.
  const keyPair = await client.randomDPoPKeyPair('ES256', { extractable: true })
  const dpop = client.getDPoPHandle(config, keyPair)
  const codeVerifier = client.randomPKCECodeVerifier()
  const parameters = {
    redirect_uri: input.redirectUri,
    scope: input.scope,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state: client.randomState(),
    dpop_jkt: await dpop.calculateThumbprint(),
  }
  const url = client.buildAuthorizationUrl(config, parameters)
  console.log(JSON.stringify({
    url: url.href,
    codeVerifier,
    state: parameters.state,
    jkt: parameters.dpop_jkt,
    privateJwk: await crypto.subtle.exportKey('jwk', keyPair.privateKey),
    publicJwk: await crypto.subtle.exportKey('jwk', keyPair.publicKey),
    algs: meta.dpop_signing_alg_values_supported,
  }))
} else if (input.phase === 'dpop-finish') {
  const ecdsa = { name: 'ECDSA', namedCurve: 'P-256' }
  const keyPair = {
    privateKey: await crypto.subtle.importKey('jwk', input.privateJwk, ecdsa, false, ['sign']),
    publicKey: await crypto.subtle.importKey('jwk', input.publicJwk, ecdsa, true, ['verify']),
  }
  const DPoP = client.getDPoPHandle(config, keyPair)
  // An OAuth error's code, or a resource server's WWW-Authenticate challenge as scheme:error.
  const failure = (err) => err.error ||
    (Array.isArray(err.cause) && err.cause.map((c) => `${c.scheme}:${c.parameters.error}`).join()) ||
    err.code || String(err)
  const tokens = await client.authorizationCodeGrant(config, new URL(input.callbackUrl), {
    pkceCodeVerifier: input.codeVerifier,
    expectedState: input.state,
    idTokenExpected: true,
  }, undefined, { DPoP })
  const claims = tokens.claims()
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP })
    .then((u) => u, (err) => ({ error: failure(err) }))
  // The access token without its key: sent as a Bearer token, refused.
  const asBearer = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
    .then(() => 'accepted', failure)
  // A public client's refresh token is bound to the key too (§5).
  const refreshWithoutKey = await client.refreshTokenGrant(config, tokens.refresh_token)
    .then(() => 'accepted', failure)
  const otherKey = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'))
  const refreshWithOtherKey = await client
    .refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: otherKey })
    .then(() => 'accepted', failure)
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP })
  const refreshedUserinfo = await client
    .fetchUserInfo(config, refreshed.access_token, claims.sub, { DPoP })
    .then((u) => u, (err) => ({ error: failure(err) }))
  console.log(JSON.stringify({
    claims,
    tokenType: tokens.token_type,
    hasRefresh: Boolean(tokens.refresh_token),
    userinfo,
    asBearer,
    refreshWithoutKey,
    refreshWithOtherKey,
    refreshedTokenType: refreshed.token_type,
    refreshedRotated: refreshed.refresh_token !== tokens.refresh_token,
    refreshedUserinfo,
  }))
} else if (input.phase === 'start') {
  const codeVerifier = client.randomPKCECodeVerifier()
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier)
  const state = client.randomState()
  const nonce = client.randomNonce()
  const parameters = {
    redirect_uri: input.redirectUri,
    scope: input.scope,
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state,
    nonce,
  }
  // With input.par the parameters are pushed first (RFC 9126).
  const url = input.par
    ? await client.buildAuthorizationUrlWithPAR(config, parameters)
    : client.buildAuthorizationUrl(config, parameters)
  console.log(JSON.stringify({
    url: url.href,
    codeVerifier,
    state,
    nonce,
    issuer: meta.issuer,
    endSession: meta.end_session_endpoint,
    pkceMethods: meta.code_challenge_methods_supported,
    parEndpoint: meta.pushed_authorization_request_endpoint,
  }))
} else {
  const tokens = await client.authorizationCodeGrant(config, new URL(input.callbackUrl), {
    pkceCodeVerifier: input.codeVerifier,
    expectedState: input.state,
    expectedNonce: input.nonce,
    idTokenExpected: true,
  })
  const claims = tokens.claims()
  const failure = (err) => ({ error: err.error || err.code || String(err) })
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
    .then((u) => u, failure)
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
  const refreshedUserinfo = await client.fetchUserInfo(config, refreshed.access_token, claims.sub)
    .then((u) => u, failure)
  // Presenting the first refresh token again: refused, and the family is revoked.
  const reuse = await client.refreshTokenGrant(config, tokens.refresh_token)
    .then(() => 'accepted', (err) => err.error || err.code || String(err))
  const afterReuse = await client.refreshTokenGrant(config, refreshed.refresh_token)
    .then(() => 'accepted', (err) => err.error || err.code || String(err))
  const second = await client.authorizationCodeGrant(config, new URL(input.callbackUrl), {
    pkceCodeVerifier: input.codeVerifier,
    expectedState: input.state,
    expectedNonce: input.nonce,
  }).then(() => 'accepted', (err) => err.error || err.code || String(err))
  const endSession = client.buildEndSessionUrl(config, {
    id_token_hint: refreshed.id_token || tokens.id_token,
    post_logout_redirect_uri: input.postLogoutRedirectUri,
    state: 'bye',
  })
  console.log(JSON.stringify({
    claims,
    scope: tokens.scope,
    tokenType: tokens.token_type,
    hasRefresh: Boolean(tokens.refresh_token),
    refreshedRotated: refreshed.refresh_token !== tokens.refresh_token,
    refreshedClaims: refreshed.claims() || null,
    userinfo,
    refreshedUserinfo,
    reuse,
    afterReuse,
    secondExchange: second,
    endSession: endSession.href,
  }))
}
