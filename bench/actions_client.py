"""What the outbound client costs per call: a bare keep-alive POST through httpx's
AsyncClient (what actions used) and through httpcore's pool (what `TargetClient` uses).

Both send the same small JSON body, with the same headers, to the minimal
keep-alive receiver of bench/actions_delivery.py in this process (its share
of the time is the same on both sides), --rounds times each after a warm-up,
in alternating blocks. The ratio httpcore ÷ httpx of the p50s is the figure.

    .venv/bin/python bench/actions_client.py [--rounds 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import httpcore
import httpx
from actions_delivery import Receiver
from harness import command, machine, save

BLOCKS = 8
BODY = json.dumps({"function": "function/preuserinfo", "userinfo": {"sub": "1" * 18}}).encode()


async def via_httpx(client: httpx.AsyncClient, url: str, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        async with client.stream(
            "POST",
            url,
            content=BODY,
            headers={"content-type": "application/json"},
            timeout=httpx.Timeout(5.0),
        ) as response:
            async for _chunk in response.aiter_bytes():
                pass
        samples.append(time.perf_counter() - started)
    return samples


async def via_httpcore(pool: httpcore.AsyncConnectionPool, url: str, n: int) -> list[float]:
    headers = [
        (b"host", url.split("/")[2].encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ]
    timeout = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        async with pool.stream(
            "POST", url, headers=headers, content=BODY, extensions={"timeout": timeout}
        ) as response:
            async for _chunk in response.aiter_stream():
                pass
        samples.append(time.perf_counter() - started)
    return samples


def p50_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4000)
    args = parser.parse_args()
    receiver = Receiver(b'{"appendClaims":[]}')
    await receiver.start()
    url = f"http://127.0.0.1:{receiver.port}/claims"
    got: dict[str, list[float]] = {"httpx": [], "httpcore": []}
    per_block = max(1, args.rounds // BLOCKS)
    try:
        async with (
            httpx.AsyncClient(trust_env=False, follow_redirects=False) as client,
            httpcore.AsyncConnectionPool(max_connections=100) as pool,
        ):
            await via_httpx(client, url, 50)  # warm-up
            await via_httpcore(pool, url, 50)
            for _ in range(BLOCKS):
                got["httpx"] += await via_httpx(client, url, per_block)
                got["httpcore"] += await via_httpcore(pool, url, per_block)
    finally:
        receiver.stop()
    result: dict[str, Any] = {
        "command": command(),
        "machine": await machine(),
        "rounds": args.rounds,
        "httpx_p50_ms": p50_ms(got["httpx"]),
        "httpcore_p50_ms": p50_ms(got["httpcore"]),
    }
    result["httpcore_over_httpx"] = round(result["httpcore_p50_ms"] / result["httpx_p50_ms"], 2)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}))
    print("saved", save("actions_client", result))


if __name__ == "__main__":
    asyncio.run(main())
