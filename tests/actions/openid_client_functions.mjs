// A relying party on panva's openid-client for tests/actions/test_openid_client_functions.py:
// phase "start" prints the authorization URL (PKCE S256, state, nonce); phase "finish"
// exchanges the code (validating the ID token) and calls userinfo. Input: one JSON object
// in argv[2]; output: one JSON object on stdout.
import * as client from 'openid-client'

const input = JSON.parse(process.argv[2])
const config = await client.discovery(
  new URL(input.issuer),
  input.clientId,
  { client_secret: input.clientSecret },
  client.ClientSecretBasic(input.clientSecret),
  { execute: [client.allowInsecureRequests] },
)

if (input.phase === 'start') {
  const codeVerifier = client.randomPKCECodeVerifier()
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: input.redirectUri,
    scope: input.scope,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state: client.randomState(),
    nonce: client.randomNonce(),
  })
  console.log(JSON.stringify({
    url: url.href,
    codeVerifier,
    state: url.searchParams.get('state'),
    nonce: url.searchParams.get('nonce'),
  }))
} else {
  const result = await client.authorizationCodeGrant(config, new URL(input.callbackUrl), {
    pkceCodeVerifier: input.codeVerifier,
    expectedState: input.state,
    expectedNonce: input.nonce,
    idTokenExpected: true,
  }).then(
    (tokens) => tokens,
    (err) => ({ error: err.error || err.code || String(err), status: err.status }),
  )
  if (result.error) {
    console.log(JSON.stringify(result))
  } else {
    const claims = result.claims()
    const userinfo = await client.fetchUserInfo(config, result.access_token, claims.sub)
    console.log(JSON.stringify({ claims, accessToken: result.access_token, userinfo }))
  }
}
