"""Proof Key for Code Exchange (RFC 7636), as RFC 9700 §2.1.1 wants it.

Only `S256` is accepted: `plain` (also what a challenge without a method
means) gives an attacker who sees the authorization request the verifier.
A public client (auth method `none`) must use PKCE. At the token endpoint a
code issued with a challenge needs the matching `code_verifier`, and a code
issued without one must not get a verifier (RFC 9700 §4.8.2: PKCE downgrade).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from donjon.plugins.oidc.errors import InvalidGrant, InvalidRequest

S256 = "S256"
# RFC 7636 §4.1/§4.2: 43 to 128 unreserved characters.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# An S256 challenge is the base64url SHA-256 of the verifier: 43 characters.
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def check_challenge(challenge: str, method: str, *, public_client: bool) -> None:
    """InvalidRequest unless the authorization request's PKCE parameters are acceptable."""
    if not challenge:
        if method:
            raise InvalidRequest("code_challenge: required with code_challenge_method")
        if public_client:
            raise InvalidRequest("code_challenge: required for public clients (PKCE with S256)")
        return
    if method != S256:
        raise InvalidRequest(f"code_challenge_method: {method or 'plain'} is not allowed, use S256")
    if not _CHALLENGE.fullmatch(challenge):
        raise InvalidRequest("code_challenge: must be a base64url SHA-256 (43 characters)")


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def check_verifier(challenge: str, verifier: str | None) -> None:
    """InvalidGrant unless `verifier` answers the code's `challenge` (or both are absent)."""
    if not challenge:
        if verifier:
            raise InvalidGrant("code_verifier: the authorization request had no code_challenge")
        return
    if not verifier:
        raise InvalidGrant("code_verifier: required (the authorization request used PKCE)")
    if not _VERIFIER.fullmatch(verifier):
        raise InvalidGrant("code_verifier: must be 43 to 128 unreserved characters")
    if not hmac.compare_digest(s256(verifier), challenge):
        raise InvalidGrant("code_verifier: does not match the code_challenge")
