"""zitadel.settings.v2.SettingsService, security settings (the instance's only, as in ZITADEL).

- `GetSecuritySettings`: `embeddedIframe` {`enabled`, `allowedOrigins`} and
  `enableImpersonation`, which token exchange needs before it impersonates
  anyone (see docs/oidc.md).
- `SetSecuritySettings` (instance level, `iam.policy.write`): fields left out
  keep their value; allowed origins must be origins (`scheme://host[:port]`).
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

from donjon.core.api.connect import Call, Message, details, invalid
from donjon.core.api.settings_service import GetSettingsRequest, service
from donjon.core.identity import policies
from donjon.core.identity.policy_events import InstancePolicies, set_security_policy
from donjon.core.identity.policy_types import SecurityPolicy


class EmbeddedIframeSettings(Message):
    enabled: bool | None = None
    allowed_origins: list[str] | None = None


class SetSecuritySettingsRequest(Message):
    embedded_iframe: EmbeddedIframeSettings | None = None
    enable_impersonation: bool | None = None


def security_json(p: SecurityPolicy) -> dict[str, Any]:
    return {
        "embeddedIframe": {
            "enabled": p.enable_iframe_embedding,
            "allowedOrigins": list(p.allowed_origins),
        },
        "enableImpersonation": p.enable_impersonation,
    }


def _origin(field_name: str, value: str) -> str:
    """`scheme://host[:port]`, nothing more (an origin, as browsers send it)."""
    parts = urlsplit(value.strip())
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise invalid(
            field_name, f"expected an origin such as https://app.example.com, got {value!r}"
        )
    try:
        port = parts.port
    except ValueError:
        raise invalid(field_name, f"the port of {value!r} is not a number") from None
    return f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port else "")


def security_changes(req: SetSecuritySettingsRequest) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if req.embedded_iframe is not None:
        if req.embedded_iframe.enabled is not None:
            changes["enable_iframe_embedding"] = req.embedded_iframe.enabled
        if req.embedded_iframe.allowed_origins is not None:
            changes["allowed_origins"] = tuple(
                dict.fromkeys(
                    _origin(f"embeddedIframe.allowedOrigins.{i}", v)
                    for i, v in enumerate(req.embedded_iframe.allowed_origins)
                )
            )
    if req.enable_impersonation is not None:
        changes["enable_impersonation"] = req.enable_impersonation
    return changes


@service.rpc("GetSecuritySettings", request=GetSettingsRequest)
async def get_security_settings(call: Call, req: GetSettingsRequest) -> dict[str, Any]:
    """The instance's security settings: iframe embedding and impersonation."""
    await call.require("policy.read", org_id=call.context_org())
    async with call.runtime.db.read() as conn:
        found = await policies.security_policy(conn, call.instance_id)
    return {
        "details": details(
            sequence=found.sequence or None,
            changed_at=found.changed_at,
            owner=found.owner_id,
            created_at=found.created_at,
        ),
        "settings": security_json(found.policy),
    }


@service.rpc("SetSecuritySettings", request=SetSecuritySettingsRequest)
async def set_security_settings(call: Call, req: SetSecuritySettingsRequest) -> dict[str, Any]:
    """Store the instance's security settings (fields left out keep their value).

    `enableImpersonation` allows token exchange to impersonate users, for
    actors holding an `*_IMPERSONATOR` role.
    """
    await call.require("iam.policy.write")
    changes = security_changes(req)
    state = await InstancePolicies.load(call.runtime.store, call.instance_id, call.instance_id)
    async with call.runtime.db.read() as conn:
        current = (await policies.security_policy(conn, call.instance_id)).policy
    push = set_security_policy(state, dataclasses.replace(current, **changes))
    if push is None:
        return {
            "details": details(sequence=state.sequence, changed_at=state.changed_at, owner=state.id)
        }
    stored = await call.runtime.store.push(push, creator=call.user_id)
    return {"details": details(stored)}
