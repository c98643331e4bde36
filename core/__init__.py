"""donjon core: event store, projections, setup, plugin host, server and CLI."""
