"""Tokens: the `oidc_session` events that record them, issuing, and checking presented ones."""
