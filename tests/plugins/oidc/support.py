"""Helpers for the OIDC tests: machine users with secrets and keys, apps, OAuth calls.

No tests live here.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from donjon.core import ids
from donjon.core.identity import users
from tests.api.conftest import Api

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
API_SCOPE = "urn:zitadel:iam:org:project:id:zitadel:aud"
TOKEN_URL = "/oauth/v2/token"


@dataclass
class Machine:
    user_id: str
    username: str
    secret: str = ""
    key_id: str = ""
    private_key: str = ""

    def basic(self) -> tuple[str, str]:
        return (self.username, self.secret)


async def machine(
    api: Api,
    username: str,
    *,
    secret: bool = True,
    key: bool = False,
    token_type: str = "bearer",
    org_id: str | None = None,
) -> Machine:
    """A machine user made through the UserService (a JWT-token one pushed directly:
    the v2 API cannot set the access token type), with a secret and/or a key."""
    if token_type == "bearer":
        body: dict[str, Any] = {"username": username, "machine": {"name": username}}
        if org_id:
            body["organizationId"] = org_id
        user_id = (await api.ok("user", "CreateUser", body))["id"]
    else:
        user_id = ids.new_id()
        await api.runtime.store.push(
            users.new_user(
                api.instance_id,
                user_id,
                org_id or api.org_id,
                [users.MachineAdded(username=username, name=username, access_token_type="jwt")],
                username=username,
            ),
            creator=api.admin_id,
        )
    m = Machine(user_id, username)
    if secret:
        m.secret = (await api.ok("user", "AddSecret", {"userId": user_id}))["clientSecret"]
    if key:
        added = await api.ok("user", "AddKey", {"userId": user_id})
        content = json.loads(base64.b64decode(added["keyContent"]))
        m.key_id, m.private_key = content["keyId"], content["key"]
    return m


def issuer(api: Api) -> str:
    """The issuer the `api` client's requests (Host: localhost) see."""
    port = api.runtime.settings.ExternalPort
    return "http://localhost" + ("" if port == 80 else f":{port}")


def assertion(
    m: Machine,
    *,
    aud: Any,
    lifetime: int = 300,
    alg: str = "RS256",
    key: Any = None,
    jti: str | None = "auto",
    iss: str | None = None,
    sub: str | None = None,
    **claims: Any,
) -> str:
    """A JWT signed with the machine user's key (iss = sub = its user id by default)."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": iss or m.user_id,
        "sub": sub or m.user_id,
        "aud": aud,
        "iat": now,
        "exp": now + lifetime,
        **claims,
    }
    if jti == "auto":
        body["jti"] = uuid.uuid4().hex
    elif jti is not None:
        body["jti"] = jti
    return jwt.encode(
        body, key if key is not None else m.private_key, algorithm=alg, headers={"kid": m.key_id}
    )


async def token(
    api: Api, form: dict[str, str], *, auth: tuple[str, str] | None = None, host: str | None = None
) -> httpx.Response:
    headers = {"host": host} if host else None
    return await api.client.post(TOKEN_URL, data=form, auth=auth, headers=headers)


async def client_credentials(
    api: Api, m: Machine, scope: str = f"openid {API_SCOPE}"
) -> dict[str, Any]:
    r = await token(api, {"grant_type": "client_credentials", "scope": scope}, auth=m.basic())
    assert r.status_code == 200, r.text
    return r.json()


async def jwt_profile(
    api: Api, m: Machine, scope: str = f"openid {API_SCOPE}", **kw: Any
) -> httpx.Response:
    kw.setdefault("aud", issuer(api))
    form = {"grant_type": JWT_BEARER, "scope": scope, "assertion": assertion(m, **kw)}
    return await token(api, form)


async def api_app(api: Api, project_id: str, name: str = "resource-server") -> tuple[str, str]:
    """(client id, secret) of a new API app (basic auth) in `project_id`."""
    created = await api.ok(
        "application",
        "CreateApplication",
        {"projectId": project_id, "name": name, "apiConfiguration": {}},
    )
    return created["apiConfiguration"]["clientId"], created["apiConfiguration"]["clientSecret"]


async def project(api: Api, name: str = "Shop") -> str:
    return (await api.ok("project", "CreateProject", {"name": name}))["projectId"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hs256_with_public_key(m: Machine, public_pem: str, claims: dict[str, Any]) -> str:
    """An HS256 JWS whose HMAC secret is the machine key's public PEM (algorithm confusion).

    Made by hand: JWT libraries refuse to build one."""
    import hashlib
    import hmac

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": m.key_id}).encode())
        + "."
        + part(json.dumps(claims).encode())
    )
    mac = hmac.new(public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(mac)}"


async def second_instance(api: Api, tmp_path: Any, domain: str = "b.example") -> Api:
    """Another instance (host `domain`) with a machine administrator, as an Api client."""
    from donjon.core.instances_admin import HumanAdmin, MachineAdmin, NewInstance, create_instance

    created = await create_instance(
        api.runtime,
        NewInstance(
            name="tenant b",
            domains=(domain,),
            org_name="b",
            human=HumanAdmin(username="b-admin", password="Password1!"),
            machine=MachineAdmin(username="b-sa", pat_path=tmp_path / "b.pat"),
        ),
    )
    client = httpx.AsyncClient(transport=api.client._transport, base_url=f"http://{domain}")
    return Api(
        client,
        (tmp_path / "b.pat").read_text().strip(),
        api.runtime,
        created.instance_id,
        created.org_id,
        created.machine_admin_id,
    )
