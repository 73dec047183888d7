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


def encode_png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def encode_tiff(img: np.ndarray) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, img, compression="zlib", software=None, datetime=None, metadata=None)
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
