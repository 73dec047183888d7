"""The random streams of a bag: one home for every one of them.

Every random draw of bag ``index`` of a scene with seed ``seed`` comes from its own generator,
:func:`bag_rng` ``(seed, index, stream)``, so that changing one stage (or one object) never shifts
the draws of another, and any stage can be rerun alone (``validate`` packs with the same stream as
``render``; ``pack`` exports the bag ``render`` makes). The streams:

=====================  =======================================================================
``k`` (0, 1, ...)      the ``k``-th object entry of the scene file (its distributions, repeats)
``STREAM_BAG``         the bag, packing and annotation settings
``STREAM_SCANNERS``    the scanners' settings
``STREAM_PACK``        the packer
``STREAM_SHEETS``      where sheets land and how they drape
``STREAM_NOISE + v``   the detector noise of view ``v``
=====================  =======================================================================
"""

from __future__ import annotations

import numpy as np

STREAM_BAG = 1_000_001
STREAM_SCANNERS = 1_000_002
STREAM_PACK = 1_000_003
STREAM_SHEETS = 1_000_004
STREAM_NOISE = 2_000_000  # + view number

__all__ = ["STREAM_BAG", "STREAM_NOISE", "STREAM_PACK", "STREAM_SCANNERS", "STREAM_SHEETS", "bag_rng"]


def bag_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """The generator of one random stream of one bag."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), int(stream)]))
