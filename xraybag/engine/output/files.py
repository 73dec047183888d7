"""Encoding and writing files: atomic writes (temp file, then rename), PNG, TIFF, hashes, names."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
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


#: zlib level of the PNG files: level 1 encodes a 600 x 1200 pseudo-colour view 4x faster than
#: Pillow's default 6, for files about 20 % larger (benchmarks/render_throughput.py)
PNG_LEVEL = 1
#: zlib level of the TIFF files; with the horizontal-differencing predictor (TIFF predictor 2, read
#: by every TIFF reader) on the 16-bit signals, level 1 is both 4x faster and 10 % smaller than
#: plain zlib at its default level 6. Float images (``--save-transmission``) get no predictor:
#: tifffile's floating-point predictor needs the optional imagecodecs package.
TIFF_LEVEL = 1


def encode_png(img: np.ndarray, level: int = PNG_LEVEL) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def encode_tiff(img: np.ndarray, level: int = TIFF_LEVEL) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(
        buf, img, compression="zlib", compressionargs={"level": level},
        predictor=bool(np.issubdtype(img.dtype, np.integer)),
        software=None, datetime=None, metadata=None,
    )
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bag_name(index: int) -> str:
    return f"{index:06d}"


def scene_yaml(scene, folder: Path) -> str:
    """A concrete scene as YAML that renders its bag again from ``folder``: every mesh file it uses
    is copied to ``folder/assets/`` (named by its hash) and referred to there."""
    from xraybag.scenes.sample import dump_scene

    data = scene.model_copy(deep=True)
    for obj in data.objects:
        for node in [obj, *_nested_parts(obj.parts)]:
            if node.shape is not None and node.shape.mesh is not None:
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
