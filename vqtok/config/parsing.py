"""Reading settings: TOML recipes, ``section.key=value`` overrides, data paths, and typed sections built
from plain values with clear errors."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .renamed import current_names, warn_renamed
from .schema import SAMPLES_DIR


def parse_override(text: str) -> tuple[str, Any]:
    """``"model.n_q=8"`` -> ``("model.n_q", 8)``; the value is read as TOML, else kept as a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"override {text!r} is not of the form section.key=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.strip(), value


def read_recipe(path: Path) -> dict:
    """The TOML recipe as a dict, with the folders ``data`` (and a prior recipe's ``valid``) and the
    model file ``init`` (unless it names a default, ``@MODALITY``) taken relative to the recipe's folder."""
    try:
        recipe = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: recipe not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: not a valid TOML recipe ({e})") from None
    for key in ("data", "valid"):
        if isinstance(recipe.get(key), str) and recipe[key]:
            recipe[key] = str(resolve_data_path(recipe[key], base=path.parent))
    init = recipe.get("init")
    if isinstance(init, str) and init and not init.startswith("@"):
        recipe["init"] = str(path.parent / Path(init).expanduser())
    return recipe


def resolve_data_path(text: str, base: Path = Path(".")) -> Path:
    """``@samples/x`` names the data shipped with vqtok; other relative paths are taken from ``base``."""
    if text == "@samples" or text.startswith("@samples/"):
        return SAMPLES_DIR / text[len("@samples/") :]
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # "~name/...": no such user
        raise UsageError(f"{text}: no home folder for {text.split('/')[0]!r}") from None
    return path if path.is_absolute() else base / path


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``kind`` and convert where it is lossless (int -> float)."""
    origin = typing.get_origin(kind)
    if origin is list:
        (item,) = typing.get_args(kind)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{where} must be a list, got {value!r}")
        return [_coerce(v, item, where) for v in value]
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(kind):
            if option is type(None) and value is None:
                return None
            try:
                return _coerce(value, option, where)
            except UsageError:
                pass
        raise UsageError(f"{where} has the wrong type: {value!r}")
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is bool and isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    raise UsageError(f"{where} must be {getattr(kind, '__name__', kind)}, got {value!r}")


def build_section(cls: type, values: dict, section: str) -> Any:
    """A dataclass instance from ``values``; unknown keys and wrong types are usage errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UsageError(f"unknown key {section}.{unknown[0]}; known keys of [{section}]: {', '.join(sorted(names))}")
    return cls(**{k: _coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()})


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _nest(key: str, value: Any) -> dict:
    parts = key.split(".")
    node: dict = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        node = {part: node}
    return node


def layered(
    recipe: dict | None = None, overrides: list[str] = (), flags: dict | None = None, defaults: dict | None = None
) -> dict:
    """``defaults``, then the recipe, then ``key=value`` overrides, then the flags that are not None,
    merged into one nested dict (later layers win)."""
    layers = [(defaults or {}, "the defaults"), (recipe or {}, "the recipe")]
    layers += [(_nest(*parse_override(o)), f"the override {o}") for o in overrides]
    layers += [(_nest(k, v), "the flags") for k, v in (flags or {}).items() if v is not None]
    user: dict = {}
    for layer, source in layers:
        user = _merge(user, current_names(layer, source, warn_renamed))
    return user


TOP_LEVEL = ("modality", "data", "about", "init")  # a run's settings outside the sections: text


def _check_shape(user: dict) -> None:
    """Top-level settings are text and everything else is a section (a table of settings): a recipe's
    ``modality = {...}`` or an override ``model=3`` is a usage error, not a crash further on."""
    for key, value in user.items():
        if key in TOP_LEVEL and not isinstance(value, str):
            raise UsageError(f"{key} must be text, got {value!r}")
        if key not in TOP_LEVEL and not isinstance(value, dict):
            raise UsageError(
                f"{key} is a section of settings ([{key}] in a recipe, {key}.KEY=VALUE on the "
                f"command line), got {value!r}"
            )
