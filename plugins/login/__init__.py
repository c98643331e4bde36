"""The hosted login (built-in plugin `login`): `/ui/login/…`, HTML pages that need no JavaScript.

See docs/login.md. Modules: `flow` (the per-request context and where a
login goes next), `steps` (further steps after the password: the extension
point for MFA), `cookies` (sessions and CSRF), `render` (templates and
branding), `mail` (SMTP), `auth_requests` (the OIDC plugin's auth requests),
and one `pages_*` module per group of pages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from donjon.core import hookimpl
from donjon.plugins.login.steps import LoginHookSpecs

if TYPE_CHECKING:
    from donjon.core.plugins import SettingsSection
    from donjon.plugins.login.steps import LoginStep

#: The hooks this plugin adds (see `steps`): `register_login_steps`.
HOOKSPECS = LoginHookSpecs


@hookimpl
def register_settings() -> list[SettingsSection]:
    from donjon.core.plugins import SettingsSection
    from donjon.plugins.login.settings import NAME, LoginSettings

    return [SettingsSection(NAME, LoginSettings)]


@hookimpl
def register_routes() -> list[Any]:
    from donjon.plugins.login.pages_change import change_form, change_submit
    from donjon.plugins.login.pages_device import (
        consent_form,
        consent_submit,
        device_form,
        device_submit,
    )
    from donjon.plugins.login.pages_login import (
        accounts_form,
        accounts_submit,
        cancel,
        login_entry,
        login_form,
        login_submit,
        next_page,
        password_form,
        password_submit,
        signed_in,
    )
    from donjon.plugins.login.pages_logout import logout_done, logout_form, logout_submit
    from donjon.plugins.login.pages_register import register_form, register_submit
    from donjon.plugins.login.pages_reset import reset_form, reset_submit, set_form, set_submit
    from donjon.plugins.login.pages_verify import verify_form, verify_submit
    from donjon.plugins.login.static import stylesheet

    return [
        login_entry,
        login_form,
        login_submit,
        password_form,
        password_submit,
        accounts_form,
        accounts_submit,
        next_page,
        signed_in,
        cancel,
        register_form,
        register_submit,
        reset_form,
        reset_submit,
        set_form,
        set_submit,
        logout_form,
        logout_done,
        logout_submit,
        change_form,
        change_submit,
        verify_form,
        verify_submit,
        device_form,
        device_submit,
        consent_form,
        consent_submit,
        stylesheet,
    ]


@hookimpl
def register_login_steps() -> list[LoginStep]:
    from donjon.plugins.login.pages_change import PASSWORD_CHANGE

    return [PASSWORD_CHANGE]
