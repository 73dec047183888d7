"""benchmarks/xsyn_toy.py, the harness of Xsyn's toy-set check, on hand-made datasets (no rendering,
no classifier): a source image with one dark rectangle, and a "generated" copy in the schema the
xsyn synthesizer writes, with a second rectangle painted inside its edit mask. The pixels outside
the mask count as unchanged until one of them changes, and the extent rule finds the painted
rectangle's box exactly (so a CAR box equal to it scores IoU 1 and beats the looser grounding box)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "xsyn_toy.py"
spec = importlib.util.spec_from_file_location("xsyn_toy", BENCH)
toy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(toy)

H, W = 48, 64
BACKGROUND = (252, 246, 240)
REAL = [6, 8, 12, 20]  # the source's own object, x y w h
PAINTED = [36, 14, 16, 10]  # what the generator painted
GROUND = [32, 10, 24, 18]  # the box it was asked to paint in (the edit mask)
CATEGORIES = [{"id": 1, "name": "bottle"}, {"id": 2, "name": "knife"}]


def rle_of(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode()}


def box_mask(box) -> np.ndarray:
    m = np.zeros((H, W), bool)
    x, y, w, h = box
    m[y:y + h, x:x + w] = True
    return m


def write(root: Path, img: np.ndarray, images: list, annotations: list) -> None:
    (root / "images").mkdir(parents=True)
    Image.fromarray(img).save(root / "images" / "000000_top.png")
    coco = {"images": images, "annotations": annotations, "categories": CATEGORIES}
    (root / "annotations.json").write_text(json.dumps(coco))


@pytest.fixture
def sets(tmp_path):
    rng = np.random.default_rng(0)
    src = np.empty((H, W, 3), np.uint8)
    src[:] = BACKGROUND
    src[..., 0] -= rng.integers(0, 3, (H, W)).astype(np.uint8)  # a little noise, far under the threshold
    x, y, w, h = REAL
    src[y:y + h, x:x + w] = (230, 150, 60)
    image = {"id": 7, "bag": 0, "file_name": "images/000000_top.png", "width": W, "height": H}
    real = {"id": 70001, "image_id": 7, "category_id": 1, "bbox": REAL, "area": w * h, "iscrowd": 0,
            "segmentation": rle_of(box_mask(REAL))}
    write(tmp_path / "src", src, [image], [real])

    gen = src.copy()
    x, y, w, h = GROUND
    gen[y:y + h, x:x + w] = np.array(BACKGROUND, np.uint8) - 1  # the generator's redrawn background
    x, y, w, h = PAINTED
    gen[y:y + h, x:x + w] = (40, 60, 160)
    edit = box_mask(GROUND)
    gimage = dict(image, id=1, synthetic={"method": "xsyn", "variant": "A", "source_image": 7,
                                         "source_file": image["file_name"], "edit_mask": rle_of(edit)})
    painted = {"id": 2, "image_id": 1, "category_id": 2, "bbox": PAINTED, "area": w * h, "iscrowd": 0,
               "synthetic": {"method": "xsyn", "grounding_box": GROUND, "requested": "knife",
                             "car_boxes": {"0": PAINTED, "2": [34, 12, 20, 14]}}}
    write(tmp_path / "gen", gen, [gimage], [dict(real, image_id=1), painted])
    return tmp_path / "src", tmp_path / "gen"


def test_extent_rule_finds_the_painted_rectangle(sets):
    src, gen = sets
    img = toy.load_rgb(gen, "images/000000_top.png")
    assert toy.extent(img, GROUND, box_mask(GROUND)) == PAINTED
    assert toy.extent(toy.load_rgb(src, "images/000000_top.png"), REAL) == REAL
    assert toy.extent(toy.load_rgb(src, "images/000000_top.png"), GROUND) is None  # empty bag there
    assert toy.check_extent(src)["extent_rule_check"] == 1.0


def test_evaluate_unchanged_outside_the_mask_and_car_beats_grounding(sets):
    src, gen = sets
    out = toy.evaluate(src, gen)
    assert out["images"] == 1 and out["variants"] == {"A": 1} and out["painted_objects"] == 1
    assert out["outside_mask"] == {"max_abs_diff": 0, "differing_pixels": 0, "images_with_changes": 0}
    ext = out["extent"]
    assert ext["empty"] == 0
    assert ext["iou_grounding"] == pytest.approx(16 * 10 / (24 * 18), abs=1e-4)
    assert ext["iou_car"]["0"]["mean_iou"] == 1.0 and ext["iou_car"]["0"]["beats_grounding"]
    assert ext["iou_car"]["2"]["mean_iou"] == pytest.approx(16 * 10 / (20 * 14), abs=1e-4)
    assert out["extent_rule_check"] == 1.0


def test_evaluate_counts_a_changed_pixel_outside_the_mask(sets):
    src, gen = sets
    path = gen / "images" / "000000_top.png"
    img = np.asarray(Image.open(path)).copy()
    img[2, 60] = (200, 0, 0)
    Image.fromarray(img).save(path)
    out = toy.evaluate(src, gen)["outside_mask"]
    assert out["differing_pixels"] == 1 and out["images_with_changes"] == 1
    assert out["max_abs_diff"] == 246


def test_errors_are_one_line_and_exit_2(sets, tmp_path, capsys):
    src, _ = sets
    assert toy.main(["evaluate", "--source", str(src), "--generated", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere: no such folder" in err
    assert toy.main(["evaluate", "--source", str(src), "--generated", str(src)]) == 2  # nothing generated
    assert "no image generated by xsyn" in capsys.readouterr().err
