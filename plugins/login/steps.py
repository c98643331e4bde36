"""Further login steps after the password: the extension point for MFA and the like.

After the password (or whatever first factor proved the user), the hosted
login asks each registered `LoginStep`, in order, whether it is `needed` for
the session; the first that is gets the browser (a 303 to its `path`, with
`authRequest` and `sessionId` in the query). When the step's own page is done
(it has added its factor to the session with `set_session` and stored the
new token with `cookies.remember`), it sends the browser to
`/ui/login/next?authRequest=…&sessionId=…`, which asks the steps again and,
when none is needed, finishes the login (back to the client, or the
signed-in page).

Plugins contribute steps through the `register_login_steps()` hook, a hook
this plugin adds to the plugin manager (`HOOKSPECS = LoginHookSpecs` in its
module: plugins registered after it, built-in or installed, may implement it):

    @hookimpl
    def register_login_steps() -> list[LoginStep]:
        return [LoginStep("totp", "/ui/login/mfa/totp", needs_totp)]

and serve the step's page with `register_routes`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from donjon.core.hookspecs import hookspec
from donjon.core.plugins import collect

if TYPE_CHECKING:
    from donjon.core.identity.sessions import SessionState
    from donjon.core.runtime import Runtime


@dataclass(frozen=True)
class StepContext:
    """What a step decides on: the session as stored (its user and factors),
    and the auth request being served (None for a login without one)."""

    runtime: Runtime
    instance_id: str
    session: SessionState
    auth_request: Any | None


@dataclass(frozen=True)
class LoginStep:
    """One step of the login after the first factor.

    `needed(context)` says whether this session still needs the step (for
    a second factor: the user has one set up and the session has not
    checked it yet). `path` is the step's page under `/ui/login/`.
    """

    name: str
    path: str
    needed: Callable[[StepContext], Awaitable[bool]]


class LoginHookSpecs:
    @hookspec
    def register_login_steps(self) -> list[LoginStep]:  # type: ignore[empty-body]
        """Return the login steps this plugin adds after the password, in order.

        Steps of earlier-registered plugins come first; the login plugin's own
        `password_change` (a password the user must change) is the first.
        """


_registries: WeakKeyDictionary[Any, list[LoginStep]] = WeakKeyDictionary()


def login_steps(runtime: Runtime) -> list[LoginStep]:
    """Every enabled plugin's steps, collected once per plugin manager."""
    found = _registries.get(runtime.pm)
    if found is not None:
        return found
    if not hasattr(runtime.pm.hook, "register_login_steps"):
        runtime.pm.add_hookspecs(LoginHookSpecs)  # a manager built without this plugin
    steps = list(collect(runtime.pm.hook.register_login_steps))
    _registries[runtime.pm] = steps
    return steps


async def next_step(context: StepContext) -> LoginStep | None:
    """The first registered step the session still needs, if any."""
    for step in login_steps(context.runtime):
        if await step.needed(context):
            return step
    return None
