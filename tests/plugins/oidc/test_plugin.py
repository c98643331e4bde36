"""The `oidc` plugin as a plugin: built in, enabled by default, can be disabled, has settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from donjon.core.errors import ConfigError
from donjon.core.plugins import collect, get_plugin_manager, plugin_settings
from donjon.plugins.oidc.settings import OIDCSettings
from tests.conftest import make_settings, sqlite_database


def settings_with(tmp_path: Path, oidc: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    plugins = {"oidc": oidc} if oidc is not None else {}
    return make_settings(sqlite_database(tmp_path / "d.db"), Plugins=plugins)


def paths(pm, settings) -> set[str]:  # type: ignore[no-untyped-def]
    return {p for r in collect(pm.hook.register_routes, settings=settings) for p in r.paths}


def test_oidc_is_a_builtin_plugin_that_can_be_disabled(tmp_path: Path) -> None:
    settings = settings_with(tmp_path)
    pm = get_plugin_manager(settings)
    info = pm.infos["oidc"]
    assert info.source == "builtin" and not info.essential and info.enabled
    assert {"/oauth/v2/token", "/.well-known/openid-configuration"} <= paths(pm, settings)
    assert isinstance(plugin_settings(pm, settings)["oidc"], OIDCSettings)

    off = settings_with(tmp_path, {"Enabled": False})
    pm = get_plugin_manager(off)
    assert pm.infos["oidc"].enabled is False
    assert "/oauth/v2/token" not in paths(pm, off)


def test_its_settings_are_parsed_and_checked_by_key(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, {"AccessTokenLifetime": "30m", "JwksCacheMaxAge": "1m"})
    parsed = plugin_settings(get_plugin_manager(settings), settings)["oidc"]
    assert parsed.AccessTokenLifetime.total_seconds() == 1800
    assert parsed.JwksCacheMaxAge.total_seconds() == 60
    bad = settings_with(tmp_path, {"AccessTokenLifetme": "30m"})
    with pytest.raises(ConfigError, match="Plugins.oidc.AccessTokenLifetme: unknown key"):
        plugin_settings(get_plugin_manager(bad), bad)
