"""What `donjon projections list` and the metrics report about each projection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from donjon.core.projections.state import all_states, failure_counts

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime


async def projection_status(runtime: Runtime) -> list[dict[str, Any]]:
    async with runtime.db.read() as conn:
        states = await all_states(conn)
        parked = await failure_counts(conn)
        head = await runtime.store.max_position(conn)
    rows = []
    for p in runtime.projections:
        state = states.get(p.name)
        if state is None:
            status, position = "not built", 0
        elif state.version != p.version:
            status, position = f"outdated (v{state.version})", state.position
        else:
            status, position = state.status, state.position
        # Inline projections are written with every push: no lag once active.
        lag = 0 if (p.inline and status == "active") else max(head - position, 0)
        rows.append(
            {
                "name": p.name,
                "kind": "inline" if p.inline else "async",
                "version": p.version,
                "status": status,
                "position": head if (p.inline and status == "active") else position,
                "lag": lag,
                "parked": parked.get(p.name, 0),
            }
        )
    hooks = getattr(runtime, "event_hooks", None)  # plugins' on_event positions
    for s in hooks.subscribers if hooks is not None else []:
        state = states.get(s.name)
        position = state.position if state else 0
        rows.append(
            {
                "name": s.name,
                "kind": "on_event",
                "version": state.version if state else 1,
                "status": state.status if state else "not started",
                "position": position,
                "lag": max(head - position, 0) if state else 0,
                "parked": parked.get(s.name, 0),
            }
        )
    return rows
