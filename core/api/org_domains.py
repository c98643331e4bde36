"""OrganizationService, domain methods: add, list, delete, and prove control of a domain.

When the domain policy's `ValidateOrgDomains` is off (the default), an added
domain is verified at once. When it is on, the domain stays unverified until
its owner proves control: `GenerateOrganizationDomainValidation` returns a
token, to be served at `https://<domain>/.well-known/zitadel-challenge/<token>`
(HTTP; plain http is tried when https does not answer) or published as a DNS
TXT record `_zitadel-challenge.<domain>` (DNS); `VerifyOrganizationDomain`
checks it. Only verified domains are unique in the instance and make login
names.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from typing import Any

from donjon.core.api.connect import Call, ConnectError, Message, invalid, not_found, timestamp
from donjon.core.api.org_service import org_state, service
from donjon.core.api.queries import (
    PaginationRequest,
    ordering,
    pagination,
    paging,
    read_page,
    text_condition,
)
from donjon.core.events import AggregateChanges
from donjon.core.identity import orgs, policies, secrets

VALIDATION_TYPES = {"DOMAIN_VALIDATION_TYPE_HTTP": "http", "DOMAIN_VALIDATION_TYPE_DNS": "dns"}
TYPE_NAMES = {v: k for k, v in VALIDATION_TYPES.items()}
CHALLENGE_PATH = "/.well-known/zitadel-challenge/"
DNS_PREFIX = "_zitadel-challenge."
FETCH_TIMEOUT = 5.0


class DomainRequest(Message):
    organization_id: str = ""
    domain: str = ""


class GenerateValidationRequest(Message):
    organization_id: str = ""
    domain: str = ""
    type: str = ""


class DomainQuery(Message):
    domain: str = ""
    method: str | None = None


class DomainSearchFilter(Message):
    domain_filter: DomainQuery | None = None


class ListOrganizationDomainsRequest(Message):
    organization_id: str = ""
    pagination: PaginationRequest | None = None
    filters: list[DomainSearchFilter] = []
    sorting_column: str | None = None


def _domain(value: str) -> str:
    try:
        return orgs.check_org_domain(value)
    except ValueError as exc:
        raise invalid("domain", str(exc)) from None


def _unverified_domain(state: orgs.OrgState, value: str) -> str:
    """The org's domain `value` names, still to verify (not_found, failed_precondition)."""
    domain = _domain(value)
    if domain not in state.domains:
        raise not_found("domain")
    if state.domains[domain]:
        raise ConnectError("failed_precondition", f"domain {domain} is already verified")
    return domain


async def _validation_required(call: Call, org_id: str) -> bool:
    async with call.runtime.db.read() as conn:
        policy = await policies.domain_policy(conn, call.instance_id, org_id, call.runtime.settings)
    return bool(policy.validate_org_domains)


@service.rpc("AddOrganizationDomain", request=DomainRequest)
async def add_organization_domain(call: Call, req: DomainRequest) -> dict[str, Any]:
    """Add a domain to an organization (verified at once unless the policy asks for proof)."""
    state = await org_state(call, req.organization_id, permission="org.write")
    domain = _domain(req.domain)
    if domain in state.domains:
        raise ConnectError("already_exists", f"domain {domain} is already on the organization")
    verified = not await _validation_required(call, state.id)
    stored = await call.runtime.store.push(
        orgs.add_domain(state, domain, verified=verified), creator=call.user_id
    )
    return {"creationDate": timestamp(stored[-1].created_at)}


@service.rpc("DeleteOrganizationDomain", request=DomainRequest)
async def delete_organization_domain(call: Call, req: DomainRequest) -> dict[str, Any]:
    """Remove a domain from an organization (never its primary domain)."""
    state = await org_state(call, req.organization_id, permission="org.write")
    domain = _domain(req.domain)
    if domain not in state.domains:
        raise not_found("domain")
    if domain == state.primary_domain:
        raise ConnectError("failed_precondition", "the primary domain cannot be removed")
    stored = await call.runtime.store.push(orgs.remove_domain(state, domain), creator=call.user_id)
    return {"deletionDate": timestamp(stored[-1].created_at)}


@service.rpc("ListOrganizationDomains", request=ListOrganizationDomainsRequest)
async def list_organization_domains(
    call: Call, req: ListOrganizationDomainsRequest
) -> dict[str, Any]:
    """The domains of an organization."""
    state = await org_state(call, req.organization_id, permission="org.read")
    offset, limit, asc = paging(req.pagination, "pagination")
    t = orgs.org_domains_table
    conditions = [t.c.instance_id == call.instance_id, t.c.org_id == state.id]
    for i, f in enumerate(req.filters):
        if f.domain_filter is None:
            raise invalid(f"filters.{i}", "set domainFilter")
        conditions.append(
            text_condition(
                t.c.domain,
                f.domain_filter.domain,
                f.domain_filter.method,
                f"filters.{i}.domainFilter",
            )
        )
    if req.sorting_column not in (
        None,
        "DOMAIN_FIELD_NAME_UNSPECIFIED",
        "DOMAIN_FIELD_NAME_NAME",
        "DOMAIN_FIELD_NAME_CREATION_DATE",
        "DOMAIN_FIELD_NAME_PRIMARY",
        "DOMAIN_FIELD_NAME_VERIFIED",
    ):
        raise invalid("sortingColumn", f"unknown column {req.sorting_column!r}")
    sort = {
        "DOMAIN_FIELD_NAME_NAME": t.c.domain,
        "DOMAIN_FIELD_NAME_PRIMARY": t.c.is_primary,
        "DOMAIN_FIELD_NAME_VERIFIED": t.c.is_verified,
    }.get(req.sorting_column or "", t.c.created_at)
    order = [*ordering(asc, sort), t.c.domain]
    async with call.runtime.db.read() as conn:
        total, rows = await read_page(conn, t, conditions, order, offset, limit)
    return {
        "pagination": pagination(total, limit),
        "domains": [
            {
                "organizationId": r.org_id,
                "domain": r.domain,
                "isVerified": r.is_verified,
                "isPrimary": r.is_primary,
                "validationType": TYPE_NAMES.get(
                    r.validation_type, "DOMAIN_VALIDATION_TYPE_UNSPECIFIED"
                ),
            }
            for r in rows
        ],
    }


@service.rpc("GenerateOrganizationDomainValidation", request=GenerateValidationRequest)
async def generate_validation(call: Call, req: GenerateValidationRequest) -> dict[str, Any]:
    """A token proving control of a domain, and where to publish it."""
    state = await org_state(call, req.organization_id, permission="org.write")
    domain = _unverified_domain(state, req.domain)
    kind = VALIDATION_TYPES.get(req.type)
    if kind is None:
        raise invalid("type", "DOMAIN_VALIDATION_TYPE_HTTP or DOMAIN_VALIDATION_TYPE_DNS")
    token = secrets.new_secret()
    await call.runtime.store.push(
        AggregateChanges(
            state.aggregate(),
            [orgs.OrgDomainVerificationAdded(domain=domain, validation_type=kind, token=token)],
            expected_sequence=state.sequence,
        ),
        creator=call.user_id,
    )
    url = f"https://{domain}{CHALLENGE_PATH}{token}" if kind == "http" else DNS_PREFIX + domain
    return {"token": token, "url": url}


@service.rpc("VerifyOrganizationDomain", request=DomainRequest)
async def verify_organization_domain(call: Call, req: DomainRequest) -> dict[str, Any]:
    """Check the published token; the domain is verified when it is found."""
    state = await org_state(call, req.organization_id, permission="org.write")
    domain = _unverified_domain(state, req.domain)
    challenge = state.challenges.get(domain)
    if challenge is None:
        raise ConnectError(
            "failed_precondition", "ask for a token with GenerateOrganizationDomainValidation first"
        )
    kind, token = challenge
    problem = await (_check_http(domain, token) if kind == "http" else _check_dns(domain, token))
    if problem:
        await call.runtime.store.push(
            AggregateChanges(
                state.aggregate(),
                [orgs.OrgDomainVerificationFailed(domain=domain, reason=problem)],
                expected_sequence=state.sequence,
            ),
            creator=call.user_id,
        )
        raise ConnectError("failed_precondition", f"domain {domain} not verified: {problem}")
    stored = await call.runtime.store.push(orgs.verify_domain(state, domain), creator=call.user_id)
    return {"changeDate": timestamp(stored[-1].created_at)}


def _fetch(url: str) -> str:
    request = urllib.request.Request(url, headers={"User-Agent": "donjon domain verification"})
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:  # noqa: S310
        return response.read(4096).decode(errors="replace")


async def _check_http(domain: str, token: str) -> str:
    """Empty when the token is served over https (or, failing that, http); else why not."""
    problems = []
    for scheme in ("https", "http"):
        url = f"{scheme}://{domain}{CHALLENGE_PATH}{token}"
        try:
            body = await asyncio.to_thread(_fetch, url)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problems.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        if body.strip() == token:
            return ""
        problems.append(f"{url} does not serve the token")
    return "; ".join(problems)


async def _check_dns(domain: str, token: str) -> str:
    import dns.exception
    import dns.resolver

    name = DNS_PREFIX + domain
    try:
        answer = await asyncio.to_thread(dns.resolver.resolve, name, "TXT", lifetime=FETCH_TIMEOUT)
    except (dns.exception.DNSException, OSError) as exc:
        return f"no TXT record {name} ({exc.__class__.__name__})"
    for record in answer:
        if b"".join(record.strings).decode(errors="replace") == token:
            return ""
    return f"the TXT record {name} does not hold the token"
