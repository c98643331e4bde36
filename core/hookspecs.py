"""Every public hook of donjon, grouped by when it runs.

Implementations are marked with `donjon.core.hookimpl` and may take any subset
of a hook's arguments, so a hook can grow new arguments without breaking them.

Return contracts, by name:

- `register_*` hooks return a list; donjon concatenates the lists of every
  enabled plugin in registration order (built-in plugins first).
- `resolve_*` hooks are firstresult: implementations are tried in pluggy's
  order (`tryfirst` ones first, the most recently registered next, `trylast`
  ones last) and the first answer that is not None wins.
- `on_*` hooks observe; their return value is ignored.

Any implementation may return its value or an awaitable of it (an `async def`
implementation is fine): donjon awaits it. The annotations below give the
value. Hook wrappers (`wrapper=True`, `hookwrapper=True`) are not supported,
because implementations are called one at a time so that each can be awaited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from donjon.core.api.auth import Credential, Principal
    from donjon.core.api.connect import Call, Service
    from donjon.core.events import Event, StoredEvent
    from donjon.core.identity.session_checks import SessionCheck
    from donjon.core.plugins import SettingsSection
    from donjon.core.projections.base import Projection
    from donjon.core.runtime import Runtime
    from donjon.core.settings import Settings
    from donjon.core.setup.migrations import Migration

hookspec = pluggy.HookspecMarker("donjon")

# -- registration: called while the runtime, the app or the command line is built -------


@hookspec
def register_event_types() -> list[type[Event]]:
    """Return the event classes this plugin defines.

    Called once when the runtime is built (every command that opens the
    store, and `donjon start`), before anything is read or pushed. An event
    whose type no enabled plugin registered is refused at push and cannot be
    decoded when read; two plugins registering one type name fails the start.

    :return: a list of `donjon.core.events.Event` subclasses, each with the
        class constants `TYPE` and `AGGREGATE_TYPE`.
    """


@hookspec
def register_settings() -> list[SettingsSection]:
    """Return the schema of this plugin's own configuration section.

    Called once when the runtime is built. The keys of `Plugins.<name>` in
    the configuration (all but `Enabled`) are parsed into the schema, a
    dataclass whose fields are the keys, with defaults; an unknown key or a
    wrong value fails the start naming `Plugins.<name>.<Key>`. Environment
    variables reach it as `DONJON_PLUGINS_<NAME>_<KEY>`. The parsed section is
    `runtime.plugin_settings[name]`. A plugin that registers no schema may
    have no keys but `Enabled`.

    :return: a list holding at most one `donjon.core.plugins.SettingsSection`,
        whose `plugin` is this plugin's name (its entry-point name).
    """


@hookspec
def register_projections(settings: Settings) -> list[Projection]:
    """Return the projections (read models) this plugin maintains.

    Called once when the runtime is built. Inline projections are written in
    every push transaction; async ones are followed by the projection runner
    while `donjon start` serves. `donjon setup` builds a new projection and
    rebuilds one whose `version` changed. Projection names must be unique
    across plugins; prefix them (and their tables) with the plugin's name.

    :param settings: the loaded configuration.
    :return: a list of `donjon.core.projections.base.Projection` instances.
    """


@hookspec
def register_migrations(settings: Settings) -> list[Migration]:
    """Return this plugin's setup steps, in the order they must run.

    Called by `donjon setup` (and `start-from-setup`, `start-from-init`) to
    list the steps. They run after the core's; each is recorded as
    `system.migration.started|done|failed` events and runs once, or again
    whenever it is repeatable and its `rerun_when` returns true.

    :param settings: the loaded configuration.
    :return: a list of `donjon.core.setup.migrations.Migration`, whose names
        are unique (prefix them with the plugin's name).
    """


@hookspec
def register_routes(settings: Settings) -> list[Any]:
    """Return the Litestar route handlers this plugin serves.

    Called once when the HTTP app is built (`donjon start`). Handlers may take
    the dependencies the app provides: `runtime` (the process's `Runtime`),
    `instance_id` (the id of the instance the request addresses, see
    `resolve_instance`) and `metrics`. Paths outside `/debug/` are only
    reached once the request's instance is resolved.

    :param settings: the loaded configuration.
    :return: a list of Litestar route handlers, `Controller` classes or
        `Router`s.
    """


@hookspec
def register_api_services(settings: Settings) -> list[Service]:
    """Return the management API services (Connect JSON) this plugin serves.

    Called once when the HTTP app is built (`donjon start`). Each method of
    each service is served at `POST /<service name>/<method>` (ZITADEL's
    Connect paths, such as `/zitadel.user.v2.UserService/GetUserByID`) and
    listed in the OpenAPI document at `/openapi/management.json`. Methods
    are authenticated (see `resolve_principal`) unless declared otherwise.
    A method path served twice fails the start.

    :param settings: the loaded configuration.
    :return: a list of `donjon.core.api.connect.Service`.
    """


@hookspec
def register_commands() -> list[click.Command]:
    """Return click commands to add to the `donjon` command line.

    Called when the `donjon` command starts, before its arguments are parsed,
    so the configuration is not known yet: commands of every installed plugin
    are added. When one runs, its plugin's `Enabled` is checked (from the
    command's `--config` files, if it takes `donjon.core.cli.config_option`,
    and the environment) and a disabled plugin's command fails saying so.
    `donjon --help` hides the commands of plugins the environment disables.
    A name taken by the core or another plugin fails the command line.

    :return: a list of `click.Command` (or `click.Group`) objects.
    """


@hookspec
def register_session_checks(settings: Settings) -> list[SessionCheck]:
    """Return the session checks and challenges this plugin runs.

    Called once per process, the first time a session is created or updated
    (the SessionService's CreateSession and SetSession, the hosted login).
    Each `SessionCheck` runs one field of the request's `checks` (`user`,
    `password`, `idpIntent`, `webAuthN`, `totp`, `otpSms`, `otpEmail`,
    `recoveryCode`) or, with `challenge=True`, of its `challenges`
    (`webAuthN`, `otpSms`, `otpEmail`). Its `run(context, value)` gets a
    `CheckContext` (the runtime, the session, its user so far, the field's
    path) and the field's JSON value; it returns a `CheckOutcome` (the
    events to record on the session, such as `SessionTOTPChecked`, and for a
    challenge the response's value) or raises `ConnectError` naming the
    field, and then nothing is recorded on the session. Checks run in the
    order above, the user first. The core registers `user` and `password`;
    a field nobody registered answers `unimplemented`, and a field
    registered twice, or one the SessionService does not have, fails with
    `PluginError`.

    :param settings: the loaded configuration.
    :return: a list of `donjon.core.identity.session_checks.SessionCheck`.
    """


# -- lifecycle: called by the server and the event store -------------------------------


@hookspec
def on_startup(runtime: Runtime) -> None:
    """Observe that the server is starting; the runtime is ready for use.

    Called once per process by `donjon start` (and `start-from-*`), before
    the first request is served, each implementation after the previous one
    has finished. An exception stops the start.

    :param runtime: the process's `donjon.core.runtime.Runtime`.
    :return: nothing; the value is ignored.
    """


@hookspec
def on_shutdown(runtime: Runtime) -> None:
    """Observe that the server is stopping (SIGTERM or SIGINT).

    Called once per process after the last request has been answered and the
    projection runner has stopped, before the database pool closes. An
    exception is logged and the other implementations still run.

    :param runtime: the process's `donjon.core.runtime.Runtime`.
    :return: nothing; the value is ignored.
    """


@hookspec
def on_events_pushed(events: list[StoredEvent]) -> None:
    """Observe events this process has just committed.

    Called after each successful push, in the pushing process only, with the
    events as stored (positions assigned). The push does not wait: an
    awaitable is run as a task of the event loop. An exception is logged and
    ignored. Keep it quick; a durable reaction belongs in an async projection,
    which also sees other processes' events and survives restarts.

    :param events: the pushed events in position order.
    :return: nothing; the value is ignored.
    """


@hookspec
def on_event(event: StoredEvent, runtime: Runtime) -> None:
    """React to one committed event, durably: at least once, in position order.

    Called by every serving process's event hook runner for each event
    committed to the store (by any process) after the plugin was first run,
    in position order, outside any transaction: the implementation may push
    events. Each plugin has its own tracked position (`on_event:<plugin>` in
    `donjon projections list`); it moves past an event once the
    implementation returned. An exception stops that plugin's delivery at the
    event, which is tried again after `Projections.RetryFailedAfter` and
    parked after `Projections.MaxFailureCount` failures. A crash mid-batch
    delivers the batch again: deduplicate by `event.position` if it matters.
    On PostgreSQL each event goes to one process.

    :param event: the event as stored (type, aggregate, payload, position).
    :param runtime: the process's `donjon.core.runtime.Runtime`.
    :return: nothing (or an awaitable, which is awaited); the value is ignored.
    """


# -- customisation: each implementation may rewrite the value, in turn -------------------


@hookspec
def customize_api_request(
    method: str,
    request: dict[str, Any],
    call: Call,
) -> dict[str, Any] | None:
    """Rewrite or refuse a management API request before its method runs.

    Called for every management API call once the caller is authenticated,
    before the body is decoded and checked, with the body as a JSON object
    (protobuf-JSON names). Implementations run in pluggy's order, each on the
    request the previous one returned. Raise
    `donjon.core.api.connect.ConnectError` to refuse the call (the client
    gets that error and the method does not run). The `actions` plugin runs
    `request` executions here.

    :param method: the method's path, such as `/zitadel.user.v2.UserService/AddHumanUser`.
    :param request: the request body as a JSON object; do not change it in place.
    :param call: the call's `donjon.core.api.connect.Call` (runtime, instance, caller).
    :return: a replacement request (a dict), or None to keep it.
    """


@hookspec
def customize_api_response(
    method: str,
    request: dict[str, Any],
    response: dict[str, Any],
    call: Call,
) -> dict[str, Any] | None:
    """Rewrite a management API response before it is sent.

    Called for every management API call whose method succeeded, with its
    response as a JSON object. Implementations run in pluggy's order, each
    on the response the previous one returned. Raising
    `donjon.core.api.connect.ConnectError` answers that error instead (what
    the method changed stays changed). The `actions` plugin runs `response`
    executions here.

    :param method: the method's path, such as `/zitadel.user.v2.UserService/AddHumanUser`.
    :param request: the request body the method ran with, as a JSON object.
    :param response: the response as a JSON object; do not change it in place.
    :param call: the call's `donjon.core.api.connect.Call`.
    :return: a replacement response (a dict), or None to keep it.
    """


@hookspec
def customize_token(
    kind: str,
    claims: dict[str, Any],
    user_id: str,
    client_id: str,
    instance_id: str,
    runtime: Runtime,
) -> dict[str, Any] | None:
    """Contribute claims to a token or a userinfo answer.

    Called by the OIDC plugin each time it builds a JWT access token
    (`kind` "access_token"), an ID token ("id_token") or a userinfo answer
    ("userinfo"), with the claims so far. The claims every implementation
    returns are added, later implementations winning; reserved claims
    (`iss`, `sub`, `aud`, `exp`, `iat`, `nbf`, `jti`, `nonce`, `auth_time`,
    `azp`, `amr`, `acr`, `sid`, `at_hash`, `client_id`, `scope`, `act`, and
    names starting `urn:zitadel:iam:`) are never overwritten: they are
    logged and dropped. Raise `donjon.core.errors.TokenRefused` to refuse
    the token; the client gets OAuth's `access_denied` (403). The `actions`
    plugin runs `preaccesstoken` and `preuserinfo` functions here.

    :param kind: "access_token", "id_token" or "userinfo".
    :param claims: the claims so far; do not change them in place.
    :param user_id: the token's subject.
    :param client_id: the client the token is issued to ("" for userinfo).
    :param instance_id: the instance issuing it.
    :param runtime: the process's runtime.
    :return: a dict of claims to add, or None.
    """


# -- resolution: firstresult ------------------------------------------------------------


@hookspec(firstresult=True)
def resolve_instance(host: str, headers: dict[str, str], runtime: Runtime) -> str | None:
    """Map a request to the id of the instance it addresses.

    Called for every HTTP request outside `/debug/`, before routing. The core
    answers last (`trylast`) from the instance domains; a plugin may answer
    first, for example from a header a trusted proxy sets. firstresult: the
    first implementation that returns something other than None wins; when
    none does, the request gets 404 `instance_not_found`.

    :param host: the request's Host header, lower-cased, without the port.
    :param headers: the request headers, names lower-cased.
    :param runtime: the process's runtime.
    :return: an instance id, or None to let the next implementation decide.
    """


@hookspec(firstresult=True)
def resolve_principal(
    token: str,
    instance_id: str,
    runtime: Runtime,
    credential: Credential,
) -> Principal | None:
    """Say who a token belongs to, for the management API.

    Called for every authenticated management API call with the token of its
    `Authorization: Bearer` header, or of `Authorization: DPoP` (RFC 9449:
    a sender-constrained OAuth access token, with a `DPoP` proof header).
    The core answers last (`trylast`) for personal access tokens, Bearer
    only; the OIDC plugin answers for its access tokens, and checks the
    proof of a DPoP one. firstresult: the first implementation that returns
    something other than None wins; when none does, the call fails
    `unauthenticated` (401). An implementation must only accept tokens
    issued in `instance_id`, and only under the schemes it checks
    (`credential.scheme`). It may raise `ConnectError("unauthenticated",
    ..., headers=...)` to refuse a token it knows, saying why.

    :param token: the token, as sent.
    :param instance_id: the instance the request addresses.
    :param runtime: the process's runtime.
    :param credential: a `donjon.core.api.auth.Credential`: the scheme
        (`bearer` or `dpop`), the token, the call's method, path and
        headers, and its `DPoP` header values.
    :return: a `donjon.core.api.auth.Principal` (the user, its org and
        instance), or None to let the next implementation decide.
    """
