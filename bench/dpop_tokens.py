"""What DPoP (RFC 9449) costs at the token endpoint: client-credentials tokens/s with
a DPoP proof per request, as a fraction of the same requests without one.

For each store, a `donjon start-from-init` on a fresh database, a machine user
with a client secret, then rounds of --seconds each, alternating

  bearer   POST /oauth/v2/token (client_credentials, client_secret_basic);
  dpop     the same with a fresh ES256 proof in the `DPoP` header: the server
           checks it (signature, htm/htu, iat, jti recorded in the replay
           table) and binds the token (`cnf.jkt`, `token_type: DPoP`).

Proofs are made before each round (the client's signing is not measured),
one per request, each with its own jti. The same client (httpx, --clients
concurrent keep-alive connections) sends both kinds, in alternating rounds
so that both sides of the ratio see the same load of the machine. Every
answer must be 200 with the expected token_type, or the run fails.

    .venv/bin/python bench/dpop_tokens.py --stores sqlite,postgres
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from harness import DATA, Server, command, machine, pg_database, save, stores
from jwt.algorithms import ECAlgorithm

TOKEN_PATH = "/oauth/v2/token"


def proofs(key: Any, htu: str, count: int) -> list[str]:
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    now = int(time.time())
    header = {"typ": "dpop+jwt", "jwk": jwk}
    return [
        jwt.encode(
            {"htm": "POST", "htu": htu, "iat": now, "jti": uuid.uuid4().hex},
            key,
            algorithm="ES256",
            headers=header,
        )
        for _ in range(count)
    ]


async def round_of(
    url: str, auth: tuple[str, str], clients: int, seconds: float, pool: list[str] | None
) -> tuple[int, float]:
    """(answers, seconds) of one round; every answer checked."""
    expected = "DPoP" if pool is not None else "Bearer"
    form = {"grant_type": "client_credentials", "scope": "openid"}
    done = 0
    deadline = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            headers = {"dpop": pool.pop()} if pool is not None else None
            r = await client.post(TOKEN_PATH, data=form, auth=auth, headers=headers)
            if r.status_code != 200 or r.json()["token_type"] != expected:
                raise SystemExit(f"unexpected answer {r.status_code}: {r.text}")
            done += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        started = time.monotonic()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        return done, time.monotonic() - started


@asynccontextmanager
async def donjon_server(store: str, folder: Path) -> AsyncIterator[Server]:
    """donjon on a fresh store: a SQLite file in `folder`, or a new PostgreSQL database."""
    if store == "sqlite":
        with Server({"DONJON_DATABASE_SQLITE_PATH": str(folder / "donjon.db")}, folder) as server:
            yield server
        return
    async with pg_database("dpop_tokens") as dsn:
        with Server({"DONJON_DATABASE_POSTGRES_DSN": dsn}, folder) as server:
            yield server


async def client_secret(server: Server) -> tuple[str, str]:
    """A machine user with a client secret, made through the UserService."""
    users = f"{server.url}/zitadel.user.v2.UserService"
    async with httpx.AsyncClient(headers=server.headers, timeout=30) as api:
        body = {"username": "bench-client", "machine": {"name": "bench"}}
        made = (await api.post(f"{users}/CreateUser", json=body)).json()
        added = (await api.post(f"{users}/AddSecret", json={"userId": made["id"]})).json()
    return "bench-client", added["clientSecret"]


async def one_store(store: str, args: argparse.Namespace) -> dict[str, Any]:
    DATA.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=DATA) as folder:
        async with donjon_server(store, Path(folder)) as server:
            auth = await client_secret(server)
            htu = server.url + TOKEN_PATH
            key = ec.generate_private_key(ec.SECP256R1())
            budget = int(args.seconds * args.max_rate)
            rates: dict[str, list[float]] = {"bearer": [], "dpop": []}
            # A warm-up of each kind, not counted.
            await round_of(server.url, auth, args.clients, 1, None)
            await round_of(server.url, auth, args.clients, 1, proofs(key, htu, budget))
            for _ in range(args.rounds):
                n, s = await round_of(server.url, auth, args.clients, args.seconds, None)
                rates["bearer"].append(n / s)
                pool = proofs(key, htu, budget)
                n, s = await round_of(server.url, auth, args.clients, args.seconds, pool)
                rates["dpop"].append(n / s)
    bearer, dpop = sum(rates["bearer"]), sum(rates["dpop"])
    return {
        "store": store,
        "bearer_tokens_per_s": [round(r, 1) for r in rates["bearer"]],
        "dpop_tokens_per_s": [round(r, 1) for r in rates["dpop"]],
        "dpop_over_bearer": round(dpop / bearer, 3),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=stores, default=stores("sqlite,postgres"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--max-rate", type=int, default=3000, help="proofs made per second of a round"
    )
    args = parser.parse_args()
    results = [await one_store(store, args) for store in args.stores]
    out = {"command": command(), "machine": await machine(), "results": results}
    for r in results:
        print(
            f"{r['store']:9} bearer {r['bearer_tokens_per_s']} tokens/s, "
            f"dpop {r['dpop_tokens_per_s']} tokens/s, dpop/bearer {r['dpop_over_bearer']}"
        )
    print("saved", save("dpop_tokens", out), file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
