"""Reading OAuth requests: form-encoded bodies (RFC 6749 §3.2) and HTTP Basic credentials.

Parameters sent without a value are treated as omitted, and a parameter must
not be repeated (RFC 6749 §3.1); both rules are checked here, once, for every
endpoint.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, unquote

from litestar import Request

from donjon.plugins.oidc.errors import InvalidClient, InvalidRequest

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_BODY = 64 * 1024


async def read_form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The body's parameters; InvalidRequest for another content type, a repeated
    parameter or a body over 64 KiB."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise InvalidRequest(f"send the parameters form-encoded ({FORM_TYPE})")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise InvalidRequest("the request body is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=False, strict_parsing=False)
    except UnicodeDecodeError:
        raise InvalidRequest("the request body is not UTF-8") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise InvalidRequest(f"{name}: must not be repeated")
        form[name] = value
    return form


def basic_credentials(request: Request[Any, Any, Any]) -> tuple[str, str] | None:
    """(client id, secret) of an `Authorization: Basic` header, form-urldecoded
    (RFC 6749 §2.3.1); None without one. InvalidClient for a malformed one."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient("malformed HTTP Basic credentials", headers=BASIC_CHALLENGE) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        raise InvalidClient("malformed HTTP Basic credentials", headers=BASIC_CHALLENGE)
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="donjon"'}
