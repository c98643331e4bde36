"""Branding (ZITADEL's label policy) through the SettingsService and the assets endpoint:
defaults, instance settings, org override and its removal, colour checks, logo and icon
uploads (size, content type, content checked; served immutable with an ETag)."""

from __future__ import annotations

import struct
import zlib

import pytest

from tests.api.conftest import Api
from tests.api.test_settings_service import _machine_user_token

pytestmark = pytest.mark.anyio
INSTANCE = {"ctx": {"instance": True}}


def png(width: int = 2, height: int = 1, rgb: tuple[int, int, int] = (84, 105, 212)) -> bytes:
    """A real PNG image of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


async def upload(
    api: Api,
    path: str,
    data: bytes,
    content_type: str = "image/png",
    headers: dict[str, str] | None = None,
):  # type: ignore[no-untyped-def]
    h = {"authorization": f"Bearer {api.token}", **(headers or {})}
    return await api.client.post(
        f"/assets/v1/{path}", files={"file": ("logo", data, content_type)}, headers=h
    )


async def test_branding_defaults_are_zitadels(api: Api) -> None:
    got = await api.ok("settings", "GetBrandingSettings", INSTANCE)

    settings = got["settings"]
    assert settings["lightTheme"] == {
        "primaryColor": "#5469d4",
        "backgroundColor": "#fafafa",
        "warnColor": "#cd3d56",
        "fontColor": "#000000",
        "logoUrl": "",
        "iconUrl": "",
    }
    assert settings["darkTheme"]["backgroundColor"] == "#111827"
    assert settings["hideLoginNameSuffix"] is False and settings["disableWatermark"] is False
    assert settings["resourceOwnerType"] == "RESOURCE_OWNER_TYPE_INSTANCE"


async def test_instance_branding_is_inherited_until_an_org_overrides_it(api: Api) -> None:
    org = {"ctx": {"orgId": api.org_id}}
    await api.ok(
        "settings",
        "SetBrandingSettings",
        {**INSTANCE, "lightTheme": {"primaryColor": "#AA0000"}, "disableWatermark": True},
    )
    inherited = (await api.ok("settings", "GetBrandingSettings", org))["settings"]
    assert inherited["lightTheme"]["primaryColor"] == "#aa0000"
    assert inherited["disableWatermark"] is True
    assert inherited["resourceOwnerType"] == "RESOURCE_OWNER_TYPE_INSTANCE"

    await api.ok(
        "settings",
        "SetBrandingSettings",
        {**org, "darkTheme": {"fontColor": "#eee"}, "hideLoginNameSuffix": True},
    )
    own = (await api.ok("settings", "GetBrandingSettings", org))["settings"]
    assert own["resourceOwnerType"] == "RESOURCE_OWNER_TYPE_ORG"
    assert own["lightTheme"]["primaryColor"] == "#aa0000"  # copied from the instance's
    assert own["darkTheme"]["fontColor"] == "#eee" and own["hideLoginNameSuffix"] is True
    instance = (await api.ok("settings", "GetBrandingSettings", INSTANCE))["settings"]
    assert instance["hideLoginNameSuffix"] is False

    await api.ok("settings", "DeleteOrganizationBrandingSettings", {"organizationId": api.org_id})
    back = (await api.ok("settings", "GetBrandingSettings", org))["settings"]
    assert back["resourceOwnerType"] == "RESOURCE_OWNER_TYPE_INSTANCE"
    status, code, _ = await api.error(
        "settings", "DeleteOrganizationBrandingSettings", {"organizationId": api.org_id}
    )
    assert (status, code) == (404, "not_found")


@pytest.mark.parametrize(
    "color", ["red", "#12345", "#1234567", "#abc; } body { x: y", "url(x)", ""]
)
async def test_colours_must_be_hex(api: Api, color: str) -> None:
    status, code, message = await api.error(
        "settings", "SetBrandingSettings", {**INSTANCE, "lightTheme": {"warnColor": color}}
    )

    assert (status, code) == (400, "invalid_argument")
    assert message.startswith("lightTheme.warnColor")


async def test_setting_branding_needs_the_policy_permission(api: Api) -> None:
    _user, token = await _machine_user_token(api, "nobody")
    stranger = api.as_token(token)

    status, code, _ = await stranger.error(
        "settings", "SetBrandingSettings", {**INSTANCE, "disableWatermark": True}
    )
    assert (status, code) == (403, "permission_denied")
    r = await upload(stranger, "instance/policy/label/logo", png())
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    r = await api.client.post("/assets/v1/instance/policy/label/logo", files={"file": ("x", png())})
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"


async def test_a_logo_is_uploaded_shown_in_the_settings_and_served_immutable(api: Api) -> None:
    image = png()
    r = await upload(api, "instance/policy/label/logo", image)
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    assert url.startswith(f"/assets/v1/{api.instance_id}/policy/label/logo-")

    settings = (await api.ok("settings", "GetBrandingSettings", INSTANCE))["settings"]
    assert settings["lightTheme"]["logoUrl"].endswith(url)
    served = await api.client.get(url)
    assert served.status_code == 200 and served.content == image, served.text
    assert served.headers["content-type"] == "image/png"
    assert "immutable" in served.headers["cache-control"]
    assert "max-age=31536000" in served.headers["cache-control"]
    assert served.headers["x-content-type-options"] == "nosniff"
    again = await api.client.get(url, headers={"if-none-match": served.headers["etag"]})
    assert again.status_code == 304

    dark = await upload(api, "instance/policy/label/icon/dark", image)
    assert dark.status_code == 200
    settings = (await api.ok("settings", "GetBrandingSettings", INSTANCE))["settings"]
    assert "/policy/label/icon-dark-" in settings["darkTheme"]["iconUrl"]

    removed = await api.client.delete(
        "/assets/v1/instance/policy/label/logo", headers={"authorization": f"Bearer {api.token}"}
    )
    assert removed.status_code == 200, removed.text
    settings = (await api.ok("settings", "GetBrandingSettings", INSTANCE))["settings"]
    assert settings["lightTheme"]["logoUrl"] == ""


async def test_an_org_logo_goes_to_the_org_named_by_the_header(api: Api) -> None:
    other = (await api.ok("org", "AddOrganization", {"name": "Branded"}))["organizationId"]

    r = await upload(
        api, "org/policy/label/logo", png(rgb=(1, 2, 3)), headers={"x-zitadel-orgid": other}
    )

    assert r.status_code == 200, r.text
    own = (await api.ok("settings", "GetBrandingSettings", {"ctx": {"orgId": other}}))["settings"]
    assert own["resourceOwnerType"] == "RESOURCE_OWNER_TYPE_ORG"
    assert f"/assets/v1/{other}/policy/label/logo-" in own["lightTheme"]["logoUrl"]
    instance = (await api.ok("settings", "GetBrandingSettings", INSTANCE))["settings"]
    assert instance["lightTheme"]["logoUrl"] == ""


async def test_uploads_are_checked_for_size_type_and_content(api: Api) -> None:
    big = png() + b"\x00" * (512 * 1024)
    r = await upload(api, "instance/policy/label/logo", big)
    assert r.status_code == 413 and r.json()["code"] == "resource_exhausted"

    r = await upload(api, "instance/policy/label/logo", b"%PDF-1.4", "application/pdf")
    assert r.status_code == 415 and r.json()["code"] == "invalid_argument"

    r = await upload(api, "instance/policy/label/logo", b"<html>not a png</html>", "image/png")
    assert r.status_code == 400 and "not image/png" in r.json()["message"]

    r = await upload(api, "instance/policy/label/banner", png())
    assert r.status_code == 404 and r.json()["code"] == "not_found"

    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'
    r = await upload(api, "instance/policy/label/icon", svg, "image/svg+xml")
    assert r.status_code == 200, r.text
    served = await api.client.get(r.json()["url"])
    assert "sandbox" in served.headers["content-security-policy"]
    settings = (await api.ok("settings", "GetBrandingSettings", INSTANCE))["settings"]
    assert settings["lightTheme"]["logoUrl"] == ""  # nothing stored by the refused uploads


async def test_an_unknown_asset_is_not_found(api: Api) -> None:
    r = await api.client.get(f"/assets/v1/{api.instance_id}/policy/label/logo-0123abcd")

    assert r.status_code == 404 and r.json()["code"] == "not_found"
