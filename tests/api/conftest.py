"""Fixtures for the management API: an in-process app on a fresh store, and a client.

`api` talks to the app over ASGI (no socket) as the first instance's machine
administrator (IAM_OWNER and ORG_OWNER), once on SQLite and once on
PostgreSQL. `api.call(service, method, body)` returns the decoded JSON and
the status; `api.ok(...)` asserts 200 and returns the body; `api.as_token(t)`
is the same client with another bearer token (None: none).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import (
    MASTERKEY,
    create_pg_database,
    drop_pg_database,
    make_settings,
    postgres_database,
    require_postgres,
    sqlite_database,
)

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


HASHER = {"PasswordHasher": {"Hasher": {"Time": 1, "Memory": 1024, "Threads": 1}}}


def api_settings_for(database: dict[str, Any], pat_file: Path) -> Any:
    """Settings whose first instance has a machine admin with its PAT in `pat_file`."""
    return make_settings(
        database,
        FirstInstance={
            "Org": {
                "Machine": {
                    "Machine": {"Username": "admin-sa"},
                    "Pat": {"Path": str(pat_file)},
                }
            }
        },
        SystemDefaults=HASHER,
    )


async def _set_up(database: dict[str, Any], pat_file: Path) -> None:
    from donjon.core.runtime import build_runtime
    from donjon.core.setup.init import create_tables
    from donjon.core.setup.runner import SetupRunner

    rt = build_runtime(api_settings_for(database, pat_file), masterkey=MASTERKEY)
    try:
        await create_tables(rt.db)
        await SetupRunner(rt).run()
    finally:
        await rt.close()


@dataclass
class Template:
    """A store set up once per test session, copied for each test (setup takes a while)."""

    database: dict[str, Any]
    token: str


@pytest.fixture(scope="session")
def api_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Template]]:
    templates: dict[str, Template] = {}
    yield templates
    if "postgres" in templates:
        drop_pg_database(templates["postgres"].database["postgres"]["DSN"])


def _template(kind: str, templates: dict[str, Template], folder: Path) -> Template:
    if kind not in templates:
        if kind == "sqlite":
            database = sqlite_database(folder / "template.db")
        else:
            database = postgres_database(create_pg_database())
        pat_file = folder / f"{kind}-admin.pat"
        asyncio.run(_set_up(database, pat_file))
        templates[kind] = Template(database, pat_file.read_text().strip())
    return templates[kind]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api_store(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    api_templates: dict[str, Template],
) -> Iterator[Template]:
    """A fresh store with the first instance set up: a copy of the session's template."""
    kind = request.param
    if kind == "postgres":
        require_postgres()
    template = _template(kind, api_templates, tmp_path_factory.getbasetemp())
    if kind == "sqlite":
        path = tmp_path / "donjon.db"
        shutil.copyfile(template.database["sqlite"]["Path"], path)
        yield Template(sqlite_database(path), template.token)
        return
    source = make_url(template.database["postgres"]["DSN"]).database
    dsn = create_pg_database(template=source)
    try:
        yield Template(postgres_database(dsn), template.token)
    finally:
        drop_pg_database(dsn)


@pytest.fixture
def api_settings(api_store: Template, tmp_path: Path) -> Any:
    return api_settings_for(api_store.database, tmp_path / "admin.pat")


@pytest.fixture
async def api(api_settings: Any, api_store: Template) -> AsyncIterator[Api]:
    from sqlalchemy import select

    from donjon.core.app import create_app
    from donjon.core.identity.users import users_table
    from donjon.core.instance import list_instances
    from donjon.core.runtime import build_runtime

    rt = build_runtime(api_settings, masterkey=MASTERKEY)
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
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        yield Api(client, api_store.token, rt, instance_id, admin.resource_owner, admin.id)
    await rt.close()
