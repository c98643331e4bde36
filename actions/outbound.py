"""Outbound requests to targets: signed, SSRF-guarded, bounded in time, never redirected.

`TargetClient.post` resolves the endpoint's host, checks every address (see
`ssrf`), connects to the checked address while the Host header and the TLS
server name stay the endpoint's, signs the body (see `signing`) and waits at
most the target's timeout. A 3xx answer is a failure: redirects are not
followed, as they could lead anywhere.

Requests go straight through httpcore's connection pool (the transport httpx
is built on): none of httpx's client machinery (URL merging, cookies, auth,
redirects) applies to a signed POST, and skipping it takes about a third off
the client's share of a call (bench/actions_functions.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpcore

from donjon.actions import signing, ssrf
from donjon.actions.targets import Target, open_key
from donjon.core.keys import KeyStore

MAX_RESPONSE = 1 << 20  # a call target's answer is read up to 1 MiB
USER_AGENT = "donjon-actions/1"


class TargetError(Exception):
    """A request to a target failed: refused address, network error, timeout or non-2xx."""

    def __init__(self, message: str, status: int | None = None, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class TargetResponse:
    status: int
    body: bytes


class TargetClient:
    """One process's HTTP client for targets (a keep-alive connection pool)."""

    def __init__(self, keys: KeyStore | None, allowed_hosts: list[str]) -> None:
        self.keys = keys
        self.allowed_hosts = allowed_hosts
        # Never follows redirects, reads no proxy settings from the environment.
        self._pool = httpcore.AsyncConnectionPool(
            max_connections=100, max_keepalive_connections=20, keepalive_expiry=60.0
        )
        self._keys: dict[str, str] = {}

    async def close(self) -> None:
        await self._pool.aclose()

    async def signing_keys(self, target: Target) -> list[str]:
        """The target's keys in clear: the current one, and a rotated one still valid."""
        if self.keys is None:
            raise TargetError("donjon runs without a master key: cannot sign")
        sealed = [target.signing_key]
        expires = target.previous_key_expires_at
        if target.previous_signing_key and expires and expires > datetime.now(UTC):
            sealed.append(target.previous_signing_key)
        out = []
        for s in sealed:
            if s not in self._keys:
                self._keys[s] = await open_key(self.keys, s)
            out.append(self._keys[s])
        return out

    async def post(self, target: Target, body: bytes) -> TargetResponse:
        """POST `body` to the target; a 2xx answer, or TargetError saying what failed."""
        parts = urlsplit(target.endpoint)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            address = await ssrf.resolve_checked(host, port, self.allowed_hosts)
        except ssrf.BlockedAddress as exc:
            raise TargetError(str(exc)) from None
        netloc_ip = f"[{address}]" if ":" in address else address
        url = urlunsplit((parts.scheme, f"{netloc_ip}:{port}", parts.path or "/", parts.query, ""))
        default_port = 443 if parts.scheme == "https" else 80
        host_header = f"[{host}]" if ":" in host else host
        if port != default_port:
            host_header += f":{port}"
        headers = [
            (b"host", _ascii(host_header)),
            (b"user-agent", USER_AGENT.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (signing.HEADER.encode(), signing.sign(body, await self.signing_keys(target)).encode()),
        ]
        t = target.timeout
        extensions: dict[str, Any] = {
            "timeout": {"connect": t, "read": t, "write": t, "pool": t},
        }
        if parts.scheme == "https":
            extensions["sni_hostname"] = host
        try:
            async with self._pool.stream(
                "POST", url, headers=headers, content=body, extensions=extensions
            ) as response:
                data = bytearray()
                async for chunk in response.aiter_stream():
                    data += chunk
                    if len(data) > MAX_RESPONSE:
                        raise TargetError(
                            f"the answer is over {MAX_RESPONSE} bytes", response.status
                        )
        except httpcore.TimeoutException:
            raise TargetError(f"no answer within {target.timeout:g}s") from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol,
                OSError) as exc:  # fmt: skip
            raise TargetError(f"{type(exc).__name__}: {exc}") from None
        status = response.status
        if not 200 <= status < 300:
            snippet = bytes(data[:200]).decode(errors="replace")
            what = "a redirect (not followed)" if 300 <= status < 400 else f"status {status}"
            raise TargetError(f"{what}: {snippet}".rstrip(": "), status, bytes(data))
        return TargetResponse(status, bytes(data))


def _ascii(host: str) -> bytes:
    try:
        return host.encode("ascii")
    except UnicodeEncodeError:
        return host.encode("idna")


def event_id(position: int) -> str:
    """The id receivers deduplicate by: the event's store position (unique and stable)."""
    return str(position)
