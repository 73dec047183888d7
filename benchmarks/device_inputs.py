"""Prepare what ``benchmarks/device_check.sh`` needs on a GPU host that has neither pybullet nor
spekpy (nor internet): the packed bag of ``checked_ct`` as a concrete scene (objects posed, so
rendering it packs nothing), and every spekpy spectrum the check asks for, recorded
(``XRAYBAG_SPECTRA_DIR``, see :mod:`xraybag.materials.spectra`). ``make device-inputs`` runs it
and downloads the wheels of the packages that host lacks.

    python benchmarks/device_inputs.py [--out .device-inputs]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=HERE.parent / ".device-inputs")
    args = ap.parse_args()
    spectra = args.out / "spectra"
    os.environ["XRAYBAG_SPECTRA_DIR"] = str(spectra)  # before any spectrum is made

    from xraybag.engine.output.export import export_bag
    from xraybag.materials.library import default_library
    from xraybag.materials.spectra import energy_grid_and_photons
    from xraybag.scenes.loader import load_scene
    from xraybag.scenes.models import CT, Scanner

    loaded = load_scene("checked_ct")
    export_bag(loaded, 0, args.out, yaml=args.out / "checked_ct_bag0.yaml", glb=args.out / "checked_ct_bag0.glb",
               png=args.out / "checked_ct_bag0.png")
    scenes = [args.out / "checked_ct_bag0.yaml", HERE / "bag30.yaml"]
    for scene in scenes:  # every scanner's spectrum
        loaded = load_scene(str(scene))
        for s in loaded.spec.scanners:
            energy_grid_and_photons(s.spectrum, loaded.library)
    # the scanners of the gpu tests: tests/test_ct_forward_cuda.py and tests/ct_cuda_scenes.py (CT),
    # tests/test_detect_cuda.py (radiographs)
    for scanner in (Scanner(name="ct", type="ct", ct=CT(mode="dual_layer")),
                    Scanner.model_validate({"name": "v", "type": "radiograph"}),
                    Scanner.model_validate({"name": "v", "type": "radiograph", "spectrum": {"kvp": 160}})):
        energy_grid_and_photons(scanner.spectrum, default_library())
    print(json.dumps({"scenes": [str(s) for s in scenes], "spectra": sorted(p.name for p in spectra.glob("*.npz"))}))


if __name__ == "__main__":
    main()
