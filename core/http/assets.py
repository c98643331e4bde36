"""The assets endpoint (ZITADEL's `/assets/v1/…`): branding images, uploaded and served.

Upload (multipart form, field `file`; Bearer token as for the management API;
`iam.policy.write` for the instance, `policy.write` on the org the
`x-zitadel-orgid` header or the caller's org names):

    POST   /assets/v1/instance/policy/label/{logo|logo/dark|icon|icon/dark}
    POST   /assets/v1/org/policy/label/{logo|logo/dark|icon|icon/dark}
    DELETE the same paths: the label policy shows no such image any more

The image is checked (`label_assets.check_image`: size, content type, the
bytes match it) and stored with the label policy naming it, at that level
(an org's first upload copies the instance's branding). Errors are Connect
error JSON (413 for a file over the limit, 415 for a type that is no image).

Serve (public, no token: the login pages show them):

    GET /assets/v1/{owner}/policy/label/{logo|logo-dark|icon|icon-dark}-{assetId}

An asset id is its content's hash, so a response never changes: it is sent
with `Cache-Control: public, max-age=31536000, immutable` and an `ETag`
(`If-None-Match` gets 304), `X-Content-Type-Options: nosniff` and a CSP that
runs nothing (SVG).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath

from donjon.core.api.auth import authenticate
from donjon.core.api.connect import Call, ConnectError, details, error_response, map_error
from donjon.core.api.settings_service import _target
from donjon.core.identity import label_assets, policies
from donjon.core.identity.policy_events import LABEL, InstancePolicies, OrgPolicies, set_policy
from donjon.core.identity.policy_types import LabelPolicy

PREFIX = "/assets/v1"
#: The path's image name -> the label policy's field.
IMAGES = {"logo": "logo", "logo/dark": "logo_dark", "icon": "icon", "icon/dark": "icon_dark"}
SERVED_NAMES = {"logo", "logo-dark", "icon", "icon-dark"}
IMMUTABLE = "public, max-age=31536000, immutable"
ASSET_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


async def _call(request: Request[Any, Any, Any], runtime: Any, instance_id: str) -> Call:
    headers = {k.lower(): v for k, v in request.headers.items()}
    principal = await authenticate(runtime, instance_id, headers)
    return Call(
        runtime, instance_id, principal, headers.get("x-zitadel-orgid", "").strip(), headers
    )


async def _level(call: Call, level: str) -> tuple[InstancePolicies | OrgPolicies, LabelPolicy]:
    """The stored policies of the level (after the permission check) and its branding now."""
    if level == "instance":
        await call.require("iam.policy.write")
        state: InstancePolicies | OrgPolicies = await InstancePolicies.load(
            call.runtime.store, call.instance_id, call.instance_id
        )
        org_id = None
    else:
        from donjon.core.api.settings_service import RequestContext

        org_id = await _target(
            call, RequestContext(org_id=call.context_org() or None), explicit=True
        )
        assert org_id is not None
        await call.require("policy.write", org_id=org_id)
        state = await OrgPolicies.load(call.runtime.store, call.instance_id, org_id)
        if not state.exists:
            raise ConnectError("not_found", "organization not found")
    async with call.runtime.db.read() as conn:
        current = await policies.label_policy(conn, call.instance_id, org_id, call.runtime.settings)
    return state, current


def _image(level: str, image: str) -> str:
    if level not in ("instance", "org"):
        raise ConnectError("not_found", f"no assets of {level!r} (instance, org)")
    field_name = IMAGES.get(image)
    if field_name is None:
        raise ConnectError("not_found", f"no image {image!r} (logo, logo/dark, icon, icon/dark)")
    return field_name


def _error(exc: Exception) -> Response[bytes]:
    error = map_error(exc)
    response = error_response(error)
    if error.code == "resource_exhausted":
        response.status_code = 413
    elif error.code == "invalid_argument" and "content type" in error.message:
        response.status_code = 415
    return response


async def _file(request: Request[Any, Any, Any]) -> tuple[str, bytes]:
    length = request.headers.get("content-length", "")
    # The form's own fields and boundaries take a little room besides the file.
    if length.isdigit() and int(length) > label_assets.MAX_ASSET_BYTES + 16 * 1024:
        raise ConnectError(
            "resource_exhausted", f"file: at most {label_assets.MAX_ASSET_BYTES // 1024} KiB"
        )
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ConnectError("invalid_argument", "send the image as multipart/form-data, field file")
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ConnectError("invalid_argument", "file: is required (multipart field file)")
    data = await upload.read(label_assets.MAX_ASSET_BYTES + 1)
    return upload.content_type or "", data


@post(f"{PREFIX}/{{level:str}}/policy/label/{{image:path}}", status_code=200)
async def upload_image(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Any],
    instance_id: NamedDependency[Any],
    level: FromPath[str],
    image: FromPath[str],
) -> Response[Any]:
    try:
        field_name = _image(level, image.strip("/"))
        call = await _call(request, runtime, instance_id)
        state, current = await _level(call, level)
        content_type, data = await _file(request)
        stored = await label_assets.upload_label_image(
            runtime, state, current, field_name, content_type, data, call.user_id
        )
    except Exception as exc:  # every error leaves as a Connect error body
        return _error(exc)
    async with runtime.db.read() as conn:
        now = await policies.label_policy(
            conn, instance_id, state.id if level == "org" else None, runtime.settings
        )
    asset_id = getattr(now, field_name)
    from donjon.core.api.settings_branding import asset_path

    body = {
        "details": details(stored) if stored else details(owner=state.id),
        "assetId": asset_id,
        "url": asset_path(state.id, field_name, asset_id),
    }
    return Response(body, status_code=200)


@delete(f"{PREFIX}/{{level:str}}/policy/label/{{image:path}}", status_code=200)
async def remove_image(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Any],
    instance_id: NamedDependency[Any],
    level: FromPath[str],
    image: FromPath[str],
) -> Response[Any]:
    try:
        field_name = _image(level, image.strip("/"))
        call = await _call(request, runtime, instance_id)
        state, current = await _level(call, level)
        push = set_policy(state, LABEL, dataclasses.replace(current, **{field_name: ""}))
        stored = await runtime.store.push(push, creator=call.user_id) if push else []
    except Exception as exc:
        return _error(exc)
    return Response({"details": details(stored) if stored else details(owner=state.id)})


# The same parameters as the upload's path: Litestar's router shares the segments.
@get(f"{PREFIX}/{{level:str}}/policy/label/{{image:path}}")
async def serve_image(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Any],
    instance_id: NamedDependency[Any],
    level: FromPath[str],
    image: FromPath[str],
) -> Response[Any]:
    """`level` is the owner (org or instance id), `image` `{name}-{assetId}`."""
    kind, _, asset_id = image.strip("/").rpartition("-")
    found = None
    if kind in SERVED_NAMES and asset_id:
        async with runtime.db.read() as conn:
            found = await label_assets.get_asset(conn, instance_id, asset_id[:64])
    if found is None:
        return error_response(ConnectError("not_found", "no such asset"))
    etag = f'"{found["sha256"]}"'
    headers = {
        "Cache-Control": IMMUTABLE,
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": ASSET_CSP,
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(b"", status_code=304, headers=headers)
    return Response(
        bytes(found["data"]), status_code=200, media_type=found["content_type"], headers=headers
    )


ROUTES = [upload_image, remove_image, serve_image]
