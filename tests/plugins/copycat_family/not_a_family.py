"""A plugin whose ``vqtok_families`` hook breaks the contract: it returns a name, not a Family subclass."""

import vqtok


@vqtok.hookimpl
def vqtok_families():
    return ["fsq"]
