"""Fixtures for the management API: an in-process app on a fresh store, and a client.

`api` talks to the app over ASGI (no socket) as the first instance's machine
administrator (IAM_OWNER and ORG_OWNER), once on SQLite and once on
PostgreSQL. `api.call(service, method, body)` returns the decoded JSON and
the status; `api.ok(...)` asserts 200 and returns the body; `api.as_token(t)`
is the same client with another bearer token (None: none).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import MASTERKEY, make_settings

SERVICES = {
    "user": "zitadel.user.v2.UserService",
    "org": "zitadel.org.v2.OrganizationService",
    "project": "zitadel.project.v2.ProjectService",
    "application": "zitadel.application.v2.ApplicationService",
    "authorization": "zitadel.authorization.v2.AuthorizationService",
    "settings": "zitadel.settings.v2.SettingsService",
    "instance": "zitadel.instance.v2.InstanceService",
    "permission": "zitadel.internal_permission.v2.InternalPermissionService",
}


@dataclass
class Api:
    client: httpx.AsyncClient
    token: str | None
    runtime: Any
    instance_id: str
    org_id: str
    admin_id: str

    async def call(
        self, service: str, method: str, body: Any = None, *, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """POST the Connect route; `service` may be a short name from SERVICES."""
        name = SERVICES.get(service, service)
        h = {"content-type": "application/json", **(headers or {})}
        if self.token is not None:
            h["authorization"] = f"Bearer {self.token}"
        r = await self.client.post(f"/{name}/{method}", json=body or {}, headers=h)
        return r.status_code, r.json()

    async def ok(self, service: str, method: str, body: Any = None, **kw: Any) -> Any:
        status, data = await self.call(service, method, body, **kw)
        assert status == 200, (status, data)
        return data

    async def error(
        self, service: str, method: str, body: Any = None, **kw: Any
    ) -> tuple[int, str, str]:
        """(status, code, message) of a call that must fail."""
        status, data = await self.call(service, method, body, **kw)
        assert status != 200, data
        assert set(data) >= {"code", "message"}, data
        return status, data["code"], data["message"]

    def as_token(self, token: str | None) -> Api:
        return replace(self, token=token)


@pytest.fixture
def api_settings(database: dict[str, Any], tmp_path: Path):  # type: ignore[no-untyped-def]
    """Settings whose first instance has a machine admin with a PAT in tmp_path/admin.pat."""
    return make_settings(
        database,
        FirstInstance={
            "Org": {
                "Machine": {
                    "Machine": {"Username": "admin-sa"},
                    "Pat": {"Path": str(tmp_path / "admin.pat")},
                }
            }
        },
        SystemDefaults={"PasswordHasher": {"Hasher": {"Time": 1, "Memory": 1024, "Threads": 1}}},
    )


@pytest.fixture
async def api(api_settings: Any, tmp_path: Path) -> AsyncIterator[Api]:
    from sqlalchemy import select

    from donjon.core.app import create_app
    from donjon.core.identity.users import users_table
    from donjon.core.instance import list_instances
    from donjon.core.runtime import build_runtime
    from donjon.core.setup.init import create_tables
    from donjon.core.setup.runner import SetupRunner

    rt = build_runtime(api_settings, masterkey=MASTERKEY)
    await create_tables(rt.db)
    await SetupRunner(rt).run()
    async with rt.db.read() as conn:
        instance_id = str((await list_instances(conn))[0]["id"])
        admin = (
            await conn.execute(
                select(users_table.c.id, users_table.c.resource_owner).where(
                    users_table.c.instance_id == instance_id, users_table.c.username == "admin-sa"
                )
            )
        ).one()
    app = create_app(rt, run_projections=False)
    token = (tmp_path / "admin.pat").read_text().strip()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        yield Api(client, token, rt, instance_id, admin.resource_owner, admin.id)
    await rt.close()
