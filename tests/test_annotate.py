"""Labels from the geometric pass: masks, boxes, occlusion ratio and difficulty."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import write
from hypothesis import given, settings
from hypothesis import strategies as st

from xraybag.engine.output.pipeline import render_bag
from xraybag.engine.xray.annotate import rle, rle_window
from xraybag.scenes.loader import load_scene


def test_occlusion_and_difficulty(tmp_path):
    scene = write(
        tmp_path / "occ.yaml",
        """
        bag: {size: [400, 300, 200], wall: {thickness: 0}}
        objects:
          - {name: alone, shape: {box: {size: [40, 40, 10]}}, material: hdpe, pose: {position: [-100, 0, 5]}, label: bottle}
          - {name: under, shape: {box: {size: [40, 40, 10]}}, material: hdpe, pose: {position: [100, 0, 5]}, label: bottle}
          - {name: plate, shape: {box: {size: [80, 80, 8]}}, material: steel, pose: {position: [100, 0, 60]}}
          - {name: half, shape: {box: {size: [40, 40, 10]}}, material: hdpe, pose: {position: [0, 80, 5]}, label: bottle}
          - {name: cover, shape: {box: {size: [20, 60, 8]}}, material: steel, pose: {position: [-10, 80, 60]}}
        scanners:
          - {name: r, type: radiograph, parallel: true, pitch: 1.0, panel: [300, 300], noise: false}
        """,
    )
    result = render_bag(load_scene(scene), 0)
    view = result.views[0]
    names = {o.index: o.name for o in result.objects}
    by_name = {names[k]: lab for k, lab in view.labels.items()}
    assert by_name["alone"].occlusion == 0 and by_name["alone"].difficulty == "easy"
    assert by_name["under"].occlusion == 1 and by_name["under"].difficulty == "hidden"
    assert 0.4 < by_name["half"].occlusion < 0.6 and by_name["half"].difficulty == "hard"
    # amodal masks: the hidden box keeps its full 40 x 40 footprint and box
    assert by_name["under"].area == 40 * 40 and by_name["under"].bbox[2:] == [40.0, 40.0]
    # the instance map shows the steel plate, not the box under it
    k_under = next(k for k, n in names.items() if n == "under")
    assert not (view.instance == k_under).any()
    k_alone = next(k for k, n in names.items() if n == "alone")
    assert (view.instance == k_alone).sum() == 40 * 40


@settings(max_examples=300, deadline=None)
@given(
    rows=st.integers(1, 9), cols=st.integers(1, 9), data=st.data(),
)
def test_rle_from_the_window_equals_pycocotools_on_the_whole_mask(rows, cols, data):
    """COCO RLE built from an object's window (runs joined across column ends, empty windows,
    windows touching every border) is pycocotools' own encoding of the full mask."""
    h = data.draw(st.integers(0, rows))
    w = data.draw(st.integers(0, cols))
    r0 = data.draw(st.integers(0, rows - h))
    c0 = data.draw(st.integers(0, cols - w))
    bits = data.draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w))
    window = np.array(bits, dtype=bool).reshape(h, w)
    full = np.zeros((rows, cols), dtype=bool)
    full[r0 : r0 + h, c0 : c0 + w] = window
    assert rle_window(window, (r0, c0), (rows, cols)) == rle(full)


def test_rle_window_refuses_a_window_outside_the_image():
    with pytest.raises(ValueError, match="does not fit"):
        rle_window(np.ones((3, 3), dtype=bool), (2, 0), (4, 4))


def test_compiled_labels_equal_the_numpy_definitions(tmp_path):
    """Masks, areas, boxes, occlusion and the instance map of a cluttered bag, against their
    definitions written with numpy over each object's window."""
    from xraybag.engine.xray.annotate import MASK_MIN_MM, label_objects

    scene = load_scene(write(tmp_path / "bag.yaml", """
        seed: 3
        bag: {size: [300, 220, 120], wall: {material: nylon, thickness: 1.5}}
        objects:
          - {name: block, repeat: 8, shape: {box: {size: [60, 40, 20]}}, material: {choice: [hdpe, aluminum, steel]}}
          - {name: rod, repeat: 6, shape: {cylinder: {radius: 6, height: 90}}, material: {choice: [water, brass]}}
        packing: {method: random, attempts: 500}
        scanners:
          - {name: top, type: line_scan, view: vertical, pitch: 2.0, noise: false}
        """))
    tr = render_bag(scene, 0).views[0].trace
    mu = np.linspace(0.01, 0.3, len(tr.materials))
    instance, labels = label_objects(tr, mu, 0.3, 0.7)
    total = tr.paths @ mu.astype(np.float32)
    best = np.zeros(total.shape, np.float32)
    ref_instance = np.zeros(total.shape, np.uint16)
    assert len(tr.objects) >= 10
    for ot in tr.objects:
        own = ot.paths @ mu[ot.materials].astype(np.float32)
        mask = ot.paths.sum(axis=2) > MASK_MIN_MM
        win = (slice(ot.r0, ot.r0 + own.shape[0]), slice(ot.c0, ot.c0 + own.shape[1]))
        take = mask & (own > best[win])
        best[win][take] = own[take]
        ref_instance[win][take] = ot.index
        if not mask.any():
            assert ot.index not in labels
            continue
        lab = labels[ot.index]
        rr, cc = np.nonzero(mask)
        assert np.array_equal(lab.window, mask) and lab.area == mask.sum()
        assert lab.bbox == [cc.min() + ot.c0, rr.min() + ot.r0, np.ptp(cc) + 1, np.ptp(rr) + 1]
        assert lab.occlusion == pytest.approx(np.mean((total[win] - own)[mask] > own[mask]), abs=1e-12)
    assert np.array_equal(instance, ref_instance)
    assert 0 < np.mean([lab.occlusion for lab in labels.values()]) < 1
