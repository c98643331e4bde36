"""Loading configuration: defaults.yaml, then --config files, then DONJON_* variables.

Precedence, lowest first: the packaged `defaults.yaml`, each `--config` file in
the order given, then environment variables. Mappings merge key by key (keys
match case-insensitively); any other value replaces the one before it.

An environment variable names a key by its path, upper-cased and joined with
`_`: `DONJON_PORT`, `DONJON_DATABASE_POSTGRES_DSN`,
`DONJON_PROJECTIONS_CUSTOMIZATIONS_INSTANCES_REBUILDBULKLIMIT`,
`DONJON_PLUGINS_SAML_ENABLED`. A variable naming a whole section takes a
YAML/JSON mapping (`DONJON_PLUGINS='{saml: {Enabled: false}}'`). Variables
that name no key are logged and ignored (Kubernetes injects DONJON_SERVICE_*
for a service named donjon).

The merged tree is checked against the dataclasses in `donjon.core.settings`:
a wrong key or value raises `ConfigError` naming the key, what was expected
and where the value came from, e.g.
`Port: expected an integer, got 'abc' (set by DONJON_PORT)`.
"""

from __future__ import annotations

import dataclasses
import difflib
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
from donjon.core.settings import InvalidSetting, Settings

log = logging.getLogger(__name__)

ENV_PREFIX = "DONJON_"
# DONJON_ variables that are not configuration keys.
NON_CONFIG_ENV = ("DONJON_MASTERKEY", "DONJON_TEST_")

T = TypeVar("T")


class SettingError(ConfigError):
    """A ConfigError about one key; `key` is its dotted path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.detail = message


def default_tree() -> dict[str, Any]:
    """The packaged defaults.yaml as a plain tree."""
    text = resources.files("donjon.core").joinpath("defaults.yaml").read_text()
    return yaml.safe_load(text)


def load_settings(
    files: Iterable[str | Path] = (),
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Return the settings from the defaults, the given files in order, then `env`
    (os.environ when None). Raises ConfigError naming the key and the source of a
    wrong value, or the file that cannot be read or parsed."""
    tree = default_tree()
    origins: dict[str, str] = {}
    for path in files:
        data = read_config_file(path)
        _record_origins(data, f"set in {path}", origins)
        merge(tree, data)
    overrides = env_tree(os.environ if env is None else env, tree, origins)
    merge(tree, overrides)
    try:
        return parse(Settings, tree)
    except SettingError as exc:
        origin = _origin_of(exc.key, origins)
        if origin is None:
            raise
        raise SettingError(exc.key, f"{exc.detail} ({origin})") from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping a --config file holds (an empty file is an empty mapping)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"config file {path} is not valid YAML: {reason}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {_kind(data)}")
    try:
        _refuse_duplicate_keys(data, "", recursive=True)
    except SettingError as exc:
        raise SettingError(exc.key, f"{exc.detail} (set in {path})") from None
    return data


def merge(base: dict[str, Any], override: Mapping[str, Any]) -> None:
    """Merge `override` into `base` in place; keys match case-insensitively."""
    for key, value in override.items():
        existing = _find_key(base, key)
        if existing is not None and isinstance(base[existing], dict) and isinstance(value, dict):
            merge(base[existing], value)
        else:
            base[existing if existing is not None else key] = value


# -- environment variables ------------------------------------------------------------


def env_tree(
    env: Mapping[str, str],
    base: Mapping[str, Any] | None = None,
    origins: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Turn DONJON_A_B_C=v variables into {"A": {"B": {"C": "v"}}}, guided by the schema.

    `base`, the tree the variables will be merged into, resolves keys of
    named sections that contain `_` (a plugin called `my_plugin`). `origins`,
    when given, records which variable set which key.
    """
    tree: dict[str, Any] = {}
    for name in sorted(env):
        if not name.upper().startswith(ENV_PREFIX) or name.upper().startswith(NON_CONFIG_ENV):
            continue
        tokens = name[len(ENV_PREFIX) :].split("_")
        resolved = _env_path(Settings, tokens, base or {})
        if resolved is None:
            log.warning("environment variable %s names no configuration key; ignored", name)
            continue
        path, target = resolved
        value: Any = env[name]
        if _is_mapping_type(target):
            try:
                value = yaml.safe_load(value) if value.strip() else {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"{name}: expected a YAML or JSON mapping: {exc}") from None
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
        if origins is not None:
            if isinstance(value, dict):
                _record_origins(value, f"set by {name}", origins, ".".join(path))
            else:
                origins[".".join(path).lower()] = f"set by {name}"
    return tree


def _env_path(tp: Any, tokens: list[str], base: Any) -> tuple[list[str], Any] | None:
    """The key path `tokens` names under type `tp`, and the type found there."""
    tp = _unwrap_optional(tp)
    if not tokens:
        return [], tp
    if dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        for f in dataclasses.fields(tp):
            if f.name.upper() == tokens[0].upper():
                sub = _lookup(base, f.name)
                rest = _env_path(hints[f.name], tokens[1:], sub)
                return None if rest is None else ([f.name, *rest[0]], rest[1])
        return None
    if get_origin(tp) is dict:
        # A section keyed by name (projections, plugins). A name may contain
        # "_": prefer a name the section already has, else the split whose
        # remaining tokens are keys of the value type.
        value_type = get_args(tp)[1]
        existing = {str(k).lower(): str(k) for k in base} if isinstance(base, Mapping) else {}
        splits = range(len(tokens), 0, -1)
        for i in splits:
            name = "_".join(tokens[:i]).lower()
            if name in existing:
                rest = _env_path(value_type, tokens[i:], base[existing[name]])
                if rest is not None:
                    return [existing[name], *rest[0]], rest[1]
        if dataclasses.is_dataclass(value_type):
            # Shortest name first: field names hold no "_", so the first split
            # whose rest resolves is the only one naming a field.
            for i in range(1, len(tokens) + 1):
                rest = _env_path(value_type, tokens[i:], None)
                if rest is not None:
                    return ["_".join(tokens[:i]).lower(), *rest[0]], rest[1]
            return None
        return [tokens[0].lower(), *(t for t in tokens[1:])], Any if len(tokens) > 1 else value_type
    return None


def _lookup(node: Any, key: str) -> Any:
    if not isinstance(node, Mapping):
        return None
    found = _find_key(node, key)
    return node[found] if found is not None else None


def _is_mapping_type(tp: Any) -> bool:
    return dataclasses.is_dataclass(tp) or get_origin(tp) is dict


def _unwrap_optional(tp: Any) -> Any:
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


# -- checking values ------------------------------------------------------------------


def parse(tp: type[T], value: Any, path: str = "") -> T:
    """Convert `value` to `tp`, raising ConfigError (a SettingError) with the key's path
    on a mismatch."""
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
            raise SettingError(
                path, f"expected one of {', '.join(map(str, choices))}, got {value!r}"
            )
        return text
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise SettingError(path, f"expected a mapping, got {_kind(value)}")
        value_type = get_args(tp)[1]
        _refuse_duplicate_keys(value, path)
        return {str(k): _convert(value_type, v, _join(path, str(k))) for k, v in value.items()}
    if origin is list:
        # A YAML list, or one comma-separated string (an environment variable).
        if value is None:
            return []
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise SettingError(path, f"expected a list, got {_kind(value)}")
        item_type = get_args(tp)[0]
        return [_convert(item_type, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if tp is Any:
        return value
    if tp is bool:
        return _to_bool(value, path)
    if tp is int:
        return _to_int(value, path)
    if tp is float:
        if isinstance(value, bool):
            raise SettingError(path, f"expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise SettingError(path, f"expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)) or value is None:
            raise SettingError(path, f"expected a string, got {_kind(value)}")
        return str(value)
    if tp is timedelta:
        return parse_duration(value, path)
    raise TypeError(f"{path}: unsupported configuration type {tp!r}")


def _convert_dataclass(tp: Any, value: Any, path: str) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise SettingError(path or "configuration", f"expected a mapping, got {_kind(value)}")
    _refuse_duplicate_keys(value, path)
    hints = get_type_hints(tp)
    fields = {f.name.lower(): f for f in dataclasses.fields(tp)}
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        f = fields.get(str(key).lower())
        if f is None:
            names = [f.name for f in dataclasses.fields(tp)]
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise SettingError(
                _join(path, str(key)), f"unknown key ({hint}known here: {', '.join(names)})"
            )
        kwargs[f.name] = _convert(hints[f.name], item, _join(path, f.name))
    for f in dataclasses.fields(tp):
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        if f.name not in kwargs and not has_default:
            raise SettingError(_join(path, f.name), "missing")
    try:
        return tp(**kwargs)
    except InvalidSetting as exc:
        raise SettingError(
            _join(path, exc.key), f"expected {exc.expected}, got {exc.value!r}"
        ) from None


def _refuse_duplicate_keys(value: Mapping[Any, Any], path: str, *, recursive: bool = False) -> None:
    seen: dict[str, str] = {}
    for key, item in value.items():
        lowered = str(key).lower()
        if lowered in seen:
            raise SettingError(
                _join(path, str(key)), f"given twice ({seen[lowered]} and {key}; keys ignore case)"
            )
        seen[lowered] = str(key)
        if recursive and isinstance(item, Mapping):
            _refuse_duplicate_keys(item, _join(path, str(key)), recursive=True)


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, path: str = "duration") -> timedelta:
    """Parse a Go-style duration ("1h30m", "250ms", "1.5s", "60s"; "d" for days is
    accepted too) or a number of seconds. Negative durations are refused."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise SettingError(path, f"expected a duration such as 30s, 5m or 1h30m, got {value!r}")
        return timedelta(seconds=value)
    text = str(value).strip().replace(" ", "")
    if text and re.fullmatch(r"\d+(\.\d+)?", text):
        return timedelta(seconds=float(text))
    pos, seconds = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text) or isinstance(value, bool):
        raise SettingError(path, f"expected a duration such as 30s, 5m or 1h30m, got {value!r}")
    return timedelta(seconds=seconds)


def _to_bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise SettingError(path, f"expected true or false, got {value!r}")


def _to_int(value: Any, path: str) -> int:
    if isinstance(value, bool):
        raise SettingError(path, f"expected an integer, got {value!r}")
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise SettingError(path, f"expected an integer, got {value!r}")
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise SettingError(path, f"expected an integer, got {value!r}") from None


# -- helpers --------------------------------------------------------------------------


def _record_origins(data: Any, origin: str, origins: dict[str, str], prefix: str = "") -> None:
    """Remember `origin` for every key in `data` (lower-cased dotted paths)."""
    if not isinstance(data, Mapping):
        return
    for key, value in data.items():
        path = _join(prefix, str(key))
        origins[path.lower()] = origin
        _record_origins(value, origin, origins, path)


def _origin_of(key: str, origins: Mapping[str, str]) -> str | None:
    """Where the value at `key` (or its nearest enclosing key) was set; None for defaults."""
    parts = key.lower().split(".")
    for end in range(len(parts), 0, -1):
        origin = origins.get(".".join(parts[:end]))
        if origin is not None:
            return origin
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _find_key(mapping: Mapping[str, Any], key: str) -> str | None:
    lowered = str(key).lower()
    for existing in mapping:
        if str(existing).lower() == lowered:
            return existing
    return None


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(value), repr(value))
