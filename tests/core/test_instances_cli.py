"""`donjon instances create | list`: more tenants on one store, each isolated by host.

The command runs as an operator runs it (its own event loop, its own
connections), against a store that `donjon setup` prepared; the server's app
then serves both instances, each at its own host.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import pytest
import yaml

from donjon.core.app import create_app
from donjon.core.config import load_settings
from donjon.core.instance import list_instances
from donjon.core.runtime import Runtime, build_runtime
from donjon.core.setup.init import create_tables
from donjon.core.setup.runner import SetupRunner
from tests.conftest import MASTERKEY

pytestmark = pytest.mark.anyio

GET_INSTANCE = "/zitadel.instance.v2.InstanceService/GetInstance"
LIST_ORGS = "/zitadel.org.v2.OrganizationService/ListOrganizations"
DONJON = Path(sys.executable).parent / "donjon"


@pytest.fixture
async def store(database: dict[str, Any], tmp_path: Path) -> AsyncIterator[tuple[Path, Runtime]]:
    """(config file, runtime) of a set-up store whose first instance, at a.example,
    has a service account with its token in tmp_path/a.pat."""
    config = tmp_path / "donjon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "ExternalDomain": "a.example",
                "Database": database,
                "FirstInstance": {
                    "Org": {
                        "Machine": {
                            "Machine": {"Username": "a-admin"},
                            "Pat": {"Path": str(tmp_path / "a.pat")},
                        }
                    }
                },
                "SystemDefaults": {
                    "PasswordHasher": {"Hasher": {"Time": 1, "Memory": 1024, "Threads": 1}}
                },
            }
        )
    )
    runtime = build_runtime(load_settings([config], env={}), masterkey=MASTERKEY)
    await create_tables(runtime.db)
    await SetupRunner(runtime).run()
    try:
        yield config, runtime
    finally:
        await runtime.close()


@dataclass
class Ran:
    exit_code: int
    output: str  # standard output, then standard error


async def donjon(*args: str, config: Path) -> Ran:
    """`donjon ARGS --config CONFIG` in a process of its own, as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DONJON_")}
    done = await anyio.run_process(
        [str(DONJON), *args, "--config", str(config)], check=False, env={**env, "COLUMNS": "160"}
    )
    return Ran(done.returncode, done.stdout.decode() + done.stderr.decode())


def client(runtime: Runtime, host: str) -> httpx.AsyncClient:
    app = create_app(runtime, run_projections=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}")


async def call(runtime: Runtime, host: str, path: str, token: str) -> httpx.Response:
    async with client(runtime, host) as c:
        return await c.post(path, json={}, headers={"authorization": f"Bearer {token}"})


async def test_a_second_instance_has_its_own_host_admins_and_tokens(
    store: tuple[Path, Runtime], tmp_path: Path
) -> None:
    config, runtime = store
    b_pat = tmp_path / "tokens" / "b.pat"

    created = await donjon(
        "instances", "create", "--name", "Tenant B", "--domain", "B.example",
        "--domain", "login.b.example", "--org-name", "B Corp", "--admin-username", "b-human",
        "--admin-password", "Password1!", "--machine-username", "b-admin",
        "--pat-path", str(b_pat), config=config,
    )  # fmt: skip

    assert created.exit_code == 0, created.output
    assert "domains:  b.example, login.b.example" in created.output
    assert "admin:    b-human@b-corp.b.example" in created.output
    assert "password:" not in created.output  # it was given, so not printed
    assert stat.S_IMODE(b_pat.stat().st_mode) == 0o600
    a_token = (tmp_path / "a.pat").read_text().strip()
    b_token = b_pat.read_text().strip()

    a_on_a = await call(runtime, "a.example", GET_INSTANCE, a_token)
    b_on_b = await call(runtime, "b.example", GET_INSTANCE, b_token)
    b_on_login = await call(runtime, "login.b.example", GET_INSTANCE, b_token)
    assert a_on_a.status_code == b_on_b.status_code == b_on_login.status_code == 200
    a_id, b_id = a_on_a.json()["instance"]["id"], b_on_b.json()["instance"]["id"]
    assert a_id != b_id and b_on_login.json()["instance"]["id"] == b_id
    assert b_on_b.json()["instance"]["name"] == "Tenant B"
    assert [d["domain"] for d in b_on_b.json()["instance"]["customDomains"]] == [
        "b.example", "login.b.example"
    ]  # fmt: skip

    # A token is only known in the instance that issued it.
    a_on_b = await call(runtime, "b.example", GET_INSTANCE, a_token)
    b_on_a = await call(runtime, "a.example", GET_INSTANCE, b_token)
    assert (a_on_b.status_code, a_on_b.json()["code"]) == (401, "unauthenticated")
    assert (b_on_a.status_code, b_on_a.json()["code"]) == (401, "unauthenticated")

    orgs_of_b = (await call(runtime, "b.example", LIST_ORGS, b_token)).json()
    assert [o["name"] for o in orgs_of_b["result"]] == ["B Corp"]
    assert [o["primaryDomain"] for o in orgs_of_b["result"]] == ["b-corp.b.example"]

    listed = await donjon("instances", "list", config=config)
    assert listed.exit_code == 0, listed.output
    assert a_id in listed.output and b_id in listed.output
    assert "b.example, login.b.example" in listed.output


async def test_without_a_password_one_is_generated_and_shown_once(
    store: tuple[Path, Runtime],
) -> None:
    config, runtime = store

    created = await donjon(
        "instances", "create", "--name", "C", "--domain", "c.example", config=config
    )

    assert created.exit_code == 0, created.output
    [line] = [x for x in created.output.splitlines() if "password:" in x]
    password = line.split("password:")[1].split("(")[0].strip()
    assert len(password) >= 20
    async with runtime.db.read() as conn:
        assert sorted(str(i["name"]) for i in await list_instances(conn)) == ["C", "donjon"]


async def test_a_taken_domain_or_a_bad_value_creates_nothing(
    store: tuple[Path, Runtime], tmp_path: Path
) -> None:
    config, runtime = store
    before = await runtime.store.max_position()

    taken = await donjon(
        "instances", "create", "--name", "Again", "--domain", "A.example",
        "--machine-username", "sa", "--pat-path", str(tmp_path / "again.pat"), config=config,
    )  # fmt: skip
    bad_domain = await donjon(
        "instances", "create", "--name", "X", "--domain", "ok.example", "--domain", "no way",
        config=config,
    )  # fmt: skip
    weak = await donjon(
        "instances", "create", "--name", "X", "--domain", "x.example",
        "--admin-password", "short", config=config,
    )  # fmt: skip
    lonely_pat = await donjon(
        "instances", "create", "--name", "X", "--domain", "x.example",
        "--pat-path", str(tmp_path / "x.pat"), config=config,
    )  # fmt: skip

    assert taken.exit_code == 1
    assert "the domain a.example is already served by an instance" in taken.output
    assert not (tmp_path / "again.pat").exists()
    assert not (tmp_path / "again.pat.tmp").exists()
    assert bad_domain.exit_code == 2 and "--domain" in bad_domain.output
    assert "'no way' is not a domain name" in bad_domain.output
    assert weak.exit_code == 2 and "--admin-password" in weak.output
    assert lonely_pat.exit_code == 2 and "need --machine-username" in lonely_pat.output
    assert await runtime.store.max_position() == before


async def test_the_first_instance_names_the_configuration_key_at_fault(tmp_path: Path) -> None:
    """Setup creates the first instance with the same code, and reports a bad value by its key."""
    from donjon.core.errors import ConfigError
    from donjon.core.setup.first_instance import create_first_instance
    from tests.conftest import make_settings, sqlite_database

    weak = make_settings(
        sqlite_database(tmp_path / "donjon.db"),
        FirstInstance={"Org": {"Human": {"Password": "short"}}},
    )
    runtime = build_runtime(weak, masterkey=MASTERKEY)
    try:
        await create_tables(runtime.db)
        tables = [m for m in runtime.migrations() if m.name.startswith("projection.")]
        await SetupRunner(runtime).run(tables)
        with pytest.raises(ConfigError, match=r"^FirstInstance\.Org\.Human\.Password: expected"):
            await create_first_instance(SimpleNamespace(runtime=runtime))  # type: ignore[arg-type]
        async with runtime.db.read() as conn:
            assert await list_instances(conn) == []
    finally:
        await runtime.close()
