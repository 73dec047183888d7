"""The segmentation kind of learner: the Segmenter base and prompts, the segmentation dataset
reader (cleaning, raw and pseudo-colour channels), and mIoU / Dice / COCO segm metrics."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest

from xraybag.errors import XraybagError
from xraybag.learners import base
from xraybag.learners.base import Prompt, Segmenter, load


class ToySeg(Segmenter):
    name = "toyseg"
    description = "a toy segmenter"
    promptable = True

    @classmethod
    def options(cls):
        return {"size": (int, 3, "square side")}


def test_segmenter_kind_registry_and_options(monkeypatch):
    eps = [metadata.EntryPoint("toyseg", f"{__name__}:ToySeg", base.GROUP)]
    monkeypatch.setattr(base.metadata, "entry_points", lambda group=None: [e for e in eps if e.group == group])
    cls = load("toyseg")
    assert cls is ToySeg and cls.kind == "segmenter" and "segmenter" in base.KINDS
    assert ToySeg(size="5").size == 5 and Segmenter.promptable is False and ToySeg.promptable is True
    with pytest.raises(NotImplementedError):
        ToySeg().predict(None, None)


def test_cli_refuses_a_segmenter_for_synthesize(monkeypatch):
    from xraybag.cli.learn import TRAINED, _learner

    eps = [metadata.EntryPoint("toyseg", f"{__name__}:ToySeg", base.GROUP)]
    monkeypatch.setattr(base.metadata, "entry_points", lambda group=None: [e for e in eps if e.group == group])
    with pytest.raises(XraybagError, match="learner 'toyseg' is a segmenter; use 'xraybag learn train/eval/predict'"):
        _learner("toyseg", ("synthesizer",), {})
    assert isinstance(_learner("toyseg", TRAINED, {"size": "4"}), ToySeg)


def test_prompt_defaults_and_checks():
    p = Prompt(image_id=4, points=[[3, 2]])
    assert p.points.shape == (1, 2) and p.point_labels.tolist() == [1]
    assert p.check(10, 5) is p
    assert Prompt(image_id=4, box=(0, 0, 10, 5)).check(10, 5).box == (0.0, 0.0, 10.0, 5.0)
    cases = [
        (Prompt(4, points=[[10, 2]]), r"prompt for image 4: point \(10, 2\) lies outside the image \(10 x 5\)"),
        (Prompt(4, points=[[3, -0.5]]), r"point \(3, -0.5\) lies outside"),
        (Prompt(4, box=(1, 1, 11, 4)), r"box \[1.0, 1.0, 11.0, 4.0\] lies outside the image \(10 x 5\)"),
        (Prompt(4, box=(5, 1, 5, 4)), "is empty"),
        (Prompt(4), "needs at least one point or a box"),
        (Prompt(4, points=[[1, 1]], point_labels=[2]), "point labels are 1"),
        (Prompt(4, points=[[1, 1], [2, 2]], point_labels=[1]), "2 points but 1 point labels"),
    ]
    for prompt, words in cases:
        with pytest.raises(XraybagError, match=words) as e:
            prompt.check(10, 5)
        assert "\n" not in str(e.value)
    with pytest.raises(XraybagError, match=r"^here: point"):
        Prompt(4, points=[[99, 0]]).check(10, 5, where="here")


# -- the segmentation dataset reader -------------------------------------------------------------

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import tifffile  # noqa: E402
from PIL import Image  # noqa: E402

from xraybag.learners.seg_data import (  # noqa: E402
    SegmentationDataset,
    channels_from_pseudo_colour,
    laplacian_variance,
    mask_to_rle,
)

CATS = [{"id": 3, "name": "knife"}, {"id": 7, "name": "gun"}]


def _box_mask(h, w, x, y, bw, bh):
    m = np.zeros((h, w), bool)
    m[y : y + bh, x : x + bw] = True
    return m


def write_dataset(root: Path, images: list[dict]) -> Path:
    """A dataset in the rendered layout from ``images``: each ``{w, h, rgb?, raw?: bool, anns:
    [(mask or None, category_id, difficulty, extra)]}``; raw low = 1000 * (row + 1), high =
    2000 * (col + 1) so every pixel's value is known."""
    root = Path(root)
    for sub in ("images", "raw"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    recs, anns = [], []
    for k, spec in enumerate(images):
        iid, h, w = k + 1, spec["h"], spec["w"]
        stem = f"{k:06d}_top"
        rgb = spec.get("rgb")
        if rgb is None:
            rgb = np.full((h, w, 3), 200, np.uint8)
        Image.fromarray(rgb).save(root / "images" / f"{stem}.png")
        rec = {"id": iid, "file_name": f"images/{stem}.png", "width": w, "height": h, "bag": k, "view": "top"}
        if spec.get("raw", True):
            low = np.repeat((1000 * (np.arange(h) + 1))[:, None], w, 1).astype(np.uint16)
            high = np.repeat((2000 * (np.arange(w) + 1))[None, :], h, 0).astype(np.uint16)
            tifffile.imwrite(root / "raw" / f"{stem}_low.tiff", low)
            tifffile.imwrite(root / "raw" / f"{stem}_high.tiff", high)
            rec["raw"] = {"low": f"raw/{stem}_low.tiff", "high": f"raw/{stem}_high.tiff"}
        recs.append(rec)
        for j, (mask, cat, diff, extra) in enumerate(spec.get("anns", [])):
            a = {"id": 100 * iid + j, "image_id": iid, "category_id": cat, "bbox": [0.0, 0.0, 1.0, 1.0],
                 "area": 1, "iscrowd": 0, "difficulty": diff}
            if mask is not None:
                a["segmentation"] = mask_to_rle(mask)
            a.update(extra)
            anns.append(a)
    coco = {"info": {}, "licenses": [], "categories": CATS, "images": recs, "annotations": anns}
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


def test_max_min_rule_on_hand_made_pixels():
    rgb = np.array([[[10, 200, 30], [255, 0, 7]], [[5, 5, 5], [90, 180, 120]]], np.uint8)
    high, low = channels_from_pseudo_colour(rgb)
    assert high.dtype == np.float32 and high.tolist() == [[200, 255], [5, 180]]
    assert low.tolist() == [[10, 0], [5, 90]]
    with pytest.raises(XraybagError, match=r"H x W x C, got shape \(2, 2\)"):
        channels_from_pseudo_colour(rgb[..., 0])


def test_reads_raw_channels_masks_and_pseudo_colour(tmp_path):
    h, w = 12, 10
    m1, m2 = _box_mask(h, w, 1, 2, 4, 5), _box_mask(h, w, 5, 6, 5, 6)
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 40, 200, 90
    root = write_dataset(tmp_path / "d", [
        {"h": h, "w": w, "rgb": rgb, "anns": [(m1, 7, "hard", {}), (m2, 3, "hidden", {})]},
        {"h": h, "w": w, "raw": False, "anns": [(m1, 3, "easy", {})]},
    ])
    ds = SegmentationDataset(root, split="all", min_side=0)
    s = ds[0]
    assert s.channels == "raw" and s.image.shape == (h, w, 3)
    assert s.low[7, 3] == pytest.approx(8000 / 65535) and s.high[7, 3] == pytest.approx(8000 / 65535)
    assert s.low[0, 9] == pytest.approx(1000 / 65535) and s.high[0, 9] == pytest.approx(20000 / 65535)
    assert np.array_equal(s.masks, np.stack([m1, m2]))
    assert s.category_ids.tolist() == [7, 3] and s.labels.tolist() == [1, 0] and s.difficulty == ["hard", "hidden"]
    assert s.boxes.tolist() == [[1, 2, 5, 7], [5, 6, 10, 12]] and s.ann_ids == [100, 101]
    assert np.array_equal(s.energy()[..., 0], s.high) and np.array_equal(s.energy()[..., 1], s.low)
    # no raw files for the second image: auto falls back to the max/min rule
    t = ds[1]
    assert t.channels == "pseudo_colour" and np.all(t.high == 200 / 255) and np.all(t.low == 200 / 255)
    p = SegmentationDataset(root, split="all", channels="pseudo_colour", min_side=0)[0]
    assert p.channels == "pseudo_colour"
    assert np.allclose(p.high, 200 / 255) and np.allclose(p.low, 40 / 255)
    with pytest.raises(XraybagError, match=r"images\[1\] \(id 2\): input 'raw' needs raw 'low' and 'high'"):
        SegmentationDataset(root, split="all", channels="raw", min_side=0)
    with pytest.raises(XraybagError, match="unknown channels 'rgb'"):
        SegmentationDataset(root, channels="rgb")


def test_cleaning_drops_and_counts_each_rule(tmp_path):
    h, w = 40, 40
    good = _box_mask(h, w, 2, 2, 6, 5)             # 30 px
    tiny = _box_mask(h, w, 20, 20, 3, 3)           # 9 px < 16
    thin = _box_mask(h, w, 5, 30, 30, 1)           # 30 px but 1 px high
    empty = np.zeros((h, w), bool)
    anns = [(good, 3, "easy", {}), (tiny, 3, "easy", {}), (thin, 7, "hard", {}), (empty, 7, "easy", {}),
            (good, 7, "easy", {"iscrowd": 1}), (None, 3, "easy", {})]
    root = write_dataset(tmp_path / "d", [
        {"h": h, "w": w, "anns": anns},
        {"h": 30, "w": 200, "anns": [(_box_mask(30, 200, 0, 0, 9, 9), 3, "easy", {})]},
        {"h": 60, "w": 26, "anns": []},
    ])
    ds = SegmentationDataset(root, split="all", min_side=25, aspect=(0.5, 2.0))
    assert [im["id"] for im in ds.images] == [1] and len(ds) == 1
    assert dict(ds.dropped) == {"aspect": 2, "masks_of_dropped_images": 1, "tiny": 1, "thin": 1, "empty": 1,
                                "crowd": 1, "no_mask": 1}
    assert ds.masks_kept == 1 and ds.masks_total == 7
    assert ds[0].ann_ids == [100] and len(ds.coco_subset()["annotations"]) == 1
    assert ds.cleaning_report() == (
        "all: kept 1 of 3 images (dropped 2 aspect outside [0.5, 2], with their 1 masks) and 1 of 6 masks "
        "(dropped 1 crowd, 1 without a mask, 1 empty, 1 < 16 px, 1 thinner than 2 px)")
    # the paper's defaults: shorter side under 200 px is too small
    small = SegmentationDataset(root, split="all")
    assert len(small) == 0 and small.dropped["small"] == 3


def test_laplacian_variance_and_noisy_filter(tmp_path):
    dot = np.zeros((5, 5))
    dot[2, 2] = 1.0  # Laplacian: -4 at the dot, +1 at its 4 neighbours, 0 elsewhere
    assert laplacian_variance(dot) == pytest.approx((16 + 4) / 25 - 0.0)
    flat = np.full((8, 8, 3), 100, np.uint8)
    checker = ((np.indices((8, 8)).sum(0) % 2) * 255).astype(np.uint8)[..., None].repeat(3, -1)
    specs = [{"h": 8, "w": 8, "rgb": flat if k % 2 else checker,
              "anns": [(_box_mask(8, 8, 0, 0, 5, 5), 3, "easy", {})]} for k in range(12)]
    root = write_dataset(tmp_path / "d", specs)
    ds = SegmentationDataset(root, split="all", min_side=0, laplacian_threshold=10.0, clean_seed=3)
    kept = {im["id"] for im in ds.images}
    flat_ids = {k + 1 for k in range(12) if k % 2}
    assert flat_ids <= kept  # a smooth image is never dropped
    expect = {k + 1 for k in range(12) if not k % 2 and np.random.default_rng((3, k + 1)).random() >= 0.9}
    assert kept - flat_ids == expect and ds.dropped["noisy"] == 6 - len(expect) > 0


def test_dataset_without_masks_is_one_line_error(tmp_path):
    root = write_dataset(tmp_path / "d", [{"h": 9, "w": 9, "anns": [(None, 3, "easy", {}), (None, 7, "hard", {})]}])
    with pytest.raises(XraybagError) as e:
        SegmentationDataset(root, min_side=0)
    assert str(e.value) == (f"{root / 'annotations.json'}: no instance masks: none of its 2 annotations has a "
                            "'segmentation' (a segmenter needs masks; is this a detection-only dataset?)")
    bad = write_dataset(tmp_path / "e", [{"h": 9, "w": 9, "anns": [(_box_mask(9, 9, 0, 0, 5, 5), 3, "easy", {})]}])
    coco = json.loads((bad / "annotations.json").read_text())
    coco["annotations"][0]["segmentation"]["size"] = [4, 4]
    (bad / "annotations.json").write_text(json.dumps(coco))
    with pytest.raises(XraybagError, match=r"annotation id 100: mask size \[4, 4\] \(h, w\) is not the image's \[9, 9\]"):
        SegmentationDataset(bad, split="all", min_side=0)


def test_reads_a_rendered_dataset(tmp_path):
    """The reader against the layout ``xraybag render`` really writes (one small bag)."""
    from tests.helpers import run_cli

    out = tmp_path / "r"
    r = run_cli("render", "demo", "-n", "1", "-o", out)
    assert r.exit_code == 0, r.output
    ds = SegmentationDataset(out, split="all")
    coco = json.loads((out / "annotations.json").read_text())
    assert len(ds) == len(coco["images"]) >= 1
    s = ds[0]
    im = ds.images[0]
    assert s.channels == "raw" and s.masks.shape[1:] == (im["height"], im["width"]) == s.high.shape
    raw_low = tifffile.imread(out / im["raw"]["low"])
    assert np.array_equal(s.low, raw_low.astype(np.float32) / 65535.0)
    labels = np.asarray(Image.open(out / im["labels"]))
    for mask, a in zip(s.masks, (a for a in coco["annotations"] if a["id"] in s.ann_ids)):
        assert mask.sum() == a["area"]
        visible = labels == a["object_index"]  # the instance map's pixels of the object (front-most)
        assert visible.any() and not (visible & ~mask).any()


# -- metrics ---------------------------------------------------------------------------------------

from xraybag.learners.metrics import coco_metrics  # noqa: E402
from xraybag.learners.seg_metrics import iou_dice, load_mask_results, segmentation_metrics  # noqa: E402

HW = (10, 10)


def _gt(objects):
    """COCO ground truth on 10 x 10 images from ``(ann_id, image_id, category_id, mask, difficulty)``."""
    anns = [{"id": i, "image_id": im, "category_id": c, "segmentation": mask_to_rle(m), "area": int(m.sum()),
             "bbox": [float(v) for v in _bbox(m)], "iscrowd": 0, "difficulty": d} for i, im, c, m, d in objects]
    ims = sorted({o[1] for o in objects})
    return {"images": [{"id": i, "width": 10, "height": 10, "file_name": f"{i}.png"} for i in ims],
            "annotations": anns, "categories": [{"id": 3, "name": "knife"}, {"id": 7, "name": "gun"}]}


def _bbox(m):
    ys, xs = np.nonzero(m)
    return xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1


def _res(image_id, cat, mask, score=0.9, ann_id=None):
    r = {"image_id": image_id, "category_id": cat, "segmentation": mask_to_rle(mask), "score": score}
    if ann_id is not None:
        r["ann_id"] = ann_id
    return r


def test_iou_dice_by_hand():
    g = _box_mask(*HW, 0, 0, 4, 4)                           # 16 px
    p = _box_mask(*HW, 0, 0, 2, 4)                           # 8 px inside it
    assert iou_dice(p, g) == (0.5, pytest.approx(2 / 3))     # 8 / 16, 2 * 8 / 24
    q = _box_mask(*HW, 2, 0, 4, 4)                           # half overlapping: 8 of 24 px
    assert iou_dice(q, g) == (pytest.approx(1 / 3), 0.5)     # 8 / 24, 16 / 32
    assert iou_dice(np.zeros(HW, bool), g) == (0.0, 0.0)
    assert iou_dice(np.zeros(HW, bool), np.zeros(HW, bool)) == (1.0, 1.0)
    with pytest.raises(XraybagError, match="masks differ in shape"):
        iou_dice(g[:5], g)


def test_miou_dice_per_class_and_difficulty_by_hand():
    a, b, c = _box_mask(*HW, 0, 0, 4, 4), _box_mask(*HW, 6, 6, 2, 2), _box_mask(*HW, 6, 0, 3, 3)
    gt = _gt([(1, 1, 3, a, "easy"), (2, 1, 3, b, "hard"), (3, 1, 7, c, "hidden")])
    res = [
        _res(1, 3, _box_mask(*HW, 0, 0, 4, 2), ann_id=1),           # 8 of 16 px: IoU 1/2, Dice 2/3
        _res(1, 3, _box_mask(*HW, 6, 6, 2, 3), ann_id=2),           # 4 of 6 px: IoU 2/3, Dice 8/10
        _res(1, 3, _box_mask(*HW, 6, 6, 2, 2), score=0.1, ann_id=2),  # lower score: not the one scored
        _res(1, 3, c),                                               # a knife where the gun is: wrong class
    ]
    m = segmentation_metrics(gt, res, coco=False)
    knife_iou, knife_dice = (1 / 2 + 2 / 3) / 2, (2 / 3 + 8 / 10) / 2
    assert m["per_class"]["knife"] == {"IoU": round(knife_iou, 6), "Dice": round(knife_dice, 6), "objects": 2}
    assert m["per_class"]["gun"] == {"IoU": 0.0, "Dice": 0.0, "objects": 1}  # no gun mask at all
    assert m["mIoU"] == round(knife_iou / 2, 6) and m["mDice"] == round(knife_dice / 2, 6)
    assert m["IoU_objects"] == round((1 / 2 + 2 / 3) / 3, 6) and m["Dice_objects"] == round((2 / 3 + 4 / 5) / 3, 6)
    assert m["per_difficulty"] == {"easy": {"mIoU": 0.5, "mDice": round(2 / 3, 6), "objects": 1},
                                   "hard": {"mIoU": round(2 / 3, 6), "mDice": 0.8, "objects": 1},
                                   "hidden": {"mIoU": 0.0, "mDice": 0.0, "objects": 1}}
    # an unprompted gun mask is matched to the gun by class and image, best IoU
    m = segmentation_metrics(gt, res + [_res(1, 7, _box_mask(*HW, 6, 0, 3, 2)), _res(1, 7, c, score=0.2)], coco=False)
    assert m["per_class"]["gun"] == {"IoU": 1.0, "Dice": 1.0, "objects": 1}


def test_coco_segm_scores_masks_not_boxes():
    a, b = _box_mask(*HW, 0, 0, 4, 4), _box_mask(*HW, 5, 5, 4, 4)
    gt = _gt([(1, 1, 3, a, "easy"), (2, 2, 3, b, "hard")])
    perfect = [_res(1, 3, a), _res(2, 3, b)]
    s = segmentation_metrics(gt, perfect)["coco_segm"]
    assert s["mAP"] == s["mAP50"] == 1.0 and s["per_class"]["knife"]["gt"] == 2
    assert s["per_difficulty"]["hard"]["mAP"] == 1.0
    # an L that spans a's box but covers 7 of its 16 px: box IoU 1, mask IoU 7/16 < 0.5
    ell = np.zeros(HW, bool)
    ell[0:4, 0] = True
    ell[3, 0:4] = True
    ell[0, 0:4] = True
    assert ell.sum() == 10 and iou_dice(ell, a)[0] == pytest.approx(10 / 16)
    ell[0, 1:4] = False  # now 7 px
    assert _bbox(ell) == _bbox(a) and iou_dice(ell, a)[0] == pytest.approx(7 / 16)
    s = segmentation_metrics(gt, [_res(1, 3, ell, 0.9), _res(2, 3, b, 0.8)])["coco_segm"]
    # the L is a false positive ranked first: precision 1/2 at recall 1/2 (51 of 101 recall points)
    assert s["mAP50"] == pytest.approx(0.5 * 51 / 101, abs=1e-6)
    box = coco_metrics(gt, [{"image_id": 1, "category_id": 3, "bbox": [0, 0, 4, 4], "score": 0.9},
                            {"image_id": 2, "category_id": 3, "bbox": [5, 5, 4, 4], "score": 0.8}])
    assert box["mAP50"] == 1.0
    assert segmentation_metrics(gt, [])["coco_segm"]["mAP"] == 0.0


def test_bad_mask_results_are_one_line_errors(tmp_path):
    with pytest.raises(XraybagError, match=r"results\[0\]: needs image_id, category_id, segmentation"):
        load_mask_results([{"image_id": 1, "category_id": 3, "score": 0.5, "bbox": [0, 0, 1, 1]}])
    path = tmp_path / "r.json"
    path.write_text("{}")
    with pytest.raises(XraybagError, match=r"r.json: a COCO results file is a JSON list"):
        load_mask_results(path)
    path.write_text(json.dumps([_res(1, 3, _box_mask(*HW, 0, 0, 2, 2), ann_id=1)]))
    r = load_mask_results(path)
    assert r[0]["ann_id"] == 1 and "bbox" not in r[0]


def test_instance_masks_from_the_instance_map(tmp_path):
    """masks=instances: one mask per object of the instance map (its pixels), the annotated one
    with its class and difficulty, the other as 'object'; background (0) is no object."""
    h, w = 40, 60
    ids = np.zeros((h, w), np.uint16)
    ids[5:20, 5:30] = 1  # annotated (object_index 1)
    ids[10:35, 25:55] = 2  # in front of object 1 where they overlap; not annotated
    ids[30:38, 2:10] = 7
    amodal = _box_mask(h, w, 5, 5, 25, 15)  # the annotation's own (amodal) mask of object 1
    root = write_dataset(tmp_path / "d", [{"w": w, "h": h, "anns": [(amodal, 7, "hard", {"object_index": 1})]}])
    (root / "labels").mkdir()
    Image.fromarray(ids).save(root / "labels" / "000000_top.png")
    coco = json.loads((root / "annotations.json").read_text())
    coco["images"][0]["labels"] = "labels/000000_top.png"
    (root / "annotations.json").write_text(json.dumps(coco))

    plain = SegmentationDataset(root, split="all", min_side=10)
    assert plain.masks_kept == 1 and "object" not in plain.class_names
    ds = SegmentationDataset(root, split="all", masks="instances", min_side=10)
    assert ds.class_names == [c["name"] for c in CATS] + ["object"]
    s = ds[0]
    assert len(s.masks) == 3
    by_index = {a["object_index"]: (m, a) for m, a in zip(s.masks, ds._anns[1])}
    for k in (1, 2, 7):
        assert np.array_equal(by_index[k][0], ids == k)
    assert by_index[1][1]["category_id"] == 7 and by_index[1][1]["difficulty"] == "hard"
    object_id = ds.label_to_category_id[ds.class_names.index("object")]
    assert by_index[2][1]["category_id"] == by_index[7][1]["category_id"] == object_id
    assert s.labels.tolist() == [ds.category_id_to_label[a["category_id"]] for a in ds._anns[1]]
    assert len({a["id"] for a in ds._anns[1]}) == 3  # ids unique
    # 25 x 15 minus the 10 x 10 corner that object 2 covers
    assert by_index[1][1]["area"] == 25 * 15 - 10 * 5

    del coco["images"][0]["labels"]
    (root / "annotations.json").write_text(json.dumps(coco))
    with pytest.raises(XraybagError, match="masks=instances needs the image's instance map") as e:
        SegmentationDataset(root, split="all", masks="instances")
    assert "\n" not in str(e.value)
    with pytest.raises(XraybagError, match="masks must be one of"):
        SegmentationDataset(root, split="all", masks="everything")
