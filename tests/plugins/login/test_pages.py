"""The hosted login's pages over HTTP: forms, CSRF, passwords, lockout, registration,
account selection, logout and password reset by email."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlparse

import pytest

from tests.plugins.login.conftest import PASSWORD, Browser, SmtpSink, add_user, hidden

pytestmark = pytest.mark.anyio


@pytest.fixture
async def browser(api) -> AsyncIterator[Browser]:  # type: ignore[no-untyped-def]
    b = Browser(api)
    yield b
    await b.close()


async def log_in(browser: Browser, login_name: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    await browser.get("/ui/login/login?new=1")
    page = await browser.submit("/ui/login/login", {"loginName": login_name})
    assert page.status_code == 200, page.text
    assert 'name="password"' in page.text
    return await browser.submit(
        "/ui/login/password", {"sessionId": hidden(page, "sessionId"), "password": password}
    )


async def test_login_name_then_password_ends_on_the_signed_in_page(api, browser) -> None:
    await add_user(api, "alice")

    page = await log_in(browser, "alice")

    assert page.status_code == 200
    assert "Signed in" in page.text
    assert 'id="loginName">alice@' in page.text
    assert "donjon_login_sessions" in browser.client.cookies
    # The session is event-sourced and authenticates (visible in the SessionService).
    session_id = parse_qs(urlparse(str(page.url)).query)["sessionId"][0]
    got = await api.ok("zitadel.session.v2.SessionService", "GetSession", {"sessionId": session_id})
    assert got["session"]["factors"]["user"]["loginName"]
    assert "password" in got["session"]["factors"]


async def test_pages_are_html_with_a_csrf_token_and_safe_cookies(api, browser) -> None:
    page = await browser.get("/ui/login/login")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script" not in page.text
    cookie = page.headers["set-cookie"]
    assert "donjon_login_csrf=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    css = await browser.get("/ui/login/static/login.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_the_printed_sign_in_url_leads_to_the_login_name_page(api, browser) -> None:
    # setup prints <external url>/ui/login/ for the first sign-in
    for entry in ("/ui/login/", "/ui/login"):
        first = await browser.get(entry + "?loginHint=x", follow=False)
        assert first.status_code == 302
        assert first.headers["location"] == "/ui/login/login?loginHint=x"
        page = await browser.get(entry)
        assert page.status_code == 200 and 'name="loginName"' in page.text


async def test_a_form_without_the_csrf_token_is_refused(api, browser) -> None:
    await add_user(api, "alice")
    await browser.get("/ui/login/login")

    missing = await browser.submit("/ui/login/login", {"loginName": "alice"}, csrf="")
    forged = await browser.submit("/ui/login/login", {"loginName": "alice"}, csrf="x" * 43)

    assert missing.status_code == 403 and "expired" in missing.text
    assert forged.status_code == 403
    assert "donjon_login_sessions" not in browser.client.cookies


async def test_a_csrf_token_of_another_browser_is_refused(api, browser) -> None:
    await add_user(api, "alice")
    other = Browser(api)
    try:
        await other.get("/ui/login/login")
        stolen = other.csrf()
    finally:
        await other.close()
    await browser.get("/ui/login/login")

    page = await browser.submit("/ui/login/login", {"loginName": "alice"}, csrf=stolen)

    assert page.status_code == 403


async def test_a_wrong_password_says_so(api, browser) -> None:
    await add_user(api, "alice")

    page = await log_in(browser, "alice", "Wrong-passw0rd!")

    assert page.status_code == 400
    assert "The password is wrong." in page.text
    assert 'name="password"' in page.text


async def test_an_unknown_login_name_says_so(api, browser) -> None:
    await browser.get("/ui/login/login")

    page = await browser.submit("/ui/login/login", {"loginName": "nobody"})

    assert page.status_code == 400
    assert "No user with this login name." in page.text


async def test_ignore_unknown_usernames_asks_for_a_password_then_stays_vague(api, browser) -> None:
    await api.ok(
        "settings", "SetLoginSettings", {"ctx": {"instance": True}, "ignoreUnknownUsernames": True}
    )
    await browser.get("/ui/login/login")

    page = await browser.submit("/ui/login/login", {"loginName": "nobody"})
    assert 'name="password"' in page.text
    failed = await browser.submit(
        "/ui/login/password", {"loginName": "nobody", "password": "whatever"}
    )

    assert failed.status_code == 400
    assert "The login name or the password is wrong." in failed.text


async def test_the_user_is_locked_after_the_policys_attempts(api, browser) -> None:
    user_id = await add_user(api, "alice")
    await api.ok(
        "settings", "SetLockoutSettings", {"ctx": {"instance": True}, "maxPasswordAttempts": "2"}
    )

    first = await log_in(browser, "alice", "Wrong-1")
    second = await browser.submit(
        "/ui/login/password", {"sessionId": hidden(first, "sessionId"), "password": "Wrong-2"}
    )
    await browser.get("/ui/login/login?new=1")
    third = await browser.submit("/ui/login/login", {"loginName": "alice"})

    assert "The password is wrong." in first.text
    assert "This user is locked" in second.text
    assert third.status_code == 400 and "This user is locked" in third.text
    got = await api.ok("user", "GetUserByID", {"userId": user_id})
    assert got["user"]["state"] == "USER_STATE_LOCKED"


async def test_many_browsers_log_the_same_user_in_at_once(api) -> None:
    await add_user(api, "alice")
    browsers = [Browser(api) for _ in range(8)]
    try:
        pages = await asyncio.gather(*(log_in(b, "alice") for b in browsers))
    finally:
        for b in browsers:
            await b.close()
    assert [p.status_code for p in pages] == [200] * 8
    assert all("Signed in" in p.text for p in pages)


async def test_wrong_passwords_in_many_browsers_at_once_lock_the_user(api) -> None:
    user_id = await add_user(api, "alice")
    await api.ok(
        "settings", "SetLockoutSettings", {"ctx": {"instance": True}, "maxPasswordAttempts": "3"}
    )
    browsers = [Browser(api) for _ in range(6)]
    try:
        pages = await asyncio.gather(*(log_in(b, "alice", "Wrong-1") for b in browsers))
        # Locked now: the login name is refused at once.
        await browsers[0].get("/ui/login/login?new=1")
        again = await browsers[0].submit("/ui/login/login", {"loginName": "alice"})
    finally:
        for b in browsers:
            await b.close()
    assert all(p.status_code == 400 for p in pages)
    # Each page says wrong or locked; the one that reached the limit, and those after it, locked.
    assert all("The password is wrong." in p.text or "This user is locked" in p.text for p in pages)
    assert sum("This user is locked" in p.text for p in pages) >= 1
    assert again.status_code == 400 and "This user is locked" in again.text
    got = await api.ok("user", "GetUserByID", {"userId": user_id})
    assert got["user"]["state"] == "USER_STATE_LOCKED"


async def test_a_locked_user_is_told_at_the_login_name(api, browser) -> None:
    user_id = await add_user(api, "alice")
    await api.ok("user", "LockUser", {"userId": user_id})
    await browser.get("/ui/login/login")

    page = await browser.submit("/ui/login/login", {"loginName": "alice"})

    assert page.status_code == 400
    assert "This user is locked" in page.text


async def test_password_login_refused_when_the_policy_disallows_it(api, browser) -> None:
    await add_user(api, "alice")
    await api.ok(
        "settings", "SetLoginSettings", {"ctx": {"instance": True}, "allowUsernamePassword": False}
    )

    form = await browser.get("/ui/login/login")
    await browser.get("/ui/login/register")  # a page with a form (and so a CSRF token)
    page = await browser.submit("/ui/login/login", {"loginName": "alice"})

    assert 'name="loginName"' not in form.text
    assert page.status_code == 400 and "not allowed" in page.text


async def test_self_registration_creates_the_user_and_signs_in(api, browser) -> None:
    form = await browser.get("/ui/login/register")
    assert form.status_code == 200
    assert "at least 8 characters" in form.text

    page = await browser.submit(
        "/ui/login/register",
        {
            "givenName": "Rita",
            "familyName": "Reg",
            "email": "rita@example.com",
            "username": "rita",
            "password": PASSWORD,
            "passwordConfirm": PASSWORD,
        },
    )

    assert page.status_code == 200, page.text
    assert "Signed in" in page.text and "rita" in page.text
    users = await api.ok("user", "ListUsers", {})
    rita = next(u for u in users["result"] if u.get("username") == "rita")
    assert rita["details"]["resourceOwner"] == api.org_id
    assert rita["human"]["email"]["email"] == "rita@example.com"


async def test_registration_enforces_the_password_complexity_with_clear_messages(
    api, browser
) -> None:
    await browser.get("/ui/login/register")
    base = {"givenName": "Rita", "familyName": "Reg", "email": "rita@example.com"}

    weak = await browser.submit(
        "/ui/login/register", {**base, "password": "short", "passwordConfirm": "short"}
    )
    mismatch = await browser.submit(
        "/ui/login/register", {**base, "password": PASSWORD, "passwordConfirm": PASSWORD + "x"}
    )

    assert weak.status_code == 400
    assert "has at least 8 characters" in weak.text and "has a digit" in weak.text
    assert 'value="Rita"' in weak.text  # the form keeps what was typed (not the password)
    assert "The passwords do not match." in mismatch.text


async def test_registration_closed_by_the_login_policy(api, browser) -> None:
    await api.ok(
        "settings", "SetLoginSettings", {"ctx": {"instance": True}, "allowRegister": False}
    )

    login = await browser.get("/ui/login/login")
    form = await browser.get("/ui/login/register")
    await browser.get("/ui/login/login")
    post = await browser.submit(
        "/ui/login/register",
        {
            "givenName": "R",
            "familyName": "R",
            "email": "r@example.com",
            "password": PASSWORD,
            "passwordConfirm": PASSWORD,
        },
    )

    assert "/ui/login/register" not in login.text
    assert form.status_code == 403 and "does not allow registering" in form.text
    assert post.status_code == 403
    users = await api.ok("user", "ListUsers", {})
    assert not any(u.get("username") == "r@example.com" for u in users["result"])


async def test_account_selection_lists_the_browsers_sessions(api, browser) -> None:
    await add_user(api, "alice")
    await add_user(api, "bob")
    await log_in(browser, "alice")
    await log_in(browser, "bob")

    page = await browser.get("/ui/login/login")

    assert str(page.url).endswith("/ui/login/accounts")
    assert "alice" in page.text and "bob" in page.text
    alice_session = re.search(r'name="sessionId" value="([^"]+)">\s*Alice', page.text)
    assert alice_session
    chosen = await browser.submit("/ui/login/accounts", {"sessionId": alice_session.group(1)})
    assert "Signed in" in chosen.text and 'id="loginName">alice@' in chosen.text


async def test_an_unknown_session_id_cannot_be_chosen(api, browser) -> None:
    await add_user(api, "alice")
    other = Browser(api)
    try:
        signed = await log_in(other, "alice")
        foreign = hidden(signed, "sessionId")
    finally:
        await other.close()
    await browser.get("/ui/login/login")

    page = await browser.submit("/ui/login/accounts", {"sessionId": foreign})

    assert "Signed in" not in page.text
    assert 'name="loginName"' in page.text


async def test_logout_terminates_the_sessions_and_clears_the_cookie(api, browser) -> None:
    await add_user(api, "alice")
    signed = await log_in(browser, "alice")
    session_id = hidden(signed, "sessionId")

    page = await browser.submit("/ui/login/logout", {})

    assert "You are signed out." in page.text
    assert "donjon_login_sessions" not in browser.client.cookies
    status, _ = await api.call(
        "zitadel.session.v2.SessionService", "GetSession", {"sessionId": session_id}
    )
    assert status == 404
    again = await browser.get("/ui/login/login")
    assert 'name="loginName"' in again.text


async def test_password_reset_by_email_code(api, browser, smtp_sink: SmtpSink) -> None:
    await add_user(api, "alice", email="alice@example.com")
    await browser.get("/ui/login/login")
    page = await browser.submit("/ui/login/login", {"loginName": "alice"})
    session_id = hidden(page, "sessionId")
    assert "Forgot your password?" in page.text

    form = await browser.get(f"/ui/login/password/reset?sessionId={session_id}")
    sent = await browser.submit("/ui/login/password/reset", {"sessionId": session_id})
    assert sent.status_code == 200, sent.text
    mail = await smtp_sink.wait()
    assert form.status_code == 200
    assert mail["To"] == "alice@example.com"
    assert "Donjon Login" in mail["From"]
    body = mail.get_payload(decode=True).decode()
    link = re.search(r"(http://\S+/ui/login/password/set\?\S+)", body).group(1)
    set_form = await browser.get(link[link.index("/ui/") :])
    assert set_form.status_code == 200
    new_password = "N3w-Passw0rd!"

    weak = await browser.submit(
        "/ui/login/password/set",
        {
            "userId": hidden(set_form, "userId"),
            "code": hidden(set_form, "code"),
            "password": "weak",
            "passwordConfirm": "weak",
        },
    )
    assert weak.status_code == 400 and "has at least 8 characters" in weak.text
    done = await browser.submit(
        "/ui/login/password/set",
        {
            "userId": hidden(set_form, "userId"),
            "code": hidden(set_form, "code"),
            "password": new_password,
            "passwordConfirm": new_password,
        },
    )

    assert "Signed in" in done.text, done.text
    fresh = Browser(api)
    try:
        assert "Signed in" in (await log_in(fresh, "alice", new_password)).text
        assert "The password is wrong." in (await log_in(fresh, "alice", PASSWORD)).text
    finally:
        await fresh.close()


async def test_a_reset_code_works_once(api, browser, smtp_sink: SmtpSink) -> None:
    await add_user(api, "alice")
    await browser.get("/ui/login/login")
    page = await browser.submit("/ui/login/login", {"loginName": "alice"})
    await browser.get(f"/ui/login/password/reset?sessionId={hidden(page, 'sessionId')}")
    await browser.submit("/ui/login/password/reset", {"sessionId": hidden(page, "sessionId")})
    body = (await smtp_sink.wait()).get_payload(decode=True).decode()
    code = re.search(r"code=([\w-]+)", body).group(1)
    user_id = re.search(r"userId=(\w+)", body).group(1)
    await browser.get(f"/ui/login/password/set?userId={user_id}")
    data = {
        "userId": user_id,
        "code": code,
        "password": "N3w-Passw0rd!",
        "passwordConfirm": "N3w-Passw0rd!",
    }

    assert "Signed in" in (await browser.submit("/ui/login/password/set", data)).text
    await browser.get(f"/ui/login/password/set?userId={user_id}")
    again = await browser.submit("/ui/login/password/set", data)

    assert again.status_code == 400 and "wrong or expired" in again.text


async def test_password_reset_hidden_by_the_login_policy(api, browser, smtp_sink: SmtpSink) -> None:
    await add_user(api, "alice")
    await api.ok(
        "settings", "SetLoginSettings", {"ctx": {"instance": True}, "hidePasswordReset": True}
    )
    await browser.get("/ui/login/login")

    page = await browser.submit("/ui/login/login", {"loginName": "alice"})
    reset = await browser.get(f"/ui/login/password/reset?sessionId={hidden(page, 'sessionId')}")

    assert "Forgot your password?" not in page.text
    assert reset.status_code == 403
    assert smtp_sink.messages == []


async def test_registration_mails_a_link_that_verifies_the_email(
    api, browser, smtp_sink: SmtpSink
) -> None:
    await browser.get("/ui/login/register")
    await browser.submit(
        "/ui/login/register",
        {
            "givenName": "Vera",
            "familyName": "Verified",
            "email": "vera@example.com",
            "username": "vera",
            "password": PASSWORD,
            "passwordConfirm": PASSWORD,
        },
    )
    mail = await smtp_sink.wait()
    assert mail["To"] == "vera@example.com"
    body = mail.get_payload(decode=True).decode()
    link = re.search(r"(http://\S+/ui/login/email/verify\?\S+)", body).group(1)

    form = await browser.get(link[link.index("/ui/") :])
    wrong = await browser.submit(
        "/ui/login/email/verify", {"userId": hidden(form, "userId"), "code": "nope"}
    )
    await browser.get(link[link.index("/ui/") :])
    done = await browser.submit(
        "/ui/login/email/verify",
        {"userId": hidden(form, "userId"), "code": hidden(form, "code")},
    )

    assert wrong.status_code == 400 and "wrong or expired" in wrong.text
    assert "vera@example.com is verified" in done.text
    user = await api.ok("user", "GetUserByID", {"userId": hidden(form, "userId")})
    assert user["user"]["human"]["email"]["isVerified"] is True


@pytest.mark.parametrize(
    "path",
    [
        "/ui/login/login",
        "/ui/login/password",
        "/ui/login/accounts",
        "/ui/login/register",
        "/ui/login/password/reset",
        "/ui/login/password/set",
        "/ui/login/password/change",
        "/ui/login/email/verify",
        "/ui/login/logout",
        "/ui/login/cancel",
    ],
)
async def test_every_form_refuses_a_post_without_the_csrf_token(api, browser, path) -> None:
    user_id = await add_user(api, "alice")
    await log_in(browser, "alice")
    session_id = browser.client.cookies.get("donjon_login_sessions") and hidden(
        browser.last, "sessionId"
    )
    data = {"sessionId": session_id, "userId": user_id, "loginName": "alice", "password": "x"}

    page = await browser.submit(path, data, csrf="")

    assert page.status_code == 403
    assert "This form expired" in page.text
    status, _ = await api.call(
        "zitadel.session.v2.SessionService", "GetSession", {"sessionId": session_id}
    )
    assert status == 200  # logout did not happen
