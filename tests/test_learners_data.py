"""The dataset reader of the learners: encodings, boxes, splits by bag, validation on open."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from xraybag.engine.xray.colour import clcxray_encoding
from xraybag.errors import XraybagError
from xraybag.learners.data import DetectionDataset, split_bags, split_counts

W, H = 64, 48
CATEGORIES = [{"id": 3, "name": "knife"}, {"id": 7, "name": "gun"}, {"id": 9, "name": "bottle"}]
DIFF = ("easy", "hard", "hidden")


def make_dataset(root: Path, bags: int = 6, views=("top", "side"), clcxray: bool = False) -> Path:
    """A synthetic dataset in the layout ``xraybag render`` writes: per bag and view a 64 x 48
    RGB png, raw low/high uint16 tiffs, and two or three boxes (bright rectangles)."""
    root = Path(root)
    for sub in ("images", "raw", "clcxray"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    images, anns = [], []
    for b in range(bags):
        for v, view in enumerate(views):
            iid = b * len(views) + v + 1
            stem = f"{b:06d}_{view}"
            low = np.full((H, W), 50000, np.uint16)
            high = np.full((H, W), 60000, np.uint16)
            rgb = np.full((H, W, 3), 230, np.uint8)
            for k in range(2 + (b + v) % 2):
                cat = CATEGORIES[(b + k) % 3]
                x, y = int(rng.integers(0, W - 20)), int(rng.integers(0, H - 16))
                bw, bh = int(rng.integers(8, 20)), int(rng.integers(8, 16))
                low[y : y + bh, x : x + bw] = 10000 + 5000 * k
                high[y : y + bh, x : x + bw] = 20000 + 5000 * k
                rgb[y : y + bh, x : x + bw] = (40 * k, 120, 200)
                m = np.zeros((H, W), np.uint8)
                m[y : y + bh, x : x + bw] = 1
                from pycocotools import mask as mask_utils

                rle = mask_utils.encode(np.asfortranarray(m))
                rle["counts"] = rle["counts"].decode()
                anns.append({
                    "id": iid * 10000 + k + 1, "image_id": iid, "category_id": cat["id"],
                    "bbox": [float(x), float(y), float(bw), float(bh)], "area": bw * bh,
                    "segmentation": rle, "iscrowd": 0, "difficulty": DIFF[(b + k) % 3],
                    "occlusion": 0.1 * k, "material": "steel",
                })
            Image.fromarray(rgb).save(root / "images" / f"{stem}.png")
            tifffile.imwrite(root / "raw" / f"{stem}_low.tiff", low)
            tifffile.imwrite(root / "raw" / f"{stem}_high.tiff", high)
            if clcxray:
                Image.fromarray(clcxray_encoding(high, low)).save(root / "clcxray" / f"{stem}.png")
            images.append({
                "id": iid, "file_name": f"images/{stem}.png", "width": W, "height": H, "bag": b, "view": view,
                "raw": {"low": f"raw/{stem}_low.tiff", "high": f"raw/{stem}_high.tiff"},
            })
    coco = {"info": {}, "licenses": [], "categories": CATEGORIES, "images": images, "annotations": anns}
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("learn-data"), bags=10)


def coco_of(root: Path) -> dict:
    return json.loads((root / "annotations.json").read_text())


def test_boxes_labels_are_the_coco_annotations(data):
    coco = coco_of(data)
    ds = DetectionDataset(data, split="all")
    assert len(ds) == len(coco["images"]) == 20
    assert ds.num_classes == 3 and ds.label_to_category_id == [3, 7, 9]
    by_image = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    for s in ds:
        anns = by_image[s.image_id]
        want = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], np.float32)
        np.testing.assert_array_equal(s.boxes, want)
        assert s.boxes.dtype == np.float32 and s.labels.dtype == np.int64
        assert [ds.label_to_category_id[lab] for lab in s.labels] == [a["category_id"] for a in anns]
        assert s.difficulty == [a["difficulty"] for a in anns]
        # the masks decode to the box regions
        m = s.masks()
        assert m.shape == (len(anns), H, W)
        for box, mk in zip(s.boxes.astype(int), m):
            want_mask = np.zeros((H, W), bool)
            want_mask[box[1] : box[3], box[0] : box[2]] = True
            np.testing.assert_array_equal(mk, want_mask)


def test_encodings(data):
    im = coco_of(data)["images"][0]
    rgb = DetectionDataset(data, split="all", input="rgb")[0].image
    raw = DetectionDataset(data, split="all", input="raw")[0].image
    clc = DetectionDataset(data, split="all", input="clcxray")[0].image
    low = tifffile.imread(data / im["raw"]["low"])
    high = tifffile.imread(data / im["raw"]["high"])
    assert rgb.shape == (H, W, 3) and raw.shape == (H, W, 2) and clc.shape == (H, W, 3)
    assert all(a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1 for a in (rgb, raw, clc))
    np.testing.assert_allclose(raw[..., 0], low / 65535.0, rtol=1e-6)
    np.testing.assert_allclose(raw[..., 1], high / 65535.0, rtol=1e-6)
    np.testing.assert_allclose(clc, clcxray_encoding(high, low) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(rgb, np.asarray(Image.open(data / im["file_name"])) / 255.0, rtol=1e-6)


def test_clcxray_png_is_preferred(tmp_path):
    root = make_dataset(tmp_path / "d", bags=1, clcxray=True)
    im = coco_of(root)["images"][0]
    marker = np.zeros((H, W, 3), np.uint8)
    marker[0, 0] = (255, 0, 0)
    Image.fromarray(marker).save(root / "clcxray" / Path(im["file_name"]).name)
    img = DetectionDataset(root, split="all", input="clcxray")[0].image
    assert img[0, 0, 0] == 1.0 and img[1, 1].sum() == 0


def test_splits_by_bag_disjoint_covering_deterministic(data):
    parts = {s: DetectionDataset(data, split=s, seed=3) for s in ("train", "val", "test")}
    bag_sets = {s: set(ds.bags) for s, ds in parts.items()}
    assert bag_sets["train"].isdisjoint(bag_sets["val"]) and bag_sets["train"].isdisjoint(bag_sets["test"])
    assert bag_sets["val"].isdisjoint(bag_sets["test"])
    assert set().union(*bag_sets.values()) == set(range(10))
    assert [len(bag_sets[s]) for s in ("train", "val", "test")] == [8, 1, 1]
    # both views of every bag in the same split
    for ds in parts.values():
        views = {}
        for im in ds.images:
            views.setdefault(im["bag"], set()).add(im["view"])
        assert all(v == {"top", "side"} for v in views.values())
        assert sum(1 for _ in ds) == len(ds) == 2 * len(ds.bags)
    again = DetectionDataset(data, split="train", seed=3)
    assert again.image_ids == parts["train"].image_ids
    other = [set(DetectionDataset(data, split="test", seed=s).bags) for s in range(6)]
    assert len({frozenset(b) for b in other}) > 1  # the seed matters


def test_split_counts():
    assert split_counts(10, (0.8, 0.1, 0.1)) == [8, 1, 1]
    assert split_counts(6, (0.8, 0.1, 0.1)) == [4, 1, 1]  # every used split gets a bag
    assert split_counts(2, (0.8, 0.1, 0.1)) == [1, 1, 0]
    assert split_counts(7, (1, 0, 0)) == [7, 0, 0]
    assert sum(split_counts(101, (0.7, 0.2, 0.1))) == 101
    s = split_bags(range(20), seed=5)
    assert sorted(s["train"] + s["val"] + s["test"]) == list(range(20))


def test_coco_subset_is_the_split(data):
    ds = DetectionDataset(data, split="train")
    sub = ds.coco_subset()
    ids = set(ds.image_ids)
    assert {im["id"] for im in sub["images"]} == ids
    full = coco_of(data)
    assert len(sub["annotations"]) == sum(1 for a in full["annotations"] if a["image_id"] in ids) > 0
    assert all(a["image_id"] in ids for a in sub["annotations"])
    assert sub["categories"] == sorted(full["categories"], key=lambda c: c["id"])


def _broken(tmp_path, edit) -> Path:
    root = make_dataset(tmp_path / "bad", bags=2)
    coco = coco_of(root)
    edit(root, coco)
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


@pytest.mark.parametrize(
    "edit, record, words",
    [
        (lambda r, c: c["annotations"][2]["bbox"].__setitem__(0, 60.0), "annotations[2] (id ", "lies outside image"),
        (lambda r, c: c["annotations"][1]["bbox"].__setitem__(3, 0), "annotations[1] (id ", "non-positive size"),
        (lambda r, c: c["annotations"][0].__setitem__("category_id", 42), "annotations[0] (id ", "unknown category_id 42"),
        (lambda r, c: c["annotations"][3].__setitem__("id", c["annotations"][0]["id"]), "annotations[3] (id ", "duplicate annotation id"),
        (lambda r, c: c["images"][1].__setitem__("id", 1), "images[1] (id 1)", "duplicate image id"),
        (lambda r, c: (r / c["images"][2]["file_name"]).unlink(), "images[2] (id 3)", "is missing"),
        (lambda r, c: c["annotations"][0].__setitem__("image_id", 999), "annotations[0] (id ", "unknown image_id 999"),
        # paths that leave the dataset folder are not followed, even where the file exists there
        (lambda r, c: c["images"][1].__setitem__("file_name", f"../bad/{c['images'][1]['file_name']}"),
         "images[1] (id 2)", "file_name '../bad/images/000000_side.png' leaves the dataset folder"),
        (lambda r, c: c["images"][0].__setitem__("labels", "/etc/hostname"), "images[0] (id 1)",
         "labels '/etc/hostname' leaves the dataset folder"),
        (lambda r, c: c["images"][0]["raw"].__setitem__("low", "raw\\..\\..\\x.tiff"), "images[0] (id 1)",
         "raw.low 'raw\\\\..\\\\..\\\\x.tiff' leaves the dataset folder"),
        (lambda r, c: c["images"][0].__setitem__("scene", "C:/scenes/0.yaml"), "images[0] (id 1)",
         "scene 'C:/scenes/0.yaml' leaves the dataset folder"),
        (lambda r, c: c["images"][0].__setitem__("scene", 7), "images[0] (id 1)", "scene 7 leaves the dataset folder"),
    ],
)
def test_bad_dataset_errors_name_file_and_record(tmp_path, edit, record, words):
    root = _broken(tmp_path, edit)
    with pytest.raises(XraybagError) as e:
        DetectionDataset(root, split="all")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{root / 'annotations.json'}: {record}"), msg
    assert words in msg


def test_linked_folders_inside_the_dataset_are_read(tmp_path):
    # the check is on the paths' text: a dataset whose images/ and raw/ link to another folder is fine
    other = make_dataset(tmp_path / "other", bags=2)
    root = tmp_path / "linked"
    root.mkdir()
    for sub in ("images", "raw"):
        (root / sub).symlink_to(other / sub, target_is_directory=True)
    (root / "annotations.json").write_text((other / "annotations.json").read_text())
    ds = DetectionDataset(root, split="all", input="raw")
    assert len(ds) == 4 and ds[0].image.shape == (H, W, 2)


def test_missing_raw_only_matters_for_raw_input(tmp_path):
    root = make_dataset(tmp_path / "d", bags=1)
    (root / "raw" / "000000_top_high.tiff").unlink()
    DetectionDataset(root, split="all", input="rgb")  # fine
    with pytest.raises(XraybagError, match=r"images\[0\] \(id 1\): raw file raw/000000_top_high.tiff \(high\) is missing"):
        DetectionDataset(root, split="all", input="raw")


def test_missing_annotations_and_bad_arguments(tmp_path):
    with pytest.raises(XraybagError, match="dataset folder does not exist"):
        DetectionDataset(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(XraybagError, match=r"annotations.json: no annotations.json"):
        DetectionDataset(tmp_path / "empty")
    root = make_dataset(tmp_path / "d", bags=1)
    with pytest.raises(XraybagError, match="unknown split"):
        DetectionDataset(root, split="dev")
    with pytest.raises(XraybagError, match="unknown input"):
        DetectionDataset(root, input="hsv")


def test_torch_collate(data):
    torch = pytest.importorskip("torch")
    from xraybag.learners.data import torch_collate

    ds = DetectionDataset(data, split="all", input="raw")
    images, targets = torch_collate([ds[0], ds[1]])
    assert images[0].shape == (2, H, W) and images[0].dtype == torch.float32
    assert torch.equal(targets[1]["boxes"], torch.from_numpy(ds[1].boxes))
    assert targets[0]["labels"].dtype == torch.int64


def test_flip_moves_image_boxes_and_masks_together(data):
    from xraybag.learners.data import flip_sample

    ds = DetectionDataset(data, split="all")
    s = ds[0]
    for h, v in ((True, False), (False, True), (True, True)):
        f = flip_sample(s, horizontal=h, vertical=v)
        img = s.image[:, ::-1] if h else s.image
        img = img[::-1] if v else img
        assert np.array_equal(f.image, img)
        masks = f.masks()
        for k, box in enumerate(f.boxes):
            # the box of a bright rectangle is the bounding box of its flipped mask
            ys, xs = np.nonzero(masks[k])
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            x1, y1, x2, y2 = s.boxes[k]
            assert box[0] == (W - x2 if h else x1) and box[3] == (H - y1 if v else y2)
        assert f.labels.tolist() == s.labels.tolist()
    assert flip_sample(s) is s


def test_random_flip_depends_on_seed_epoch_and_index_only(data):
    from xraybag.learners.data import RandomFlip

    ds = DetectionDataset(data, split="all")

    def flips(aug):
        return [(not np.array_equal(aug[i].image, ds[i].image)) for i in range(len(ds))]

    a, b = RandomFlip(ds, "hv", seed=3), RandomFlip(ds, "hv", seed=3)
    b.set_epoch(5)
    b.set_epoch(0)
    assert flips(a) == flips(b)
    runs = []
    for e in range(4):
        a.set_epoch(e)
        runs.append(flips(a))
    assert len({tuple(r) for r in runs}) > 1  # a new draw every epoch
    assert 0 < sum(map(sum, runs)) < len(ds) * 4
    assert not any(flips(RandomFlip(ds, "none")))
    with pytest.raises(XraybagError, match="flip"):
        RandomFlip(ds, "diagonal")
