"""The `Plugins.oidc` configuration section: token lifetimes, signing keys, assertions.

Every key has a default; `docs/oidc.md` lists them. Durations take the
core's format (`5m`, `12h`, `30d`). A bad value stops the start naming
`Plugins.oidc.<Key>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from donjon.core.settings import InvalidSetting

#: The plugin's name: its key under `Plugins` and in BUILTIN_PLUGINS.
NAME = "oidc"


def _positive(owner: object, name: str) -> None:
    value: timedelta = getattr(owner, name)
    if value <= timedelta(0):
        raise InvalidSetting(name, "a duration above 0s", f"{value.total_seconds():g}s")


@dataclass
class OIDCSettings:
    #: How long an access token is valid (ZITADEL: 12h).
    AccessTokenLifetime: timedelta = timedelta(hours=12)
    #: How long an ID token is valid (ZITADEL: 12h).
    IdTokenLifetime: timedelta = timedelta(hours=12)
    #: The algorithm of new web keys: ES256 (P-256), RS256 (RSA 2048) or EdDSA
    #: (Ed25519). Existing keys keep theirs; the next key made uses this one.
    SigningAlgorithm: str = "ES256"
    #: Cache-Control max-age of the JWKS (`/oauth/v2/keys`). A next key is
    #: published at least this long before it signs anything.
    JwksCacheMaxAge: timedelta = timedelta(minutes=5)
    #: How long a web key signs before the next one takes over. The old key
    #: stays in the JWKS until the tokens it signed have expired.
    KeyRotationPeriod: timedelta = timedelta(days=30)
    #: The longest lifetime (exp - now) a client assertion or a JWT profile
    #: assertion may claim; longer ones are refused.
    MaxAssertionLifetime: timedelta = timedelta(hours=1)
    #: Tolerated clock difference when checking exp, iat and nbf of assertions.
    ClockSkew: timedelta = timedelta(seconds=10)
    #: How long a browser has to log in and finish an auth request.
    AuthRequestLifetime: timedelta = timedelta(hours=1)
    #: How long a pushed authorization request's request_uri may be used (RFC 9126).
    PushedRequestLifetime: timedelta = timedelta(seconds=60)
    #: Refuse authorization requests that were not pushed to /oauth/v2/par first.
    RequirePushedAuthorizationRequests: bool = False
    #: How long an authorization code may be exchanged (RFC 9700: short).
    CodeLifetime: timedelta = timedelta(seconds=60)
    #: A refresh token not used for this long expires (ZITADEL: 30d).
    RefreshTokenIdleLifetime: timedelta = timedelta(days=30)
    #: A refresh token family ends this long after the login, used or not (ZITADEL: 90d).
    RefreshTokenLifetime: timedelta = timedelta(days=90)
    #: How often each process deletes expired auth requests, codes, device
    #: requests, tokens and used assertion ids (see `purge`).
    PurgeInterval: timedelta = timedelta(minutes=10)
    #: How long an expired row is kept before it is deleted (0s: at once).
    PurgeRetention: timedelta = timedelta(hours=1)
    #: The most rows one purge statement deletes.
    PurgeBatchSize: int = 1000

    #: How old a DPoP proof's `iat` may be (RFC 9449 §4.3), plus `ClockSkew`.
    #: Its `jti` is remembered that long, so each proof is used once.
    DPoPProofLifetime: timedelta = timedelta(seconds=60)
    #: Require server-provided nonces in DPoP proofs (RFC 9449 §8, §9): a proof
    #: without the current nonce gets `use_dpop_nonce` and a `DPoP-Nonce` header.
    RequireDPoPNonce: bool = False

    def __post_init__(self) -> None:
        if self.SigningAlgorithm.lower() not in ("es256", "rs256", "eddsa"):
            raise InvalidSetting(
                "SigningAlgorithm", "one of ES256, RS256, EdDSA", self.SigningAlgorithm
            )
        self.SigningAlgorithm = {"es256": "ES256", "rs256": "RS256", "eddsa": "EdDSA"}[
            self.SigningAlgorithm.lower()
        ]
        for name in (
            "AccessTokenLifetime",
            "IdTokenLifetime",
            "JwksCacheMaxAge",
            "KeyRotationPeriod",
            "MaxAssertionLifetime",
            "AuthRequestLifetime",
            "CodeLifetime",
            "PushedRequestLifetime",
            "RefreshTokenIdleLifetime",
            "RefreshTokenLifetime",
            "PurgeInterval",
            "DPoPProofLifetime",
        ):
            _positive(self, name)
        if self.PurgeRetention < timedelta(0):
            raise InvalidSetting(
                "PurgeRetention",
                "a duration of 0s or more",
                f"{self.PurgeRetention.total_seconds():g}s",
            )
        if not isinstance(self.PurgeBatchSize, int) or self.PurgeBatchSize < 1:
            raise InvalidSetting(
                "PurgeBatchSize", "a whole number of 1 or more", self.PurgeBatchSize
            )
        if self.ClockSkew < timedelta(0):
            raise InvalidSetting(
                "ClockSkew", "a duration of 0s or more", f"{self.ClockSkew.total_seconds():g}s"
            )
        if self.KeyRotationPeriod <= self.JwksCacheMaxAge:
            raise InvalidSetting(
                "KeyRotationPeriod",
                "a duration above JwksCacheMaxAge (a next key must be published before it signs)",
                f"{self.KeyRotationPeriod.total_seconds():g}s",
            )

    @property
    def longest_token_lifetime(self) -> timedelta:
        """How long a key must stay published after it stopped signing."""
        return max(self.AccessTokenLifetime, self.IdTokenLifetime)
