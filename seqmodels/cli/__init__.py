"""The command-line entry points: thin Hydra mains that parse a config, instantiate, call."""
