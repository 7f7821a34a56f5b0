"""The family contract: what every model family, built-in or a plugin's, provides to vqtok.

A family is an ``nn.Module`` subclass of :class:`Family`. vqtok builds it as
``Family(dims, in_channels, model_config, options, n_labels)`` and then only uses the methods below,
so the training loop, ``encode``/``decode``/``sample``, the code files and ``vqtok info`` work for
every family alike. Tensors carry a batch axis: inputs ``x`` are ``(B, C, *S)`` with ``S`` a multiple
of :attr:`Family.hop` along each axis; ``labels`` are ``(B,)`` int64 class indices (conditional
families) or None.

A family's latent representation is a dict of named arrays, each ``(B, spec.depth, *S / spec.hop)``, as
described by :meth:`Family.latents`: integer codes (discrete latents) or float32 values (continuous).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..config.schema import renamed_attribute
from ..errors import VqtokError
from ..nn.conv import receptive_radius

# recon(x_hat, x) -> {"recon": scalar to minimise, ...further logged terms}: the modality's loss.
ReconLoss = Callable[[torch.Tensor, torch.Tensor], dict]


@dataclass
class LatentSpec:
    """One latent array of a family, per example ``(depth, *S / hop)``."""

    depth: int  # values per position: discrete, the number of (residual) codebooks n_q; continuous, the dimension D
    hop: int  # input elements per latent position along each axis
    codebook_sizes: list[int] | None = None  # discrete: entries of each codebook; None: continuous float32

    @property
    def discrete(self) -> bool:
        return self.codebook_sizes is not None

    @property
    def channels(self) -> int:
        """Deprecated (hook API 2.2): :attr:`depth`."""
        return renamed_attribute(self, "channels", "depth")


@dataclass
class TrainStep:
    """What one training forward pass returns."""

    x_hat: torch.Tensor  # (B, C, *S) the reconstruction, in the modality's value range
    loss: torch.Tensor  # scalar to minimise
    metrics: dict[str, torch.Tensor]  # logged: 0-d tensors, or 1-D tensors (logged as lists)


class Family(nn.Module):
    """Base class of a model family; subclasses set the class attributes and implement the methods."""

    name: ClassVar[str] = ""  # what model.arch / --arch takes
    description: ClassVar[str] = ""
    config_class: ClassVar[type | None] = None  # dataclass of options, read from the recipe's [<name>] table
    conditional: ClassVar[bool] = False  # encoder and decoder take a class label
    can_sample: ClassVar[bool] = False  # draws samples from a fixed prior (VAE); discrete ones need a learned one
    # Defines posterior(x, labels) -> (mu, logvar) and log_likelihood(x, z, labels) -> (B,) nats, so that
    # `vqtok eval` reports the ELBO and an importance-sampled NLL (the VAE and CVAE).
    has_likelihood: ClassVar[bool] = False

    hop: int  # input elements per position of the coarsest latent grid; inputs are padded to a multiple

    def __init__(self, dims: int, in_channels: int, model, options=None, n_labels: int = 0):
        super().__init__()
        if self.conditional and n_labels < 1:
            raise VqtokError(
                f"model.arch {self.name!r} is conditional and needs labelled data: put the files "
                "of each class in a sub-folder named after the class"
            )
        self.dims, self.in_channels, self.n_labels = dims, in_channels, n_labels

    # ---- required ----------------------------------------------------------------------------------
    def latents(self) -> dict[str, LatentSpec]:
        """The named latent arrays ``encode`` returns and ``decode`` takes."""
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, *, step: int = 0, recon: ReconLoss | None = None
    ) -> TrainStep:
        """One training pass over ``x`` ``(B, C, *S)``; ``step`` is the optimisation step (for warm-ups
        and schedules, and as the seed of any per-step random choice, so that every process and a resumed
        run make the same one); ``recon`` is the modality's reconstruction loss."""
        raise NotImplementedError

    def encode(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, n_q: int | None = None
    ) -> dict[str, torch.Tensor]:
        """``(B, C, *S)`` -> ``{name: (B, depth, *S / hop_name)}``; ``n_q`` keeps the first codebooks."""
        raise NotImplementedError

    def decode(self, latents: dict[str, torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        """The arrays ``encode`` returns (a residual family accepts fewer codebooks) -> ``(B, C, *S)``."""
        raise NotImplementedError

    # ---- with defaults -----------------------------------------------------------------------------
    @property
    def encoder_context(self) -> int:
        """Positions of the coarsest grid a chunk needs on each side so that chunked encoding equals
        whole encoding (1-D signals are streamed in chunks)."""
        return 0

    @property
    def decoder_context(self) -> int:
        """As :attr:`encoder_context`, for decoding."""
        return 0

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, *S)`` -> ``(B, C, *S)``, deterministic (for previews and evaluation)."""
        return self.decode(self.encode(x, labels), labels)

    def sample(
        self,
        n: int,
        grid: list[int],
        labels: torch.Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``n`` samples ``(n, C, *grid * hop)`` drawn from the prior, the latent standard deviation
        scaled by ``temperature``; ``grid`` is the coarsest latent grid."""
        raise VqtokError(f"a {self.name} model has no prior to sample from")

    def describe(self) -> dict:
        """Facts stored in the model file's ``decode`` metadata beside the latents (e.g. latent_dim)."""
        return {}

    def code_counts(self) -> dict[str, list[torch.Tensor]] | None:
        """How often each code was used in training, for discrete latents: ``{name: [(K_q,) per codebook]}``,
        non-negative, on any scale, from the weights the model file stores (so that every machine reads
        the same numbers). ``vqtok compress`` codes a model without a prior with these frequencies.
        Default None: no counts (codes are then coded at ``log2 K`` bits)."""
        return None

    @property
    def fits_binarized_data(self) -> bool:
        """Whether training fits binary draws of the data (a Bernoulli likelihood on binarized MNIST), so
        that evaluation binarizes its data too. Default False."""
        return False

    @torch.no_grad()
    def diagnose(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        """Facts measured on a batch of training data when the model is saved (e.g. active units)."""
        return {}


class ConvFamily(Family):
    """A family whose ``encoder`` maps the input to one latent grid (stride ``hop``) and whose
    ``decoder`` maps that grid back: the chunk contexts follow from their receptive fields."""

    encoder: nn.Module
    decoder: nn.Module

    @property
    def encoder_context(self) -> int:
        return int(receptive_radius(self.encoder) // self.hop) + 1

    @property
    def decoder_context(self) -> int:
        return int(receptive_radius(self.decoder, upsampling=True)) + 1
