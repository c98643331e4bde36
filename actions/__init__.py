"""User-defined actions: targets, executions and durable delivery."""
