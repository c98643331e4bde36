"""Further login steps: the built-in password change, and a step another plugin adds
through the `register_login_steps` hook."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from donjon.core import hookimpl
from donjon.core.plugins import PluginInfo, get_plugin_manager
from donjon.plugins.login.steps import LoginStep, StepContext, login_steps
from tests.plugins.login.conftest import PASSWORD, Browser, add_user, hidden

pytestmark = pytest.mark.anyio

NEW_PASSWORD = "Brand-N3w-Passw0rd!"


@pytest.fixture
async def browser(api) -> AsyncIterator[Browser]:  # type: ignore[no-untyped-def]
    b = Browser(api)
    yield b
    await b.close()


async def password_step(browser: Browser, login_name: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    await browser.get("/ui/login/login?new=1")
    page = await browser.submit("/ui/login/login", {"loginName": login_name})
    return await browser.submit(
        "/ui/login/password",
        {"sessionId": hidden(page, "sessionId"), "password": password},
        follow=False,
    )


async def test_a_password_that_must_change_is_changed_before_the_login_ends(api, browser) -> None:
    user_id = await add_user(api, "alice")
    await api.ok(
        "user",
        "SetPassword",
        {"userId": user_id, "newPassword": {"password": PASSWORD, "changeRequired": True}},
    )

    after_password = await password_step(browser, "alice")
    assert after_password.status_code == 303
    assert after_password.headers["location"].startswith("/ui/login/password/change?")
    form = await browser.get(after_password.headers["location"])
    assert "Your password must be changed" in form.text
    session_id = hidden(form, "sessionId")
    wrong = await browser.submit(
        "/ui/login/password/change",
        {
            "sessionId": session_id,
            "currentPassword": "Wrong-passw0rd!",
            "password": NEW_PASSWORD,
            "passwordConfirm": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 400 and "The current password is wrong." in wrong.text
    weak = await browser.submit(
        "/ui/login/password/change",
        {
            "sessionId": session_id,
            "currentPassword": PASSWORD,
            "password": "weak",
            "passwordConfirm": "weak",
        },
    )
    assert weak.status_code == 400 and "has at least 8 characters" in weak.text
    done = await browser.submit(
        "/ui/login/password/change",
        {
            "sessionId": session_id,
            "currentPassword": PASSWORD,
            "password": NEW_PASSWORD,
            "passwordConfirm": NEW_PASSWORD,
        },
    )

    assert "Signed in" in done.text
    again = await password_step(browser, "alice", NEW_PASSWORD)
    assert again.headers["location"].startswith("/ui/login/signedin?")


async def test_the_change_page_needs_a_signed_in_session_of_this_browser(api, browser) -> None:
    form = await browser.get("/ui/login/password/change?sessionId=123", follow=False)

    assert form.status_code == 303
    assert form.headers["location"].startswith("/ui/login/login")


async def test_a_plugin_adds_a_step_after_the_password(api, browser) -> None:
    pending = {"probe": True}

    async def needs_probe(context: StepContext) -> bool:
        assert context.session.user_id and context.auth_request is None
        return pending["probe"]

    class ProbePlugin:
        @hookimpl
        def register_login_steps(self) -> list[LoginStep]:
            return [LoginStep("probe", "/ui/login/probe", needs_probe)]

    api.runtime.pm.add_plugin(ProbePlugin(), PluginInfo("probe", "1", "test", False, True))
    assert [s.name for s in login_steps(api.runtime)] == ["password_change", "probe"]
    await add_user(api, "alice")

    after_password = await password_step(browser, "alice")
    location = after_password.headers["location"]
    assert location.startswith("/ui/login/probe?sessionId=")
    session_id = location.partition("sessionId=")[2]
    still = await browser.get(f"/ui/login/next?sessionId={session_id}", follow=False)
    assert still.headers["location"].startswith("/ui/login/probe?")
    pending["probe"] = False  # the step's page has done its work
    done = await browser.get(f"/ui/login/next?sessionId={session_id}")

    assert "Signed in" in done.text


def test_installed_plugins_may_implement_register_login_steps() -> None:
    class Steps:
        @hookimpl
        def register_login_steps(self) -> list[LoginStep]:
            return []

    pm = get_plugin_manager()
    pm.add_plugin(Steps(), PluginInfo("steps", "1", "test", False, True))

    assert pm.hook.register_login_steps.spec is not None
