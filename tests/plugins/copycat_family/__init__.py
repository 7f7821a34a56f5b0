"""A plugin whose family claims the built-in name ``vqvae``: vqtok must refuse to guess which one."""

import vqtok
from vqtok_fsq import FSQ


class CopycatVQVAE(FSQ):
    name = "vqvae"
    description = "an FSQ model under the name of the built-in VQ-VAE"


@vqtok.hookimpl
def vqtok_families():
    return [CopycatVQVAE]
