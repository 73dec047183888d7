"""How far can a per-pixel colour map take the source towards the target? A paired oracle.

``benchmarks/rescan.py`` renders the source's own bags with the target's scanners: pairs of images
of the same bags, one per scanner. This script resamples each rescanned image to its source
image's size (Lanczos), fits a per-pixel map from the source's colours to the rescanned ones (the
architecture of cyclegan's ``pointwise`` term: 1x1 convolutions 3 -> ``--width`` -> ``--width``
-> 3, leaky ReLU 0.2; L1 loss, so a noisy target colour gives its median, not a washed-out mean),
applies it to the ``--limit`` source images ``cyclegan_stats.py`` translates (every ``--every``-th)
and prints one JSON object with ``cyclegan_stats.py``'s statistics of the source, the mapped
images, the rescanned bags and the target, and the fit's L1 on held-out pairs (every fifth image
is held out of the fit; the other view of its bag may be in it). A Cycle-GAN learns without
pairs; this says what the colour map alone could give if it were learnt perfectly. Bad input: one-line error, exit 2.

    python benchmarks/colour_map_oracle.py --source SRC --rescan RESCAN --target TGT \\
        [--limit 40] [--every 4] [--steps 2000] [--width 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cyclegan_stats import summary
from image_stats import image_paths
from rescan import source_name


def pairs(source: Path, rescan: Path) -> list[tuple[Path, Path]]:
    """(source image, rescanned image) for every image of ``rescan/images`` (named
    ``<bag>_<source stem>.png`` by rescan.py)."""
    src = {p.name: p for p in image_paths(source, 10**9)}
    out = [(src[source_name(q)], q) for q in image_paths(rescan, 10**9) if source_name(q) in src]
    if not out:
        raise ValueError(f"{rescan}: no image pairs with {source} (expected rescan.py's <bag>_<stem>.png names)")
    return out


def pixels(pair: tuple[Path, Path]) -> tuple[np.ndarray, np.ndarray]:
    a = Image.open(pair[0]).convert("RGB")
    b = Image.open(pair[1]).convert("RGB").resize(a.size, Image.LANCZOS)
    x, y = (np.asarray(im, np.float32).reshape(-1, 3) / 127.5 - 1.0 for im in (a, b))
    return x, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, required=True)
    ap.add_argument("--rescan", type=Path, required=True, help="rescan.py's output for the source")
    ap.add_argument("--target", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8192)
    ap.add_argument("--kid-subsets", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    try:
        if min(a.limit - 1, a.every, a.steps, a.width, a.batch, a.kid_subsets, a.threads) < 1:
            raise ValueError("--limit at least 2; --every, --steps, --width, --batch, --kid-subsets and --threads "
                             "at least 1")
        import torch
        from torch import nn

        torch.set_num_threads(a.threads)
        torch.manual_seed(0)
        ps = pairs(a.source, a.rescan)
        fit = [pixels(p) for i, p in enumerate(ps) if i % 5]
        held = [pixels(p) for i, p in enumerate(ps) if not i % 5] or fit[:1]
        x = torch.from_numpy(np.concatenate([f[0] for f in fit]))
        y = torch.from_numpy(np.concatenate([f[1] for f in fit]))
        w = a.width
        net = nn.Sequential(nn.Linear(3, w), nn.LeakyReLU(0.2), nn.Linear(w, w), nn.LeakyReLU(0.2), nn.Linear(w, 3))
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.steps)
        rng = np.random.default_rng(0)
        for _ in range(a.steps):
            k = torch.from_numpy(rng.integers(0, len(x), a.batch))
            loss = (net(x[k]) - y[k]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            hx, hy = (torch.from_numpy(np.concatenate([h[i] for h in held])) for i in (0, 1))
            l1 = {"identity": float((hx - hy).abs().mean()), "map": float((net(hx).clamp(-1, 1) - hy).abs().mean())}
            folder = Path(tempfile.mkdtemp(prefix="xraybag-oracle-"))
            scored = image_paths(a.source, 10**9)[:: a.every][: a.limit]
            mapped = []
            for p in scored:
                rgb = np.asarray(Image.open(p).convert("RGB"), np.float32) / 127.5 - 1.0
                out = net(torch.from_numpy(rgb.reshape(-1, 3))).clamp(-1, 1).numpy().reshape(rgb.shape)
                q = folder / p.name
                Image.fromarray(np.round((out + 1.0) * 127.5).astype(np.uint8)).save(q)
                mapped.append(q)
        target = image_paths(a.target, 10**9)
        sets = {"source": scored, "mapped": mapped,
                "rescanned": [q for _, q in ps], "target": target}
        out = {"pairs": len(ps), "held_out_l1": l1,
               **{k: summary(v, target if k != "target" else None, a.kid_subsets, a.threads) for k, v in sets.items()}}
    except (ValueError, OSError) as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
