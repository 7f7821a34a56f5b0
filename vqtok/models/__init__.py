"""Model families. Each family is an ``nn.Module`` built from a :class:`vqtok.config.RunConfig`."""
