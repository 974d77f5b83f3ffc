"""The strict loader behind `server.config`: a YAML mapping into a frozen dataclass tree.

It knows no key of its own. Each dataclass field is a key; its type says what the
value must be (nested dataclasses, tuples of them, enums, paths, dates, numbers,
strings, booleans, optional values); ``metadata`` may set ``min``/``max`` or a
``check`` returning what is wrong; a dataclass's ``_problem()`` returns a key and
what is wrong with it for rules across keys. An unknown key, a duplicated key or a
wrong value raises `ConfigError` naming the full dotted key. Relative paths resolve
against the config file's folder.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import enum
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from .errors import ServerError


class ConfigError(ServerError):
    """The configuration file is unreadable or has an invalid value."""

    code = "bad_config"


def read_yaml(path: Path) -> object:
    """The YAML document in `path`, duplicate keys refused; {} for an empty file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    return {} if data is None else data  # an empty file, or one with only comments


_T = typing.TypeVar("_T")


def build(cls: type[_T], data: object, prefix: str, base_dir: Path) -> _T:
    """Make a `cls` from a YAML mapping, checking every key and value."""
    where = prefix.rstrip(".")
    if not isinstance(data, Mapping):
        raise ConfigError(f"config key '{where}' must be a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(typing.cast(Any, cls))}
    for key in data:
        if key not in fields:
            raise ConfigError(_unknown_key_message(prefix, key, list(fields)))
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key = prefix + name
        if name in data:
            converted = _convert(hints[name], data[name], key, base_dir)
            _check_field(f, converted, key)
            values[name] = converted
        elif isinstance(tp := hints[name], type) and dataclasses.is_dataclass(tp):
            # Built from {} rather than default_factory so that relative
            # paths inside it are resolved too.
            values[name] = build(tp, {}, key + ".", base_dir)
        elif isinstance(f.default, Path) and not f.default.is_absolute():
            values[name] = base_dir / f.default
    obj = cls(**values)
    problem_of: Callable[[], tuple[str, str] | None] | None = getattr(obj, "_problem", None)
    problem = problem_of() if problem_of is not None else None
    if problem is not None:
        name, message = problem
        raise ConfigError(f"config key '{prefix}{name}' {message}")
    return obj


def _convert(tp: Any, value: object, key: str, base_dir: Path) -> Any:
    origin = typing.get_origin(tp)
    if origin is types.UnionType or origin is typing.Union:
        if value is None:
            return None
        (inner,) = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return _convert(inner, value, key, base_dir)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        # A section written with nothing under it ("media:") means defaults.
        return build(tp, {} if value is None else value, key + ".", base_dir)
    if origin is tuple:
        item_type = typing.get_args(tp)[0]
        if item_type is str and isinstance(value, str):
            value = [value]  # RTCIceServer also allows a single URL string
        if not isinstance(value, list):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        return tuple(
            _convert(item_type, item, f"{key}[{index}]", base_dir)
            for index, item in enumerate(value)
        )
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        allowed = [member.value for member in tp]
        if value not in allowed:
            choices = ", ".join(repr(choice) for choice in allowed)
            raise ConfigError(f"config key '{key}' must be one of {choices}, got {value!r}")
        return tp(value)
    if tp is datetime.date:
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            return value
        try:
            return datetime.date.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(
                f"config key '{key}' must be a date like 2026-06-12, got {value!r}") from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
    # bool is an int in Python, but "port: true" is a mistake, not 1.
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is str and isinstance(value, str):
        if not value.strip():
            raise ConfigError(f"config key '{key}' must not be empty")
        return value
    if tp is Path and isinstance(value, str) and value.strip():
        path = Path(value).expanduser()
        return path if path.is_absolute() else base_dir / path
    raise ConfigError(f"config key '{key}' must be {_describe(tp)}, got {value!r}")


def _check_field(f: dataclasses.Field[Any], value: Any, key: str) -> None:
    low, high = f.metadata.get("min"), f.metadata.get("max")
    if low is not None and value < low:
        raise ConfigError(f"config key '{key}' must be at least {low}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"config key '{key}' must be at most {high}, got {value!r}")
    check: Callable[[Any], str | None] | None = f.metadata.get("check")
    problem = check(value) if check is not None else None
    if problem is not None:
        raise ConfigError(f"config key '{key}' {problem}")


def _describe(tp: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", Path: "a path"}
    return names.get(tp, str(tp))


def _unknown_key_message(prefix: str, key: object, known: list[str]) -> str:
    message = f"unknown config key '{prefix}{key}'"
    close = difflib.get_close_matches(str(key), known, n=1)
    if close:
        message += f" (did you mean '{prefix}{close[0]}'?)"
    return message


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicated keys instead of keeping the last."""


def _construct_strict_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node)
        if isinstance(key, str) and key in seen:
            raise ConfigError(
                f"duplicate config key '{key}' on line {key_node.start_mark.line + 1}"
            )
        seen.add(key if isinstance(key, str) else id(key_node))
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_strict_mapping
)
