"""zitadel.settings.v2.SettingsService, branding (ZITADEL's label policy).

- `GetBrandingSettings` as ZITADEL's settings v2 serves it: `lightTheme` and
  `darkTheme` (`primaryColor`, `backgroundColor`, `warnColor`, `fontColor`,
  `logoUrl`, `iconUrl`), `hideLoginNameSuffix`, `disableWatermark`,
  `resourceOwnerType`; `ctx` chooses the level as for the other getters.
- `SetBrandingSettings` (donjon's, like the other setters): an explicit `ctx`,
  the theme colours (hex `#rgb`, `#rrggbb`, `#rrggbbaa`; fields left out keep
  the value that applies now), `hideLoginNameSuffix`, `disableWatermark`.
- `DeleteOrganizationBrandingSettings`: the org uses the instance's again.

Logos and icons are uploaded and removed through the assets endpoint
(`POST|DELETE /assets/v1/{instance|org}/policy/label/{logo|logo/dark|icon|icon/dark}`,
`core/http/assets.py`); `logoUrl`/`iconUrl` are where they are served
(`/assets/v1/{owner}/policy/label/{logo|icon}[-dark]-{assetId}`).
"""

from __future__ import annotations

from typing import Any

from donjon.core.api.connect import Call, Message, details, invalid
from donjon.core.api.settings_service import (
    OWNER_TYPES,
    GetSettingsRequest,
    OrganizationRequest,
    RequestContext,
    _delete,
    _set,
    _target,
    service,
)
from donjon.core.identity import policies
from donjon.core.identity.policy_events import LABEL
from donjon.core.identity.policy_types import LabelPolicy, is_color

ASSETS_PATH = "/assets/v1"


class Theme(Message):
    primary_color: str | None = None
    background_color: str | None = None
    warn_color: str | None = None
    font_color: str | None = None


class SetBrandingSettingsRequest(Message):
    ctx: RequestContext | None = None
    light_theme: Theme | None = None
    dark_theme: Theme | None = None
    hide_login_name_suffix: bool | None = None
    disable_watermark: bool | None = None


def asset_path(owner_id: str, field_name: str, asset_id: str) -> str:
    """Where an image of the label policy is served (empty without one)."""
    if not asset_id:
        return ""
    name = field_name.replace("_", "-")
    return f"{ASSETS_PATH}/{owner_id}/policy/label/{name}-{asset_id}"


def branding_json(p: LabelPolicy, owner_id: str, base_url: str = "") -> dict[str, Any]:
    def theme(suffix: str) -> dict[str, Any]:
        logo = asset_path(owner_id, "logo" + suffix, getattr(p, "logo" + suffix))
        icon = asset_path(owner_id, "icon" + suffix, getattr(p, "icon" + suffix))
        return {
            "primaryColor": getattr(p, "primary_color" + suffix),
            "backgroundColor": getattr(p, "background_color" + suffix),
            "warnColor": getattr(p, "warn_color" + suffix),
            "fontColor": getattr(p, "font_color" + suffix),
            "logoUrl": base_url + logo if logo else "",
            "iconUrl": base_url + icon if icon else "",
        }

    return {
        "lightTheme": theme(""),
        "darkTheme": theme("_dark"),
        "hideLoginNameSuffix": p.hide_login_name_suffix,
        "disableWatermark": p.disable_watermark,
        "themeMode": "THEME_MODE_AUTO",
    }


def _base_url(call: Call) -> str:
    host = call.headers.get("host", "")
    if not host:
        return ""
    scheme = "https" if call.runtime.settings.ExternalSecure else "http"
    return f"{scheme}://{host}"


@service.rpc("GetBrandingSettings", request=GetSettingsRequest)
async def get_branding_settings(call: Call, req: GetSettingsRequest) -> dict[str, Any]:
    """The branding of the instance or an org (its own, else the instance's, else defaults)."""
    org_id = await _target(call, req.ctx, explicit=False)
    await call.require("policy.read", org_id=org_id or call.context_org())
    async with call.runtime.db.read() as conn:
        found = await policies.resolve(conn, call.instance_id, org_id, LABEL, call.runtime.settings)
    policy = found.policy
    assert isinstance(policy, LabelPolicy)
    return {
        "details": details(
            sequence=found.sequence or None,
            changed_at=found.changed_at,
            owner=found.owner_id,
            created_at=found.created_at,
        ),
        "settings": {
            **branding_json(policy, found.owner_id, _base_url(call)),
            "resourceOwnerType": OWNER_TYPES[found.level],
        },
    }


def branding_changes(req: SetBrandingSettingsRequest) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for json_name, theme, suffix in (
        ("lightTheme", req.light_theme, ""),
        ("darkTheme", req.dark_theme, "_dark"),
    ):
        if theme is None:
            continue
        for attr, field_json in (
            ("primary_color", "primaryColor"),
            ("background_color", "backgroundColor"),
            ("warn_color", "warnColor"),
            ("font_color", "fontColor"),
        ):
            value = getattr(theme, attr)
            if value is None:
                continue
            value = value.strip()
            if not is_color(value):
                raise invalid(
                    f"{json_name}.{field_json}",
                    f"expected a hex colour such as #5469d4, got {value!r}",
                )
            changes[attr + suffix] = value.lower()
    if req.hide_login_name_suffix is not None:
        changes["hide_login_name_suffix"] = req.hide_login_name_suffix
    if req.disable_watermark is not None:
        changes["disable_watermark"] = req.disable_watermark
    return changes


@service.rpc("SetBrandingSettings", request=SetBrandingSettingsRequest)
async def set_branding_settings(call: Call, req: SetBrandingSettingsRequest) -> dict[str, Any]:
    """Store the branding of the instance or of an org (its override).

    Fields left out keep the value that applies at that level now; an org's
    first set copies the instance's branding, logo and icon included.
    """
    return await _set(call, req.ctx, LABEL, branding_changes(req))


@service.rpc("DeleteOrganizationBrandingSettings", request=OrganizationRequest)
async def delete_organization_branding_settings(
    call: Call, req: OrganizationRequest
) -> dict[str, Any]:
    """Drop an org's own branding: the instance's applies again."""
    return await _delete(call, req, LABEL)
