"""Building blocks shared by every model family: conv stacks for 1-D signals and 2-D maps."""
