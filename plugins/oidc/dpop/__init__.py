"""DPoP: OAuth 2.0 Demonstrating Proof of Possession (RFC 9449).

A client proves it holds a private key by signing a fresh JWT (the proof,
`DPoP` header) for each HTTP request; tokens issued with a proof are bound
to that key's thumbprint and useless without it. One module per part of the
RFC:

- `proof`: the checks of a proof (§4.3), each small and named, and the
  key's JWK thumbprint (RFC 7638);
- `nonce`: server-provided nonces (§8, §9), `DPoP-Nonce` and `use_dpop_nonce`;
- `binding`: what the token endpoint and the resource endpoints require of a
  proof: binding tokens (§5, §6), refresh tokens of public clients (§5),
  `dpop_jkt` (§10), tokens presented with the `DPoP` scheme (§7).
"""
