"""Named, independent random streams from one root seed.

``streams = RandomStreams(seed)``; ``streams["failures"]`` is a :class:`numpy.random.Generator`
seeded from ``SeedSequence(seed, spawn_key=(crc32(name),))``. Each stream depends only on the
root seed and its own name, so adding a stream never changes the draws of another, and the same
seed gives the same draws in any process (no global RNG, no hash randomisation).
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["RandomStreams"]


class RandomStreams:
    def __init__(self, seed: int) -> None:
        if seed < 0:
            raise ValueError("seed must be >= 0")
        self.seed = int(seed)
        self._streams: dict[str, np.random.Generator] = {}

    def __getitem__(self, name: str) -> np.random.Generator:
        gen = self._streams.get(name)
        if gen is None:
            key = zlib.crc32(name.encode("utf-8"))
            gen = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(key,)))
            self._streams[name] = gen
        return gen
