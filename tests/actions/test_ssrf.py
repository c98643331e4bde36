"""The SSRF guard: only public addresses unless Actions.HTTP.AllowedHosts lists them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from donjon.actions import ssrf
from donjon.actions.outbound import TargetClient, TargetError
from donjon.actions.targets import Target
from tests.actions.receiver import Receiver

pytestmark = pytest.mark.anyio


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def target(endpoint: str) -> Target:
    return Target("1", "t", endpoint, "webhook", 2.0, False, "sealed", None, None)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "localhost",
    ],
)
async def test_non_public_addresses_are_refused(host: str) -> None:
    with pytest.raises(ssrf.BlockedAddress, match="not a public address"):
        await ssrf.resolve_checked(host, 80, [])


async def test_public_addresses_pass() -> None:
    assert await ssrf.resolve_checked("93.184.215.14", 443, []) == "93.184.215.14"


async def test_allowed_hosts_by_name_address_or_network() -> None:
    assert await ssrf.resolve_checked("localhost", 80, ["LOCALHOST"]) in ("127.0.0.1", "::1")
    assert await ssrf.resolve_checked("10.1.2.3", 80, ["10.1.2.3"]) == "10.1.2.3"
    assert await ssrf.resolve_checked("10.1.2.3", 80, ["10.1.0.0/16"]) == "10.1.2.3"
    with pytest.raises(ssrf.BlockedAddress):
        await ssrf.resolve_checked("10.2.0.1", 80, ["10.1.0.0/16"])


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(ssrf.BlockedAddress, match="does not resolve"):
        await ssrf.resolve_checked("no-such-host.invalid", 80, [])


async def test_a_request_to_loopback_is_refused_before_connecting(receiver: Receiver) -> None:
    client = TargetClient(None, [])
    try:
        for endpoint in (receiver.url, f"http://localhost:{receiver.port}/hook"):
            with pytest.raises(TargetError, match="not a public address"):
                await client.post(target(endpoint), b"{}")
    finally:
        await client.close()
    assert receiver.requests == []
