"""A second plugin that also claims the ``image`` modality name: vqtok must refuse to guess."""

from vqtok_image import ImageModality

import vqtok


class CopycatImage(ImageModality):
    description = "another image modality under the same name"


@vqtok.hookimpl
def vqtok_modalities():
    return [CopycatImage()]
