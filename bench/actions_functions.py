"""The latency token functions add: userinfo with and without a `preuserinfo` target, the
token endpoint with and without a `preaccesstoken` one.

A real `donjon start-from-init` on a fresh store (SQLite, then PostgreSQL).
userinfo: a machine user's opaque access token (client credentials, scope
openid), then --rounds sequential `GET /oidc/v1/userinfo` calls over one
keep-alive connection without a function execution, and --rounds with a
`restCall` target bound to `preuserinfo` that answers one claim to append.
token: as many sequential client-credentials grants (client_secret_basic)
of a machine user whose access tokens are JWTs (pushed to the store: the v2
UserService cannot choose the type, as in bench/oidc_tokens.py), without and
with the target bound to `preaccesstoken`. The rounds run in 10 alternating
blocks without and with the functions bound (SetExecution between blocks,
which applies at once), so the machine's other load weighs on both alike. The target is a
minimal HTTP/1.1 keep-alive receiver in this process; donjon reaches it
through its keep-alive connection pool. The difference of the percentiles is
what one function call adds (HTTP round trip, signing, the execution lookup).

    .venv/bin/python bench/actions_functions.py [--rounds 300] [--stores sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
from actions_delivery import Receiver
from harness import Server, command, machine, pg_database, save, stores
from sqlalchemy import select

from donjon.core import ids
from donjon.core.config import load_settings
from donjon.core.identity import users
from donjon.core.instance import list_instances
from donjon.core.runtime import build_runtime

ACTIONS = "/zitadel.action.v2.ActionService"
BLOCKS = 10  # alternating blocks of rounds without and with the functions bound
WARM_UP = 5  # requests per block not measured
CLAIMS = json.dumps({"appendClaims": [{"key": "department", "value": "it"}]}).encode()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
    }


async def ok(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
    r = await client.post(path, json=body)
    if r.status_code != 200:
        raise SystemExit(f"{path}: {r.status_code} {r.text}")
    return r.json()


async def userinfo_samples(
    client: httpx.AsyncClient, token: str, rounds: int, claim: bool
) -> list[float]:
    headers = {"authorization": f"Bearer {token}"}
    samples = []
    for i in range(WARM_UP + rounds):
        started = time.perf_counter()
        r = await client.get("/oidc/v1/userinfo", headers=headers)
        if i >= WARM_UP:
            samples.append(time.perf_counter() - started)
        if r.status_code != 200 or ("department" in r.json()) != claim:
            raise SystemExit(f"userinfo: {r.status_code} {r.text}")
    return samples


async def token_samples(
    client: httpx.AsyncClient, secret: str, rounds: int, claim: bool
) -> list[float]:
    form = {"grant_type": "client_credentials", "scope": "openid"}
    samples = []
    for i in range(WARM_UP + rounds):
        started = time.perf_counter()
        r = await client.post("/oauth/v2/token", data=form, auth=("fn-jwt", secret))
        if i >= WARM_UP:
            samples.append(time.perf_counter() - started)
        if r.status_code != 200:
            raise SystemExit(f"token: {r.status_code} {r.text}")
        claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
        if ("department" in claims) != claim:
            raise SystemExit(f"token: unexpected claims {claims}")
    return samples


async def jwt_machine(server: Server) -> None:
    """Push the machine user `fn-jwt` with JWT access tokens (the v2 API cannot choose)."""
    env = {k: v for k, v in server.env.items() if k.startswith("DONJON_")}
    runtime = build_runtime(load_settings([], env=env))
    try:
        async with runtime.db.read() as conn:
            instance_id = str((await list_instances(conn))[0]["id"])
            org_id = (
                await conn.execute(
                    select(users.users_table.c.resource_owner).where(
                        users.users_table.c.username == "bench-sa"
                    )
                )
            ).scalar_one()
        await runtime.store.push(
            users.new_user(
                instance_id,
                ids.new_id(),
                org_id,
                [users.MachineAdded(username="fn-jwt", name="fn-jwt", access_token_type="jwt")],
                "fn-jwt",
            ),
            creator="bench",
        )
    finally:
        await runtime.close()


async def run_store(kind: str, rounds: int, folder: Path) -> dict[str, Any]:
    receiver = Receiver(CLAIMS)
    await receiver.start()
    extra = {"DONJON_ACTIONS_HTTP_ALLOWEDHOSTS": "127.0.0.1"}
    try:
        if kind == "sqlite":
            return await measure(
                Server({"DONJON_DATABASE_SQLITE_PATH": str(folder / "b.db")}, folder, extra),
                receiver,
                rounds,
            )
        async with pg_database("fn") as dsn:
            return await measure(
                Server({"DONJON_DATABASE_POSTGRES_DSN": dsn}, folder, extra), receiver, rounds
            )
    finally:
        receiver.stop()


async def measure(server: Server, receiver: Receiver, rounds: int) -> dict[str, Any]:
    with server:
        async with httpx.AsyncClient(
            base_url=server.url, headers=server.headers, timeout=30
        ) as api:
            user = await ok(
                api,
                "/zitadel.user.v2.UserService/CreateUser",
                {"username": "fn-bench", "machine": {"name": "fn-bench"}},
            )
            secret = (
                await ok(api, "/zitadel.user.v2.UserService/AddSecret", {"userId": user["id"]})
            )["clientSecret"]
            r = await api.post(
                "/oauth/v2/token",
                data={"grant_type": "client_credentials", "scope": "openid"},
                auth=("fn-bench", secret),
                headers={"authorization": ""},
            )
            token = r.json()["access_token"]
            await jwt_machine(server)
            jwt_id = (
                await ok(
                    api,
                    "/zitadel.user.v2.UserService/ListUsers",
                    {"queries": [{"userNameQuery": {"userName": "fn-jwt"}}]},
                )
            )["result"][0]["userId"]
            jwt_secret = (
                await ok(api, "/zitadel.user.v2.UserService/AddSecret", {"userId": jwt_id})
            )["clientSecret"]
            target = await ok(
                api,
                f"{ACTIONS}/CreateTarget",
                {
                    "name": "claims",
                    "endpoint": f"http://127.0.0.1:{receiver.port}/claims",
                    "timeout": "5s",
                    "restCall": {"interruptOnError": True},
                },
            )

            async def bind(function: str, bound: bool) -> None:
                await ok(
                    api,
                    f"{ACTIONS}/SetExecution",
                    {
                        "condition": {"function": {"name": function}},
                        "targets": [target["id"]] if bound else [],
                    },
                )

            # Blocks with and without the function alternate, so that the load of the
            # machine (other processes) weighs on both alike.
            got: dict[str, list[float]] = {k: [] for k in ("ui", "ui_fn", "tk", "tk_fn")}
            per_block = max(1, rounds // BLOCKS)
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                for _ in range(BLOCKS):
                    for bound in (False, True):
                        await bind("preuserinfo", bound)
                        await bind("preaccesstoken", bound)
                        suffix = "_fn" if bound else ""
                        got["ui" + suffix] += await userinfo_samples(
                            client, token, per_block, bound
                        )
                        got["tk" + suffix] += await token_samples(
                            client, jwt_secret, per_block, bound
                        )
    without, with_function = percentiles(got["ui"]), percentiles(got["ui_fn"])
    token_without, token_with = percentiles(got["tk"]), percentiles(got["tk_fn"])
    return {
        "userinfo": without,
        "userinfo_with_preuserinfo": with_function,
        "added_p50_ms": round(with_function["p50_ms"] - without["p50_ms"], 2),
        "added_p99_ms": round(with_function["p99_ms"] - without["p99_ms"], 2),
        "token_jwt": token_without,
        "token_jwt_with_preaccesstoken": token_with,
        "token_added_p50_ms": round(token_with["p50_ms"] - token_without["p50_ms"], 2),
        "token_added_p99_ms": round(token_with["p99_ms"] - token_without["p99_ms"], 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--stores", type=stores, default=stores("sqlite,postgres"))
    args = parser.parse_args()
    result: dict[str, Any] = {
        "command": command(),
        "machine": await machine(),
        "rounds": args.rounds,
    }
    for kind in args.stores:
        with tempfile.TemporaryDirectory() as tmp:
            result[kind] = await run_store(kind, args.rounds, Path(tmp))
        print(kind, json.dumps(result[kind]))
    print("saved", save("actions_functions", result))


if __name__ == "__main__":
    asyncio.run(main())
