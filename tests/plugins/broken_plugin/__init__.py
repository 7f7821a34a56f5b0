"""A plugin that fails to import, as plugins with a missing dependency do."""

import a_module_that_does_not_exist  # noqa: F401
