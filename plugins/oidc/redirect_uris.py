"""Redirect URI matching (RFC 9700 §4.1.3, RFC 8252 §7.3).

A redirect URI must equal one the app registered, character for character.
The one exception is RFC 8252's loopback rule for native apps: a registered
`http://127.0.0.1/cb` (or `[::1]`, or `localhost` as ZITADEL allows) matches
the same URI with any port, because a native app listens on an ephemeral
port it cannot know beforehand. Everything else (scheme, host, path,
query) must still be equal.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "::1", "localhost")


def _without_port(uri: str) -> tuple[str, str, str, str, str] | None:
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return None
    host = parts.hostname or ""
    return (parts.scheme, host, parts.path, parts.query, parts.fragment)


def is_loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


def redirect_uri_matches(uri: str, registered: list[str], *, native: bool) -> bool:
    """Whether `uri` is one of `registered` (exactly, or per the loopback rule for native apps)."""
    if uri in registered:
        return True
    if not native or not is_loopback(uri):
        return False
    wanted = _without_port(uri)
    if wanted is None:
        return False
    return any(is_loopback(r) and _without_port(r) == wanted for r in registered)
