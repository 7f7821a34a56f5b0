"""A plugin whose family claims the built-in name ``vqvae``: vqtok must refuse to guess which one."""

from vqtok_fsq import FSQ

import vqtok


class CopycatVQVAE(FSQ):
    name = "vqvae"
    description = "an FSQ model under the name of the built-in VQ-VAE"


@vqtok.hookimpl
def vqtok_families():
    return [CopycatVQVAE]
