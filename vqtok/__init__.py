"""vqtok: train image and audio tokenizers (VQ-VAE and friends) and turn files into tokens and back.

Python API::

    import vqtok
    tok = vqtok.load("speech.safetensors")
    codes = tok.encode("speech.wav")        # numpy array, (n_q, T) for audio
    x = tok.decode(codes)                    # torch tensor, (C, T)
"""

__version__ = "0.1.0"

from .hookspecs import hookimpl  # noqa: E402  (plugins write @vqtok.hookimpl)


def load(path, device: str = "cpu"):
    """Load a model file as a :class:`vqtok.tokenizer.Tokenizer`."""
    from .tokenizer import Tokenizer

    return Tokenizer.load(path, device=device)


__all__ = ["__version__", "hookimpl", "load"]
