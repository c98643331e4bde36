"""The hosted login's cookies: the browser's sessions, and the CSRF secret.

`donjon_login_sessions` holds, sealed with the instance key store's
`login.sessions` key (AES-GCM: neither readable nor forgeable by the
browser), the ids and current tokens of this browser's sessions in the
instance that set it. Session tokens therefore never appear in a URL or a
page; the cookie is HttpOnly, SameSite=Lax, and Secure when ExternalSecure.

`donjon_login_csrf` is a random secret (HttpOnly as well). Every form carries
`csrf`, the HMAC of that secret under the `login.csrf` key and the instance
id: a POST whose token does not match the cookie of the browser sending it
is refused (a signed double submit).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from litestar import Request, Response
from litestar.datastructures import Cookie

from donjon.plugins.login.settings import login_settings

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

SESSIONS_COOKIE = "donjon_login_sessions"
CSRF_COOKIE = "donjon_login_csrf"
COOKIE_PATH = "/"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _keys(runtime: Runtime) -> Any:
    if runtime.keys is None:
        raise RuntimeError("the hosted login needs the master key (runtime.keys)")
    return runtime.keys


@dataclass
class BrowserSessions:
    """The sessions this browser holds in one instance: (session id, token), newest last."""

    instance_id: str
    entries: list[tuple[str, str]] = field(default_factory=list)

    def token(self, session_id: str) -> str | None:
        return next((t for s, t in self.entries if s == session_id), None)

    def remember(self, session_id: str, token: str, limit: int) -> None:
        self.entries = [(s, t) for s, t in self.entries if s != session_id]
        self.entries.append((session_id, token))
        self.entries = self.entries[-limit:]

    def forget(self, session_id: str) -> None:
        self.entries = [(s, t) for s, t in self.entries if s != session_id]

    @property
    def session_ids(self) -> list[str]:
        return [s for s, _t in self.entries]


async def read_sessions(
    request: Request[Any, Any, Any], runtime: Runtime, instance_id: str
) -> BrowserSessions:
    """The sessions of the cookie; none when it is absent, tampered with, or of another instance."""
    raw = request.cookies.get(SESSIONS_COOKIE, "")
    empty = BrowserSessions(instance_id)
    if not raw:
        return empty
    try:
        plain = await _keys(runtime).decrypt("login.sessions", _unb64(raw))
        data = json.loads(plain)
    except (InvalidTag, ValueError, binascii.Error, TypeError):
        return empty
    if not isinstance(data, dict) or data.get("i") != instance_id:
        return empty
    entries = [
        (str(e[0]), str(e[1])) for e in data.get("s") or [] if isinstance(e, list) and len(e) == 2
    ]
    return BrowserSessions(instance_id, entries)


def _cookie(runtime: Runtime, key: str, value: str, max_age: int | None) -> Cookie:
    return Cookie(
        key=key,
        value=value,
        path=COOKIE_PATH,
        max_age=max_age,
        httponly=True,
        secure=bool(runtime.settings.ExternalSecure),
        samesite="lax",
    )


async def sessions_cookie(runtime: Runtime, sessions: BrowserSessions) -> Cookie:
    """The cookie to set after `sessions` changed (an expiring one when empty)."""
    if not sessions.entries:
        return _cookie(runtime, SESSIONS_COOKIE, "", 0)
    plain = json.dumps({"i": sessions.instance_id, "s": [list(e) for e in sessions.entries]})
    sealed = await _keys(runtime).encrypt("login.sessions", plain.encode())
    max_age = int(login_settings(runtime).CookieMaxAge.total_seconds())
    return _cookie(runtime, SESSIONS_COOKIE, _b64(sealed), max_age)


# -- CSRF ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Csrf:
    """The browser's CSRF secret, the token forms carry, and whether the cookie is new."""

    secret: str
    token: str
    new: bool


async def _sign(runtime: Runtime, instance_id: str, secret: str) -> str:
    key = await _keys(runtime).purpose_key("login.csrf")
    mac = hmac.new(key, f"{instance_id}|{secret}".encode(), hashlib.sha256).digest()
    return _b64(mac)


async def csrf_for(request: Request[Any, Any, Any], runtime: Runtime, instance_id: str) -> Csrf:
    """The CSRF token of this browser (a new secret when it has none)."""
    secret = request.cookies.get(CSRF_COOKIE, "")
    new = len(secret) < 32
    if new:
        secret = secrets.token_urlsafe(32)
    return Csrf(secret, await _sign(runtime, instance_id, secret), new)


async def csrf_ok(
    request: Request[Any, Any, Any], runtime: Runtime, instance_id: str, token: str
) -> bool:
    """Whether the form's `csrf` token belongs to this browser's CSRF cookie."""
    secret = request.cookies.get(CSRF_COOKIE, "")
    if len(secret) < 32 or not token:
        return False
    return hmac.compare_digest(await _sign(runtime, instance_id, secret), token)


def with_csrf_cookie(response: Response[Any], runtime: Runtime, csrf: Csrf) -> Response[Any]:
    if csrf.new:
        response.set_cookie(_cookie(runtime, CSRF_COOKIE, csrf.secret, None))
    return response
