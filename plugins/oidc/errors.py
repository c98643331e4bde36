"""OAuth 2.0 errors (RFC 6749 §5.2, RFC 6750 §3.1) and their JSON responses.

Protocol code raises an `OAuthError` subclass named for the RFC's error code;
the endpoint turns it into `{"error": ..., "error_description": ...}` with
`Cache-Control: no-store`. `invalid_client` is 401 (with `WWW-Authenticate:
Basic` when the client tried HTTP Basic), `invalid_token` 401 with a Bearer
challenge (userinfo), `insufficient_scope` 403; the others 400.
"""

from __future__ import annotations

from typing import Any, ClassVar

from litestar import Response

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    error: ClassVar[str] = "invalid_request"
    status: ClassVar[int] = 400

    def __init__(self, description: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description}


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    error = "invalid_client"
    status = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"


class InvalidToken(OAuthError):
    """RFC 6750: a missing, expired, revoked or foreign bearer token."""

    error = "invalid_token"
    status = 401

    def __init__(self, description: str) -> None:
        super().__init__(
            description,
            headers={
                "WWW-Authenticate": f'Bearer error="invalid_token", '
                f'error_description="{_quoted(description)}"'
            },
        )


class InvalidDPoPProof(OAuthError):
    """RFC 9449 §5, §7.1: a DPoP proof is missing where required, malformed, or fails a check."""

    error = "invalid_dpop_proof"


class UseDPoPNonce(OAuthError):
    """RFC 9449 §8: the proof must carry the server's nonce, sent in `DPoP-Nonce`."""

    error = "use_dpop_nonce"

    def __init__(self, description: str, nonce: str) -> None:
        super().__init__(description, headers={"DPoP-Nonce": nonce})
        self.nonce = nonce


class DPoPChallenge(OAuthError):
    """A resource endpoint's refusal under the DPoP scheme (RFC 9449 §7.1): 401 with
    `WWW-Authenticate: DPoP error=..., algs=...` (and `DPoP-Nonce` for `use_dpop_nonce`)."""

    status = 401

    def __init__(
        self, error: str, description: str, algs: str, headers: dict[str, str] | None = None
    ) -> None:
        challenge = (
            f'DPoP error="{error}", error_description="{_quoted(description)}", algs="{algs}"'
        )
        super().__init__(description, headers={**(headers or {}), "WWW-Authenticate": challenge})
        self.error = error  # type: ignore[misc]


class InsufficientScope(OAuthError):
    error = "insufficient_scope"
    status = 403

    def __init__(self, description: str, scope: str) -> None:
        super().__init__(
            description,
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )


class AccessDenied(OAuthError):
    """A plugin or an action refused the token (see the `customize_token` hook)."""

    error = "access_denied"
    status = 403


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")


def error_response(exc: OAuthError) -> Response[dict[str, Any]]:
    return Response(exc.body(), status_code=exc.status, headers={**NO_STORE, **exc.headers})


def json_response(body: dict[str, Any], status: int = 200) -> Response[dict[str, Any]]:
    """A protocol answer that must not be cached (tokens, introspection, userinfo)."""
    return Response(body, status_code=status, headers=NO_STORE)
