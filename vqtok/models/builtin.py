"""The built-in model families, registered through the ``vqtok_families`` hook like a plugin's."""

from ..plugin.hookspecs import hookimpl


@hookimpl
def vqtok_families():
    from .vae import CVAE, VAE
    from .vqvae import VQVAE
    from .vqvae2 import VQVAE2

    return [VQVAE, VQVAE2, VAE, CVAE]
