"""Reading an xraybag dataset for segmenters: instance masks, the pseudo-colour image and the high
and low energy channels, cleaned by the XSeg paper's rules where they apply.

The XSeg paper (APSAM) recovers the high and low energy images from a pseudo-colour image as the
maximum and minimum over its colour channels (its eq. 4, ``I_H = max_c I``, ``I_L = min_c I``),
because public datasets keep only the colour image. An xraybag dataset has the detector's own
signals, ``raw/<bag>_<view>_<low|high>.tiff``; :class:`SegmentationDataset` uses them when present
(``channels="auto"`` or ``"raw"``) and the paper's rule otherwise (or when asked,
``channels="pseudo_colour"``), so the two can be compared.

Cleaning (the paper's section 3.1, where it applies to rendered data): images whose shorter side is
under ``min_side`` (200) pixels or whose aspect ratio lies outside ``aspect`` ([0.2, 5]) are left
out; with ``laplacian_threshold`` set, an image whose variance of the Laplacian (of its grey
pseudo-colour image, 0-255) exceeds it is left out with probability 0.9 (seeded by ``clean_seed``
and the image id; the paper gives no threshold, so this filter is off by default). The paper's
mask filters are manual; here a mask is dropped when it is missing, empty, under ``min_area``
pixels, or under ``min_thickness`` pixels wide or high (a line), and crowd annotations are left
out. :meth:`SegmentationDataset.cleaning_report` says how many of each were dropped.

Torch-free (numpy, PIL, tifffile, pycocotools).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from xraybag.errors import XraybagError
from xraybag.learners.data import DetectionDataset, _read_rgb, _read_tiff, decode_segmentation

CHANNELS = ("auto", "raw", "pseudo_colour")
#: where a segmentation dataset's masks come from: the annotated objects, or every object of the
#: renderer's instance maps (``labels/``)
MASKS = ("annotations", "instances")
#: the class of an object that is in an instance map but not annotated (masks="instances")
OBJECT = "object"
#: the paper's image filters: shorter side below this (pixels), aspect ratio outside this range
MIN_SIDE = 200
ASPECT = (0.2, 5.0)
#: the paper's probability of discarding an image over the Laplacian-variance threshold
NOISY_DROP_P = 0.9
#: why an image or a mask was dropped, in report order
IMAGE_RULES = ("small", "aspect", "noisy")
MASK_RULES = ("crowd", "no_mask", "empty", "tiny", "thin")


def channels_from_pseudo_colour(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(high, low)`` of a pseudo-colour image ``H x W x C``: the maximum and the minimum over its
    channels, as float32 (the XSeg paper's eq. 4: the high-energy image transmits more, so it is the
    brighter grey level, the low-energy one the darker)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] < 1:
        raise XraybagError(f"a pseudo-colour image is H x W x C, got shape {rgb.shape}")
    return rgb.max(axis=-1).astype(np.float32), rgb.min(axis=-1).astype(np.float32)


def mask_to_rle(mask: np.ndarray) -> dict:
    """The compressed COCO RLE of a bool ``H x W`` mask, ``counts`` as a str (JSON-ready)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"]}


def _rle(seg: Any, h: int, w: int) -> dict:
    """``seg`` (polygons, uncompressed or compressed RLE) as a compressed RLE of an ``h x w`` image."""
    from pycocotools import mask as mask_utils

    if isinstance(seg, list):
        return mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    if isinstance(seg.get("counts"), list):
        return mask_utils.frPyObjects(seg, h, w)
    rle = dict(seg)
    if isinstance(rle["counts"], str):
        rle["counts"] = rle["counts"].encode()
    return rle


def laplacian_variance(rgb: np.ndarray) -> float:
    """The variance of the 4-neighbour Laplacian of the grey image (mean of the channels) of an
    ``H x W x C`` image in 0-255, as OpenCV's ``Laplacian(grey).var()`` (default kernel, border reflect-101)."""
    from scipy import ndimage

    grey = np.asarray(rgb, dtype=np.float64)
    grey = grey.mean(axis=-1) if grey.ndim == 3 else grey
    return float(ndimage.laplace(grey, mode="mirror").var())


@dataclass
class SegSample:
    """One image, its two energy channels and its (cleaned) instance masks.

    ``image``: float32 ``H x W x 3`` pseudo-colour in [0, 1]. ``high``, ``low``: float32 ``H x W``
    in [0, 1] (raw / 65535, or the max / min of ``image`` when ``channels`` is ``pseudo_colour``).
    ``masks``: ``(N, H, W)`` bool; ``labels``: ``(N,)`` int64 contiguous class indices;
    ``category_ids``: ``(N,)`` the COCO ids; ``boxes``: ``(N, 4)`` float32 ``x1, y1, x2, y2`` of the
    masks; ``difficulty``: ``easy``, ``hard`` or ``hidden`` per mask.
    """

    image: np.ndarray
    high: np.ndarray
    low: np.ndarray
    channels: str
    masks: np.ndarray
    labels: np.ndarray
    category_ids: np.ndarray
    boxes: np.ndarray
    difficulty: list[str]
    image_id: int
    file: str
    ann_ids: list[int] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def energy(self) -> np.ndarray:
        """float32 ``H x W x 2``: ``(high, low)``, the Energy-Aware Encoder's input ``X0 = [I_H; I_L]``."""
        return np.stack([self.high, self.low], axis=-1).astype(np.float32)


class SegmentationDataset(DetectionDataset):
    """The images of one split of the dataset at ``root`` with their instance masks, for segmenters.

    Splits, ``splits`` and ``seed`` are those of :class:`~xraybag.learners.data.DetectionDataset`
    (by bag), and the whole ``annotations.json`` is checked on open the same way. ``channels``:
    ``auto`` (raw where the image record has both raw files, else the pseudo-colour max/min),
    ``raw`` (required) or ``pseudo_colour``. The cleaning options are described in the module
    docstring; :attr:`dropped` counts what each rule removed from this split.

    ``masks``: ``annotations`` (the annotated objects) or ``instances``: every object of each
    image's instance map (``labels/<bag>_<view>.png``, an xraybag render's), the annotated ones
    with their annotation (class, difficulty) and their map's pixels, the others as class
    :data:`OBJECT` (added to the categories). A render annotates only its threats; a segmenter that
    must segment a whole bag (xsyn's variant A, BOM) learns from every object this way.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        channels: str = "auto",
        splits: Sequence[float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        min_side: int = MIN_SIDE,
        aspect: tuple[float, float] = ASPECT,
        min_area: int = 16,
        min_thickness: int = 2,
        laplacian_threshold: float | None = None,
        clean_seed: int = 0,
        masks: str = "annotations",
    ):
        if channels not in CHANNELS:
            raise XraybagError(f"unknown channels {channels!r} (one of {', '.join(CHANNELS)})")
        lo, hi = (float(a) for a in aspect)
        if not (0 < lo <= hi):
            raise XraybagError(f"aspect must be a range 0 < low <= high, got {tuple(aspect)}")
        super().__init__(root, split=split, input="raw" if channels == "raw" else "rgb", splits=splits, seed=seed)
        self.channels = channels
        if masks not in MASKS:
            raise XraybagError(f"masks must be one of {', '.join(MASKS)}, got {masks!r}")
        self.masks = masks
        if masks == "instances":
            self._instance_masks()
        self.rules = {"min_side": int(min_side), "aspect": (lo, hi), "min_area": int(min_area),
                      "min_thickness": int(min_thickness), "laplacian_threshold": laplacian_threshold,
                      "clean_seed": int(clean_seed)}
        self._require_masks()
        self.dropped: Counter = Counter()
        self.images_total = len(self.images)
        self.masks_total = sum(len(v) for v in self._anns.values())
        self._clean_images()
        self._clean_masks()

    # -- cleaning ------------------------------------------------------------------------------

    def _instance_masks(self) -> None:
        """Replace each image's annotations by one per object of its instance map (see the class)."""
        from PIL import Image

        cid = next((int(c["id"]) for c in self.categories if c.get("name") == OBJECT), None)
        if cid is None:
            cid = max((int(c["id"]) for c in self.categories), default=0) + 1
            self.categories = [*self.categories, {"id": cid, "name": OBJECT, "supercategory": OBJECT}]
            self.label_to_category_id.append(cid)
            self.category_id_to_label[cid] = len(self.label_to_category_id) - 1
            self.class_names.append(OBJECT)
        next_id = max((int(a["id"]) for a in self.coco["annotations"]), default=0) + 1
        for im in self.images:
            where = f"{self.ann_file}: image id {im['id']}"
            rel = im.get("labels")
            if not isinstance(rel, str) or not (self.root / rel).is_file():
                raise XraybagError(f"masks=instances needs the image's instance map (labels/, written by 'xraybag "
                                   f"render'); its record has {'labels ' + repr(rel) if rel else 'none'}", where)
            try:
                with Image.open(self.root / rel) as f:
                    ids = np.asarray(f)
            except Exception as e:  # a broken file: one line
                raise XraybagError(f"cannot read the instance map {rel}: {type(e).__name__}: {e}", where) from None
            if ids.shape != (im["height"], im["width"]):
                raise XraybagError(f"instance map {rel} is {ids.shape[1]} x {ids.shape[0]}, the image "
                                   f"{im['width']} x {im['height']}", where)
            annotated = {int(a["object_index"]): a for a in self._anns[im["id"]] if "object_index" in a}
            anns = []
            for k in np.unique(ids):
                if k == 0:
                    continue
                mask = ids == k
                ys, xs = np.nonzero(mask)
                a = annotated.get(int(k))
                base = ({"category_id": cid, "difficulty": "easy", "name": f"object_{int(k)}"} if a is None else
                        {key: a[key] for key in ("category_id", "difficulty", "name") if key in a})
                anns.append({**base, "id": int(a["id"]) if a is not None else next_id, "image_id": im["id"],
                             "object_index": int(k), "iscrowd": 0, "area": int(mask.sum()),
                             "bbox": [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                                      float(ys.max() - ys.min() + 1)],
                             "segmentation": mask_to_rle(mask)})
                next_id += a is None
            self._anns[im["id"]] = anns
        self.coco = {**self.coco, "categories": self.categories,
                     "annotations": [a for im in self.images for a in self._anns[im["id"]]]}

    def _require_masks(self) -> None:
        anns = self.coco["annotations"]
        if not any(a.get("segmentation") for a in anns):
            what = f"none of its {len(anns)} annotations has a 'segmentation'" if anns else "it has no annotations"
            raise XraybagError(f"no instance masks: {what} (a segmenter needs masks; is this a detection-only dataset?)",
                               str(self.ann_file))

    def _clean_images(self) -> None:
        r = self.rules
        lo, hi = r["aspect"]
        kept = []
        for im in self.images:
            w, h = im["width"], im["height"]
            if min(w, h) < r["min_side"]:
                self.dropped["small"] += 1
            elif not (lo <= w / h <= hi):
                self.dropped["aspect"] += 1
            elif r["laplacian_threshold"] is not None and self._noisy(im):
                self.dropped["noisy"] += 1
            else:
                kept.append(im)
                continue
            self.dropped["masks_of_dropped_images"] += len(self._anns.pop(im["id"]))
        self.images = kept

    def _noisy(self, im: dict) -> bool:
        if laplacian_variance(_read_rgb(self.root / im["file_name"]) * 255.0) <= float(self.rules["laplacian_threshold"]):
            return False
        u = np.random.default_rng((self.rules["clean_seed"], int(im["id"]))).random()
        return bool(u < NOISY_DROP_P)

    def _clean_masks(self) -> None:
        from pycocotools import mask as mask_utils

        r = self.rules
        sizes = {im["id"]: (im["height"], im["width"]) for im in self.images}
        for iid, anns in self._anns.items():
            h, w = sizes[iid]
            kept = []
            for a in anns:
                seg = a.get("segmentation")
                if a.get("iscrowd", 0):
                    rule = "crowd"
                elif not seg:
                    rule = "no_mask"
                else:
                    where = f"{self.ann_file}: annotation id {a['id']}"
                    try:
                        rle = _rle(seg, h, w)
                        area = int(mask_utils.area(rle))
                        _x, _y, bw, bh = (float(v) for v in mask_utils.toBbox(rle))
                    except Exception as e:  # pycocotools raises bare Exceptions and TypeErrors
                        raise XraybagError(f"segmentation cannot be decoded: {type(e).__name__}: {e}", where) from None
                    if [int(v) for v in rle["size"]] != [h, w]:
                        raise XraybagError(f"mask size {list(rle['size'])} (h, w) is not the image's [{h}, {w}]", where)
                    if area == 0:
                        rule = "empty"
                    elif area < r["min_area"]:
                        rule = "tiny"
                    elif min(bw, bh) < r["min_thickness"]:
                        rule = "thin"
                    else:
                        kept.append(a)
                        continue
                self.dropped[rule] += 1
            self._anns[iid] = kept

    @property
    def masks_kept(self) -> int:
        return sum(len(v) for v in self._anns.values())

    def cleaning_report(self) -> str:
        """One line: how many images and masks cleaning kept, and what each rule dropped."""
        r = self.rules
        why = {"small": f"shorter side < {r['min_side']} px", "aspect": f"aspect outside [{r['aspect'][0]:g}, {r['aspect'][1]:g}]",
               "noisy": f"Laplacian variance > {r['laplacian_threshold']}", "crowd": "crowd", "no_mask": "without a mask",
               "empty": "empty", "tiny": f"< {r['min_area']} px", "thin": f"thinner than {r['min_thickness']} px"}
        img = ", ".join(f"{self.dropped[k]} {why[k]}" for k in IMAGE_RULES if self.dropped[k])
        msk = ", ".join(f"{self.dropped[k]} {why[k]}" for k in MASK_RULES if self.dropped[k])
        gone = self.dropped["masks_of_dropped_images"]
        return (f"{self.split}: kept {len(self.images)} of {self.images_total} images"
                + (f" (dropped {img}, with their {gone} masks)" if img else "")
                + f" and {self.masks_kept} of {self.masks_total - gone} masks"
                + (f" (dropped {msk})" if msk else ""))

    # -- access --------------------------------------------------------------------------------

    def _has_raw(self, im: dict) -> bool:
        raw = im.get("raw")
        return (isinstance(raw, dict) and all(isinstance(raw.get(c), str) for c in ("low", "high"))
                and all((self.root / raw[c]).is_file() for c in ("low", "high")))

    def channels_of(self, im: dict) -> str:
        """``raw`` or ``pseudo_colour``: where the image record ``im`` gets its high and low channels."""
        if self.channels == "pseudo_colour" or (self.channels == "auto" and not self._has_raw(im)):
            return "pseudo_colour"
        return "raw"

    def load_channels(self, im: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        """``(image, high, low, channels)`` of the image record ``im`` (see :class:`SegSample`)."""
        rgb = _read_rgb(self.root / im["file_name"])
        where = f"{self.ann_file}: image id {im['id']} ({im['file_name']})"
        if rgb.shape[:2] != (im["height"], im["width"]):
            raise XraybagError(f"image is {rgb.shape[1]} x {rgb.shape[0]} but the record says {im['width']} x {im['height']}", where)
        mode = self.channels_of(im)
        if mode == "raw":
            high, low = (_read_tiff(self.root / im["raw"][c]).astype(np.float32) / 65535.0 for c in ("high", "low"))
            for c, arr in (("high", high), ("low", low)):
                if arr.shape != rgb.shape[:2]:
                    raise XraybagError(f"raw {c} channel {im['raw'][c]} is {arr.shape[1]} x {arr.shape[0]}, the image "
                                       f"{rgb.shape[1]} x {rgb.shape[0]}", where)
        else:
            high, low = channels_from_pseudo_colour(rgb)
        if self.on_load is not None:
            self.on_load(im)
        return rgb, high, low, mode

    def __getitem__(self, index: int) -> SegSample:
        im = self.images[index]
        rgb, high, low, mode = self.load_channels(im)
        anns = self._anns[im["id"]]
        h, w = rgb.shape[:2]
        masks = np.zeros((len(anns), h, w), dtype=bool)
        boxes = np.zeros((len(anns), 4), dtype=np.float32)
        for i, a in enumerate(anns):
            masks[i] = decode_segmentation(a["segmentation"], h, w)
            ys, xs = np.nonzero(masks[i])
            boxes[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        cats = np.array([int(a["category_id"]) for a in anns], dtype=np.int64)
        return SegSample(
            image=rgb, high=np.ascontiguousarray(high), low=np.ascontiguousarray(low), channels=mode,
            masks=masks, labels=np.array([self.category_id_to_label[c] for c in cats], dtype=np.int64),
            category_ids=cats, boxes=boxes, difficulty=[str(a.get("difficulty", "easy")) for a in anns],
            image_id=int(im["id"]), file=im["file_name"], ann_ids=[int(a["id"]) for a in anns],
        )

    def coco_subset(self) -> dict:
        """The COCO dict of this split after cleaning (kept images and masks only; for pycocotools)."""
        out = {k: v for k, v in self.coco.items() if k not in ("images", "annotations", "categories")}
        out["images"] = [dict(im) for im in self.images]
        out["annotations"] = [dict(a) for im in self.images for a in self._anns[im["id"]]]
        out["categories"] = [dict(c) for c in self.categories]
        return out

    def __repr__(self) -> str:
        return (f"SegmentationDataset({str(self.root)!r}, split={self.split!r}, channels={self.channels!r}: "
                f"{len(self)} images, {self.masks_kept} masks, {self.num_classes} classes)")
