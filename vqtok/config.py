"""Typed run configuration: defaults, TOML recipes and ``key=value`` overrides, validated with clear errors.

A recipe is a TOML file::

    # vqtok train --recipe recipes/quickstart-audio.toml -o speech.safetensors
    modality = "audio"
    data = "@samples/speech"      # relative to the recipe; "@samples/..." = data shipped with vqtok

    [audio]                       # the modality's own options (its ``config_class``)
    sample_rate = 8000

    [model]
    codebook_size = 256

    [train]
    steps = 600

Precedence, lowest first: built-in defaults, the modality's defaults, the settings of the model a
fine-tuning run starts from (``init``, :mod:`vqtok.finetune`), the recipe, ``key=value`` overrides, then
explicit flags such as ``--steps``. Unknown keys and ill-typed values are errors.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError, VqtokError

SAMPLES_DIR = Path(__file__).parent / "samples"
MAX_CODEBOOK = 2**20  # entries per codebook: beyond this its tables would not fit a machine's memory


@dataclass
class ModelConfig:
    """Architecture of the autoencoder and its quantizer."""

    arch: str = "vqvae"  # model family: vqvae, vqvae2, vae, cvae, or a plugin's (see `vqtok plugins`)
    channels: int = 64  # width of the first conv layer; doubles after each stride, up to max_channels
    max_channels: int = 256
    res_blocks: int = 2  # residual blocks at the bottleneck resolution
    strides: list[int] = field(default_factory=list)  # empty: the modality's default
    latent_dim: int = 64  # dimension D of each code vector
    codebook_size: int = 512  # K entries per codebook
    n_q: int = 1  # residual codebooks
    quantizer_dropout: float = 0.0  # probability that a step trains with only the first 1..n_q codebooks
    beta: float = 0.25  # commitment weight
    codebook_update: str = "ema"  # "ema" (moving averages) or "loss" (codebook loss, learned by SGD)
    ema_decay: float = 0.99
    kmeans_init: bool = True  # initialise each codebook by k-means on the first batch's encodings
    kmeans_iters: int = 10
    dead_code_threshold: float = 0.1  # a code used less than this share of a uniform code's use is restarted

    def __post_init__(self):
        _check([
            (self.codebook_update in ("ema", "loss"), "model.codebook_update must be 'ema' or 'loss'"),
            (2 <= self.codebook_size <= MAX_CODEBOOK, f"model.codebook_size must lie in [2, {MAX_CODEBOOK}]"),
            (1 <= self.n_q <= 64, "model.n_q must lie in [1, 64]"),
            (0.0 <= self.quantizer_dropout <= 1.0, "model.quantizer_dropout must lie in [0, 1]"),
            (min(self.latent_dim, self.channels, self.max_channels) >= 1,
             "model.latent_dim, channels and max_channels must be positive"),
            (self.res_blocks >= 0 and self.kmeans_iters >= 0, "model.res_blocks and kmeans_iters must not be negative"),
            (self.beta >= 0 and self.dead_code_threshold >= 0, "model.beta and dead_code_threshold must not be negative"),
            (0.0 < self.ema_decay < 1.0, "model.ema_decay must lie in (0, 1)"),
            (all(s >= 1 for s in self.strides), "model.strides must be positive"),
        ])


@dataclass
class TrainConfig:
    """The optimisation loop."""

    steps: int = 2000
    batch_size: int = 16
    lr: float = 3e-4
    warmup_steps: int = 50
    lr_decay: str = "none"  # after the warm-up: "none" (constant lr) or "cosine" (down to 0 at the last step)
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast on CUDA (the codebook stays float32)
    checkpoint_every: int = 250
    log_every: int = 10
    workers: int | str = "auto"  # data-loading worker processes (0: none), or "auto": chosen from the machine
    compile: bool = False  # torch.compile the encoder and decoder networks (vqtok.speed); off: pays on GPUs only
    channels_last: bool | str = "auto"  # 2-D nets in channels_last layout; "auto": on CUDA

    def __post_init__(self):
        _check([
            (self.steps >= 1, "train.steps must be at least 1"),
            (self.batch_size >= 1, "train.batch_size must be at least 1"),
            (self.lr > 0, "train.lr must be positive"),
            (self.warmup_steps >= 0 and self.grad_clip >= 0, "train.warmup_steps and grad_clip must not be negative"),
            (self.lr_decay in ("none", "cosine"), "train.lr_decay must be 'none' or 'cosine'"),
            (self.checkpoint_every >= 1 and self.log_every >= 1, "train.checkpoint_every and log_every must be >= 1"),
            (re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device) is not None,
             f"train.device {self.device!r}: use auto, cpu, cuda or cuda:N"),
            (self.workers == "auto" or (isinstance(self.workers, int) and self.workers >= 0),
             f"train.workers {self.workers!r}: use a count of 0 or more, or \"auto\""),
            (self.channels_last in ("auto", True, False),
             f"train.channels_last {self.channels_last!r}: use true, false or \"auto\""),
        ])


@dataclass
class AdversarialConfig:
    """An optional adversarial loss (:mod:`vqtok.adversarial`): a discriminator from the modality learns
    to tell originals from reconstructions, and the autoencoder learns to fool it. Off by default."""

    weight: float = 0.0  # weight of the generator's hinge loss; 0 with feature_weight 0: no discriminator
    feature_weight: float = 0.0  # weight of feature matching (relative L1 between the discriminator's features)
    start_step: int = 0  # steps of the reconstruction loss alone before the discriminator joins
    lr: float = 3e-4  # the discriminator's Adam rate (with train.lr's warm-up and decay)
    channels: int = 32  # the discriminator's width

    def __post_init__(self):
        _check([
            (min(self.weight, self.feature_weight, self.start_step) >= 0,
             "adversarial.weight, feature_weight and start_step must not be negative"),
            (self.lr > 0 and self.channels >= 1, "adversarial.lr and adversarial.channels must be positive"),
        ])

    @property
    def enabled(self) -> bool:
        return self.weight > 0 or self.feature_weight > 0


@dataclass
class RunConfig:
    """Everything a training run needs; stored, resolved, in the model file."""

    modality: str
    data: str
    options: Any  # the modality's config_class instance
    model: ModelConfig
    train: TrainConfig
    family_options: Any = None  # the family's config_class instance (table [<model.arch>]), if it has one
    about: str = ""  # what the model is and what it was trained on, in words; `vqtok info` shows it
    init: str = ""  # a trained model file (or @MODALITY) whose weights the run starts from: fine-tuning
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)

    def to_dict(self) -> dict:
        d = {
            "modality": self.modality,
            "data": self.data,
            "about": self.about,
            "init": self.init,
            self.modality: dataclasses.asdict(self.options),
            "model": dataclasses.asdict(self.model),
            "train": dataclasses.asdict(self.train),
            "adversarial": dataclasses.asdict(self.adversarial),
        }
        if self.family_options is not None:
            d[self.model.arch] = dataclasses.asdict(self.family_options)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


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
        return SAMPLES_DIR / text[len("@samples/"):]
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
        raise UsageError(
            f"unknown key {section}.{unknown[0]}; known keys of [{section}]: {', '.join(sorted(names))}"
        )
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


def layered(recipe: dict | None = None, overrides: list[str] = (), flags: dict | None = None,
            defaults: dict | None = None) -> dict:
    """``defaults``, then the recipe, then ``key=value`` overrides, then the flags that are not None,
    merged into one nested dict (later layers win)."""
    layers = [defaults or {}, recipe or {}]
    layers += [_nest(*parse_override(o)) for o in overrides]
    layers += [_nest(k, v) for k, v in (flags or {}).items() if v is not None]
    user: dict = {}
    for layer in layers:
        user = _merge(user, layer)
    return user


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
        from .train.finetune import inherited_settings  # reads a model file: only when fine-tuning

        base = inherited_settings(user["init"])
        if user.get("modality") not in (None, base.get("modality")):
            raise UsageError(f"init {user['init']}: its modality is {base.get('modality')}; this run's is "
                             f"{user['modality']}")
        arch = user.get("model", {}).get("arch")
        if arch and arch != base.get("model", {}).get("arch"):  # another family: none of its options
            base.pop(base["model"]["arch"], None)
        user = _merge(base, user)
    name = user.pop("modality", None)
    if not name:
        raise UsageError("no modality given: pass --modality NAME or set modality in the recipe")
    modality = get_modality(name)
    data, about, init = user.pop("data", ""), user.pop("about", ""), user.pop("init", "")
    defaults = modality.default_overrides()
    arch = user.get("model", {}).get("arch") or defaults.get("model", {}).get("arch") or ModelConfig.arch
    if not isinstance(arch, str):
        raise UsageError(f"model.arch must be a family name, got {arch!r}")
    family = (get_family or _installed_family)(arch)
    sections = {"model": ModelConfig, "train": TrainConfig, "adversarial": AdversarialConfig,
                name: modality.config_class}
    if family.config_class is not None:
        sections[arch] = family.config_class
    unknown = sorted(set(user) - set(sections))
    if unknown:
        hint = f"; known: modality, data, about, init, {', '.join(sections)}"
        if _is_family(unknown[0], get_family or _installed_family):
            hint = (f"; [{unknown[0]}] holds the options of model.arch {unknown[0]!r}, and this run's "
                    f"model.arch is {arch!r}")
        raise UsageError(f"unknown section or key {unknown[0]!r}{hint}")
    built = {
        section: build_section(cls, _merge(defaults.get(section, {}), user.get(section, {})), section)
        for section, cls in sections.items()
    }
    config = RunConfig(name, data, built[name], built["model"], built["train"], built.get(arch), about, init,
                       built["adversarial"])
    validate(config)
    return config


TOP_LEVEL = ("modality", "data", "about", "init")  # a run's settings outside the sections: text


def _check_shape(user: dict) -> None:
    """Top-level settings are text and everything else is a section (a table of settings): a recipe's
    ``modality = {...}`` or an override ``model=3`` is a usage error, not a crash further on."""
    for key, value in user.items():
        if key in TOP_LEVEL and not isinstance(value, str):
            raise UsageError(f"{key} must be text, got {value!r}")
        if key not in TOP_LEVEL and not isinstance(value, dict):
            raise UsageError(f"{key} is a section of settings ([{key}] in a recipe, {key}.KEY=VALUE on the "
                             f"command line), got {value!r}")


def _is_family(name: str, get_family) -> bool:
    try:
        get_family(name)
        return True
    except VqtokError:
        return False


def _installed_family(arch: str):
    from .plugins import get_family

    return get_family(arch)


def from_dict(d: dict, get_modality, get_family=None) -> RunConfig:
    """Rebuild the ``RunConfig`` stored in a model file."""
    d = dict(d)
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


def _check(checks: list[tuple[bool, str]]) -> None:
    for ok, message in checks:
        if not ok:
            raise UsageError(message)
