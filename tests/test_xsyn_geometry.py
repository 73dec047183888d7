"""``xsyn`` geometry against hand-computed values: IoU, small boxes and idle regions (Eq. 3), Otsu's
region and median point sampling (cross-attention refinement), latent boxes, Eq. 9's perturbation,
the occluder fusion of Eq. 5-7 (numpy and torch) and the inpainting mask. Every expected value is
worked out by hand in a comment next to it."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from xraybag.errors import XraybagError
from xraybag.learners.xsyn import geometry
from xraybag.learners.xsyn.geometry import (
    box_iou,
    edit_mask,
    filter_small,
    fuse_occluder,
    idle_regions,
    iou_matrix,
    median_points,
    otsu_region,
    otsu_threshold,
    perturb_region,
    to_latent_box,
)

# --------------------------------------------------------------------------- IoU and small boxes


def test_box_iou_hand_values():
    # overlap 1x1 = 1; union 4 + 4 - 1 = 7
    assert box_iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    # inner 2x2 = 4 inside 4x4 = 16
    assert box_iou([0, 0, 4, 4], [1, 1, 3, 3]) == pytest.approx(0.25)
    assert box_iou([0, 0, 4, 4], [0, 0, 4, 4]) == 1.0
    assert box_iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0.0
    # exclusive right edge: [0, 1) and [1, 2) only touch
    assert box_iou([0, 0, 1, 1], [1, 0, 2, 1]) == 0.0
    # zero-area union
    assert box_iou([1, 1, 1, 1], [1, 1, 1, 1]) == 0.0


def test_iou_matrix_shape_and_values():
    A = [[0, 0, 2, 2], [0, 0, 4, 4]]
    B = [[1, 1, 3, 3], [10, 10, 11, 11]]
    # row 0: 1/7 (above), 0 ; row 1: 4/16, 0
    np.testing.assert_allclose(iou_matrix(A, B), [[1 / 7, 0], [0.25, 0]])
    assert iou_matrix(np.zeros((0, 4)), B).shape == (0, 2)
    assert iou_matrix(A, []).shape == (2, 0)
    with pytest.raises(XraybagError):
        iou_matrix([[0, 0, 1]], B)


def test_filter_small():
    # image 100 x 50 = 5000 px; 0.1% -> 5 px
    boxes = [[0, 0, 1, 5], [0, 0, 2, 2], [0, 0, 10, 10]]  # areas 5, 4, 100
    assert filter_small(boxes, (100, 50), 0.001).tolist() == [True, False, True]
    assert filter_small(np.zeros((0, 4)), (100, 50), 0.001).shape == (0,)
    with pytest.raises(XraybagError):
        filter_small(boxes, (100, 50), -1)


# --------------------------------------------------------------------------- idle regions (Eq. 3)

# image 100 x 100, min_ratio 0.001 -> boxes under 10 px area are small
SEG = [
    [0, 0, 100, 100],   # 0: mask 9000, largest (background)
    [10, 10, 90, 90],   # 1: mask 5000, second largest (whole bag)
    [20, 20, 30, 30],   # 2: IoU 1 with the annotation
    [25, 20, 35, 30],   # 3: IoU with the annotation 50 / (100 + 100 - 50) = 1/3
    [60, 60, 62, 62],   # 4: box area 4 < 10: small
    [60, 60, 70, 70],   # 5: IoU 0
    [50, 50, 60, 60],   # 6: IoU 0 with the annotation, 1 with the extra box
]
AREAS = [9000, 5000, 80, 70, 4, 60, 60]
ANN = [[20, 20, 30, 30]]


def test_idle_regions_eq3():
    got = idle_regions(SEG, AREAS, ANN, 0.5, (100, 100), 0.001)
    assert got.tolist() == [3, 5, 6] and got.dtype.kind == "i"
    # d = 0.3: segment 3 (IoU 1/3) is no longer idle
    assert idle_regions(SEG, AREAS, ANN, 0.3, (100, 100), 0.001).tolist() == [5, 6]
    # footnote: also IoU < d with the added item's box
    assert idle_regions(SEG, AREAS, ANN, 0.5, (100, 100), 0.001,
                        extra_boxes=[[50, 50, 60, 60]]).tolist() == [3, 5]
    # nothing dropped by size rank: background IoU 100/10000, bag 100/6400 are both < 0.5
    assert idle_regions(SEG, AREAS, ANN, 0.5, (100, 100), 0.001,
                        drop_largest=0).tolist() == [0, 1, 3, 5, 6]
    # no annotation: only the rank and size filters
    assert idle_regions(SEG, AREAS, [], 0.5, (100, 100), 0.001).tolist() == [2, 3, 5, 6]


def test_idle_regions_ties_and_empty():
    boxes = [[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]
    # equal mask areas: the lower indices count as larger and go first
    assert idle_regions(boxes, [5, 5, 5], [], 0.5, (100, 100), 0.001).tolist() == [2]
    assert idle_regions(boxes[:2], [5, 5], [], 0.5, (100, 100), 0.001).tolist() == []
    empty = idle_regions(np.zeros((0, 4)), [], ANN, 0.5, (100, 100), 0.001)
    assert empty.shape == (0,) and empty.dtype.kind == "i"
    with pytest.raises(XraybagError):
        idle_regions(boxes, [5, 5], [], 0.5, (100, 100), 0.001)


# --------------------------------------------------------------------------- Otsu's region


def test_otsu_threshold_exact():
    # values 1, 1, 2, 8, 9, 9 (n = 6):
    #  t=1: w0 w1 = 2/6 * 4/6, means 1 and 28/4 = 7 -> 8/36 * 36 = 8
    #  t=2: w0 w1 = 1/4, means 4/3 and 26/3 -> 1/4 * (22/3)**2 = 121/9 = 13.4
    #  t=8: w0 w1 = 8/36, means 3 and 9 -> 8/36 * 36 = 8        => t = 2
    assert otsu_threshold([1, 1, 2, 8, 9, 9]) == 2.0
    # 0, 1, 2: t=0 -> 1/3 * 2/3 * 1.5**2 = 0.5; t=1 -> 2/3 * 1/3 * 1.5**2 = 0.5: the lower wins
    assert otsu_threshold([2, 0, 1]) == 0.0
    assert otsu_threshold([4, 4, 4]) is None


def test_otsu_region_inside_box_only():
    att = np.full((4, 4), 100.0)  # outside the box: high, must not count
    att[0, 0:3] = [1, 1, 2]
    att[1, 0:3] = [8, 9, 9]
    # box x 0..2, y 0..1 -> threshold 2 (above) -> the second row of the box
    want = np.zeros((4, 4), bool)
    want[1, 0:3] = True
    np.testing.assert_array_equal(otsu_region(att, [0, 0, 3, 2]), want)
    # a float box touches the same pixels: floor(0.5)=0, floor(0.2)=0, ceil(2.5)=3, ceil(1.9)=2
    np.testing.assert_array_equal(otsu_region(att, [0.5, 0.2, 2.5, 1.9]), want)


def test_otsu_region_all_equal_is_whole_box():
    att = np.zeros((3, 5))
    att[0, 0] = 7.0  # outside the box
    want = np.zeros((3, 5), bool)
    want[1:3, 2:4] = True
    np.testing.assert_array_equal(otsu_region(att, [2, 1, 4, 3]), want)
    with pytest.raises(XraybagError):
        otsu_region(att, [10, 10, 12, 12])


# --------------------------------------------------------------------------- median points

#   x:   0   1   2
ATT = np.array([[10, 70, 30],   # y 0
                [50, 0, 20],    # y 1
                [60, 40, 5]], dtype=float)  # y 2
REGION = np.ones((3, 3), bool)
REGION[1, 1] = REGION[2, 2] = False  # values 0 and 5 outside
# region sorted: 10 (0,0), 20 (2,1), 30 (2,0), 40 (1,2), 50 (0,1), 60 (0,2), 70 (1,0)
# level 1: index (7-1)//2 = 3 -> 40 at (1,2); halves [10, 20, 30] and [50, 60, 70]
# level 2: 20 at (2,1), 60 at (0,2)
# level 3: 10 (0,0), 30 (2,0), 50 (0,1), 70 (1,0)
SEVEN = [[1, 2], [2, 1], [0, 2], [0, 0], [2, 0], [0, 1], [1, 0]]


def test_median_points_three_levels():
    fg, bg = median_points(ATT, REGION, 3)
    assert fg.shape == (7, 2)
    np.testing.assert_array_equal(fg, SEVEN)
    # outside the region: 0 at (1,1) and 5 at (2,2); no box -> the global minimum
    np.testing.assert_array_equal(bg, [1, 1])
    fg1, _ = median_points(ATT, REGION, 1)
    np.testing.assert_array_equal(fg1, [[1, 2]])
    fg2, _ = median_points(ATT, REGION, 2)
    np.testing.assert_array_equal(fg2, SEVEN[:3])
    # a fourth level divides single pixels into empty halves: no new point
    fg4, _ = median_points(ATT, REGION, 4)
    np.testing.assert_array_equal(fg4, SEVEN)


def test_median_points_background_in_box():
    # box covers only pixel (2,2) (value 5): it wins over the lower 0 at (1,1) outside the box
    _, bg = median_points(ATT, REGION, 1, box=[2, 2, 3, 3])
    np.testing.assert_array_equal(bg, [2, 2])
    # box covers only (0,0), which is in the region -> fall back to all pixels outside: (1,1)
    _, bg = median_points(ATT, REGION, 1, box=[0, 0, 1, 1])
    np.testing.assert_array_equal(bg, [1, 1])


def test_median_points_n0_and_small_region():
    fg, bg = median_points(ATT, REGION, 0)
    assert fg.shape == (0, 2) and bg is None
    # region {(0,0)=10, (1,0)=70}: sorted [10, 70]; median index (2-1)//2 = 0 -> (0,0);
    # halves [] and [70] -> level 2: (1,0); level 3: nothing
    two = np.zeros((3, 3), bool)
    two[0, 0] = two[0, 1] = True
    fg, bg = median_points(ATT, two, 3)
    np.testing.assert_array_equal(fg, [[0, 0], [1, 0]])
    np.testing.assert_array_equal(bg, [1, 1])


def test_median_points_ties_by_raster_index():
    # all equal on a 2 x 3 map: sorted order is raster order 0..5 (x = i % 3, y = i // 3)
    # level 1: index (6-1)//2 = 2 -> raster 2 = (2,0); halves [0,1] and [3,4,5]
    # level 2: [0,1] -> index 0 -> raster 0 = (0,0); [3,4,5] -> index 1 -> raster 4 = (1,1)
    # level 3: [] -> none; [1] -> (1,0); [3] -> (0,1); [5] -> (2,1)
    att = np.zeros((2, 3))
    fg, bg = median_points(att, np.ones((2, 3), bool), 3)
    np.testing.assert_array_equal(fg, [[2, 0], [0, 0], [1, 1], [1, 0], [0, 1], [2, 1]])
    assert bg is None  # the region covers the whole map
    # background ties: 1 at raster 1 = (1,0) and raster 2 = (0,1) -> the lower raster index
    att = np.array([[3.0, 1.0], [1.0, 9.0]])
    region = np.zeros((2, 2), bool)
    region[1, 1] = True
    fg, bg = median_points(att, region, 2)
    np.testing.assert_array_equal(fg, [[1, 1]])
    np.testing.assert_array_equal(bg, [1, 0])


def test_median_points_errors():
    with pytest.raises(XraybagError):
        median_points(ATT, REGION, -1)
    with pytest.raises(XraybagError):
        median_points(ATT, np.ones((2, 2), bool), 1)


def test_median_points_torch_map():
    torch = pytest.importorskip("torch")
    fg, bg = median_points(torch.tensor(ATT), torch.tensor(REGION), 3)
    np.testing.assert_array_equal(fg, SEVEN)
    np.testing.assert_array_equal(bg, [1, 1])


# --------------------------------------------------------------------------- latent boxes, Eq. 9


def test_to_latent_box():
    # factor 8 on a 64 x 64 latent grid (512 px):
    # [10, 17, 30, 40] -> floor 1.25 = 1, floor 2.125 = 2, ceil 3.75 = 4, ceil 5 = 5
    assert to_latent_box([10, 17, 30, 40], 8, (64, 64)) == (1, 2, 4, 5)
    # x2: ceil(520/8) = 65 -> clipped to 64; y: floor 0, ceil 1
    assert to_latent_box([500, 0, 520, 8], 8, (64, 64)) == (62, 0, 64, 1)
    # a box inside one cell is one cell: floor(9/8) = 1, ceil(9.5/8) = 2
    assert to_latent_box([9, 9, 9.5, 9.5], 8, (64, 64)) == (1, 1, 2, 2)
    # negative start clipped to 0; ceil(4/8) = 1
    assert to_latent_box([-20, -20, 4, 4], 8, (64, 64)) == (0, 0, 1, 1)
    with pytest.raises(XraybagError):
        to_latent_box([600, 0, 700, 10], 8, (64, 64))  # floor(600/8) = 75 >= 64
    with pytest.raises(XraybagError):
        to_latent_box([5, 5, 5, 9], 8, (64, 64))  # zero width


class _Edge:
    """A stand-in generator that returns the lowest (or highest) value of Rand's range."""

    def __init__(self, high: bool):
        self.high = high
        self.calls: list[tuple[int, int]] = []

    def integers(self, lo: int, hi: int) -> int:
        self.calls.append((lo, hi))
        return hi - 1 if self.high else lo


def test_perturb_region_bounds_by_hand():
    # box (5, 6, 9, 8), occluder 3 x 4 on 16 x 16:
    # x1' in [max(5-3, 0), 9] = [2, 9]; y1' in [max(6-4, 0), 8] = [2, 8]
    lo, hi = _Edge(False), _Edge(True)
    assert perturb_region((5, 6, 9, 8), (3, 4), (16, 16), lo) == (2, 2, 5, 6)
    assert lo.calls == [(2, 10), (2, 9)]  # numpy's exclusive high = inclusive bound + 1
    assert perturb_region((5, 6, 9, 8), (3, 4), (16, 16), hi) == (9, 8, 12, 12)
    # at the edge of an 8 x 8 grid: x1' in [2, 8] but at most 7; x2' = min(7 + 4, 8) = 8
    assert perturb_region((6, 6, 8, 8), (4, 4), (8, 8), _Edge(True)) == (7, 7, 8, 8)


def test_perturb_region_many_draws():
    rng = np.random.default_rng(0)
    xs, ys = set(), set()
    for _ in range(2000):
        x1, y1, x2, y2 = perturb_region((5, 6, 9, 8), (3, 4), (16, 16), rng)
        assert (x2 - x1, y2 - y1) == (3, 4)
        xs.add(x1)
        ys.add(y1)
    assert xs == set(range(2, 10)) and ys == set(range(2, 9))
    x1s = set()
    for _ in range(2000):
        x1, y1, x2, y2 = perturb_region((6, 6, 8, 8), (4, 4), (8, 8), rng)
        assert 0 <= x1 < x2 <= 8 and 0 <= y1 < y2 <= 8 and x2 == min(x1 + 4, 8)
        x1s.add(x1)
    assert x1s == set(range(2, 8))  # [2, 8] with 8 cut to 7


def test_perturb_region_single_value():
    # a latent grid one cell wide: x1' = min(Rand(0, 1), 0) = 0 always, x2' = min(0 + 3, 1) = 1;
    # y1' in [max(2 - 2, 0), 5] = [0, 5], y2' = y1' + 2
    rng = np.random.default_rng(1)
    ys = set()
    for _ in range(500):
        x1, y1, x2, y2 = perturb_region((0, 2, 1, 5), (3, 2), (1, 8), rng)
        assert (x1, x2, y2) == (0, 1, y1 + 2)
        ys.add(y1)
    assert ys == set(range(6))
    assert perturb_region((0, 0, 1, 1), (1, 1), (1, 1), rng) == (0, 0, 1, 1)
    with pytest.raises(XraybagError):
        perturb_region((3, 3, 3, 4), (1, 1), (8, 8), rng)


# --------------------------------------------------------------------------- fusion (Eq. 5-7)

#  0  1  2  3
#  4  5  6  7
#  8  9 10 11
# 12 13 14 15
Z = np.arange(16, dtype=float).reshape(1, 4, 4)


def test_fuse_occluder_alpha_0_and_1_exact():
    z = Z.copy()
    out = fuse_occluder(z, (0, 0, 2, 2), [(2, 2, 4, 4)], 0.0)
    np.testing.assert_array_equal(out, Z)
    out = fuse_occluder(z, (0, 0, 2, 2), [(2, 2, 4, 4)], 1.0)
    want = Z.copy()
    want[0, 2:4, 2:4] = [[0, 1], [4, 5]]
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(z, Z)  # input untouched
    assert out is not z


def test_fuse_occluder_alpha_03():
    # region [[10, 11], [14, 15]], occluder [[0, 1], [4, 5]]: region - occluder = 10 everywhere,
    # so 0.3 * o + 0.7 * r = o + 7 -> [[7, 8], [11, 12]]
    z = np.concatenate([Z, -Z])  # two channels; the second is the negative
    out = fuse_occluder(z, (0, 0, 2, 2), [(2, 2, 4, 4)], 0.3)
    want = z.copy()
    want[0, 2:4, 2:4] = [[7, 8], [11, 12]]
    want[1, 2:4, 2:4] = [[-7, -8], [-11, -12]]
    np.testing.assert_allclose(out, want, atol=1e-12)


def test_fuse_occluder_cut_to_sizes():
    # 1 x 1 occluder (0) on region (1,1)-(4,3): cut to the cell (1,1) = 5; 0.5*0 + 0.5*5 = 2.5
    out = fuse_occluder(Z, (0, 0, 1, 1), [(1, 1, 4, 3)], 0.5)
    want = Z.copy()
    want[0, 1, 1] = 2.5
    np.testing.assert_array_equal(out, want)
    # 3 x 3 occluder, 1 x 2 region at x 3, y 0..1 (3, 7): crop = its top-left column (0, 4)
    # -> 0.5 * (0, 4) + 0.5 * (3, 7) = (1.5, 5.5)
    out = fuse_occluder(Z, (0, 0, 3, 3), [(3, 0, 4, 2)], 0.5)
    want = Z.copy()
    want[0, 0:2, 3] = [1.5, 5.5]
    np.testing.assert_array_equal(out, want)


def test_fuse_occluder_reads_original_and_later_overwrites():
    # occluder (0,0)-(2,2) = [[0, 1], [4, 5]]; region 1 (1,1)-(3,3), region 2 (2,2)-(4,4), alpha 1
    # region 1 writes rows 1-2, cols 1-2; region 2 rows 2-3, cols 2-3 (overwrites (2,2)).
    # Region 2 reads the ORIGINAL occluder [[0, 1], [4, 5]], not the changed (1,1) = 0.
    out = fuse_occluder(Z, (0, 0, 2, 2), [(1, 1, 3, 3), (2, 2, 4, 4)], 1.0)
    want = [[0, 1, 2, 3],
            [4, 0, 1, 7],
            [8, 4, 0, 1],
            [12, 13, 4, 5]]
    np.testing.assert_array_equal(out[0], want)


def test_fuse_occluder_errors():
    for alpha in (-0.1, 1.5):
        with pytest.raises(XraybagError):
            fuse_occluder(Z, (0, 0, 2, 2), [(2, 2, 4, 4)], alpha)
    with pytest.raises(XraybagError):
        fuse_occluder(Z, (0, 0, 2, 5), [(2, 2, 4, 4)], 0.5)  # outside the 4 x 4 grid
    with pytest.raises(XraybagError):
        fuse_occluder(Z, (0, 0, 2, 2), [(2, 2, 2, 4)], 0.5)  # empty region


def test_fuse_occluder_torch():
    torch = pytest.importorskip("torch")
    z = torch.arange(16, dtype=torch.float64).reshape(1, 1, 4, 4)
    before = z.clone()
    out = fuse_occluder(z, (0, 0, 2, 2), [(2, 2, 4, 4)], 0.3)
    assert isinstance(out, torch.Tensor) and out.shape == z.shape
    assert torch.equal(z, before)
    want = before.clone()
    want[0, 0, 2:4, 2:4] = torch.tensor([[7.0, 8.0], [11.0, 12.0]], dtype=torch.float64)
    assert torch.allclose(out, want, atol=1e-12)
    assert torch.equal(fuse_occluder(z, (0, 0, 2, 2), [(2, 2, 4, 4)], 0.0), before)


# --------------------------------------------------------------------------- inpainting mask


def test_edit_mask():
    want = np.zeros((6, 8), bool)
    want[1:3, 2:4] = True
    np.testing.assert_array_equal(edit_mask((6, 8), [[2, 1, 4, 3]], 0), want)
    # float box touches the same pixels: floor 2.5 = 2, floor 1.5 = 1, ceil 3.2 = 4, ceil 2.1 = 3
    np.testing.assert_array_equal(edit_mask((6, 8), [[2.5, 1.5, 3.2, 2.1]], 0), want)
    # dilate 1: x 1..4, y 0..3 -> 4 x 4 = 16 pixels
    m = edit_mask((6, 8), [[2, 1, 4, 3]], 1)
    assert m.sum() == 16 and m[0:4, 1:5].all()
    # dilate 2 at the corner: x -2..3 and y -2..3 clipped to 0..2 -> 3 x 3 = 9, plus the first box
    m = edit_mask((6, 8), [[0, 0, 1, 1], [6, 4, 8, 6]], 2)
    assert m[0:3, 0:3].all() and m[2:6, 4:8].all() and m.sum() == 9 + 16
    assert not edit_mask((6, 8), [], 3).any()
    with pytest.raises(XraybagError):
        edit_mask((6, 8), [[2, 1, 4, 3]], -1)


def test_module_imports_no_torch():
    tree = ast.parse(Path(geometry.__file__).read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not any(x.split(".")[0] == "torch" for x in names)


def test_car_box_is_cut_to_the_painted_region():
    from xraybag.learners.xsyn.car import clip_to

    # grounding [10, 10, 20, 20] grown by 2 -> [8, 8, 22, 22]; a mask box [0, 15, 30, 5] (x 0..30)
    assert clip_to([0.0, 15.0, 30.0, 5.0], [10, 10, 20, 20], 2, (100, 100)) == [8.0, 15.0, 14.0, 5.0]
    assert clip_to([50.0, 50.0, 5.0, 5.0], [10, 10, 20, 20], 2, (100, 100)) is None  # elsewhere: none
    assert clip_to([0.0, 0.0, 5.0, 5.0], [1, 1, 4, 4], 3, (100, 100)) == [0.0, 0.0, 5.0, 5.0]  # image edge
    assert clip_to(None, [1, 1, 4, 4], 3, (100, 100)) is None
