"""Render a dataset's bags again with another scene's scanners: the same packed bags, as another
machine would show them.

For image translation between two scanners (``cyclegan``) this is the reference a perfect
translation would reach: the source's own bags seen by the target's scanner. Each concrete scene
of ``DATASET/scenes/`` (every ``--every``-th from the ``--start``-th, at most ``--limit``) gets
the ``scanners`` of ``SCANNERS_FROM`` (a scene file; its first bag's concrete scene is taken when
it is a dataset) and
is rendered with ``xraybag render`` into ``OUT/<bag>/``; the images are also linked flat into
``OUT/images/`` for ``image_stats.py`` and ``cyclegan_stats.py --reference``. Bad input: one-line
error, exit 2.

    python benchmarks/rescan.py DATASET SCANNERS_FROM -o OUT [--limit 20] [--every 4] [--start 0]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import yaml


def source_name(rescanned: Path) -> str:
    """The source image's file name of a rescanned image (this script names them ``<bag>_<name>``)."""
    return rescanned.name.split("_", 1)[1] if "_" in rescanned.name else rescanned.name


def scanners_of(path: Path) -> list:
    if path.is_dir():
        scenes = sorted((path / "scenes").glob("*.yaml"))
        if not scenes:
            raise ValueError(f"{path}: a dataset folder without scenes/")
        path = scenes[0]
    spec = yaml.safe_load(path.read_text())
    if not isinstance(spec, dict) or not spec.get("scanners"):
        raise ValueError(f"{path}: no scanners")
    return spec["scanners"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("scanners_from", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--start", type=int, default=0, help="index of the first scene taken")
    a = ap.parse_args()
    try:
        if a.limit < 1 or a.every < 1 or a.start < 0:
            raise ValueError("--limit and --every must be at least 1, --start at least 0")
        scenes = sorted((a.dataset / "scenes").glob("*.yaml"))[a.start :: a.every][: a.limit]
        if not scenes:
            raise ValueError(f"{a.dataset}: no scenes/*.yaml (not an xraybag dataset)")
        scanners = scanners_of(a.scanners_from)
        if a.out.exists() and any(a.out.iterdir()):
            raise ValueError(f"{a.out}: exists and is not empty")
    except (ValueError, OSError, yaml.YAMLError) as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    xraybag = str(Path(sys.executable).with_name("xraybag"))
    if not Path(xraybag).is_file():
        xraybag = shutil.which("xraybag") or "xraybag"
    (a.out / "scenes").mkdir(parents=True)
    (a.out / "images").mkdir()
    for scene in scenes:
        spec = yaml.safe_load(scene.read_text())
        spec["scanners"] = scanners
        path = a.out / "scenes" / scene.name
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        dest = a.out / scene.stem
        r = subprocess.run([xraybag, "render", str(path), "-o", str(dest), "-q"],
                           capture_output=True, text=True, check=False)
        if r.returncode:
            print(f"error: {scene.name}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}",
                  file=sys.stderr)
            sys.exit(2)
        for img in sorted((dest / "images").glob("*.png")):
            (a.out / "images" / f"{scene.stem}_{img.name}").symlink_to(img.resolve())
    print(f"{len(scenes)} bags in {a.out}")


if __name__ == "__main__":
    main()
