"""Web keys: the instance's token signing keys, their events, read model and rotation."""
