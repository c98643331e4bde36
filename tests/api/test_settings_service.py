"""SettingsService over Connect JSON, and the policy accessors other commands use.

Policies resolve org override -> instance -> configured defaults.
"""

from __future__ import annotations

import pytest

from donjon.core.identity import policies, policy_events
from donjon.core.identity.policy_types import Lockout, PasswordComplexity
from tests.api.conftest import Api

pytestmark = pytest.mark.anyio


async def test_accessors_resolve_org_override_then_instance_then_defaults(api: Api) -> None:
    rt, iid, org = api.runtime, api.instance_id, api.org_id
    async with rt.db.read() as conn:
        assert await policies.password_complexity(conn, iid, org, rt.settings) == (
            policies.default_password_complexity(rt.settings)
        )
        assert await policies.lockout(conn, iid, None, rt.settings) == Lockout(0, 0)

    instance_state = await policy_events.InstancePolicies.load(rt.store, iid, iid)
    changes = policy_events.set_policy(
        instance_state, policy_events.PASSWORD_COMPLEXITY, PasswordComplexity(min_length=12)
    )
    assert changes is not None
    await rt.store.push(changes, creator="test")
    org_state = await policy_events.OrgPolicies.load(rt.store, iid, org)
    changes = policy_events.set_policy(
        org_state, policy_events.PASSWORD_COMPLEXITY, PasswordComplexity(min_length=20)
    )
    assert changes is not None
    await rt.store.push(changes, creator="test")

    async with rt.db.read() as conn:
        assert (await policies.password_complexity(conn, iid, org, rt.settings)).min_length == 20
        assert (await policies.password_complexity(conn, iid, None, rt.settings)).min_length == 12
        assert (
            await policies.password_complexity(conn, iid, "other", rt.settings)
        ).min_length == 12
