"""Creating, updating and terminating sessions: what the SessionService and the hosted login call.

Each command validates its input (errors name the SessionService's field),
runs the checks (`session_checks`), and pushes the session's events at once,
so a failed call records nothing on the session. Creating or updating always
sets a new session token, returned once; the previous one stops working.
Permissions are the caller's business (the API checks them; the hosted login
holds the token).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from donjon.core import ids
from donjon.core.api.connect import ConnectError, invalid
from donjon.core.events import AggregateChanges, Event, StoredEvent
from donjon.core.identity import secrets
from donjon.core.identity.session_checks import run_checks
from donjon.core.identity.sessions import (
    SessionAdded,
    SessionLifetimeSet,
    SessionMetadataSet,
    SessionState,
    SessionTerminated,
    SessionTokenSet,
    encode_metadata,
)

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

MAX_METADATA_KEYS = 100
MAX_METADATA_KEY = 200  # characters
MAX_METADATA_VALUE = 64 * 1024  # bytes
MAX_USER_AGENT_TEXT = 1024
MAX_HEADERS = 50
MAX_LIFETIME = timedelta(days=3650)
_DURATION = re.compile(r"^(\d{1,12})(\.\d{1,9})?s$")


@dataclass(frozen=True)
class SessionChanges:
    """What a create or update asks for, as the SessionService's fields.

    `checks` / `challenges`: field name -> JSON value (camelCase keys);
    `metadata`: keys to set (an empty value deletes the key);
    `lifetime`: how long from now the session stays valid (None: unchanged).
    """

    checks: dict[str, Any] = field(default_factory=dict)
    challenges: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, bytes] = field(default_factory=dict)
    lifetime: timedelta | None = None


@dataclass(frozen=True)
class SessionResult:
    """A created or updated session: its id, its new token (shown once), the
    stored events and the answers to challenges."""

    session_id: str
    token: str
    events: list[StoredEvent]
    challenges: dict[str, Any]


def parse_lifetime(field_name: str, value: str | None) -> timedelta | None:
    """A protobuf JSON Duration (`"3600s"`, `"0.5s"`), positive, at most ten years."""
    if value is None or value == "":
        return None
    match = _DURATION.match(value.strip())
    if not match:
        raise invalid(field_name, f"expected a duration such as 3600s, got {value!r}")
    lifetime = timedelta(seconds=float(value.strip()[:-1]))
    if lifetime <= timedelta(0):
        raise invalid(field_name, "must be positive")
    if lifetime > MAX_LIFETIME:
        raise invalid(field_name, "must be at most 3650 days")
    return lifetime


def check_metadata(field_name: str, metadata: dict[str, bytes]) -> None:
    if len(metadata) > MAX_METADATA_KEYS:
        raise invalid(field_name, f"at most {MAX_METADATA_KEYS} keys")
    for key, value in metadata.items():
        if not key.strip():
            raise invalid(field_name, "keys must not be empty")
        if len(key) > MAX_METADATA_KEY:
            raise invalid(
                f"{field_name}.{key[:40]}", f"keys have at most {MAX_METADATA_KEY} characters"
            )
        if len(value) > MAX_METADATA_VALUE:
            raise invalid(f"{field_name}.{key}", f"values have at most {MAX_METADATA_VALUE} bytes")


def user_agent(
    fingerprint_id: str = "",
    ip: str = "",
    description: str = "",
    header: dict[str, list[str]] | None = None,
    field_name: str = "userAgent",
) -> dict[str, Any]:
    """The `user_agent` of `session.added`, checked; empty parts left out."""
    out: dict[str, Any] = {}
    for name, value in (("fingerprintId", fingerprint_id), ("description", description)):
        if len(value) > MAX_USER_AGENT_TEXT:
            raise invalid(f"{field_name}.{name}", f"at most {MAX_USER_AGENT_TEXT} characters")
    if fingerprint_id:
        out["fingerprint_id"] = fingerprint_id
    if description:
        out["description"] = description
    if ip:
        try:
            out["ip"] = str(ipaddress.ip_address(ip.strip()))
        except ValueError:
            raise invalid(f"{field_name}.ip", f"{ip!r} is not an IP address") from None
    header = header or {}
    if len(header) > MAX_HEADERS:
        raise invalid(f"{field_name}.header", f"at most {MAX_HEADERS} headers")
    for name, values in header.items():
        if sum(len(v) for v in values) + len(name) > MAX_USER_AGENT_TEXT * 8:
            raise invalid(f"{field_name}.header.{name[:40]}", "too long")
    if header:
        out["header"] = {name.lower(): list(values) for name, values in header.items()}
    return out


def _token_events() -> tuple[str, Event]:
    token = secrets.new_secret()
    return token, SessionTokenSet(token_id=ids.new_id(), digest=secrets.digest(token))


def _changes_events(state: SessionState, changes: SessionChanges) -> list[Event]:
    """The metadata and lifetime events of `changes` (none when nothing changes)."""
    events: list[Event] = []
    if changes.metadata:
        check_metadata("metadata", changes.metadata)
        merged = dict(state.metadata)
        for key, value in encode_metadata(changes.metadata).items():
            if value:
                merged[key] = value
            else:
                merged.pop(key, None)
        if merged != state.metadata:
            events.append(SessionMetadataSet(metadata=merged))
    if changes.lifetime is not None:
        events.append(SessionLifetimeSet(lifetime_seconds=changes.lifetime.total_seconds()))
    return events


async def create_session(
    runtime: Runtime,
    instance_id: str,
    changes: SessionChanges,
    *,
    agent: dict[str, Any] | None = None,
    creator: str,
) -> SessionResult:
    """A new session with the checks of `changes` passed; ConnectError when one fails.

    `agent` is `user_agent(...)`; `creator` the id of the calling user (the
    user itself for a hosted login).
    """
    now = datetime.now(UTC)
    session_id = ids.new_id()
    state = SessionState(instance_id, session_id)
    extra = _changes_events(state, changes)
    checked, challenges = await run_checks(runtime, state, changes.checks, changes.challenges, now)
    token, token_set = _token_events()
    stored = await runtime.store.push(
        AggregateChanges(
            state.aggregate(owner=instance_id),
            [SessionAdded(user_agent=agent or {}), *checked, *extra, token_set],
            expected_sequence=0,
        ),
        creator=creator,
    )
    return SessionResult(session_id, token, stored, challenges)


async def live_session(runtime: Runtime, instance_id: str, session_id: str) -> SessionState:
    """The session's write model; not_found when unknown or terminated."""
    if not session_id:
        raise invalid("sessionId", "is required")
    state = await SessionState.load(runtime.store, instance_id, session_id)
    if not state.exists:
        raise ConnectError("not_found", "sessionId: session not found")
    return state


async def set_session(
    runtime: Runtime, state: SessionState, changes: SessionChanges, *, creator: str
) -> SessionResult:
    """Run more checks on a live session, change its metadata or lifetime, and
    rotate its token; failed_precondition when it expired."""
    now = datetime.now(UTC)
    if state.expired(now):
        raise ConnectError("failed_precondition", "sessionId: the session expired")
    extra = _changes_events(state, changes)
    checked, challenges = await run_checks(runtime, state, changes.checks, changes.challenges, now)
    token, token_set = _token_events()
    stored = await runtime.store.push(
        AggregateChanges(
            state.aggregate(), [*checked, *extra, token_set], expected_sequence=state.sequence
        ),
        creator=creator,
    )
    return SessionResult(state.id, token, stored, challenges)


async def terminate_session(
    runtime: Runtime, state: SessionState, *, creator: str
) -> list[StoredEvent]:
    """End the session: its token stops working and it is no longer listed."""
    return await runtime.store.push(
        AggregateChanges(
            state.aggregate(), [SessionTerminated()], expected_sequence=state.sequence
        ),
        creator=creator,
    )
