"""vqtok: train image and audio tokenizers (VQ-VAE and friends) and turn files into tokens and back.

Python API::

    import vqtok
    tok = vqtok.load("speech.safetensors")
    codes = tok.encode("speech.wav")        # numpy array, (n_q, T) for audio
    x = tok.decode(codes)                    # torch tensor, (C, T)
    x = tok.sample(4, label="7")             # (4, C, *S), through the prior for vqvae/vqvae2
"""

__version__ = "0.1.0"

from .plugin.hookspecs import hookimpl  # noqa: E402  (plugins write @vqtok.hookimpl)


def load(path, device: str = "cpu", prior=None):
    """Load a model file as a :class:`vqtok.codec.Tokenizer`, with the prior stored in it or the
    separate prior file ``prior`` (``vqtok train-prior -o``). ``path`` may name a shipped model:
    ``vqtok.load("@audio")``."""
    from .codec import Tokenizer
    from .plugin.defaults import model_path

    return Tokenizer.load(model_path(path), device=device, prior=prior)


__all__ = ["__version__", "hookimpl", "load"]
