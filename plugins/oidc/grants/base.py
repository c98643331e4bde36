"""What every grant shares: the declarative constants, and the token response.

A grant is a class, as in Authlib: `GRANT_TYPE` is the `grant_type` value it
answers, `CLIENT_AUTH_METHODS` the client authentication methods it accepts,
`CLIENT_REQUIRED` whether a request must name a client at all. The token
endpoint picks the class from the registry (`donjon.plugins.oidc.grants`),
authenticates the client against those constants, checks the request's DPoP
proof if it has one (RFC 9449, `dpop.binding`) and calls `respond`; every
grant binds the access token it issues to `dpop_jkt`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from donjon.plugins.oidc.errors import InvalidClient, UnauthorizedClient
from donjon.plugins.oidc.tokens.issue import IssuedToken

if TYPE_CHECKING:
    from donjon.plugins.oidc.clients import Client
    from donjon.plugins.oidc.dpop.proof import DPoPProof
    from donjon.plugins.oidc.issuer import Issuer
    from donjon.plugins.oidc.provider import Provider
    from donjon.plugins.oidc.scopes import GrantedScope


class Grant:
    GRANT_TYPE: ClassVar[str]
    CLIENT_AUTH_METHODS: ClassVar[frozenset[str]]
    CLIENT_REQUIRED: ClassVar[bool] = True

    def __init__(self, provider: Provider, issuer: Issuer, dpop: DPoPProof | None = None) -> None:
        self.provider = provider
        self.issuer = issuer
        #: The request's checked DPoP proof (RFC 9449), if it had one.
        self.dpop = dpop

    @property
    def dpop_jkt(self) -> str:
        """The thumbprint the issued access token is bound to ("" for Bearer)."""
        return self.dpop.jkt if self.dpop is not None else ""

    async def respond(self, client: Client | None, form: dict[str, str]) -> dict[str, Any]:
        """The token response (RFC 6749 §5.1) for a checked client; raises OAuthError."""
        raise NotImplementedError


def check_client(grant: type[Grant], client: Client | None) -> None:
    """The grant's rules on who may call it: a client when required, by a method it accepts."""
    if client is None:
        if grant.CLIENT_REQUIRED:
            raise InvalidClient("client authentication is required for this grant")
        return
    if client.auth_method not in grant.CLIENT_AUTH_METHODS:
        raise UnauthorizedClient(
            f"{grant.GRANT_TYPE} does not accept client authentication by {client.auth_method}"
        )


def token_response(
    issued: IssuedToken, scope: GrantedScope, id_token: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": issued.access_token,
        "token_type": issued.scheme,
        "expires_in": issued.expires_in,
    }
    if scope.text:
        body["scope"] = scope.text
    if id_token is not None:
        body["id_token"] = id_token
    return body
