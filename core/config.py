"""Loading configuration: defaults.yaml, then --config files, then DONJON_* variables.

The merged tree is checked against the dataclasses in `donjon.core.settings`;
a wrong key or value raises `ConfigError` naming the key and what was expected.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from donjon.core.errors import ConfigError
from donjon.core.settings import Settings

log = logging.getLogger(__name__)

ENV_PREFIX = "DONJON_"
# DONJON_ variables that are not configuration keys.
NON_CONFIG_ENV = ("DONJON_MASTERKEY", "DONJON_TEST_")

T = TypeVar("T")


def default_tree() -> dict[str, Any]:
    text = resources.files("donjon.core").joinpath("defaults.yaml").read_text()
    return yaml.safe_load(text)


def load_settings(
    files: Iterable[str | Path] = (),
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Return the settings from the defaults, the given files in order, then `env`."""
    tree = default_tree()
    for path in files:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping of keys, not {_kind(data)}")
        merge(tree, data)
    merge(tree, env_tree(os.environ if env is None else env))
    return parse(Settings, tree)


def merge(base: dict[str, Any], override: Mapping[str, Any]) -> None:
    """Merge `override` into `base` in place; keys match case-insensitively."""
    for key, value in override.items():
        existing = _find_key(base, key)
        if existing is not None and isinstance(base[existing], dict) and isinstance(value, dict):
            merge(base[existing], value)
        else:
            base[existing if existing is not None else key] = value


def env_tree(env: Mapping[str, str]) -> dict[str, Any]:
    """Turn DONJON_A_B_C=v variables into {"A": {"B": {"C": "v"}}}, guided by the schema."""
    tree: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name.startswith(NON_CONFIG_ENV):
            continue
        path = _env_path(Settings, name[len(ENV_PREFIX) :].split("_"))
        if path is None:
            log.warning("environment variable %s names no configuration key; ignored", name)
            continue
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def _env_path(tp: Any, tokens: list[str]) -> list[str] | None:
    if not tokens:
        return []
    if dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        for f in dataclasses.fields(tp):
            if f.name.upper() == tokens[0].upper():
                rest = _env_path(hints[f.name], tokens[1:])
                return None if rest is None else [f.name, *rest]
        return None
    if get_origin(tp) is dict:
        # A mapping keyed by name (plugins, projections): the key is the next
        # token, lower-cased; the remaining tokens are left to the value.
        value_type = get_args(tp)[1]
        rest = _env_path(value_type, tokens[1:]) if dataclasses.is_dataclass(value_type) else tokens[1:]
        return None if rest is None else [tokens[0].lower(), *rest]
    return None


def parse(tp: type[T], value: Any, path: str = "") -> T:
    """Convert `value` to `tp`, raising ConfigError with the key's path on a mismatch."""
    return typing.cast(T, _convert(tp, value, path))


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, path)
    if origin is Literal:
        choices = get_args(tp)
        text = str(value).lower() if isinstance(value, str) else value
        if text not in choices:
            raise ConfigError(f"{path}: expected one of {', '.join(map(str, choices))}, got {value!r}")
        return text
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {_kind(value)}")
        value_type = get_args(tp)[1]
        return {str(k): _convert(value_type, v, f"{path}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        return _to_bool(value, path)
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: expected an integer, got {value!r}") from None
    if tp is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)) or value is None:
            raise ConfigError(f"{path}: expected a string, got {_kind(value)}")
        return str(value)
    if tp is timedelta:
        return parse_duration(value, path)
    raise TypeError(f"{path}: unsupported configuration type {tp!r}")


def _convert_dataclass(tp: Any, value: Any, path: str) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path or 'configuration'}: expected a mapping, got {_kind(value)}")
    hints = get_type_hints(tp)
    fields = {f.name.lower(): f for f in dataclasses.fields(tp)}
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        f = fields.get(str(key).lower())
        where = f"{path}.{key}" if path else str(key)
        if f is None:
            known = ", ".join(f.name for f in dataclasses.fields(tp))
            raise ConfigError(f"{where}: unknown key (known here: {known})")
        kwargs[f.name] = _convert(hints[f.name], item, f"{path}.{f.name}" if path else f.name)
    for f in dataclasses.fields(tp):
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        if f.name not in kwargs and not has_default:
            where = f"{path}.{f.name}" if path else f.name
            raise ConfigError(f"{where}: missing")
    return tp(**kwargs)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, path: str = "duration") -> timedelta:
    """Parse "1h30m", "250ms", "60s" or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    text = str(value).strip().replace(" ", "")
    if text and all(ch.isdigit() or ch == "." for ch in text):
        return timedelta(seconds=float(text))
    pos, seconds = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ConfigError(f"{path}: expected a duration such as 30s, 5m or 1h30m, got {value!r}")
    return timedelta(seconds=seconds)


def _to_bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{path}: expected true or false, got {value!r}")


def _find_key(mapping: Mapping[str, Any], key: str) -> str | None:
    lowered = str(key).lower()
    for existing in mapping:
        if str(existing).lower() == lowered:
            return existing
    return None


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(value), repr(value))
