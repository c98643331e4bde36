"""Request and response executions: targets called around management API methods.

`request` executions run before the method (the `customize_api_request`
hook), `response` executions after it succeeded (`customize_api_response`).
The targets of the matching executions (the method's, then its service's,
then `all`; each target once) are called in order, each with what the
previous one left:

- a `call` target receives the context and the message and answers 2xx with
  the message to use instead (the request the method runs with, or the
  response the client gets);
- a `webhook` target only has to answer 2xx;
- an `async` target is sent the same body and not waited for.

A target that fails (refused address, network error, timeout, non-2xx, a
`call` answer that is not a JSON object) stops the call when the target has
`interruptOnError`, else it is logged and skipped. A stopping target that
answered 4xx with a Connect error body (`{"code": "invalid_argument",
"message": "..."}`) gives the client that error; any other failure is
`failed_precondition` naming the target.

The ActionService's own methods are never intercepted, so a broken target
can always be unbound.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from donjon.actions import executions, targets
from donjon.actions.outbound import TargetError
from donjon.core.api.connect import HTTP_STATUS, Call, ConnectError

log = logging.getLogger(__name__)

EXEMPT_SERVICE = "zitadel.action.v2.ActionService"

_background: set[asyncio.Task[Any]] = set()


async def _bound(call: Call, kind: str, method: str) -> list[targets.Target]:
    if method.startswith(f"/{EXEMPT_SERVICE}/"):
        return []
    from donjon.actions.worker import cache_of

    return await cache_of(call.runtime).targets_for(
        call.instance_id, executions.call_condition_ids(kind, method)
    )


def _refusal(target: targets.Target, exc: TargetError) -> ConnectError:
    if exc.status is not None and 400 <= exc.status < 500:
        try:
            body = json.loads(exc.body)
        except ValueError:
            body = None
        if (
            isinstance(body, dict)
            and body.get("code") in HTTP_STATUS
            and 400 <= HTTP_STATUS[body["code"]] < 500
            and isinstance(body.get("message"), str)
        ):
            return ConnectError(body["code"], body["message"])
    return ConnectError("failed_precondition", f"action target {target.name!r} failed: {exc}")


async def _run(
    call: Call, kind: str, method: str, context: dict[str, Any], message: dict[str, Any]
) -> dict[str, Any] | None:
    """Call the bound targets in order; the message a `call` target made, or None."""
    bound = await _bound(call, kind, method)
    if not bound:
        return None
    from donjon.actions.worker import client_of

    client = client_of(call.runtime)
    field = "request" if kind == executions.REQUEST else "response"
    current = message
    for target in bound:
        body = json.dumps({**context, field: current}, separators=(",", ":")).encode()
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
                    answer = None
                if not isinstance(answer, dict):
                    raise TargetError("the answer is not a JSON object", response.status)
                current = answer
        except TargetError as exc:
            if target.interrupt_on_error:
                raise _refusal(target, exc) from None
            log.warning("actions: %s target %s failed (skipped): %s", kind, target.name, exc)
    return current if current is not message else None


async def _fire(client: Any, target: targets.Target, body: bytes) -> None:
    try:
        await client.post(target, body)
    except TargetError as exc:
        log.warning("actions: async target %s failed: %s", target.name, exc)


def _context(call: Call, method: str) -> dict[str, Any]:
    return {
        "fullMethod": method,
        "instanceID": call.instance_id,
        "orgID": call.context_org(),
        "userID": call.user_id,
    }


async def run_request(call: Call, method: str, request: dict[str, Any]) -> dict[str, Any] | None:
    return await _run(call, executions.REQUEST, method, _context(call, method), request)


async def run_response(
    call: Call, method: str, request: dict[str, Any], response: dict[str, Any]
) -> dict[str, Any] | None:
    context = {**_context(call, method), "request": request}
    return await _run(call, executions.RESPONSE, method, context, response)
