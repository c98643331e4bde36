"""Organization domains: added verified by default, or proven over HTTP when the policy asks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.anyio


async def new_org(api: Api, name: str = "Domains") -> str:
    return (await api.ok("org", "AddOrganization", {"name": name}))["organizationId"]


async def domains(api: Api, org_id: str) -> dict[str, dict[str, object]]:
    data = await api.ok("org", "ListOrganizationDomains", {"organizationId": org_id})
    assert data["pagination"]["totalResult"] == str(len(data["domains"]))
    return {d["domain"]: d for d in data["domains"]}


async def test_added_domains_are_verified_when_the_policy_asks_no_proof(api: Api) -> None:
    org_id = await new_org(api)
    await api.ok(
        "org", "AddOrganizationDomain", {"organizationId": org_id, "domain": "Shop.Example"}
    )
    listed = await domains(api, org_id)
    assert listed["shop.example"]["isVerified"] is True
    assert listed["shop.example"]["isPrimary"] is False
    assert listed["domains.localhost"]["isPrimary"] is True
    # Verified domains are unique in the instance.
    other = await new_org(api, "Other")
    status, code, _ = await api.error(
        "org", "AddOrganizationDomain", {"organizationId": other, "domain": "shop.example"}
    )
    assert (status, code) == (409, "already_exists")
    await api.ok(
        "org", "DeleteOrganizationDomain", {"organizationId": org_id, "domain": "shop.example"}
    )
    await api.ok(
        "org", "AddOrganizationDomain", {"organizationId": other, "domain": "shop.example"}
    )


async def test_bad_domains_and_the_primary_domain_are_refused(api: Api) -> None:
    org_id = await new_org(api)
    before = await api.runtime.store.max_position()
    for bad in ("", "not a domain", "http://x.example", "-x.example"):
        status, code, message = await api.error(
            "org", "AddOrganizationDomain", {"organizationId": org_id, "domain": bad}
        )
        assert (status, code) == (400, "invalid_argument") and message.startswith("domain:")
    status, code, _ = await api.error(
        "org", "DeleteOrganizationDomain", {"organizationId": org_id, "domain": "domains.localhost"}
    )
    assert (status, code) == (400, "failed_precondition")
    status, code, _ = await api.error(
        "org", "AddOrganizationDomain", {"organizationId": "404", "domain": "x.example"}
    )
    assert (status, code) == (404, "not_found")
    assert await api.runtime.store.max_position() == before


class Challenge(BaseHTTPRequestHandler):
    tokens: set[str] = set()

    def do_GET(self) -> None:  # noqa: N802
        token = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/.well-known/zitadel-challenge/") and token in self.tokens:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(token.encode())
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def challenge_server() -> Iterator[type[Challenge]]:
    """An HTTP server on localhost:80, as the domain `localhost` would serve its challenge."""
    server = ThreadingHTTPServer(("127.0.0.1", 80), Challenge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Challenge
    finally:
        server.shutdown()
        server.server_close()
        Challenge.tokens.clear()


async def test_with_validation_required_a_domain_is_verified_by_its_http_challenge(
    api: Api, challenge_server: type[Challenge]
) -> None:
    await api.ok(
        "settings",
        "SetDomainSettings",
        {"ctx": {"instance": True}, "requireOrgDomainVerification": True},
    )
    org_id = await new_org(api)
    body = {"organizationId": org_id, "domain": "localhost"}
    await api.ok("org", "AddOrganizationDomain", body)
    assert (await domains(api, org_id))["localhost"]["isVerified"] is False
    status, code, _ = await api.error("org", "VerifyOrganizationDomain", body)
    assert code == "failed_precondition"  # no token asked for yet
    generated = await api.ok(
        "org",
        "GenerateOrganizationDomainValidation",
        {**body, "type": "DOMAIN_VALIDATION_TYPE_HTTP"},
    )
    assert (
        generated["url"] == f"https://localhost/.well-known/zitadel-challenge/{generated['token']}"
    )
    # Not published yet: refused, and the failure is in the audit trail.
    status, code, message = await api.error("org", "VerifyOrganizationDomain", body)
    assert code == "failed_precondition" and "not verified" in message
    challenge_server.tokens.add(generated["token"])
    await api.ok("org", "VerifyOrganizationDomain", body)
    listed = await domains(api, org_id)
    assert listed["localhost"]["isVerified"] is True
    assert listed["localhost"]["validationType"] == "DOMAIN_VALIDATION_TYPE_HTTP"
