"""One page of ``xraybag catalog show NAME --preview`` images: a top view of one sample of every
catalog entry of the given families (and the bag shells), through the default scanner.

Usage::

    python benchmarks/catalog_previews.py docs/catalog_previews.png [--families clutter electronics ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    from xraybag.engine.output.preview import catalog_sheet
    from xraybag.scenes.catalog import CATALOG
    from xraybag.scenes.catalog.bags import SHELLS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--families", nargs="*", default=None, help="catalog families (default: all)")
    ap.add_argument("--shells", action="store_true", help="add the bag shells")
    ap.add_argument("--cols", type=int, default=10)
    ap.add_argument("--tile", type=int, default=200)
    ap.add_argument("--pitch", type=float, default=1.0)
    a = ap.parse_args()
    names = [n for n, e in CATALOG.items() if a.families is None or e.family in a.families]
    if a.shells:
        names += list(SHELLS)
    t = time.perf_counter()
    catalog_sheet(names, a.out, tile=a.tile, cols=a.cols, pitch=a.pitch)
    print(f"{a.out}: {len(names)} entries in {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
