"""Function executions: targets that add claims to tokens and userinfo answers.

`preaccesstoken` runs when a JWT access token is built, `preuserinfo` when an
ID token or a userinfo answer is (through the `customize_token` hook). The
targets of the function's execution are called in order with:

    {"function": "function/preuserinfo", "kind": "id_token", "userID": "...",
     "clientID": "...", "instanceID": "...", "userinfo": {...claims so far...}}

A `call` target answers 2xx with `{"appendClaims": [{"key": "k", "value": v}]}`
(ZITADEL's `append_claims` is read too); later targets win on a key. Reserved
claims are dropped by the OIDC plugin (see `customize_token`). The answer may
also hold `{"setUserMetadata": [{"key": "k", "value": "<base64>"}]}`
(`set_user_metadata`): those entries are set on the user (`user.metadata.set`,
created by the action) once every target has answered. A `webhook`
target only has to answer 2xx, an `async` one is not waited for. A failing
target (timeout, network, non-2xx, an answer that is not JSON) refuses the
token when it has `interruptOnError` (the client gets `access_denied`), else
it is logged and skipped.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from donjon.actions import executions, targets
from donjon.actions.outbound import TargetError
from donjon.core.errors import ConcurrencyError, TokenRefused
from donjon.core.events import Aggregate, AggregateChanges
from donjon.core.identity import user_metadata as md
from donjon.core.identity.users import AGGREGATE, users_table

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

log = logging.getLogger(__name__)

FUNCTION_OF_KIND = {
    "access_token": "preaccesstoken",
    "id_token": "preuserinfo",
    "userinfo": "preuserinfo",
}

_background: set[asyncio.Task[Any]] = set()


def appended(answer: Any) -> dict[str, Any]:
    """The claims of a call target's answer: `appendClaims` (or `append_claims`) pairs."""
    if not isinstance(answer, dict):
        raise TargetError("the answer is not a JSON object")
    pairs = answer.get("appendClaims", answer.get("append_claims")) or []
    if not isinstance(pairs, list):
        raise TargetError("appendClaims is not a list")
    out: dict[str, Any] = {}
    for pair in pairs:
        if not isinstance(pair, dict) or not isinstance(pair.get("key"), str):
            raise TargetError("appendClaims holds an entry without a string key")
        out[pair["key"]] = pair.get("value")
    return out


def metadata_to_set(answer: Any) -> dict[str, str]:
    """The `setUserMetadata` (or `set_user_metadata`) entries of a call target's answer:
    key → value as stored (base64), each checked like the UserService checks them."""
    entries = answer.get("setUserMetadata", answer.get("set_user_metadata")) or []
    if not isinstance(entries, list):
        raise TargetError("setUserMetadata is not a list")
    out: dict[str, str] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise TargetError(f"setUserMetadata.{i} has no string key")
        value = entry.get("value")
        try:
            raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
            out[md.check_key(entry["key"])] = md.check_value(raw)
        except (ValueError, binascii.Error) as exc:
            raise TargetError(f"setUserMetadata.{i}: {exc} (values are base64)") from None
    return out


async def run_function(
    runtime: Runtime,
    kind: str,
    claims: dict[str, Any],
    user_id: str,
    client_id: str,
    instance_id: str,
) -> dict[str, Any] | None:
    name = FUNCTION_OF_KIND.get(kind)
    if name is None:
        return None
    condition_id = f"{executions.FUNCTION}/{name}"
    from donjon.actions.worker import cache_of, client_of

    found = await cache_of(runtime).targets_for(instance_id, [condition_id])
    if not found:
        return None
    client = client_of(runtime)
    body = json.dumps(
        {
            "function": condition_id,
            "kind": kind,
            "userID": user_id,
            "clientID": client_id,
            "instanceID": instance_id,
            "userinfo": claims,
        },
        separators=(",", ":"),
        default=str,
    ).encode()
    added: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    for target in found:
        if target.target_type == targets.ASYNC:
            task = asyncio.create_task(_fire(client, target, body))
            _background.add(task)
            task.add_done_callback(_background.discard)
            continue
        try:
            response = await client.post(target, body)
            if target.target_type == targets.CALL:
                try:
                    answer = json.loads(response.body or b"null")
                except ValueError:
                    raise TargetError("the answer is not JSON", response.status) from None
                added.update(appended(answer))
                metadata.update(metadata_to_set(answer))
        except TargetError as exc:
            if target.interrupt_on_error:
                raise TokenRefused(f"action target {target.name!r} failed: {exc}") from None
            log.warning(
                "actions: function %s target %s failed (skipped): %s", name, target.name, exc
            )
    if metadata:
        await set_user_metadata(runtime, instance_id, user_id, metadata, creator=condition_id)
    return added or None


async def set_user_metadata(
    runtime: Runtime, instance_id: str, user_id: str, metadata: dict[str, str], *, creator: str
) -> None:
    """Set metadata entries on an existing user, appended after whatever it has (a login
    going on meanwhile does not make this fail); a removed user gets nothing."""
    users = users_table
    for _attempt in range(3):
        async with runtime.db.read() as conn:
            row = (
                await conn.execute(
                    select(users.c.resource_owner, users.c.sequence).where(
                        users.c.instance_id == instance_id, users.c.id == user_id
                    )
                )
            ).first()
        if row is None:  # unknown, or removed
            log.warning("actions: setUserMetadata for user %s, who does not exist", user_id)
            return
        aggregate = Aggregate(AGGREGATE, user_id, instance_id, row.resource_owner)
        events = [md.MetadataSet(key=k, value=v) for k, v in metadata.items()]
        try:
            await runtime.store.push(
                AggregateChanges(aggregate, events, expected_sequence=row.sequence),
                creator=creator,
            )
            return
        except ConcurrencyError:
            continue  # the user changed since the read: look again (it may be removed now)
    log.warning("actions: setUserMetadata for user %s kept conflicting; not set", user_id)


async def _fire(client: Any, target: targets.Target, body: bytes) -> None:
    try:
        await client.post(target, body)
    except TargetError as exc:
        log.warning("actions: async target %s failed: %s", target.name, exc)
