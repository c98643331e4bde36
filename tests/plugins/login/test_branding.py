"""The login pages wear the branding (label policy) of the org they are for: colours as
CSS variables (dark ones under prefers-color-scheme), the logo, login names without their
suffix when hidden, the watermark unless disabled; the org comes from the auth request's
org scope or the user's org."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.api.test_settings_branding import png, upload
from tests.plugins.login.conftest import Browser, add_user, hidden
from tests.plugins.oidc.login_support import REDIRECT, oidc_app, pkce

pytestmark = pytest.mark.anyio
INSTANCE = {"ctx": {"instance": True}}


@pytest.fixture
async def browser(api) -> AsyncIterator[Browser]:  # type: ignore[no-untyped-def]
    b = Browser(api)
    yield b
    await b.close()


async def test_the_default_branding_is_zitadels_with_the_watermark(api, browser) -> None:
    page = await browser.get("/ui/login/login")

    assert "--primary: #5469d4;" in page.text and "--background: #fafafa;" in page.text
    assert "@media (prefers-color-scheme: dark) { :root { --primary: #2073c4;" in page.text
    assert 'id="watermark"' in page.text
    assert 'id="logo"' not in page.text


async def test_the_instance_branding_colours_the_pages(api, browser) -> None:
    await api.ok(
        "settings",
        "SetBrandingSettings",
        {
            **INSTANCE,
            "lightTheme": {"primaryColor": "#112233", "fontColor": "#445566"},
            "darkTheme": {"backgroundColor": "#010203"},
            "disableWatermark": True,
        },
    )

    page = await browser.get("/ui/login/login")

    assert "--primary: #112233;" in page.text and "--font: #445566;" in page.text
    assert "--background: #010203;" in page.text
    assert 'id="watermark"' not in page.text


async def test_an_auth_requests_org_scope_picks_that_orgs_branding_and_logo(api, browser) -> None:
    branded = (await api.ok("org", "AddOrganization", {"name": "Branded"}))["organizationId"]
    await api.ok(
        "settings",
        "SetBrandingSettings",
        {"ctx": {"orgId": branded}, "lightTheme": {"primaryColor": "#abcdef"}},
    )
    logo = await upload(api, "org/policy/label/logo", png(), headers={"x-zitadel-orgid": branded})
    assert logo.status_code == 200, logo.text
    app = await oidc_app(api)
    _verifier, challenge = pkce()

    first = await browser.client.get(
        "/oauth/v2/authorize",
        params={
            "client_id": app.client_id,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": f"openid urn:zitadel:iam:org:id:{branded}",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    location = first.headers["location"]
    page = await browser.get(location[location.index("/ui/") :])

    assert "Branded" in page.text and "--primary: #abcdef;" in page.text
    assert f'id="logo" src="{logo.json()["url"]}"' in page.text
    assert (await browser.get(logo.json()["url"])).content == png()
    plain = await browser.get("/ui/login/login?new=1")
    assert "--primary: #abcdef;" not in plain.text and 'id="logo"' not in plain.text


async def test_the_users_org_brands_the_password_page(api, browser) -> None:
    await add_user(api, "alice")
    await api.ok(
        "settings",
        "SetBrandingSettings",
        {"ctx": {"orgId": api.org_id}, "lightTheme": {"warnColor": "#fedcba"}},
    )
    await browser.get("/ui/login/login")

    password = await browser.submit("/ui/login/login", {"loginName": "alice"})

    assert "--warn: #fedcba;" in password.text


async def test_hide_login_name_suffix_shows_login_names_without_the_domain(api, browser) -> None:
    await add_user(api, "alice")
    await api.ok("settings", "SetDomainSettings", {**INSTANCE, "loginNameIncludesDomain": True})
    await browser.get("/ui/login/login")
    password = await browser.submit("/ui/login/login", {"loginName": "alice"})
    shown = password.text.split('id="loginName">')[1].split("<")[0]
    assert "@" in shown
    await api.ok("settings", "SetBrandingSettings", {**INSTANCE, "hideLoginNameSuffix": True})

    again = await browser.get("/ui/login/password?sessionId=" + hidden(password, "sessionId"))

    assert f'id="loginName">{shown.split("@")[0]}<' in again.text
