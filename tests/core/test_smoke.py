from __future__ import annotations

import pytest

from donjon.core.instance import list_instances

pytestmark = pytest.mark.anyio


async def test_setup_creates_the_first_instance_with_the_external_domain(runtime) -> None:
    async with runtime.db.read() as conn:
        instances = await list_instances(conn)
    assert [i["name"] for i in instances] == ["donjon"]
    assert await runtime.instances.by_host("localhost") == instances[0]["id"]
