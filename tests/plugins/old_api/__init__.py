"""A plugin written for hook API 1, which this vqtok no longer offers: it must be refused, saying so."""

import vqtok

VQTOK_HOOK_API = 1


@vqtok.hookimpl
def vqtok_modalities():
    return []
