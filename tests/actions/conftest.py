"""Fixtures for actions: the management API's `api` fixture (an in-process app on a
fresh SQLite and PostgreSQL store, called as the first instance's machine
administrator) and helpers for the ActionService."""

from __future__ import annotations

from tests.api.conftest import api, api_settings, api_store, api_templates  # noqa: F401

ACTIONS = "zitadel.action.v2.ActionService"
