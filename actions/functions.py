"""Function executions: targets that add claims to tokens and userinfo answers.

`preaccesstoken` runs when a JWT access token is built, `preuserinfo` when an
ID token or a userinfo answer is (through the `customize_token` hook). The
targets of the function's execution are called in order with:

    {"function": "function/preuserinfo", "kind": "id_token", "userID": "...",
     "clientID": "...", "instanceID": "...", "userinfo": {...claims so far...}}

A `call` target answers 2xx with `{"appendClaims": [{"key": "k", "value": v}]}`
(ZITADEL's `append_claims` is read too); later targets win on a key. Reserved
claims are dropped by the OIDC plugin (see `customize_token`). A `webhook`
target only has to answer 2xx, an `async` one is not waited for. A failing
target (timeout, network, non-2xx, an answer that is not JSON) refuses the
token when it has `interruptOnError` (the client gets `access_denied`), else
it is logged and skipped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from donjon.actions import executions, targets
from donjon.actions.outbound import TargetError
from donjon.core.errors import TokenRefused

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
        except TargetError as exc:
            if target.interrupt_on_error:
                raise TokenRefused(f"action target {target.name!r} failed: {exc}") from None
            log.warning(
                "actions: function %s target %s failed (skipped): %s", name, target.name, exc
            )
    return added or None


async def _fire(client: Any, target: targets.Target, body: bytes) -> None:
    try:
        await client.post(target, body)
    except TargetError as exc:
        log.warning("actions: async target %s failed: %s", target.name, exc)
