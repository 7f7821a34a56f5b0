"""vqtok-example-mel: the plugin that docs/plugins.md writes step by step.

A ``mel`` modality: sound files become log-mel spectrograms, ``(1, n_mels, frames)`` maps in [-1, 1] with a
time axis of ``sample_rate / hop_length`` frames per second, which vqtok trains on, encodes and decodes
like any other 2-D data. Decoding writes the spectrogram as an array (``.npy``), a picture (``.png``), or
sound (``.wav``, by Griffin-Lim phase reconstruction: intelligible, not hi-fi).
"""

import vqtok

from .modality import MelModality, MelOptions

VQTOK_HOOK_API = 2  # the hook API this plugin was written for: another major version refuses it, saying so

__all__ = ["MelModality", "MelOptions", "vqtok_modalities"]


@vqtok.hookimpl
def vqtok_modalities():
    return [MelModality()]
