"""donjon core: event store, projections, setup, plugin host, server and CLI.

Plugins mark their hook implementations with `hookimpl`::

    from donjon.core import hookimpl

    @hookimpl
    def register_event_types():
        return [GreetingAdded]
"""

import pluggy

#: The marker of donjon hook implementations (pluggy project name "donjon").
hookimpl = pluggy.HookimplMarker("donjon")

__all__ = ["hookimpl"]
