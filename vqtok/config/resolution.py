"""Resolving a run's configuration: defaults, the modality's, a fine-tuned model's, the recipe, overrides and
flags, in that order, into one validated :class:`RunConfig`; and reading one back from a model file."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError, VqtokError
from .parsing import _check_shape, _merge, build_section, layered, parse_override
from .renamed import current_names, warn_renamed
from .schema import AdversarialConfig, ModelConfig, RunConfig, TrainConfig


def resolve(
    recipe: dict | None = None,
    overrides: list[str] = (),
    flags: dict | None = None,
    get_modality=None,
    get_family=None,
) -> RunConfig:
    """Merge defaults, the modality's defaults, a recipe, overrides and flags into a ``RunConfig``.

    ``flags`` holds explicit CLI values such as ``{"modality": "audio", "train.steps": 100}``; None
    values are ignored. ``get_modality(name)`` returns the plugin's modality object and
    ``get_family(arch)`` the family class (default: the installed plugins').
    """
    user = layered(recipe, overrides, flags)
    _check_shape(user)
    if user.get("init"):
        from ..train.finetune import inherited_settings  # reads a model file: only when fine-tuning

        base = inherited_settings(user["init"])
        if user.get("modality") not in (None, base.get("modality")):
            raise UsageError(
                f"init {user['init']}: its modality is {base.get('modality')}; this run's is {user['modality']}"
            )
        arch = user.get("model", {}).get("arch")
        if arch and arch != base.get("model", {}).get("arch"):  # another family: none of its options
            base.pop(base["model"]["arch"], None)
        user = _merge(base, user)
    name = user.pop("modality", None)
    if not name:
        raise UsageError("no modality given: pass --modality NAME or set modality in the recipe")
    modality = get_modality(name)
    data, about, init = user.pop("data", ""), user.pop("about", ""), user.pop("init", "")
    about = _with_changes(about, recipe or {}, overrides, flags or {})
    defaults = current_names(modality.default_overrides(), f"the {name} modality's defaults", warn_renamed)
    arch = user.get("model", {}).get("arch") or defaults.get("model", {}).get("arch") or ModelConfig.arch
    if not isinstance(arch, str):
        raise UsageError(f"model.arch must be a family name, got {arch!r}")
    family = (get_family or _installed_family)(arch)
    sections = {
        "model": ModelConfig,
        "train": TrainConfig,
        "adversarial": AdversarialConfig,
        name: modality.config_class,
    }
    if family.config_class is not None:
        sections[arch] = family.config_class
    unknown = sorted(set(user) - set(sections))
    if unknown:
        hint = f"; known: modality, data, about, init, {', '.join(sections)}"
        if _is_family(unknown[0], get_family or _installed_family):
            hint = (
                f"; [{unknown[0]}] holds the options of model.arch {unknown[0]!r}, and this run's "
                f"model.arch is {arch!r}"
            )
        raise UsageError(f"unknown section or key {unknown[0]!r}{hint}")
    built = {
        section: build_section(cls, _merge(defaults.get(section, {}), user.get(section, {})), section)
        for section, cls in sections.items()
    }
    config = RunConfig(
        name, data, built[name], built["model"], built["train"], built.get(arch), about, init, built["adversarial"]
    )
    validate(config)
    return config


NOT_A_CHANGE = ("modality", "init", "about", "train.device", "train.workers")  # settings that leave the model as it is


def _with_changes(about: str, recipe: dict, overrides: list[str], flags: dict) -> str:
    """A recipe's ``about`` with the settings this run gives otherwise named after it, e.g. "IWAE (k = 50)
    ... (changed from the recipe: vae.iw_samples=5)": the words describe the recipe, and the model file
    keeps them. An ``about`` given on the command line is kept as given."""
    given = dict([parse_override(o) for o in overrides] + [(k, v) for k, v in flags.items() if v is not None])
    if not about or "about" in given:
        return about
    changed = [f"{k}={v}" for k, v in given.items() if k not in NOT_A_CHANGE and not _same(recipe, k, v)]
    return f"{about} (changed from the recipe: {', '.join(changed)})" if changed else about


def _same(recipe: dict, key: str, value) -> bool:
    """Whether ``recipe`` sets the dotted ``key`` to ``value`` (``data``: the same folder)."""
    node = recipe
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if key == "data" and isinstance(node, str):
        return Path(node).resolve() == Path(str(value)).resolve()
    return node == value


def _is_family(name: str, get_family) -> bool:
    try:
        get_family(name)
        return True
    except VqtokError:
        return False


def _installed_family(arch: str):
    from ..plugin.registry import get_family

    return get_family(arch)


def from_dict(d: dict, get_modality, get_family=None) -> RunConfig:
    """Rebuild the ``RunConfig`` stored in a model file or checkpoint (old setting names read as today's)."""
    d = current_names(d)
    name = d["modality"]
    modality = get_modality(name)
    model = build_section(ModelConfig, d["model"], "model")
    family = (get_family or _installed_family)(model.arch)
    options = None
    if family.config_class is not None:
        options = build_section(family.config_class, d.get(model.arch, {}), model.arch)
    return RunConfig(
        name,
        d.get("data", ""),
        build_section(modality.config_class, d.get(name, {}), name),
        model,
        build_section(TrainConfig, d["train"], "train"),
        options,
        d.get("about", ""),
        d.get("init", ""),
        build_section(AdversarialConfig, d.get("adversarial", {}), "adversarial"),
    )


def validate(c: RunConfig) -> None:
    """What the sections cannot check alone (each checks its own values when built)."""
    if not c.model.strides:
        raise UsageError("model.strides must be a non-empty list of positive integers")
