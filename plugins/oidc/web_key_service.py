"""zitadel.webkey.v2.WebKeyService: an instance's token signing keys, managed by hand.

CreateWebKey makes a key (RSA with `bits` 2048/3072/4096 and `hasher`
SHA256/384/512, ECDSA on P-256/P-384/P-521 — ZITADEL's `ECDSA_CURVE_P512` —
or Ed25519; RSA 2048 with SHA-256 when no configuration is sent, as in
ZITADEL), published in the JWKS at once but signing nothing
(`STATE_INITIAL`). ActivateWebKey makes it the signing key: the previous
one turns `STATE_INACTIVE` and stays published until the tokens it signed
have expired; the instance's algorithm is the active key's from then on.
DeleteWebKey removes any key but the active one. ListWebKeys lists them
all. Permissions: `iam.web_key.write` (create, activate),
`iam.web_key.delete`, `iam.web_key.read`, on the instance. See
`keys.manage` for the rules and `keys.ring` for automatic rotation.
"""

from __future__ import annotations

from typing import Any

from donjon.core.api.connect import (
    Call,
    ConnectError,
    Message,
    Service,
    invalid,
    not_found,
    timestamp,
)
from donjon.plugins.oidc.keys import manage
from donjon.plugins.oidc.keys.events import ACTIVE, INACTIVE, NEXT
from donjon.plugins.oidc.keys.generate import RSA_BITS, rsa_bits_of
from donjon.plugins.oidc.keys.ring import WebKey
from donjon.plugins.oidc.provider import provider_of

service = Service("zitadel.webkey.v2.WebKeyService")

RSA_SIZES = {"RSA_BITS_2048": 2048, "RSA_BITS_3072": 3072, "RSA_BITS_4096": 4096}
RSA_HASHERS = {
    "RSA_HASHER_SHA256": "RS256",
    "RSA_HASHER_SHA384": "RS384",
    "RSA_HASHER_SHA512": "RS512",
}
EC_CURVES = {"ECDSA_CURVE_P256": "ES256", "ECDSA_CURVE_P384": "ES384", "ECDSA_CURVE_P512": "ES512"}
STATES = {NEXT: "STATE_INITIAL", ACTIVE: "STATE_ACTIVE", INACTIVE: "STATE_INACTIVE"}


class RSAConfig(Message):
    bits: str | None = None
    hasher: str | None = None


class ECDSAConfig(Message):
    curve: str | None = None


class CreateWebKeyRequest(Message):
    rsa: RSAConfig | None = None
    ecdsa: ECDSAConfig | None = None
    ed25519: dict[str, Any] | None = None


class WebKeyRequest(Message):
    id: str = ""


class ListWebKeysRequest(Message):
    pass


def _choice(mapping: dict[str, Any], value: str | None, default: str, field_name: str) -> Any:
    """The value of an enum name; UNSPECIFIED or absent is `default`."""
    if value is None or value.endswith("_UNSPECIFIED"):
        value = default
    if value not in mapping:
        raise invalid(field_name, f"unknown value {value!r} (one of {', '.join(mapping)})")
    return mapping[value]


def key_config(req: CreateWebKeyRequest) -> tuple[str, int]:
    """(JWS algorithm, RSA size) of a CreateWebKey request."""
    given = [name for name in ("rsa", "ecdsa", "ed25519") if getattr(req, name) is not None]
    if len(given) > 1:
        raise invalid(given[1], "set only one of rsa, ecdsa, ed25519")
    if not given or given[0] == "rsa":
        rsa = req.rsa or RSAConfig()
        bits = _choice(RSA_SIZES, rsa.bits, "RSA_BITS_2048", "rsa.bits")
        alg = _choice(RSA_HASHERS, rsa.hasher, "RSA_HASHER_SHA256", "rsa.hasher")
        return alg, bits
    if given[0] == "ecdsa":
        assert req.ecdsa is not None
        return _choice(EC_CURVES, req.ecdsa.curve, "ECDSA_CURVE_P256", "ecdsa.curve"), RSA_BITS
    return "EdDSA", RSA_BITS


def _reverse(mapping: dict[str, Any], value: Any) -> str:
    return next(name for name, v in mapping.items() if v == value)


def web_key(key: WebKey) -> dict[str, Any]:
    changes = [t for t in (key.created_at, key.activated_at, key.deactivated_at) if t]
    out: dict[str, Any] = {
        "id": key.id,
        "creationDate": timestamp(key.created_at),
        "changeDate": timestamp(max(changes)),
        "state": STATES.get(key.state, "STATE_UNSPECIFIED"),
    }
    if key.alg.startswith("RS"):
        out["rsa"] = {
            "bits": f"RSA_BITS_{rsa_bits_of(key.public_jwk)}",
            "hasher": _reverse(RSA_HASHERS, key.alg),
        }
    elif key.alg.startswith("ES"):
        out["ecdsa"] = {"curve": _reverse(EC_CURVES, key.alg)}
    else:
        out["ed25519"] = {}
    return out


async def _state(call: Call) -> manage.WebKeysState:
    # The first keys are made on first use; make them before any change by hand.
    await provider_of(call.runtime).keys.keys(call.instance_id)
    return await manage.WebKeysState.load(call.runtime.store, call.instance_id, call.instance_id)


async def _push(call: Call, changes: Any) -> Any:
    stored = await call.runtime.store.push(changes, creator=call.user_id)
    await provider_of(call.runtime).keys.refresh(call.instance_id)
    return stored[-1].created_at


def _refused(exc: Exception) -> ConnectError:
    if isinstance(exc, manage.WebKeyNotFound):
        return not_found("web key")
    return ConnectError("failed_precondition", str(exc))


@service.rpc("CreateWebKey", request=CreateWebKeyRequest)
async def create_web_key(call: Call, req: CreateWebKeyRequest) -> dict[str, Any]:
    """Make a web key; it is published at once and signs nothing until activated."""
    await call.require("iam.web_key.write")
    alg, bits = key_config(req)
    state = await _state(call)
    added = await provider_of(call.runtime).keys.new_key(alg, bits)
    created = await _push(call, manage.create(state, added))
    return {"id": added.key_id, "creationDate": timestamp(created)}


@service.rpc("ActivateWebKey", request=WebKeyRequest)
async def activate_web_key(call: Call, req: WebKeyRequest) -> dict[str, Any]:
    """Sign with this key from now on (publish it for a JWKS cache lifetime first)."""
    await call.require("iam.web_key.write")
    if not req.id:
        raise invalid("id", "is required")
    state = await _state(call)
    try:
        changes = manage.activate(state, req.id)
    except (manage.WebKeyNotFound, manage.WebKeyPrecondition) as exc:
        raise _refused(exc) from None
    if changes is None:  # already active: its own last change
        keys = await provider_of(call.runtime).keys.refresh(call.instance_id)
        return {"changeDate": next(web_key(k)["changeDate"] for k in keys if k.id == req.id)}
    return {"changeDate": timestamp(await _push(call, changes))}


@service.rpc("DeleteWebKey", request=WebKeyRequest)
async def delete_web_key(call: Call, req: WebKeyRequest) -> dict[str, Any]:
    """Remove a web key that is not the active one; it leaves the JWKS at once."""
    await call.require("iam.web_key.delete")
    if not req.id:
        raise invalid("id", "is required")
    state = await _state(call)
    try:
        changes = manage.remove(state, req.id)
    except (manage.WebKeyNotFound, manage.WebKeyPrecondition) as exc:
        raise _refused(exc) from None
    return {"deletionDate": timestamp(await _push(call, changes))}


@service.rpc("ListWebKeys", request=ListWebKeysRequest)
async def list_web_keys(call: Call, req: ListWebKeysRequest) -> dict[str, Any]:
    """The instance's web keys (never their private halves)."""
    await call.require("iam.web_key.read")
    keys = await provider_of(call.runtime).keys.refresh(call.instance_id)
    return {"webKeys": [web_key(k) for k in keys]}
