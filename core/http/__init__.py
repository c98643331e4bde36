"""The HTTP edge: the ASGI wrapper (request ids, instances, metrics) and the debug routes."""
