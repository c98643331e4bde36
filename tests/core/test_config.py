"""Configuration: defaults.yaml is the reference, files and DONJON_* variables override it,
and a wrong key or value stops donjon naming the key, what was expected and its source."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import pytest
import yaml

from donjon.core.config import default_tree, env_tree, load_settings, parse_duration
from donjon.core.errors import ConfigError
from donjon.core.settings import Settings
from tests.core.test_setup_support import donjon


def _is_dict(tp: Any) -> bool:
    return get_origin(tp) is dict


def _unwrap(tp: Any) -> Any:
    """`X` for `X | None`."""
    if get_origin(tp) in (typing.Union, types.UnionType):
        return next(a for a in get_args(tp) if a is not type(None))
    return tp


def _walk(tp: Any, tree: dict[str, Any], path: str, problems: list[str]) -> None:
    """Compare one dataclass with one mapping of defaults.yaml, recursively."""
    hints = get_type_hints(tp)
    fields = {f.name: f for f in dataclasses.fields(tp)}
    for key in tree:
        if key not in fields:
            problems.append(f"{path}{key}: in defaults.yaml but not a field of {tp.__name__}")
    for name in fields:
        if name not in tree:
            problems.append(
                f"{path}{name}: a field of {tp.__name__} without a default in defaults.yaml"
            )
            continue
        field_type = _unwrap(hints[name])
        if dataclasses.is_dataclass(field_type):
            if not isinstance(tree[name], dict):
                problems.append(
                    f"{path}{name}: a section in {tp.__name__} but a value in defaults.yaml"
                )
                continue
            _walk(field_type, tree[name], f"{path}{name}.", problems)
        elif _is_dict(field_type) and not isinstance(tree[name], dict):
            problems.append(f"{path}{name}: a mapping in {tp.__name__} but not in defaults.yaml")


def test_every_key_of_defaults_yaml_is_a_field_and_every_field_has_a_default() -> None:
    problems: list[str] = []
    _walk(Settings, default_tree(), "", problems)
    assert problems == []


def test_every_default_value_has_a_comment_above_it_in_defaults_yaml() -> None:
    """The file is the reference: each key holding a value is documented."""
    lines = (Path(__file__).parents[2] / "core" / "defaults.yaml").read_text().splitlines()
    undocumented = []
    for i, line in enumerate(lines):
        key, _, value = line.strip().partition(":")
        if line.lstrip().startswith("#") or not value.strip():
            continue  # comments, blank lines and section headers
        if not lines[i - 1].lstrip().startswith("#"):
            undocumented.append(key)
    assert undocumented == []


def test_defaults_load_without_files_or_environment() -> None:
    settings = load_settings([], env={})
    assert settings.Port == 8080
    assert settings.Database.kind == "sqlite"
    assert settings.Setup.LeaseDuration == timedelta(seconds=30)
    assert settings.Projections.Customizations == {}


def test_config_files_merge_in_order_later_files_win(tmp_path: Path) -> None:
    first = tmp_path / "first.yaml"
    first.write_text(
        yaml.safe_dump({"Port": 9001, "Log": {"Level": "debug"}, "Setup": {"LeaseDuration": "10s"}})
    )
    second = tmp_path / "second.yaml"
    second.write_text("port: 9002\nlog:\n  format: json\n")  # keys ignore case

    settings = load_settings([first, second], env={})

    assert settings.Port == 9002
    assert (
        settings.Log.Level == "debug" and settings.Log.Format == "json"
    )  # mappings merge key by key
    assert settings.Setup.LeaseDuration == timedelta(seconds=10)
    assert settings.ExternalDomain == "localhost"  # untouched defaults stay


def test_environment_variables_override_files_nested_and_case_insensitively(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"Port": 9001, "Database": {"postgres": {"MaxOpenConns": 3}}}))
    env = {
        "DONJON_PORT": "9100",
        "DONJON_DATABASE_POSTGRES_DSN": "postgresql://donjon:pw@db:5432/donjon",
        "donjon_database_Postgres_maxopenconns": "7",
        "DONJON_EXTERNALSECURE": "true",
        "DONJON_SETUP_LEASEDURATION": "1m30s",
        "DONJON_LOG_LEVEL": "WARNING",
        "PATH": "/usr/bin",
    }
    settings = load_settings([config], env=env)

    assert settings.Port == 9100
    assert settings.Database.postgres.DSN == "postgresql://donjon:pw@db:5432/donjon"
    assert settings.Database.kind == "postgres"
    assert settings.Database.postgres.MaxOpenConns == 7
    assert settings.ExternalSecure is True
    assert settings.Setup.LeaseDuration == timedelta(seconds=90)
    assert settings.Log.Level == "warning"


def test_environment_reaches_named_sections_even_when_names_contain_underscores(
    tmp_path: Path,
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"Plugins": {"my_plugin": {"Color": "red"}}}))
    env = {
        "DONJON_PROJECTIONS_CUSTOMIZATIONS_INSTANCES_REBUILDBULKLIMIT": "500",
        "DONJON_PROJECTIONS_CUSTOMIZATIONS_CUSTOM_TEXTS_BULKLIMIT": "40",
        "DONJON_PLUGINS_SAML_ENABLED": "false",
        "DONJON_PLUGINS_MY_PLUGIN_COLOR": "blue",
    }
    tree = env_tree(env, base=yaml.safe_load(config.read_text()))
    assert tree["Projections"]["Customizations"] == {
        "instances": {"RebuildBulkLimit": "500"},
        "custom_texts": {"BulkLimit": "40"},
    }
    assert tree["Plugins"]["saml"] == {"ENABLED": "false"}
    assert tree["Plugins"]["my_plugin"] == {"Color": "blue"}  # the spelling the file uses

    settings = load_settings([], env={k: v for k, v in env.items() if "PLUGINS" not in k})
    assert settings.Projections.rebuild_bulk_limit("instances") == 500
    assert settings.Projections.bulk_limit("custom_texts") == 40
    assert settings.Projections.bulk_limit("instances") == settings.Projections.BulkLimit


def test_an_environment_variable_may_hold_a_whole_section_as_yaml() -> None:
    settings = load_settings(
        [],
        env={
            "DONJON_PROJECTIONS_CUSTOMIZATIONS": '{"instances": {"BulkLimit": 9}}',
            "DONJON_PLUGINS": "{}",
        },
    )
    assert settings.Projections.bulk_limit("instances") == 9


def test_customizations_match_projection_names_case_insensitively(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("Projections:\n  Customizations:\n    Instances: {RebuildBulkLimit: 77}\n")
    assert load_settings([config], env={}).Projections.rebuild_bulk_limit("instances") == 77


def test_variables_naming_no_key_are_ignored_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Kubernetes sets DONJON_SERVICE_HOST & co. for a service named donjon.
    settings = load_settings(
        [], env={"DONJON_SERVICE_HOST": "10.0.0.1", "DONJON_MASTERKEY": "x" * 32}
    )
    assert settings.Port == 8080
    assert "DONJON_SERVICE_HOST names no configuration key" in caplog.text
    assert "MASTERKEY" not in caplog.text


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DONJON_PORT": "abc"}, "Port: expected an integer, got 'abc' (set by DONJON_PORT)"),
        (
            {"DONJON_PORT": "0"},
            "Port: expected a port number from 1 to 65535, got 0 (set by DONJON_PORT)",
        ),
        ({"DONJON_EXTERNALSECURE": "maybe"}, "ExternalSecure: expected true or false, got 'maybe'"),
        (
            {"DONJON_LOG_LEVEL": "loud"},
            "Log.Level: expected one of debug, info, warn, warning, error, got 'loud'",
        ),
        (
            {"DONJON_SETUP_LEASEDURATION": "soon"},
            "Setup.LeaseDuration: expected a duration such as 30s, 5m or 1h30m, got 'soon'",
        ),
        (
            {"DONJON_SETUP_LEASEDURATION": "0s"},
            "Setup.LeaseDuration: expected a duration above 0s, got '0s'",
        ),
        (
            {"DONJON_PROJECTIONS_BULKLIMIT": "1.5"},
            "Projections.BulkLimit: expected an integer, got '1.5'",
        ),
        (
            {"DONJON_PROJECTIONS_CUSTOMIZATIONS_INSTANCES_BULKLIMIT": "0"},
            "Projections.Customizations.instances.BulkLimit:"
            " expected an integer of at least 1, got 0",
        ),
        (
            {"DONJON_EXTERNALDOMAIN": "https://auth.example.com"},
            "ExternalDomain: expected a host name such as auth.example.com (no scheme or port",
        ),
        (
            {"DONJON_DATABASE_POSTGRES_DSN": "mysql://u:secret@h/db"},
            "Database.postgres.DSN: expected a URL such as postgresql://user:password@host:5432/database,"
            " got 'mysql://u:***@h/db'",
        ),
    ],
)
def test_bad_values_name_the_key_what_was_expected_and_where_it_was_set(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings([], env=env)
    assert message in str(caught.value)
    assert "secret" not in str(caught.value)


def test_unknown_keys_are_refused_with_the_known_ones_and_a_suggestion(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("Database:\n  postgres:\n    MaxOpenConn: 5\n")
    with pytest.raises(ConfigError) as caught:
        load_settings([config], env={})
    message = str(caught.value)
    assert message.startswith(
        "Database.postgres.MaxOpenConn: unknown key (did you mean MaxOpenConns?"
    )
    assert "known here: DSN, MaxOpenConns, MaxOverflowConns, MaxConnLifetime, Admin" in message
    assert f"(set in {config})" in message


def test_a_value_of_the_wrong_shape_names_the_file_it_came_from(tmp_path: Path) -> None:
    first = tmp_path / "first.yaml"
    first.write_text("Projections: {BulkLimit: 5}\n")
    second = tmp_path / "second.yaml"
    second.write_text("Projections: {BulkLimit: lots}\n")
    with pytest.raises(
        ConfigError,
        match=rf"Projections.BulkLimit: expected an integer, got 'lots' \(set in {second}\)",
    ):
        load_settings([first, second], env={})
    third = tmp_path / "third.yaml"
    third.write_text("Setup: 5\n")
    with pytest.raises(ConfigError, match="Setup: expected a mapping, got 5"):
        load_settings([third], env={})


def test_a_key_given_twice_in_one_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("Log:\n  Level: debug\n  level: error\n")
    with pytest.raises(
        ConfigError, match=r"Log.level: given twice \(Level and level; keys ignore case\)"
    ):
        load_settings([config], env={})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read config file"),
        ("Port: [1, 2\n", "is not valid YAML"),
        ("- a\n- b\n", "must hold a mapping of keys, not a list"),
    ],
)
def test_unreadable_or_malformed_files_are_refused_naming_the_file(
    tmp_path: Path, content: str | None, message: str
) -> None:
    config = tmp_path / "c.yaml"
    if content is not None:
        config.write_text(content)
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings([config], env={})
    assert str(config) in str(caught.value)


def test_an_empty_file_changes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "empty.yaml"
    config.write_text("# nothing yet\n")
    assert load_settings([config], env={}) == load_settings([], env={})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("250ms", 0.25),
        ("1h30m", 5400),
        ("1.5s", 1.5),
        ("2m3s", 123),
        ("1d", 86400),
        ("500us", 0.0005),
        ("60", 60),
        (45, 45),
        (0.5, 0.5),
        ("0s", 0),
    ],
)
def test_durations_are_written_like_go_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5 minutes", "1x", "s", "-5s", "1h 30", True, -1])
def test_malformed_durations_are_refused_naming_the_key(text: Any) -> None:
    with pytest.raises(ConfigError, match=r"Setup.LeaseDuration: expected a duration such as 30s"):
        parse_duration(text, "Setup.LeaseDuration")


@pytest.mark.slow
def test_the_cli_with_a_bad_config_exits_1_with_one_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("Setup:\n  LeaseDuration: forever\n")

    status, output = donjon(tmp_path, "setup", "--config", str(config), "--masterkey", "m" * 32)

    assert status == 1
    assert output.strip().splitlines() == [
        f"donjon: Setup.LeaseDuration: expected a duration such as 30s, 5m or 1h30m,"
        f" got 'forever' (set in {config})"
    ]


@pytest.mark.slow
def test_the_cli_reports_a_bad_environment_variable_the_same_way(tmp_path: Path) -> None:
    status, output = donjon(tmp_path, "init", env={"DONJON_PORT": "http"})
    assert status == 1
    assert output.strip() == "donjon: Port: expected an integer, got 'http' (set by DONJON_PORT)"
    assert "Traceback" not in output
