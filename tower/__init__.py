"""Control Tower's shared core: message contract, store, configuration, command line."""
