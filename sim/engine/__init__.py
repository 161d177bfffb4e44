"""The SimPy engine (the only layer that imports SimPy, with the runner that drives it)."""
