"""Fixtures for the OIDC provider: the management API's `api` fixture (an in-process
app on a fresh SQLite and PostgreSQL store, called as the first instance's
machine administrator), and helpers to make OAuth clients through that API."""

from __future__ import annotations

from tests.api.conftest import api, api_settings, api_store, api_templates  # noqa: F401
