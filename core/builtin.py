"""The core plugin: the instance and identity model, setup records, the management API.

It is registered like any other plugin (name `core`, essential: it cannot be
disabled).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from donjon.core import hookimpl, instance
from donjon.core.events import Event
from donjon.core.identity import (
    app_events,
    app_keys,
    apps,
    authorizations,
    label_assets,
    members,
    orgs,
    policy_events,
    projects,
    session_checks,
    sessions,
    user_keys,
    user_metadata,
    user_projection,
    users,
)
from donjon.core.projections.base import Projection
from donjon.core.setup import migrations

if TYPE_CHECKING:
    from donjon.core.api.auth import Credential, Principal
    from donjon.core.api.connect import Service
    from donjon.core.runtime import Runtime


@hookimpl
def register_event_types() -> list[type[Event]]:
    return [
        *instance.EVENT_TYPES,
        *migrations.EVENT_TYPES,
        *orgs.EVENT_TYPES,
        *users.EVENT_TYPES,
        *user_keys.EVENT_TYPES,
        *user_metadata.EVENT_TYPES,
        *members.EVENT_TYPES,
        *policy_events.EVENT_TYPES,
        *label_assets.EVENT_TYPES,
        *authorizations.EVENT_TYPES,
        *projects.EVENT_TYPES,
        *app_events.EVENT_TYPES,
        *app_keys.EVENT_TYPES,
        *sessions.EVENT_TYPES,
    ]


@hookimpl
def register_projections() -> list[Projection]:
    return [
        instance.InstancesProjection(),
        instance.InstanceTrustedDomainsProjection(),
        orgs.OrgsProjection(),
        user_projection.UsersProjection(),
        user_keys.MachineKeysProjection(),
        user_metadata.UserMetadataProjection(),
        members.MembersProjection(),
        policy_events.PoliciesProjection(),
        label_assets.AssetsProjection(),
        authorizations.AuthorizationsProjection(),
        projects.ProjectsProjection(),
        apps.AppsProjection(),
        app_keys.AppKeysProjection(),
        sessions.SessionsProjection(),
    ]


@hookimpl
def register_api_services() -> list[Service]:
    from donjon.core.api import (
        application_keys,
        application_service,
        authorization_service,
        event_service,
        instance_service,
        internal_permission_service,
        org_domains,
        org_service,
        project_service,
        session_service,
        settings_service,
        user_service,
    )

    # org_domains adds its methods to the OrganizationService.
    assert org_domains.service is org_service.service
    # application_keys adds its methods to the ApplicationService.
    assert application_keys.service is application_service.service
    return [
        org_service.service,
        user_service.service,
        project_service.service,
        application_service.service,
        authorization_service.service,
        settings_service.service,
        instance_service.service,
        internal_permission_service.service,
        event_service.service,
        session_service.service,
    ]


@hookimpl
def register_routes() -> list[Any]:
    from donjon.core.http.assets import ROUTES

    return list(ROUTES)


@hookimpl
def register_session_checks() -> list[session_checks.SessionCheck]:
    return list(session_checks.CORE_CHECKS)


@hookimpl(trylast=True)
def resolve_instance(host: str, runtime: Runtime) -> Awaitable[str | None]:
    """The instance one of whose domains is the request's host (asked last)."""
    return runtime.instances.by_host(host)


@hookimpl(trylast=True)
async def resolve_principal(
    token: str, instance_id: str, runtime: Runtime, credential: Credential
) -> Principal | None:
    """The user of a personal access token or a session token (asked last).
    Both are bearer tokens: under another scheme (DPoP) they are not accepted."""
    from donjon.core.api.auth import BEARER, principal_from_bearer

    if credential.scheme != BEARER:
        return None
    return await principal_from_bearer(runtime, instance_id, token)
