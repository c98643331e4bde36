"""Test callers: a machine user with administrator roles and a personal access token.

No tests live here.
"""

from __future__ import annotations

from datetime import datetime

from donjon.core import ids
from donjon.core.events import AggregateChanges
from donjon.core.identity import members, secrets, users
from tests.api.conftest import Api


async def machine_with_token(
    api: Api,
    username: str,
    *,
    org_id: str | None = None,
    org_roles: list[str] | None = None,
    instance_roles: list[str] | None = None,
    expiration: datetime | None = None,
) -> tuple[str, Api]:
    """(user id, a client calling as it): a machine user of `org_id` (the admin's org
    by default) with `org_roles` on that org and `instance_roles` on the instance."""
    org_id = org_id or api.org_id
    user_id, token = ids.new_id(), secrets.new_secret()
    changes: list[AggregateChanges] = [
        users.new_user(
            api.instance_id,
            user_id,
            org_id,
            [
                users.MachineAdded(username=username, name=username),
                users.PersonalAccessTokenAdded(
                    token_id=ids.new_id(),
                    digest=secrets.digest(token),
                    expiration=expiration.isoformat().replace("+00:00", "Z") if expiration else "",
                ),
            ],
            username,
        )
    ]
    if org_roles:
        changes.append(
            members.add_member(members.ORG, api.instance_id, org_id, org_id, user_id, org_roles)
        )
    if instance_roles:
        changes.append(
            members.add_member(
                members.INSTANCE,
                api.instance_id,
                api.instance_id,
                api.instance_id,
                user_id,
                instance_roles,
            )
        )
    await api.runtime.store.push(changes, creator=api.admin_id)
    return user_id, api.as_token(token)
