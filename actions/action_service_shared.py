"""What the ActionService's modules share: the service, its permissions, durations
and the text filter methods (see `action_service`)."""

from __future__ import annotations

import re

from donjon.core.api.connect import (
    Service,
    invalid,
)

service = Service("zitadel.action.v2.ActionService")

TARGET_READ, TARGET_WRITE, TARGET_DELETE = (
    "action.target.read",
    "action.target.write",
    "action.target.delete",
)
EXECUTION_READ, EXECUTION_WRITE = "action.execution.read", "action.execution.write"

DURATION = re.compile(r"^(\d+(?:\.\d{1,9})?)s$")
TEXT_METHODS = (
    "TEXT_FILTER_METHOD_EQUALS",
    "TEXT_FILTER_METHOD_EQUALS_IGNORE_CASE",
    "TEXT_FILTER_METHOD_STARTS_WITH",
    "TEXT_FILTER_METHOD_STARTS_WITH_IGNORE_CASE",
    "TEXT_FILTER_METHOD_CONTAINS",
    "TEXT_FILTER_METHOD_CONTAINS_IGNORE_CASE",
    "TEXT_FILTER_METHOD_ENDS_WITH",
    "TEXT_FILTER_METHOD_ENDS_WITH_IGNORE_CASE",
)


def parse_duration(field_name: str, value: str | None) -> float | None:
    """A protobuf JSON Duration ("10s", "0.5s") in seconds; None when absent."""
    if value is None or value == "":
        return None
    match = DURATION.match(value.strip())
    if not match:
        raise invalid(field_name, f'expected a duration such as "10s", got {value!r}')
    return float(match.group(1))


def duration(seconds: float) -> str:
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"
