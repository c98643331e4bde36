"""OIDC tokens against panva's oidc-provider: client credentials, introspection, logins.

In one run, on this machine, with one load generator (autocannon, keep-alive
connections, see bench/load.mjs) for every server:

  oidc-provider  panva's certified OpenID Provider for node (npm, installed
                 by this script under bench/.data/node), configured by
                 bench/oidc_provider_server.mjs: a client_credentials client,
                 ES256 JWT access tokens for one resource server and opaque
                 ones for another, introspection enabled, in-memory storage;
  donjon         `donjon start-from-init` on a fresh store (SQLite, then
                 PostgreSQL), with a machine user whose access tokens are
                 JWTs (ES256, the default web key), one with opaque tokens,
                 both with client secrets, and an API app that introspects.

For each, at 1 and --clients concurrent clients:

  minimal        the server's own trivial route (donjon /debug/healthz,
                 oidc-provider GET /healthz on the same Koa stack): what the
                 HTTP stack alone serves here;
  token          client-credentials tokens/s (client_secret_basic), JWT and
                 opaque access tokens;
  introspect     introspection/s of an active token by a resource server
                 (oidc-provider cannot introspect its JWT access tokens: they
                 are not stored, and it answers unsupported_token_type);
  login          (donjon) password logins/s end to end through the
                 SessionService (CreateSession with user and password checks),
                 against the bound set by the password hash: argon2id
                 verifications/s at the configured cost, in this process's
                 threads at the same concurrency.

Both servers run side by side for the whole run; each donjon figure is
measured right after the oidc-provider figure it is compared with (and the
logins right after their argon2 bound), so that the two sides of a ratio are
taken under the same load of the machine. Every answer is checked once
before the load (a JWT with typ at+jwt, an active introspection, a session),
and a run with any non-2xx answer fails. The load generator shares the two
cores with the servers: compare ratios from the same run more than absolute
figures; the server's CPU time per answer (from /proc) is reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from argon2 import PasswordHasher, Type
from cryptography.hazmat.primitives.asymmetric import ec
from harness import DATA, Server, command, free_port, machine, pg_database, save, stores
from jwt.algorithms import ECAlgorithm
from sqlalchemy import select

from donjon.core import ids
from donjon.core.config import load_settings
from donjon.core.identity import users
from donjon.core.instance import list_instances
from donjon.core.runtime import build_runtime

HERE = Path(__file__).resolve().parent
NODE = DATA / "node"
NODE_PACKAGES = ("oidc-provider@9", "autocannon@8")
FORM = "application/x-www-form-urlencoded"
PASSWORD = "Bench-Passw0rd!"
LOADS = (
    "minimal",
    "token_jwt",
    "token_opaque",
    "introspect_jwt",
    "introspect_opaque",
    "login",
)


# -- the load generator -------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """One kind of request, sent again and again."""

    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    #: Bodies sent instead of `body`, one per connection (round robin).
    bodies: tuple[str, ...] = ()

    def httpx(self) -> httpx.Response:
        return httpx.request(
            self.method,
            self.url,
            headers=self.headers,
            content=self.bodies[0] if self.bodies else self.body,
            timeout=60,
        )


def install_node_packages() -> Path:
    """oidc-provider and autocannon in bench/.data/node (once), the node scripts beside."""
    if not shutil.which("node") or not shutil.which("npm"):
        raise SystemExit("node and npm are needed (Debian: apt-get install nodejs npm)")
    NODE.mkdir(parents=True, exist_ok=True)
    manifest = NODE / "package.json"
    if not manifest.exists():
        manifest.write_text('{"name": "donjon-bench-node", "private": true, "type": "module"}\n')
    if not all((NODE / "node_modules" / p.rsplit("@", 1)[0]).is_dir() for p in NODE_PACKAGES):
        subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", *NODE_PACKAGES],
            cwd=NODE,
            check=True,
            timeout=600,
        )
    for script in ("load.mjs", "oidc_provider_server.mjs"):
        shutil.copy(HERE / script, NODE / script)
    return NODE


def package_version(name: str) -> str:
    return str(json.loads((NODE / "node_modules" / name / "package.json").read_text())["version"])


def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(load: Load, connections: int, duration: float, pid: int) -> dict[str, Any]:
    """Requests/s, latency and server CPU per request of `load` from `connections`
    keep-alive clients (`pid`: the server's process)."""
    cpu_before = cpu_seconds(pid)
    spec = {
        "url": load.url,
        "method": load.method,
        "headers": load.headers,
        "body": load.body,
        "bodies": list(load.bodies),
        "connections": connections,
        "duration": duration,
    }
    done = subprocess.run(
        ["node", str(NODE / "load.mjs"), json.dumps(spec)],
        cwd=NODE,
        capture_output=True,
        text=True,
        timeout=duration + 120,
        check=True,
    )
    cpu = cpu_seconds(pid) - cpu_before
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if out["non2xx"] or out["errors"] or out["timeouts"]:
        raise SystemExit(
            f"{load.method} {load.url}: {out['non2xx']} non-2xx answers, "
            f"{out['errors']} errors, {out['timeouts']} timeouts under load"
        )
    return {
        "per_s": round(out["2xx"] / out["duration"], 1),
        "p50_ms": out["latency"]["p50"],
        "p99_ms": out["latency"]["p99"],
        # The server's CPU per answer: what the machine's other load moves least.
        "server_cpu_ms": round(1000 * cpu / out["2xx"], 3) if out["2xx"] else None,
        "load_avg": round(os.getloadavg()[0], 2),
    }


Results = dict[str, dict[int, dict[str, Any]]]


@dataclass(frozen=True)
class Target:
    """A server under test: its process (for its CPU time) and what to send it."""

    pid: int
    loads: dict[str, Load]


def measure(target: Target, name: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """`name`'s load from `n` clients: a warm-up, then the measured run."""
    run_load(target.loads[name], n, args.warmup, target.pid)
    result = run_load(target.loads[name], n, args.duration, target.pid)
    print(f"  {name:<20} {n:>3} clients: {result}", flush=True)
    return result


def side_by_side(
    donjon: Target | None, provider: Target | None, args: argparse.Namespace
) -> tuple[Results, Results, dict[int, float]]:
    """donjon's figures, oidc-provider's counterpart of each (keyed by donjon's
    name) and the argon2 bound, each measured right before the donjon figure it
    is compared with: the machine's load moves from minute to minute, so a
    ratio is only as good as its two figures are close in time."""
    ours: Results = {}
    theirs: Results = {}
    bound: dict[int, float] = {}
    for name in args.loads:
        counterpart = COUNTERPARTS.get(name)
        for n in args.clients:
            if provider is not None and counterpart in provider.loads:
                print("oidc-provider", end="", flush=True)
                theirs.setdefault(name, {})[n] = measure(provider, counterpart, n, args)
            if donjon is None:
                continue
            if name == "login":
                bound[n] = argon2_verifications_per_s(n, args.duration)
                print(f"argon2 bound {n:>3} threads: {bound[n]:.1f} verifications/s")
            print("donjon       ", end="", flush=True)
            ours.setdefault(name, {})[n] = measure(donjon, name, n, args)
    return ours, theirs, bound


# -- checks of single answers -------------------------------------------------------------


def expect_token(load: Load, jwt_expected: bool) -> str:
    r = load.httpx()
    if r.status_code != 200:
        raise SystemExit(f"token request failed: {r.status_code} {r.text}")
    token = str(r.json()["access_token"])
    is_jwt = token.count(".") == 2
    if is_jwt != jwt_expected:
        raise SystemExit(f"expected a {'JWT' if jwt_expected else 'opaque'} token: {token}")
    if is_jwt and jwt.get_unverified_header(token).get("typ", "").lower() != "at+jwt":
        raise SystemExit(f"not an RFC 9068 access token: {jwt.get_unverified_header(token)}")
    return token


def expect_active(load: Load) -> None:
    r = load.httpx()
    if r.status_code != 200 or r.json().get("active") is not True:
        raise SystemExit(f"introspection did not find the token active: {r.status_code} {r.text}")


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


# -- oidc-provider --------------------------------------------------------------------------


@contextmanager
def oidc_provider(folder: Path) -> Iterator[tuple[int, dict[str, Load]]]:
    """panva's oidc-provider on a free port: its process id and the loads to send it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(private))
    jwk.update(kid="bench", alg="ES256", use="sig")
    machine_secret, introspector_secret = os.urandom(16).hex(), os.urandom(16).hex()
    resources = {"jwt": "urn:bench:jwt", "opaque": "urn:bench:opaque"}
    config = {
        "port": port,
        "issuer": url,
        "machine": {"id": "bench-machine", "secret": machine_secret},
        "introspector": {"id": "bench-api", "secret": introspector_secret},
        "resources": resources,
        "scope": "api:read",
        "jwk": jwk,
    }
    log = folder / "oidc-provider.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["node", str(NODE / "oidc_provider_server.mjs"), json.dumps(config)],
            cwd=NODE,
            stdout=out,
            stderr=out,
        )
    try:
        wait_until_serving(f"{url}/healthz", process, log)
        machine_auth = {
            "authorization": basic("bench-machine", machine_secret),
            "content-type": FORM,
        }
        api_auth = {"authorization": basic("bench-api", introspector_secret), "content-type": FORM}

        def token(kind: str) -> Load:
            body = f"grant_type=client_credentials&scope=api:read&resource={resources[kind]}"
            return Load(f"{url}/token", "POST", machine_auth, body)

        expect_token(token("jwt"), jwt_expected=True)
        opaque = expect_token(token("opaque"), jwt_expected=False)
        introspect = Load(f"{url}/token/introspection", "POST", api_auth, f"token={opaque}")
        expect_active(introspect)
        yield (
            process.pid,
            {
                "minimal": Load(f"{url}/healthz"),
                "token_jwt": token("jwt"),
                "token_opaque": token("opaque"),
                "introspect_opaque": introspect,
            },
        )
    finally:
        process.terminate()
        process.wait(30)


def wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url}: not serving after 60 s:\n{log.read_text()}")
        time.sleep(0.1)


# -- donjon ---------------------------------------------------------------------------------


async def connect(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
    r = await client.post(path, json=body)
    if r.status_code != 200:
        raise SystemExit(f"{path}: {r.status_code} {r.text}")
    return r.json()


async def donjon_loads(server: Server, people_count: int) -> dict[str, Load]:
    """The machine users, the API app and the people the loads use; the loads."""
    for key, value in server.env.items():
        if key.startswith("DONJON_DATABASE_") or key == "DONJON_MASTERKEY":
            os.environ[key] = value
    runtime = build_runtime(load_settings([]))
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
        # The v2 UserService cannot choose the access token type (ZITADEL's v1
        # management API can): the JWT machine user is pushed to the store.
        jwt_machine = ids.new_id()
        await runtime.store.push(
            users.new_user(
                instance_id,
                jwt_machine,
                org_id,
                [users.MachineAdded(username="bench-jwt", name="JWT", access_token_type="jwt")],
                "bench-jwt",
            ),
            creator="bench",
        )
    finally:
        await runtime.close()

    # Host: localhost (the instance's domain), over 127.0.0.1 (node may try ::1 first).
    base = f"http://127.0.0.1:{server.port}"
    host = {"host": f"localhost:{server.port}"}
    async with httpx.AsyncClient(
        base_url=base, headers={**host, **server.headers}, timeout=60
    ) as c:
        project = (
            await connect(c, "/zitadel.project.v2.ProjectService/CreateProject", {"name": "bench"})
        )["projectId"]
        api = (
            await connect(
                c,
                "/zitadel.application.v2.ApplicationService/CreateApplication",
                {"projectId": project, "name": "resource", "apiConfiguration": {}},
            )
        )["apiConfiguration"]
        user_service = "/zitadel.user.v2.UserService"
        opaque_machine = (
            await connect(
                c,
                f"{user_service}/CreateUser",
                {"username": "bench-opaque", "machine": {"name": "Opaque"}},
            )
        )["id"]
        secrets = {
            name: (await connect(c, f"{user_service}/AddSecret", {"userId": user_id}))[
                "clientSecret"
            ]
            for name, user_id in (("bench-jwt", jwt_machine), ("bench-opaque", opaque_machine))
        }
        # One person per connection by default: many users logging in, each
        # from one device (--login-people 1: one user from every connection).
        people = [
            (
                await connect(
                    c,
                    f"{user_service}/AddHumanUser",
                    {
                        "username": f"bench-person-{i}",
                        "profile": {"givenName": "Bench", "familyName": f"Person {i}"},
                        "email": {"email": f"bench-person-{i}@bench.example", "isVerified": True},
                        "password": {"password": PASSWORD},
                    },
                )
            )["userId"]
            for i in range(people_count)
        ]

    scope = f"urn:zitadel:iam:org:project:id:{project}:aud"

    def token(username: str) -> Load:
        headers = {
            **host,
            "authorization": basic(username, secrets[username]),
            "content-type": FORM,
        }
        body = f"grant_type=client_credentials&scope={scope}"
        return Load(f"{base}/oauth/v2/token", "POST", headers, body)

    def introspect(token: str) -> Load:
        headers = {
            **host,
            "authorization": basic(api["clientId"], api["clientSecret"]),
            "content-type": FORM,
        }
        return Load(f"{base}/oauth/v2/introspect", "POST", headers, f"token={token}")

    jwt_token = expect_token(token("bench-jwt"), jwt_expected=True)
    opaque_token = expect_token(token("bench-opaque"), jwt_expected=False)
    login = Load(
        f"{base}/zitadel.session.v2.SessionService/CreateSession",
        "POST",
        {**host, **server.headers, "content-type": "application/json"},
        bodies=tuple(
            json.dumps({"checks": {"user": {"userId": p}, "password": {"password": PASSWORD}}})
            for p in people
        ),
    )
    loads = {
        "minimal": Load(f"{base}/debug/healthz", headers=host),
        "token_jwt": token("bench-jwt"),
        "token_opaque": token("bench-opaque"),
        "introspect_jwt": introspect(jwt_token),
        "introspect_opaque": introspect(opaque_token),
        "login": login,
    }
    expect_active(loads["introspect_jwt"])
    expect_active(loads["introspect_opaque"])
    r = login.httpx()
    if r.status_code != 200 or not r.json().get("sessionToken"):
        raise SystemExit(f"CreateSession failed: {r.status_code} {r.text}")
    return loads


# -- the argon2 bound -----------------------------------------------------------------------


def argon2_verifications_per_s(threads: int, duration: float) -> float:
    """argon2id verifications/s at the configured cost, from `threads` threads at once
    (argon2-cffi releases the GIL, as donjon's PasswordHasher relies on)."""
    cost = load_settings([]).SystemDefaults.PasswordHasher.Hasher
    hasher = PasswordHasher(
        time_cost=cost.Time, memory_cost=cost.Memory, parallelism=cost.Threads, type=Type.ID
    )
    encoded = hasher.hash(PASSWORD)
    counts = [0] * threads
    stop = time.perf_counter() + duration

    def work(i: int) -> None:
        while time.perf_counter() < stop:
            hasher.verify(encoded, PASSWORD)
            counts[i] += 1

    start = time.perf_counter()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / (time.perf_counter() - start)


# -- the run --------------------------------------------------------------------------------


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


#: donjon's measurement and the oidc-provider one it is compared with (oidc-provider
#: cannot introspect its JWT access tokens: both donjon kinds face its opaque ones).
COUNTERPARTS = {
    "minimal": "minimal",
    "token_jwt": "token_jwt",
    "token_opaque": "token_opaque",
    "introspect_jwt": "introspect_opaque",
    "introspect_opaque": "introspect_opaque",
}


def summarise(
    ours: Results, theirs: Results, bound: dict[int, float], clients: list[int]
) -> dict[int, dict[str, Any]]:
    """The ratios the targets are about, for whatever this run measured (`theirs` is
    keyed by the donjon measurement each oidc-provider figure was paired with)."""

    def rate(results: Results, name: str, n: int) -> float:
        return float(results[name][n]["per_s"]) if n in results.get(name, {}) else 0.0

    out: dict[int, dict[str, Any]] = {}
    for n in clients:
        entry: dict[str, Any] = {
            "vs_oidc_provider": {},
            "donjon_of_minimal": {},
            "oidc_provider_of_minimal": {},
        }
        for name, counterpart in COUNTERPARTS.items():
            if name == "minimal":
                continue
            mine, other = rate(ours, name, n), rate(theirs, name, n)
            if mine and other:
                entry["vs_oidc_provider"][name] = ratio(mine, other)
            if mine and rate(ours, "minimal", n):
                entry["donjon_of_minimal"][name] = ratio(mine, rate(ours, "minimal", n))
            if other and rate(theirs, "minimal", n):
                entry["oidc_provider_of_minimal"][counterpart] = ratio(
                    other, rate(theirs, "minimal", n)
                )
        if rate(ours, "login", n) and n in bound:
            entry["argon2_verifications_per_s"] = round(bound[n], 1)
            entry["logins_of_argon2_bound"] = ratio(rate(ours, "login", n), bound[n])
        out[n] = entry
    return out


@asynccontextmanager
async def donjon_server(store: str, folder: Path) -> AsyncIterator[Server]:
    """donjon on a fresh store: a SQLite file in `folder`, or a new PostgreSQL database."""
    if store == "sqlite":
        with Server({"DONJON_DATABASE_SQLITE_PATH": str(folder / "donjon.db")}, folder) as server:
            yield server
        return
    async with pg_database("oidc_tokens") as dsn:
        with Server({"DONJON_DATABASE_POSTGRES_DSN": dsn}, folder) as server:
            yield server


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", default="sqlite,postgres", type=stores)
    parser.add_argument(
        "--clients",
        default="1,16",
        type=lambda v: [int(x) for x in v.split(",")],
        help="concurrent keep-alive clients, comma-separated",
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2, help="seconds before each")
    parser.add_argument(
        "--loads",
        default=",".join(LOADS),
        type=lambda v: [x for x in v.split(",") if x],
        help=f"what to measure, comma-separated (default: all of {','.join(LOADS)})",
    )
    parser.add_argument(
        "--servers",
        default="oidc-provider,donjon",
        type=lambda v: [x for x in v.split(",") if x],
        help="oidc-provider, donjon or both",
    )
    parser.add_argument(
        "--login-people",
        type=int,
        default=0,
        help="people the login load logs in, connection i the (i mod N)-th (default: one per"
        " connection; 1: every connection logs in the same person at once)",
    )
    parser.add_argument(
        "--argon2",
        metavar="MEMORY_KIB,TIME,THREADS",
        help="the password hash cost for the login run and its bound (default: donjon's"
        " configured one, SystemDefaults.PasswordHasher.Hasher)",
    )
    args = parser.parse_args()
    if args.argon2:
        # The donjon server inherits them; this process's bound reads them too.
        memory, passes, lanes = args.argon2.split(",")
        prefix = "DONJON_SYSTEMDEFAULTS_PASSWORDHASHER_HASHER_"
        os.environ.update(
            {f"{prefix}MEMORY": memory, f"{prefix}TIME": passes, f"{prefix}THREADS": lanes}
        )
    unknown = set(args.loads) - set(LOADS) | set(args.servers) - {"oidc-provider", "donjon"}
    if unknown:
        raise SystemExit(f"unknown --loads or --servers: {', '.join(sorted(unknown))}")
    install_node_packages()
    report: dict[str, Any] = {
        "command": command(),
        "machine": await machine(),
        "node": node_version(),
        "oidc_provider": package_version("oidc-provider"),
        "autocannon": package_version("autocannon"),
        "argon2": vars(load_settings([]).SystemDefaults.PasswordHasher.Hasher),
        "runs": [],
    }
    DATA.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        provider: Target | None = None
        if "oidc-provider" in args.servers:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=DATA)))
            provider = Target(*stack.enter_context(oidc_provider(folder)))
        if "donjon" not in args.servers:
            _, theirs, _ = side_by_side(None, provider, args)
            report["runs"].append({"store": None, "oidc_provider": theirs})
        for store in args.stores if "donjon" in args.servers else []:
            print(f"donjon on {store}", flush=True)
            with tempfile.TemporaryDirectory(dir=DATA) as tmp:
                async with donjon_server(store, Path(tmp)) as server:
                    loads = await donjon_loads(server, args.login_people or max(args.clients))
                    ours, theirs, bound = side_by_side(
                        Target(server.process.pid, loads), provider, args
                    )
            summary = summarise(ours, theirs, bound, args.clients)
            report["runs"].append(
                {
                    "store": store,
                    "donjon": ours,
                    "oidc_provider": theirs,
                    "argon2_verifications_per_s": bound,
                    "summary": summary,
                }
            )
            print(json.dumps({"store": store, "summary": summary}, indent=2), flush=True)
    print(f"saved {save('oidc_tokens', report)}")


if __name__ == "__main__":
    asyncio.run(main())
