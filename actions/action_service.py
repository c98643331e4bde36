"""zitadel.action.v2.ActionService: targets and executions over Connect JSON.

Targets and executions belong to the instance: reading them needs
`action.target.read` / `action.execution.read`, changing them
`action.target.write`, `action.target.delete`, `action.execution.write`,
held through an instance membership (IAM_OWNER has all of them).

The delivery methods (`ListEventDeliveries`, `RedriveEventDeliveries`) are
donjon's extension: ZITADEL has no API to see or re-drive a parked delivery.

Importing this module declares every method on `service` (from
`action_service_shared`, with what the methods share), in

- `action_targets_api`: CreateTarget, UpdateTarget, DeleteTarget, GetTarget, ListTargets;
- `action_executions_api`: SetExecution, ListExecutions, ListExecutionFunctions,
  ListExecutionMethods, ListExecutionServices;
- `action_deliveries_api`: ListEventDeliveries, RedriveEventDeliveries.
"""

from __future__ import annotations

# Importing the modules declares their methods on `service`:
# targets, executions (and conditions) and deliveries.
from donjon.actions import (  # noqa: F401
    action_deliveries_api,
    action_executions_api,
    action_targets_api,
)
from donjon.actions.action_service_shared import service

__all__ = ["service"]
