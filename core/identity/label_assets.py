"""Branding images (logo and icon, light and dark): uploads as events, and their read model.

An upload is the event `asset.added` on its own aggregate (`asset`, id: the
first 32 hex digits of the image's SHA-256, so the same image is stored once
per instance), carrying the checked content type and the bytes (base64). The
label policy that shows it names the asset id (`LabelPolicy.logo`, ...): the
upload and the policy change are pushed together (`upload_label_image`).

Checks (`check_image`): at most `MAX_ASSET_BYTES`, a content type of
`IMAGE_TYPES`, and bytes that are what that type says (PNG, JPEG, GIF, WebP
signatures; SVG an XML document whose root is `<svg>`).

Read model `assets`: the bytes by (instance, id), what the assets endpoint
serves (`core/http/assets.py`, immutable: a new image is a new id).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Integer, LargeBinary, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection

from donjon.core.api.connect import ConnectError
from donjon.core.events import AggregateChanges, Event, StoredEvent
from donjon.core.eventstore.schema import UTCDateTime
from donjon.core.identity.policy_events import (
    LABEL,
    InstancePolicies,
    OrgPolicies,
    set_policy,
)
from donjon.core.identity.policy_types import LabelPolicy
from donjon.core.identity.writemodel import WriteModel, applies
from donjon.core.projections.base import Projection, handles, projection_metadata
from donjon.core.projections.statements import Put, RemoveWhere

AGGREGATE = "asset"
MAX_ASSET_BYTES = 512 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml")
_SVG_ROOT = re.compile(
    rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*(<!DOCTYPE[^>]*>\s*)?<svg[\s>]", re.S
)


@dataclass(frozen=True)
class AssetAdded(Event):
    TYPE = "asset.added"
    AGGREGATE_TYPE = AGGREGATE
    content_type: str
    size: int
    sha256: str
    # The bytes, base64.
    data: str


EVENT_TYPES: list[type[Event]] = [AssetAdded]

assets_table = Table(
    "assets",
    projection_metadata,
    Column("instance_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("owner_id", Text, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


class AssetsProjection(Projection):
    """`assets`: the uploaded images, written in the push transaction."""

    name = "assets"
    version = 1
    inline = True
    tables = (assets_table,)

    @handles(AssetAdded.TYPE)
    def added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        return [
            Put(
                assets_table,
                {
                    "instance_id": e.instance_id,
                    "id": e.aggregate_id,
                    "owner_id": e.owner,
                    "content_type": p["content_type"],
                    "size": p["size"],
                    "sha256": p["sha256"],
                    "data": base64.b64decode(p["data"]),
                    "created_at": e.created_at,
                },
            )
        ]

    @handles("instance.removed")
    def instance_gone(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [RemoveWhere(assets_table, {"instance_id": e.instance_id})]


class AssetState(WriteModel):
    aggregate_type = AGGREGATE

    def __init__(self, instance_id: str, aggregate_id: str) -> None:
        super().__init__(instance_id, aggregate_id)
        self.added = False

    @applies(AssetAdded.TYPE)
    def on_added(self, e: StoredEvent) -> None:
        self.added = True


def _sniffed(data: bytes) -> str | None:
    """The image type the bytes are, by their signature (None: none of IMAGE_TYPES)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    head = data[:4096].removeprefix(b"\xef\xbb\xbf")
    if _SVG_ROOT.match(head):
        return "image/svg+xml"
    return None


def check_image(content_type: str, data: bytes) -> str:
    """The image's content type when it may be a logo or icon; ConnectError otherwise."""
    declared = content_type.split(";")[0].strip().lower()
    if len(data) > MAX_ASSET_BYTES:
        raise ConnectError(
            "resource_exhausted", f"file: at most {MAX_ASSET_BYTES // 1024} KiB, got {len(data)}"
        )
    if not data:
        raise ConnectError("invalid_argument", "file: is empty")
    if declared not in IMAGE_TYPES:
        raise ConnectError(
            "invalid_argument",
            f"file: content type {declared or '(none)'} is not one of {', '.join(IMAGE_TYPES)}",
        )
    if _sniffed(data) != declared:
        raise ConnectError("invalid_argument", f"file: the content is not {declared}")
    return declared


async def upload_label_image(
    runtime: Any,
    state: InstancePolicies | OrgPolicies,
    current: LabelPolicy,
    field_name: str,
    content_type: str,
    data: bytes,
    creator: str,
) -> list[StoredEvent]:
    """Store the image (once per instance) and the label policy naming it, in one push."""
    kind = check_image(content_type, data)
    digest = hashlib.sha256(data).hexdigest()
    asset = await AssetState.load(runtime.store, state.instance_id, digest[:32])
    changes: list[AggregateChanges] = []
    if not asset.added:
        event = AssetAdded(kind, len(data), digest, base64.b64encode(data).decode("ascii"))
        changes.append(AggregateChanges(asset.aggregate(state.id), [event], expected_sequence=0))
    policy_change = set_policy(state, LABEL, dataclasses.replace(current, **{field_name: asset.id}))
    if policy_change is not None:
        changes.append(policy_change)
    if not changes:
        return []
    return await runtime.store.push(changes, creator=creator)


async def get_asset(
    conn: AsyncConnection, instance_id: str, asset_id: str
) -> dict[str, Any] | None:
    t = assets_table
    row = (
        await conn.execute(select(t).where(t.c.instance_id == instance_id, t.c.id == asset_id))
    ).first()
    return dict(row._mapping) if row is not None else None
