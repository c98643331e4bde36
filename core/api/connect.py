"""The Connect JSON transport of the management API, as ZITADEL's SDKs speak it.

Every method is `POST /<proto package>.<Service>/<Method>` with a JSON body
in protobuf-JSON form (camelCase names, int64 as strings, RFC 3339
timestamps) and answers 200 with the response message, or an error status
with a Connect error body `{"code": "not_found", "message": "..."}`.

A service module declares its methods on a `Service`::

    users = Service("zitadel.user.v2.UserService")

    @users.rpc("GetUserByID", request=GetUserByIDRequest)
    async def get_user_by_id(call: Call, req: GetUserByIDRequest) -> dict:
        await call.require("user.read", org_id=...)
        ...

Requests are `msgspec.Struct`s with `rename="camel"` (see `Message`): the
body is decoded and type-checked before the handler runs, and a wrong type or
a missing required field is `invalid_argument` naming the field
(`profile.givenName`). Handlers raise `ConnectError` for everything else a
client did wrong; the errors of the event store (a taken unique value, a
concurrent change) are mapped here. Anything unexpected is `internal`
(logged with the request id), never a stack trace.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler

from donjon.core.errors import ConcurrencyError, UniqueConstraintError
from donjon.core.events import StoredEvent
from donjon.core.identity.writemodel import WriteModel
from donjon.core.logs import request_id
from donjon.core.projections.inline import ProjectionVersionError

if TYPE_CHECKING:
    from donjon.core.api.auth import Principal
    from donjon.core.identity.members import Membership
    from donjon.core.runtime import Runtime

log = logging.getLogger(__name__)

# Connect's codes and their HTTP statuses (connectrpc.com/docs/protocol#error-codes).
HTTP_STATUS = {
    "canceled": 499,
    "unknown": 500,
    "invalid_argument": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 400,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
    "unauthenticated": 401,
}

MAX_BODY = 1 << 20  # 1 MiB: no management request is near it


class ConnectError(Exception):
    """A failed call: a Connect code and a message saying what to fix."""

    def __init__(self, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        if code not in HTTP_STATUS:
            raise ValueError(f"not a Connect code: {code}")
        super().__init__(message)
        self.code = code
        self.message = message
        #: Response headers the error needs (`WWW-Authenticate` of a DPoP refusal).
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]


def invalid(field_name: str, problem: str) -> ConnectError:
    """`invalid_argument` naming the field: `invalid("profile.givenName", "must not be empty")`."""
    return ConnectError("invalid_argument", f"{field_name}: {problem}")


def not_found(what: str) -> ConnectError:
    return ConnectError("not_found", f"{what} not found")


class Message(msgspec.Struct, rename="camel", omit_defaults=True):
    """Base of request messages: camelCase JSON names, unknown fields ignored."""


M = TypeVar("M", bound=Message)


# -- protobuf-JSON helpers --------------------------------------------------------------


def timestamp(value: datetime | None) -> str | None:
    """A datetime as protobuf JSON writes a Timestamp: RFC 3339 in UTC with `Z`."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_timestamp(field_name: str, value: str | None) -> datetime | None:
    """An RFC 3339 string from a request, or `invalid_argument` naming the field."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid(field_name, f"expected an RFC 3339 timestamp, got {value!r}") from None
    if parsed.tzinfo is None:
        raise invalid(field_name, "the timestamp needs a time zone (such as Z)")
    return parsed.astimezone(UTC)


def details(
    events: Iterable[StoredEvent] | None = None,
    *,
    sequence: int | None = None,
    changed_at: datetime | None = None,
    owner: str | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The `details` object of a response: from the events a call pushed, or given parts.

    `sequence` is the aggregate's sequence after the change, as ZITADEL reports it.
    """
    if events is not None:
        last = list(events)[-1:]
        if last:
            sequence = sequence if sequence is not None else last[0].sequence
            changed_at = changed_at or last[0].created_at
            owner = owner if owner is not None else last[0].owner
    out: dict[str, Any] = {}
    if sequence is not None:
        out["sequence"] = str(sequence)
    if changed_at is not None:
        out["changeDate"] = timestamp(changed_at)
    if owner is not None:
        out["resourceOwner"] = owner
    if created_at is not None:
        out["creationDate"] = timestamp(created_at)
    return out


def list_details(total: int, *, processed_sequence: int | None = None) -> dict[str, Any]:
    """The `details` of a list response (ListDetails): the total and when it was read."""
    out: dict[str, Any] = {"totalResult": str(total), "timestamp": timestamp(datetime.now(UTC))}
    if processed_sequence is not None:
        out["processedSequence"] = str(processed_sequence)
    return out


def int64(field_name: str, value: str | int | None, *, default: int = 0, minimum: int = 0) -> int:
    """An int64 field, which protobuf JSON sends as a string (numbers are accepted too)."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise invalid(field_name, f"expected an integer, got {value!r}") from None
    if number < minimum:
        raise invalid(field_name, f"must be at least {minimum}")
    return number


# -- the call context --------------------------------------------------------------------


@dataclass
class Call:
    """What a handler knows of the call besides its message.

    `principal` is who made the call (None on the few methods that need no
    authentication); `org_id` is the organization the `x-zitadel-orgid`
    header chose (empty when absent): methods that act "in an organization"
    use it, else the caller's own organization.
    """

    runtime: Runtime
    instance_id: str
    principal: Principal | None
    org_id: str
    headers: dict[str, str] = field(default_factory=dict)
    # The caller's memberships, read once per call by `auth`.
    memberships: list[Membership] | None = field(default=None, repr=False)

    @property
    def user_id(self) -> str:
        return self.principal.user_id if self.principal else ""

    def context_org(self) -> str:
        """The organization the call acts in: the x-zitadel-orgid header, else the caller's."""
        if self.org_id:
            return self.org_id
        return self.principal.org_id if self.principal else ""

    async def require(
        self, permission: str, *, org_id: str | None = None, project_id: str | None = None
    ) -> None:
        """Raise permission_denied unless the caller holds `permission` (see `auth`).

        Instance-level memberships grant everywhere in the instance; an org
        membership grants on that org's resources (`org_id`); a project
        membership grants on that project (`project_id`).
        """
        from donjon.core.api.auth import check_permission

        await check_permission(self, permission, org_id=org_id, project_id=project_id)

    async def allowed(
        self, permission: str, *, org_id: str | None = None, project_id: str | None = None
    ) -> bool:
        try:
            await self.require(permission, org_id=org_id, project_id=project_id)
        except ConnectError:
            return False
        return True

    async def visible_orgs(self, permission: str) -> set[str] | None:
        """The orgs on which the caller holds `permission`; None means all of the instance."""
        from donjon.core.api.auth import orgs_with_permission

        return await orgs_with_permission(self, permission)


Handler = Callable[[Call, Any], Awaitable[dict[str, Any]]]


W = TypeVar("W", bound=WriteModel)


async def load_existing(
    call: Call, model: type[W], aggregate_id: str, field_name: str, what: str
) -> W:
    """`model`'s state of `aggregate_id`: invalid_argument naming `field_name` when the id
    is empty, not_found (`what`) when the aggregate does not exist."""
    if not aggregate_id:
        raise invalid(field_name, "is required")
    state = await model.load(call.runtime.store, call.instance_id, aggregate_id)
    if not state.exists:  # type: ignore[attr-defined]
        raise not_found(what)
    return state


@dataclass(frozen=True)
class Rpc:
    service: str
    method: str
    handler: Handler
    request: type[Message]
    # False only for the methods anyone may call (none today but the health of the API).
    authenticated: bool = True
    summary: str = ""
    # The response message, for the OpenAPI document only (handlers return dicts).
    response: type[Any] | None = None

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.method}"


class Service:
    """The methods of one Connect service, and their routes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.rpcs: dict[str, Rpc] = {}

    def rpc(
        self,
        method: str,
        *,
        request: type[M],
        authenticated: bool = True,
        response: type[Any] | None = None,
    ) -> Callable[[Callable[[Call, M], Awaitable[dict[str, Any]]]], Handler]:
        """Declare a method. `response` (a msgspec Struct, optional) documents the
        answer's shape in the OpenAPI document; it does not change what is sent."""

        def register(fn: Callable[[Call, M], Awaitable[dict[str, Any]]]) -> Handler:
            if method in self.rpcs:
                raise ValueError(f"{self.name}/{method} declared twice")
            summary = (fn.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            self.rpcs[method] = Rpc(
                self.name,
                method,
                fn,  # type: ignore[arg-type]
                request,
                authenticated,
                summary,
                response,
            )
            return fn  # type: ignore[return-value]

        return register

    def routes(self) -> list[HTTPRouteHandler]:
        return [route_for(r) for r in self.rpcs.values()]


_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def decode(request_type: type[M], body: bytes) -> M:
    """The request message, or invalid_argument naming the field at fault."""
    if not body.strip():
        body = b"{}"
    try:
        return msgspec.json.decode(body, type=request_type)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _AT.search(text)
        problem = _AT.sub("", text)
        if match:
            where = match.group("path").lstrip(".").replace("[", ".").replace("]", "")
            if "missing required field" in problem:
                name = problem.split("`")[1]
                where = f"{where}.{name}" if where else name
                problem = "is required"
            return _raise(invalid(where or "body", _lower(problem)))
        if "missing required field" in problem:
            return _raise(invalid(problem.split("`")[1], "is required"))
        return _raise(ConnectError("invalid_argument", _lower(problem)))
    except msgspec.DecodeError as exc:
        return _raise(ConnectError("invalid_argument", f"the body is not valid JSON: {exc}"))
    except RecursionError:
        return _raise(ConnectError("invalid_argument", "the body is nested too deeply"))


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]


def _raise(exc: ConnectError) -> Any:
    raise exc


def error_response(exc: ConnectError) -> Response[bytes]:
    body = msgspec.json.encode({"code": exc.code, "message": exc.message})
    return Response(
        body, status_code=exc.status, media_type="application/json", headers=exc.headers
    )


def map_error(exc: Exception) -> ConnectError:
    """The Connect error of an exception a handler let through."""
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, UniqueConstraintError):
        return ConnectError("already_exists", str(exc))
    if isinstance(exc, ConcurrencyError):
        return ConnectError("aborted", f"changed concurrently, retry: {exc}")
    if isinstance(exc, ProjectionVersionError):
        return ConnectError("unavailable", f"this donjon process is outdated: {exc}")
    rid = request_id.get()
    log.error("unhandled error in a management call", exc_info=exc)
    return ConnectError("internal", f"internal error (request id {rid})")


def _as_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one (decode reports why)."""
    try:
        value = msgspec.json.decode(body or b"{}")
    except (msgspec.DecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


async def customize_request(call: Call, method: str, request: dict[str, Any]) -> dict[str, Any]:
    """The request after every `customize_api_request` implementation, in turn, had its say."""
    from donjon.core.plugins import chain

    hook = call.runtime.pm.hook.customize_api_request
    return await chain(hook, "request", method=method, request=request, call=call)  # type: ignore[no-any-return]


async def customize_response(
    call: Call, method: str, request: dict[str, Any], response: dict[str, Any]
) -> dict[str, Any]:
    """The response after every `customize_api_response` implementation had its say."""
    from donjon.core.plugins import chain

    hook = call.runtime.pm.hook.customize_api_response
    return await chain(  # type: ignore[no-any-return]
        hook, "response", method=method, request=request, response=response, call=call
    )


def route_for(rpc: Rpc) -> HTTPRouteHandler:
    from donjon.core.api.auth import authenticate

    # `Any` for the app's dependencies: Litestar resolves annotations at
    # registration, and the runtime's module must not be imported here.
    async def endpoint(
        request: Request[Any, Any, Any],
        runtime: NamedDependency[Any],
        instance_id: NamedDependency[Any],
    ) -> Response[bytes]:
        try:
            body = await request.body()
            if len(body) > MAX_BODY:
                raise ConnectError("resource_exhausted", "the request body is over 1 MiB")
            headers = {k.lower(): v for k, v in request.headers.items()}
            principal = await authenticate(
                runtime,
                instance_id,
                headers,
                rpc.authenticated,
                method=request.method,
                path=request.url.path,
                proofs=tuple(request.headers.getall("dpop", [])),
            )
            content_type = headers.get("content-type", "application/json")
            if not content_type.startswith("application/json"):
                raise ConnectError(
                    "invalid_argument",
                    f"send JSON (content-type application/json), not {content_type}",
                )
            call = Call(
                runtime=runtime,
                instance_id=instance_id,
                principal=principal,
                org_id=headers.get("x-zitadel-orgid", "").strip(),
                headers=headers,
            )
            request_json: dict[str, Any] | None = None
            if runtime.pm.hook.customize_api_request.get_hookimpls():
                request_json = _as_object(body)
                if request_json is not None:
                    customized = await customize_request(call, rpc.path, request_json)
                    if customized is not request_json:
                        request_json, body = customized, msgspec.json.encode(customized)
            message = decode(rpc.request, body)
            result = await rpc.handler(call, message)
            if runtime.pm.hook.customize_api_response.get_hookimpls():
                if request_json is None:
                    request_json = _as_object(body) or {}
                result = await customize_response(call, rpc.path, request_json, result)
        except Exception as exc:  # every error leaves as a Connect error body
            return error_response(map_error(exc))
        return Response(msgspec.json.encode(result), status_code=200, media_type="application/json")

    endpoint.__name__ = f"{rpc.service}.{rpc.method}".replace(".", "_")
    return post(
        rpc.path,
        name=f"{rpc.service}/{rpc.method}",
        include_in_schema=False,
        status_code=200,
    )(endpoint)
