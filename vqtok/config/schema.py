"""The sections of a run's configuration as typed dataclasses, with their defaults and value checks."""

from __future__ import annotations

import dataclasses
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
MAX_CODEBOOK = 2**20  # entries per codebook: beyond this its tables would not fit a machine's memory


@dataclass
class ModelConfig:
    """Architecture of the autoencoder and its quantizer."""

    arch: str = "vqvae"  # model family: vqvae, vqvae2, vae, cvae, or a plugin's (see `vqtok plugins`)
    width: int = 64  # channels of the first conv layer; doubles after each stride, up to max_width
    max_width: int = 256
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
        _check(
            [
                (self.codebook_update in ("ema", "loss"), "model.codebook_update must be 'ema' or 'loss'"),
                (2 <= self.codebook_size <= MAX_CODEBOOK, f"model.codebook_size must lie in [2, {MAX_CODEBOOK}]"),
                (1 <= self.n_q <= 64, "model.n_q must lie in [1, 64]"),
                (0.0 <= self.quantizer_dropout <= 1.0, "model.quantizer_dropout must lie in [0, 1]"),
                (
                    min(self.latent_dim, self.width, self.max_width) >= 1,
                    "model.latent_dim, width and max_width must be positive",
                ),
                (
                    self.res_blocks >= 0 and self.kmeans_iters >= 0,
                    "model.res_blocks and kmeans_iters must not be negative",
                ),
                (
                    self.beta >= 0 and self.dead_code_threshold >= 0,
                    "model.beta and dead_code_threshold must not be negative",
                ),
                (0.0 < self.ema_decay < 1.0, "model.ema_decay must lie in (0, 1)"),
                (all(s >= 1 for s in self.strides), "model.strides must be positive"),
            ]
        )

    @property
    def channels(self) -> int:
        """Deprecated (hook API 2.2): :attr:`width`."""
        return renamed_attribute(self, "channels", "width")

    @property
    def max_channels(self) -> int:
        """Deprecated (hook API 2.2): :attr:`max_width`."""
        return renamed_attribute(self, "max_channels", "max_width")


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
        _check(
            [
                (self.steps >= 1, "train.steps must be at least 1"),
                (self.batch_size >= 1, "train.batch_size must be at least 1"),
                (self.lr > 0, "train.lr must be positive"),
                (
                    self.warmup_steps >= 0 and self.grad_clip >= 0,
                    "train.warmup_steps and grad_clip must not be negative",
                ),
                (self.lr_decay in ("none", "cosine"), "train.lr_decay must be 'none' or 'cosine'"),
                (
                    self.checkpoint_every >= 1 and self.log_every >= 1,
                    "train.checkpoint_every and log_every must be >= 1",
                ),
                (
                    re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device) is not None,
                    f"train.device {self.device!r}: use auto, cpu, cuda or cuda:N",
                ),
                (
                    self.workers == "auto" or (isinstance(self.workers, int) and self.workers >= 0),
                    f'train.workers {self.workers!r}: use a count of 0 or more, or "auto"',
                ),
                (
                    self.channels_last in ("auto", True, False),
                    f'train.channels_last {self.channels_last!r}: use true, false or "auto"',
                ),
            ]
        )


@dataclass
class AdversarialConfig:
    """An optional adversarial loss (:mod:`vqtok.adversarial`): a discriminator from the modality learns
    to tell originals from reconstructions, and the autoencoder learns to fool it. Off by default."""

    weight: float = 0.0  # weight of the generator's hinge loss; 0 with feature_weight 0: no discriminator
    feature_weight: float = 0.0  # weight of feature matching (relative L1 between the discriminator's features)
    start_step: int = 0  # steps of the reconstruction loss alone before the discriminator joins
    lr: float = 3e-4  # the discriminator's Adam rate (with train.lr's warm-up and decay)
    width: int = 32  # channels of the discriminator's first layer

    def __post_init__(self):
        _check(
            [
                (
                    min(self.weight, self.feature_weight, self.start_step) >= 0,
                    "adversarial.weight, feature_weight and start_step must not be negative",
                ),
                (self.lr > 0 and self.width >= 1, "adversarial.lr and adversarial.width must be positive"),
            ]
        )

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


def renamed_attribute(obj: Any, old: str, new: str) -> Any:
    """``obj.new``, for code that still reads it as ``obj.old`` (a plugin written for an older hook API)."""
    warnings.warn(f"{type(obj).__name__}.{old} is now called {new}", DeprecationWarning, stacklevel=3)
    return getattr(obj, new)


def _check(checks: list[tuple[bool, str]]) -> None:
    for ok, message in checks:
        if not ok:
            raise UsageError(message)
