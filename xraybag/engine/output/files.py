"""Encoding and writing files: atomic writes (temp file, then rename), PNG, TIFF, hashes, names."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


#: Deflate level of the PNG and TIFF files. Levels 0-3 compress with ISA-L (``isal``), whose
#: level 1 is 8x faster than zlib's level 1 and a little smaller; levels 4-9 use zlib. Both write
#: ordinary zlib streams that every PNG and TIFF reader decodes.
PNG_LEVEL = 1
TIFF_LEVEL = 1
#: about this many bytes of image per TIFF strip (tifffile's own choice for compressed strips)
TIFF_STRIP_BYTES = 2**18

#: PNG colour type by samples per pixel: grey, grey + alpha, RGB, RGBA
_PNG_COLOUR = {1: 0, 2: 4, 3: 2, 4: 6}


def deflate(data, level: int) -> bytes:
    """A zlib stream of ``data``: ISA-L for levels 0-3, zlib above."""
    if level <= 3:
        from isal import isal_zlib

        return isal_zlib.compress(data, max(0, level))
    return zlib.compress(data, level)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def encode_png(img: np.ndarray, level: int = PNG_LEVEL) -> bytes:
    """A PNG of an 8- or 16-bit image of 1-4 samples per pixel (grey, grey + alpha, RGB, RGBA).

    Every row gets PNG's "Up" filter (the difference to the row above, which suits line-scan
    images: their columns change slowly) and the rows are deflated in one stream at ``level``
    (:func:`deflate`). Pillow's encoder spends 10x longer on the same image at zlib level 1. Other
    dtypes go through Pillow.
    """
    a = np.ascontiguousarray(img)
    samples = 1 if a.ndim == 2 else (a.shape[2] if a.ndim == 3 else 0)
    if a.dtype not in (np.uint8, np.uint16) or samples not in _PNG_COLOUR or 0 in a.shape:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG", compress_level=min(level, 9))
        return buf.getvalue()
    rows, cols = a.shape[:2]
    line = a.astype(">u2", copy=False) if a.dtype == np.uint16 else a
    line = line.view(np.uint8).reshape(rows, -1)
    filtered = np.empty((rows, line.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2  # Up
    filtered[:, 1:] = line
    np.subtract(line[1:], line[:-1], out=filtered[1:, 1:])  # modulo 256, as the filter is defined
    header = struct.pack(">IIBBBBB", cols, rows, 8 * a.itemsize, _PNG_COLOUR[samples], 0, 0, 0)
    return b"".join([
        b"\x89PNG\r\n\x1a\n",
        _png_chunk(b"IHDR", header),
        _png_chunk(b"IDAT", deflate(filtered, level)),
        _png_chunk(b"IEND", b""),
    ])


def encode_tiff(img: np.ndarray, level: int = TIFF_LEVEL) -> bytes:
    """A Deflate-compressed TIFF. Integer images (the raw detector signals) get the
    horizontal-differencing predictor (TIFF predictor 2, read by every TIFF reader): 10 % smaller
    than plain Deflate. Their strips are differenced here and deflated by :func:`deflate`; tifffile
    writes the container. Float images (``--save-transmission``) get no predictor (tifffile's
    floating-point predictor needs the optional imagecodecs package) and tifffile's own zlib."""
    import tifffile

    a = np.asarray(img)
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))
    options = dict(compression="zlib", software=None, datetime=None, metadata=None)
    buf = io.BytesIO()
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.integer) or 0 in a.shape:
        tifffile.imwrite(buf, a, compressionargs={"level": level},
                         predictor=bool(np.issubdtype(a.dtype, np.integer)), **options)
        return buf.getvalue()
    diff = a.copy()
    np.subtract(a[:, 1:], a[:, :-1], out=diff[:, 1:])  # wraps modulo 2^bits, as the predictor is defined
    per_strip = max(1, TIFF_STRIP_BYTES // (a.shape[1] * a.itemsize))
    strips = (deflate(diff[r:r + per_strip], level) for r in range(0, a.shape[0], per_strip))
    tifffile.imwrite(buf, strips, shape=a.shape, dtype=a.dtype, rowsperstrip=per_strip, predictor=True,
                     **options)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bag_name(index: int) -> str:
    return f"{index:06d}"


def scene_yaml(scene, folder: Path) -> str:
    """A concrete scene as YAML that renders its bag again from ``folder``: every mesh file it uses
    is copied to ``folder/assets/`` (named by its hash) and referred to there."""
    from xraybag.scenes.sample import dump_scene

    def meshes(objects):
        return [node for obj in objects for node in [obj, *_nested_parts(obj.parts)]
                if node.shape is not None and node.shape.mesh is not None]

    # a scene without mesh files is written as it is; one with them is copied first, to point its
    # copy at the assets folder
    data = scene.model_copy(deep=True) if meshes(scene.objects) else scene
    for node in meshes(data.objects):
        src = Path(node.shape.mesh.path)
        content = src.read_bytes()
        name = f"{sha256(content)[:16]}{src.suffix.lower()}"
        dst = Path(folder) / "assets" / name
        if not dst.exists():
            write_atomic(dst, content)
        node.shape.mesh.path = f"assets/{name}"
    return dump_scene(data)


def _nested_parts(parts: list):
    for p in parts:
        yield p
        yield from _nested_parts(p.parts)
