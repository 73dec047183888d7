"""Reading an xraybag dataset (COCO ``annotations.json`` plus images, raw channels and encodings)
for detectors: validation on open, train/val/test splits by bag, and image encodings.

Torch-free (numpy, PIL, tifffile); :func:`torch_collate` imports torch only when called.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from xraybag.errors import XraybagError

SPLITS = ("train", "val", "test", "all")
INPUTS = ("rgb", "raw", "clcxray")
DIFFICULTIES = ("easy", "hard", "hidden")
#: how far (pixels) a box may reach past the image border before it counts as outside
BORDER_TOLERANCE = 1e-3


@dataclass
class Sample:
    """One image and its objects.

    ``image``: float32 ``H x W x C`` in [0, 1] (rgb: 3 channels; raw: 2 channels ``low, high`` =
    raw / 65535; clcxray: the 3-channel CLCXray encoding / 255). ``boxes``: ``(N, 4)`` float32
    ``x1, y1, x2, y2`` in pixels; ``labels``: ``(N,)`` int64 contiguous class indices
    ``0..K-1`` (see :attr:`DetectionDataset.label_to_category_id`). Crowd annotations are left out.
    ``segmentation``: the COCO segmentations as the file stores them; ``mirror``: ``(left-right,
    top-bottom)`` flips of the image since it was read, which :meth:`masks` applies to them.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    difficulty: list[str]
    image_id: int
    file: str
    ann_ids: list[int] = field(default_factory=list)
    segmentation: list[Any] = field(default_factory=list)
    mirror: tuple[bool, bool] = (False, False)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def masks(self) -> np.ndarray:
        """``(N, H, W)`` bool instance masks decoded from the COCO segmentations (mirrored as
        the image is)."""
        out = np.zeros((len(self.segmentation), self.height, self.width), dtype=bool)
        for i, seg in enumerate(self.segmentation):
            if seg:
                out[i] = decode_segmentation(seg, self.height, self.width)
        if self.mirror[0]:
            out = out[:, :, ::-1]
        if self.mirror[1]:
            out = out[:, ::-1, :]
        return np.ascontiguousarray(out)


def decode_segmentation(seg: Any, h: int, w: int) -> np.ndarray:
    """The ``h x w`` bool mask of a COCO segmentation (polygons, uncompressed or compressed RLE)."""
    from pycocotools import mask as mask_utils

    if isinstance(seg, list):  # polygons
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    elif isinstance(seg.get("counts"), list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(seg, h, w)
    else:
        rle = dict(seg)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode()
    return mask_utils.decode(rle).astype(bool)


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """``n`` items shared out by ``fractions`` (largest remainder); every split with a positive
    fraction gets at least one item when there are enough items."""
    total = float(sum(fractions))
    exact = [n * f / total for f in fractions]
    counts = [math.floor(e) for e in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    for i, f in enumerate(fractions):
        if f > 0 and counts[i] == 0:
            donor = max(range(len(counts)), key=lambda j: counts[j])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[i] += 1
    return counts


def split_bags(bags: Sequence[int], splits: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> dict[str, list[int]]:
    """The bags of each split (``train``, ``val``, ``test``): a seeded permutation of the sorted
    bag ids cut by :func:`split_counts`. Depends only on the set of bags, the fractions and the seed."""
    unique = sorted(set(int(b) for b in bags))
    perm = np.random.default_rng(seed).permutation(len(unique))
    counts = split_counts(len(unique), splits)
    out, start = {}, 0
    for name, c in zip(("train", "val", "test"), counts):
        out[name] = sorted(unique[i] for i in perm[start : start + c])
        start += c
    return out


def read_json(path: str | Path, what: str = "file") -> Any:
    """The JSON in ``path``, or a one-line error: ``<what> does not exist`` at the path, or ``not
    valid JSON: <why>`` at ``path:line``."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, IsADirectoryError):
        raise XraybagError(f"{what} does not exist", str(path)) from None
    except json.JSONDecodeError as e:
        raise XraybagError(f"not valid JSON: {e.msg} (column {e.colno})", f"{path}:{e.lineno}") from None
    except UnicodeDecodeError as e:
        raise XraybagError(f"not valid JSON: not UTF-8 text ({e.reason})", str(path)) from None


def inside_dataset(rel: str) -> bool:
    """Whether ``rel``, a path in a dataset's ``annotations.json``, stays inside the dataset folder:
    relative, with no ``..`` part (``/`` or ``\\`` separated) and no drive. Checked on the text, so a
    dataset whose ``images/`` is a link to another folder is still read; a path may not lead a
    learner to read or write elsewhere."""
    from pathlib import PurePosixPath, PureWindowsPath

    text = str(rel)
    posix = PurePosixPath(text.replace("\\", "/"))
    return bool(text) and not posix.is_absolute() and ".." not in posix.parts and not PureWindowsPath(text).drive


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    return arr.astype(np.float32) / 255.0


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    arr = tifffile.imread(path)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr


class DetectionDataset:
    """The images of one split of the dataset at ``root``.

    ``split``: ``train``, ``val``, ``test`` or ``all``; splits are by bag (every view of a bag is in
    the same split), cut by ``splits`` fractions from a permutation seeded by ``seed``.
    ``input``: ``rgb`` (the pseudo-colour PNG), ``raw`` (channels ``low, high``) or ``clcxray``.

    The whole ``annotations.json`` is checked on open; any problem raises
    :class:`~xraybag.errors.XraybagError` naming the file and the record.

    ``on_load``, when set, is called with each image record whose pixels are loaded (by indexing
    or :meth:`load_image`) in this process: ``xraybag learn`` counts the images a learner has
    processed with it. It is not pickled (DataLoader workers do not call it).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        input: str = "rgb",
        splits: Sequence[float] = (0.8, 0.1, 0.1),
        seed: int = 0,
    ):
        self.root = Path(root)
        if split not in SPLITS:
            raise XraybagError(f"unknown split {split!r} (one of {', '.join(SPLITS)})")
        if input not in INPUTS:
            raise XraybagError(f"unknown input {input!r} (one of {', '.join(INPUTS)})")
        splits = tuple(float(s) for s in splits)
        if len(splits) != 3 or any(s < 0 or not math.isfinite(s) for s in splits) or sum(splits) <= 0:
            raise XraybagError(f"splits must be three non-negative fractions (train, val, test), got {splits}")
        self.split = split
        self.input = input
        self.splits = splits
        self.seed = int(seed)
        self.ann_file = self.root / "annotations.json"
        self.on_load: Callable[[dict], None] | None = None
        self.coco = self._read()
        self._validate()

        cats = sorted(self.coco["categories"], key=lambda c: c["id"])
        self.categories: list[dict] = cats
        self.label_to_category_id: list[int] = [int(c["id"]) for c in cats]
        self.category_id_to_label: dict[int, int] = {cid: i for i, cid in enumerate(self.label_to_category_id)}
        self.class_names: list[str] = [str(c.get("name", c["id"])) for c in cats]

        images = self.coco["images"]
        self.bag_splits = split_bags([self._bag(im) for im in images], splits, seed)
        if split == "all":
            keep = None
        else:
            keep = set(self.bag_splits[split])
        self.images: list[dict] = [im for im in images if keep is None or self._bag(im) in keep]
        ids = {im["id"] for im in self.images}
        self._anns: dict[int, list[dict]] = {i: [] for i in ids}
        for a in self.coco["annotations"]:
            if a["image_id"] in ids:
                self._anns[a["image_id"]].append(a)

    # -- reading and checking -------------------------------------------------------------

    def _read(self) -> dict:
        where = str(self.ann_file)
        if not self.root.is_dir():
            raise XraybagError("dataset folder does not exist", str(self.root))
        if not self.ann_file.is_file():
            raise XraybagError("no annotations.json (not an xraybag dataset folder?)", where)
        coco = read_json(self.ann_file, "annotations.json")
        if not isinstance(coco, dict):
            raise XraybagError("not a COCO dict", where)
        for key in ("images", "annotations", "categories"):
            if not isinstance(coco.get(key), list):
                raise XraybagError(f"missing or not a list: {key!r}", where)
        return coco

    @staticmethod
    def _bag(im: dict) -> int:
        bag = im.get("bag")
        return int(bag) if isinstance(bag, (int, float)) and not isinstance(bag, bool) else int(im["id"])

    def _validate(self) -> None:
        af = str(self.ann_file)
        coco = self.coco
        cat_ids: set[int] = set()
        for i, c in enumerate(coco["categories"]):
            where = f"{af}: categories[{i}]"
            if not isinstance(c, dict) or not isinstance(c.get("id"), int) or isinstance(c.get("id"), bool):
                raise XraybagError("category without an integer id", where)
            if c["id"] in cat_ids:
                raise XraybagError(f"duplicate category id {c['id']}", f"{where} (id {c['id']})")
            cat_ids.add(c["id"])

        sizes: dict[int, tuple[int, int]] = {}
        for i, im in enumerate(coco["images"]):
            where = f"{af}: images[{i}]"
            if not isinstance(im, dict) or not isinstance(im.get("id"), int) or isinstance(im.get("id"), bool):
                raise XraybagError("image without an integer id", where)
            where = f"{where} (id {im['id']})"
            if im["id"] in sizes:
                raise XraybagError(f"duplicate image id {im['id']}", where)
            w, h = im.get("width"), im.get("height")
            if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h)):
                raise XraybagError(f"width and height must be positive integers, got {w!r} x {h!r}", where)
            sizes[im["id"]] = (w, h)
            fn = im.get("file_name")
            if not isinstance(fn, str) or not fn:
                raise XraybagError("no file_name", where)
            raw = im.get("raw")
            for key, rel in (("file_name", fn), ("labels", im.get("labels")), ("scene", im.get("scene")),
                             *((f"raw.{c}", v) for c, v in (raw.items() if isinstance(raw, dict) else ()))):
                if rel is not None and not (isinstance(rel, str) and inside_dataset(rel)):
                    raise XraybagError(f"{key} {rel!r} leaves the dataset folder (paths are relative, without '..')",
                                       where)
            if not (self.root / fn).is_file():
                raise XraybagError(f"image file {fn} is missing", where)
            if self.input == "raw" or (self.input == "clcxray" and not self._clcxray_path(im).is_file()):
                raw = im.get("raw")
                if not isinstance(raw, dict) or not {"low", "high"} <= set(raw):
                    raise XraybagError(f"input {self.input!r} needs raw 'low' and 'high' channels; the image record has {sorted(raw) if isinstance(raw, dict) else 'none'}", where)
                for ch in ("low", "high"):
                    if not (self.root / raw[ch]).is_file():
                        raise XraybagError(f"raw file {raw[ch]} ({ch}) is missing", where)

        ann_ids: set[int] = set()
        for i, a in enumerate(coco["annotations"]):
            where = f"{af}: annotations[{i}]"
            if not isinstance(a, dict) or not isinstance(a.get("id"), int) or isinstance(a.get("id"), bool):
                raise XraybagError("annotation without an integer id", where)
            where = f"{where} (id {a['id']})"
            if a["id"] in ann_ids:
                raise XraybagError(f"duplicate annotation id {a['id']}", where)
            ann_ids.add(a["id"])
            if a.get("image_id") not in sizes:
                raise XraybagError(f"unknown image_id {a.get('image_id')!r}", where)
            if a.get("category_id") not in cat_ids:
                known = ", ".join(str(c) for c in sorted(cat_ids))
                raise XraybagError(f"unknown category_id {a.get('category_id')!r} (categories: {known})", where)
            bbox = a.get("bbox")
            if (
                not isinstance(bbox, list)
                or len(bbox) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox)
            ):
                raise XraybagError(f"bbox must be 4 finite numbers [x, y, w, h], got {bbox!r}", where)
            x, y, bw, bh = bbox
            if bw <= 0 or bh <= 0:
                raise XraybagError(f"bbox {bbox} has non-positive size", where)
            w, h = sizes[a["image_id"]]
            t = BORDER_TOLERANCE
            if x < -t or y < -t or x + bw > w + t or y + bh > h + t:
                raise XraybagError(f"bbox {bbox} lies outside image {a['image_id']} ({w} x {h})", where)
            d = a.get("difficulty")
            if d is not None and d not in DIFFICULTIES:
                raise XraybagError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {d!r}", where)

    def _clcxray_path(self, im: dict) -> Path:
        return self.root / "clcxray" / Path(im["file_name"]).name

    # -- access --------------------------------------------------------------------------------

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    @property
    def num_channels(self) -> int:
        return 2 if self.input == "raw" else 3

    @property
    def bags(self) -> list[int]:
        return sorted({self._bag(im) for im in self.images})

    @property
    def image_ids(self) -> list[int]:
        return [int(im["id"]) for im in self.images]

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def annotations(self, image_id: int) -> list[dict]:
        """The COCO annotations of one image of this split (crowd ones included)."""
        return self._anns[image_id]

    def load_image(self, im: dict) -> np.ndarray:
        """The image of the COCO image record ``im`` in this dataset's input encoding."""
        if self.input == "rgb":
            img = _read_rgb(self.root / im["file_name"])
        elif self.input == "raw":
            low = _read_tiff(self.root / im["raw"]["low"])
            high = _read_tiff(self.root / im["raw"]["high"])
            img = np.stack([low, high], axis=-1).astype(np.float32) / 65535.0
        else:
            path = self._clcxray_path(im)
            if path.is_file():
                img = _read_rgb(path)
            else:
                from xraybag.engine.xray.colour import clcxray_encoding

                low = _read_tiff(self.root / im["raw"]["low"])
                high = _read_tiff(self.root / im["raw"]["high"])
                img = clcxray_encoding(high, low).astype(np.float32) / 255.0
        if img.shape[:2] != (im["height"], im["width"]):
            raise XraybagError(
                f"{self.input} image is {img.shape[1]} x {img.shape[0]} but the record says {im['width']} x {im['height']}",
                f"{self.ann_file}: image id {im['id']} ({im['file_name']})",
            )
        if self.on_load is not None:
            self.on_load(im)
        return np.ascontiguousarray(img, dtype=np.float32)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "on_load": None}

    def __getitem__(self, index: int) -> Sample:
        im = self.images[index]
        anns = [a for a in self._anns[im["id"]] if not a.get("iscrowd", 0)]
        boxes = np.array([a["bbox"] for a in anns], dtype=np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        labels = np.array([self.category_id_to_label[a["category_id"]] for a in anns], dtype=np.int64)
        return Sample(
            image=self.load_image(im),
            boxes=boxes,
            labels=labels,
            difficulty=[str(a.get("difficulty", "easy")) for a in anns],
            image_id=int(im["id"]),
            file=im["file_name"],
            ann_ids=[int(a["id"]) for a in anns],
            segmentation=[a.get("segmentation") for a in anns],
        )

    def coco_subset(self) -> dict:
        """The COCO dict of this split only (for pycocotools)."""
        ids = {im["id"] for im in self.images}
        out = {k: v for k, v in self.coco.items() if k not in ("images", "annotations", "categories")}
        out["images"] = [dict(im) for im in self.images]
        out["annotations"] = [dict(a) for a in self.coco["annotations"] if a["image_id"] in ids]
        out["categories"] = [dict(c) for c in self.categories]
        return out

    def __repr__(self) -> str:
        return (
            f"DetectionDataset({str(self.root)!r}, split={self.split!r}, input={self.input!r}: "
            f"{len(self)} images, {len(self.bags)} bags, {self.num_classes} classes)"
        )


class ConcatDetectionDataset:
    """Several :class:`DetectionDataset` s read as one (``xraybag learn train`` with several
    ``--data``): the first one's categories and label indices; the others' categories matched to
    them by name (a name the first lacks is an error naming that dataset's file). Image, annotation
    and bag ids are offset per dataset so that they stay unique; records and samples come back with
    the new ids and category ids. ``root``, ``split``, ``input`` and ``splits`` are the first's."""

    def __init__(self, parts: Sequence[DetectionDataset]):
        if not parts:
            raise XraybagError("no datasets to join")
        first = parts[0]
        self.parts = list(parts)
        self.root, self.ann_file, self.split, self.input = first.root, first.ann_file, first.split, first.input
        self.splits, self.seed = first.splits, first.seed
        self.categories, self.class_names = first.categories, first.class_names
        self.label_to_category_id, self.category_id_to_label = first.label_to_category_id, first.category_id_to_label
        by_name = dict(zip(first.class_names, first.label_to_category_id))
        self._cat, self._label, self._where, self._orig = [], [], [], {}
        self.images, self._anns, self._bag_of = [], {}, {}
        img_off = ann_off = bag_off = 0
        for k, p in enumerate(self.parts):
            if p.input != first.input:
                raise XraybagError(f"input {p.input!r} differs from the first dataset's {first.input!r}", str(p.root))
            missing = [n for n in p.class_names if n not in by_name]
            if missing:
                raise XraybagError(f"categories {', '.join(map(repr, missing))} are not among the first dataset's "
                                   f"({', '.join(first.class_names)})", str(p.ann_file))
            cat = {cid: by_name[n] for cid, n in zip(p.label_to_category_id, p.class_names)}
            self._cat.append(cat)
            self._label.append(np.array([first.category_id_to_label[cat[c]] for c in p.label_to_category_id] or [0],
                                        dtype=np.int64))
            for j, im in enumerate(p.images):
                new = dict(im, id=int(im["id"]) + img_off, bag=p._bag(im) + bag_off)
                self.images.append(new)
                self._where.append((k, j, img_off, ann_off))
                self._orig[new["id"]] = (k, im)
                self._anns[new["id"]] = [dict(a, id=int(a["id"]) + ann_off, image_id=new["id"],
                                              category_id=cat[a["category_id"]]) for a in p.annotations(im["id"])]
            img_off += max((int(im["id"]) for im in p.coco["images"]), default=-1) + 1
            ann_off += max((int(a["id"]) for a in p.coco["annotations"]), default=-1) + 1
            bag_off += max((p._bag(im) for im in p.coco["images"]), default=-1) + 1

    @property
    def on_load(self):
        return self.parts[0].on_load

    @on_load.setter
    def on_load(self, fn) -> None:
        for p in self.parts:
            p.on_load = fn

    num_classes = DetectionDataset.num_classes
    num_channels = DetectionDataset.num_channels
    image_ids = DetectionDataset.image_ids
    __iter__ = DetectionDataset.__iter__

    @property
    def bags(self) -> list[int]:
        return sorted({int(im["bag"]) for im in self.images})

    def __len__(self) -> int:
        return len(self.images)

    def annotations(self, image_id: int) -> list[dict]:
        return self._anns[image_id]

    def load_image(self, im: dict) -> np.ndarray:
        k, orig = self._orig[im["id"]]
        return self.parts[k].load_image(orig)

    def __getitem__(self, index: int) -> Sample:
        from dataclasses import replace

        k, j, img_off, ann_off = self._where[index]
        s = self.parts[k][j]
        return replace(s, labels=self._label[k][s.labels], image_id=s.image_id + img_off,
                       ann_ids=[a + ann_off for a in s.ann_ids])

    def coco_subset(self) -> dict:
        return {"images": [dict(im) for im in self.images],
                "annotations": [dict(a) for im in self.images for a in self._anns[im["id"]]],
                "categories": [dict(c) for c in self.categories]}

    def __repr__(self) -> str:
        return f"ConcatDetectionDataset({len(self.parts)} datasets: {len(self)} images, {self.num_classes} classes)"


FLIPS = ("none", "h", "v", "hv")


def flip_sample(s: Sample, horizontal: bool = False, vertical: bool = False) -> Sample:
    """``s`` mirrored left-right (``horizontal``) and/or top-bottom (``vertical``): image, boxes
    and masks move together (a box ``x1, x2`` becomes ``W - x2, W - x1``; the segmentations are
    mirrored when :meth:`Sample.masks` decodes them, not here)."""
    if not (horizontal or vertical):
        return s
    h, w = s.height, s.width
    img, boxes = s.image, s.boxes.copy()
    if horizontal:
        img = img[:, ::-1]
        boxes[:, [0, 2]] = w - s.boxes[:, [2, 0]]
    if vertical:
        img = img[::-1, :]
        boxes[:, [1, 3]] = h - s.boxes[:, [3, 1]]
    mirror = (s.mirror[0] != horizontal, s.mirror[1] != vertical)
    return Sample(np.ascontiguousarray(img), boxes, s.labels.copy(), list(s.difficulty), s.image_id,
                  s.file, list(s.ann_ids), list(s.segmentation), mirror)


class RandomFlip:
    """A training view of ``data`` whose samples are mirrored at random: left-right with
    probability 0.5 when ``flip`` has ``h``, top-bottom with probability 0.5 when it has ``v``
    (an X-ray bag has no up or down). Whether sample ``i`` is flipped in an epoch depends only on
    ``(seed, epoch, i)`` (:meth:`set_epoch`), so a resumed or multi-worker run sees the same data."""

    def __init__(self, data, flip: str = "h", seed: int = 0):
        if flip not in FLIPS:
            raise XraybagError(f"option 'flip' must be one of {', '.join(FLIPS)}, got {flip!r}")
        self.data, self.flip, self.seed, self.epoch = data, flip, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Sample:
        s = self.data[index]
        u = np.random.default_rng((self.seed, self.epoch, int(index))).random(2)
        return flip_sample(s, horizontal="h" in self.flip and u[0] < 0.5,
                           vertical="v" in self.flip and u[1] < 0.5)


def torch_collate(batch: list[Sample]):
    """Collate :class:`Sample` s for a torch ``DataLoader``: returns ``(images, targets)`` with
    ``images`` a list of float32 ``C x H x W`` tensors and ``targets`` a list of dicts with
    ``boxes`` (float32 xyxy), ``labels`` (int64), ``image_id`` (int)."""
    import torch

    images, targets = [], []
    for s in batch:
        images.append(torch.from_numpy(np.ascontiguousarray(s.image.transpose(2, 0, 1))))
        targets.append({"boxes": torch.from_numpy(s.boxes), "labels": torch.from_numpy(s.labels), "image_id": s.image_id})
    return images, targets
