"""The two image sets Cycle-GAN learns between (torch-free): an xraybag dataset (its pseudo-colour
``images/`` as ``annotations.json`` lists them) or a plain folder of png / jpg / tiff images (all
files below it, sorted). Images are read as float32 ``H x W x C`` in [0, 1]: 8-bit / 255, 16-bit
/ 65535, floats as stored; grey images have one channel, RGBA and palette images are made RGB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xraybag.errors import XraybagError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def image_files(root: str | Path, what: str = "--data") -> list[Path]:
    """The image files of an image set: a dataset's pseudo-colour images or a folder's images."""
    from xraybag.learners.data import inside_dataset, read_json

    root = Path(root)
    if not root.is_dir():
        raise XraybagError(f"{what}: not a folder (an xraybag dataset or a folder of png/jpg/tiff images)", str(root))
    if (root / "annotations.json").is_file():
        coco = read_json(root / "annotations.json", "annotations.json")
        files = []
        for k, im in enumerate(coco.get("images", []) if isinstance(coco, dict) else []):
            rel = im.get("file_name") if isinstance(im, dict) else None
            if rel and not inside_dataset(str(rel)):
                raise XraybagError(f"{what}: path {rel!r} leaves the dataset folder",
                                   f"{root / 'annotations.json'}: images[{k}]")
            if not rel or not (root / rel).is_file():
                raise XraybagError(f"image file {rel!r} does not exist", f"{root / 'annotations.json'}: images[{k}]")
            files.append(root / rel)
    else:
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS
                       and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise XraybagError(f"{what}: holds no images (png, jpg, tiff) and no annotations.json", str(root))
    return files


def read_image(path: str | Path) -> np.ndarray:
    """``H x W x C`` float32 in [0, 1] (one-line error when the file cannot be read)."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            arr = np.asarray(tifffile.imread(path))
        else:
            from PIL import Image

            with Image.open(path) as im:
                if im.mode in ("RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV", "1"):
                    im = im.convert("RGB") if im.mode != "1" else im.convert("L")
                elif im.mode == "LA":
                    im = im.convert("L")
                arr = np.asarray(im)
    except Exception as e:  # a broken or unknown file: one line
        raise XraybagError(f"cannot read the image: {type(e).__name__}: {e}", str(path)) from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] > 4:
        raise XraybagError(f"is not an image (array of shape {tuple(arr.shape)})", str(path))
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype in (np.uint16, np.int32, np.uint32) or (arr.dtype.kind in "iu"):
        return np.clip(arr.astype(np.float32) / 65535.0, 0.0, 1.0)
    return np.clip(arr.astype(np.float32), 0.0, 1.0)


def read_item(item) -> np.ndarray:
    """An item of an image set: an image file (:func:`read_image`) or a raw view
    (:class:`.rawsignals.RawView`, option ``signals=raw``: its two channels of log attenuation)."""
    return item.read() if hasattr(item, "transmissions") else read_image(item)


def image_info(path: Path) -> tuple[int, int, int]:
    """``(height, width, channels)`` of an image file (reads it)."""
    arr = read_image(path)
    return int(arr.shape[0]), int(arr.shape[1]), int(arr.shape[2])


def pixel_size(root: str | Path) -> float | None:
    """The pixel size (mm) of an xraybag dataset's images: the median of their ``pixel_mm``; None
    for a plain image folder or a dataset whose images do not all record one."""
    from xraybag.learners.data import read_json

    root = Path(root)
    if not (root / "annotations.json").is_file():
        return None
    coco = read_json(root / "annotations.json", "annotations.json")
    images = coco.get("images", []) if isinstance(coco, dict) else []
    sizes = [im.get("pixel_mm") if isinstance(im, dict) else None for im in images]
    if not sizes or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 for s in sizes):
        return None
    return float(np.median(sizes))


def resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """``img`` (``H x W x C`` float32 in [0, 1]) resampled to ``height x width`` (PIL's Lanczos
    filter on each channel in 32-bit float, antialiased when it shrinks), clipped to [0, 1]."""
    from PIL import Image

    if img.shape[:2] == (height, width):
        return img
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(img[:, :, k], dtype=np.float32))
                        .resize((width, height), Image.Resampling.LANCZOS)) for k in range(img.shape[2])]
    return np.clip(np.stack(chans, axis=2), 0.0, 1.0).astype(np.float32)


def scaled_shape(height: int, width: int, scale: float) -> tuple[int, int]:
    """``(height, width)`` times ``scale``, rounded, at least 1 px."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def rescale(img: np.ndarray, scale: float) -> np.ndarray:
    """``img`` resampled by ``scale`` (:func:`resize`; 1: unchanged)."""
    if scale == 1.0:
        return img
    return resize(img, *scaled_shape(img.shape[0], img.shape[1], scale))


def check_set(files: list[Path], size: int, what: str, scale: float = 1.0) -> int:
    """The channel count shared by every image of the set; one-line errors for mixed channels or
    an image smaller than the training crop ``size`` (once resampled by ``scale``)."""
    channels = None
    for f in files:
        h, w, c = image_info(f)
        if channels is None:
            channels = c
        elif c != channels:
            raise XraybagError(f"{what}: has {c} channels where {files[0].name} has {channels}; "
                               "every image of a set needs the same channels", str(f))
        sh, sw = scaled_shape(h, w, scale)
        if sh < size or sw < size:
            at = "" if scale == 1.0 else f" ({sw} x {sh} px resampled by {scale:g})"
            raise XraybagError(f"{what}: image is {w} x {h} px{at}, smaller than the training crop {size} x {size} "
                               "(use --opt size=...)", str(f))
    assert channels is not None
    return channels
