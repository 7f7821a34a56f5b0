"""A second plugin that also claims the ``image`` modality name: vqtok must refuse to guess."""

import vqtok
from vqtok_image import ImageModality


class CopycatImage(ImageModality):
    description = "another image modality under the same name"


@vqtok.hookimpl
def vqtok_modalities():
    return [CopycatImage()]
