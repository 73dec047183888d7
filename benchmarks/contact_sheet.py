"""A contact sheet: the first N top-view images of a rendered dataset in a grid, as one PNG.

Usage::

    python benchmarks/contact_sheet.py DATASET OUT.png [--n 16] [--view top] [--cols 4] [--width 1600]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw


def sheet(dataset: Path, n: int, view: str, cols: int, width: int) -> Image.Image:
    paths = sorted((dataset / "images").glob(f"*_{view}.png"))[:n]
    if not paths:
        raise SystemExit(f"no images/*_{view}.png in {dataset}")
    cell = width // cols
    tiles = []
    for p in paths:
        im = Image.open(p).convert("RGB")
        im.thumbnail((cell - 8, cell - 8))
        tiles.append((p.stem, im))
    rows = -(-len(tiles) // cols)
    height = max(t.height for _, t in tiles) + 22
    out = Image.new("RGB", (cols * cell, rows * height), "white")
    draw = ImageDraw.Draw(out)
    for k, (name, t) in enumerate(tiles):
        x, y = (k % cols) * cell + 4, (k // cols) * height + 18
        out.paste(t, (x, y))
        draw.text((x, y - 15), name, fill=(60, 60, 60))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--view", default="top")
    ap.add_argument("--cols", type=int, default=4)
    ap.add_argument("--width", type=int, default=1600)
    a = ap.parse_args()
    sheet(a.dataset, a.n, a.view, a.cols, a.width).save(a.out, optimize=True)
    print(a.out)


if __name__ == "__main__":
    main()
