"""Every catalog entry packs into a bag and shows in a rendered view (a coarse top view at 4 mm):
the packer places it, and its object covers pixels of the instance map. Garments (sheets) are
draped over the others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xraybag.scenes.catalog import CATALOG

NAMES = sorted(CATALOG)
CHUNK = 8


@pytest.mark.parametrize("start", range(0, len(NAMES), CHUNK))
def test_entries_pack_and_render(start):
    from xraybag.engine.output.pipeline import render_bag
    from xraybag.scenes.loader import load_scene_data
    from xraybag.scenes.yamlsrc import SourceMap

    names = NAMES[start:start + CHUNK]
    data = {
        "seed": start, "bag": {"size": [1000, 600, 300], "wall": {"thickness": 0}},
        "objects": [{"name": n, "template": n} for n in names],
        "packing": {"method": "physics", "attempts": 300},
        "scanners": [{"name": "top", "type": "line_scan", "view": "vertical", "pitch": 4.0, "noise": False}],
        "tolerance": 0.2,
    }
    loaded = load_scene_data(data, SourceMap("catalog entries"), Path.cwd(), check_files=False)
    result = render_bag(loaded, 0)
    assert result.pack_report.left_out == [], result.pack_report.left_out
    view = result.views[0]
    shown = set(np.unique(view.instance).tolist())
    for k, name in enumerate(names, start=1):
        assert k in shown, f"{name} covers no pixel"
