"""Fixtures for the hosted login: the in-process app (`api`, SQLite and PostgreSQL) with
`Plugins.login.SMTPConfiguration` pointing at a local SMTP sink, and a `Browser`
that keeps cookies and fills forms (with the page's CSRF token)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import HASHER, Api
from tests.api.conftest import api as api  # noqa: F401  (fixtures)
from tests.api.conftest import api_store as api_store  # noqa: F401
from tests.api.conftest import api_templates as api_templates  # noqa: F401
from tests.conftest import make_settings
from tests.flows.conftest import free_port

PASSWORD = "Secret-Passw0rd!"


@dataclass
class SmtpSink:
    """A local SMTP server that keeps what it receives."""

    host: str
    port: int
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 OK"

    async def wait(self, count: int = 1, seconds: float = 10) -> Message:
        deadline = time.monotonic() + seconds
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no email arrived ({len(self.messages)} of {count})")
            await asyncio.sleep(0.05)
        return self.messages[count - 1]

    def wait_sync(self, count: int = 1, timeout: float = 10) -> Message:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no email arrived ({len(self.messages)} of {count})")
            time.sleep(0.05)
        return self.messages[count - 1]


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    from aiosmtpd.controller import Controller

    sink = SmtpSink("127.0.0.1", free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def smtp_settings(sink: SmtpSink) -> dict[str, Any]:
    return {
        "login": {
            "SMTPConfiguration": {
                "Host": f"{sink.host}:{sink.port}",
                "TLS": False,
                "From": "login@donjon.test",
                "FromName": "Donjon Login",
            }
        }
    }


@pytest.fixture
def api_settings(api_store: Any, tmp_path: Path, smtp_sink: SmtpSink) -> Any:
    """The `api` fixture's settings, plus an SMTP configuration sending to `smtp_sink`."""
    return make_settings(
        api_store.database,
        FirstInstance=settings_first_instance(tmp_path / "admin.pat"),
        SystemDefaults=HASHER,
        Plugins=smtp_settings(smtp_sink),
    )


def settings_first_instance(pat_file: Path) -> dict[str, Any]:
    return {
        "Org": {"Machine": {"Machine": {"Username": "admin-sa"}, "Pat": {"Path": str(pat_file)}}}
    }


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """An httpx client with its own cookie jar, speaking to the app like a browser."""

    def __init__(self, app: Api) -> None:
        self.client = httpx.AsyncClient(
            transport=app.client._transport, base_url="http://localhost", follow_redirects=False
        )
        self.last: httpx.Response | None = None

    async def get(self, path: str, *, follow: bool = True) -> httpx.Response:
        response = await self.client.get(path, follow_redirects=follow)
        self.last = response
        return response

    def csrf(self) -> str:
        assert self.last is not None
        match = CSRF.search(self.last.text)
        assert match, self.last.text
        return unescape(match.group(1))

    async def submit(
        self, path: str, data: dict[str, str], *, csrf: str | None = None, follow: bool = True
    ) -> httpx.Response:
        """POST a form as the last page would (its CSRF token unless `csrf` is given)."""
        body = {"csrf": self.csrf() if csrf is None else csrf, **data}
        response = await self.client.post(path, data=body, follow_redirects=follow)
        self.last = response
        return response

    async def close(self) -> None:
        await self.client.aclose()


def hidden(response: httpx.Response, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', response.text)
    assert match, response.text
    return unescape(match.group(1))


async def add_user(app: Api, username: str, *, password: str = PASSWORD, email: str = "") -> str:
    body = {
        "username": username,
        "organization": {"orgId": app.org_id},
        "profile": {"givenName": username.title(), "familyName": "Tester"},
        "email": {"email": email or f"{username}@example.com", "isVerified": True},
        "password": {"password": password, "changeRequired": False},
    }
    return str((await app.ok("user", "AddHumanUser", body))["userId"])
