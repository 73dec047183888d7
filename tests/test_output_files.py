"""File encodings of a dataset: what the fast settings write reads back exactly, with the readers
users have (Pillow, tifffile), and the concrete-scene YAML is the same text whichever emitter writes it."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
import yaml
from PIL import Image

from xraybag.engine.output.files import encode_png, encode_tiff
from xraybag.scenes import sample
from xraybag.scenes.loader import load_scene
from xraybag.scenes.sample import dump_scene


@pytest.fixture
def signal():
    """A line-scan-like 16-bit image: smooth attenuation, edges, noise and the full range."""
    rng = np.random.default_rng(3)
    r, c = np.mgrid[0:61, 0:97]
    img = 40000 * np.exp(-((r - 30) ** 2 + (c - 40) ** 2) / 900) + 2000 * (c > 70)
    img = img + rng.normal(0, 300, img.shape)
    img[0, 0], img[0, 1] = 0, 65535
    return np.clip(img, 0, 65535).astype(np.uint16)


def test_tiff_with_predictor_reads_back_exactly_in_tifffile_and_pillow(signal):
    data = encode_tiff(signal)
    with tifffile.TiffFile(io.BytesIO(data)) as tf:
        page = tf.pages[0]
        assert page.predictor == 2 and page.compression == 8  # horizontal differencing, Deflate
        np.testing.assert_array_equal(page.asarray(), signal)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), signal)


def test_tiff_of_many_strips_reads_back_exactly(signal):
    tall = np.concatenate([signal] * 60)[:, ::-1].copy()  # 3660 rows of 97: three strips
    tall[:, 5] = np.arange(tall.shape[0]) % 65536  # a column that wraps the difference modulo 2^16
    data = encode_tiff(tall)
    with tifffile.TiffFile(io.BytesIO(data)) as tf:
        page = tf.pages[0]
        assert len(page.dataoffsets) > 1 and page.predictor == 2
        np.testing.assert_array_equal(page.asarray(), tall)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), tall)
    big_endian = encode_tiff(tall.astype(">u2"))
    np.testing.assert_array_equal(tifffile.imread(io.BytesIO(big_endian)), tall)


def test_float_tiff_reads_back_exactly(signal):
    t = signal.astype(np.float32) / 65535
    data = encode_tiff(t)
    with tifffile.TiffFile(io.BytesIO(data)) as tf:
        np.testing.assert_array_equal(tf.pages[0].asarray(), t)


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_png_any_level_reads_back_exactly(signal, level):
    rgb = np.stack([signal >> 8, signal & 255, (signal >> 4) & 255], axis=-1).astype(np.uint8)
    for img in (rgb, signal):
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(encode_png(img, level)))), img)
    assert len(encode_png(rgb, 1)) < 1.6 * len(encode_png(rgb, 6))


def test_png_of_every_colour_type_reads_back_exactly(signal):
    rgb = np.stack([signal >> 8, signal & 255, (signal >> 4) & 255], axis=-1).astype(np.uint8)
    cases = {
        "L": rgb[..., 0].copy(), "LA": rgb[..., :2].copy(), "RGB": rgb,
        "RGBA": np.concatenate([rgb, rgb[..., :1]], axis=-1), "I;16": signal,
    }
    for mode, img in cases.items():
        back = Image.open(io.BytesIO(encode_png(img)))
        back.load()
        assert back.mode == mode or (mode == "I;16" and back.mode.startswith("I"))
        np.testing.assert_array_equal(np.asarray(back), img)
    # a reader that checks every CRC and the zlib stream (Pillow's verify)
    Image.open(io.BytesIO(encode_png(rgb))).verify()
    mask = signal > 20000  # other dtypes go through Pillow
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(encode_png(mask)))), mask)


def test_concrete_scene_yaml_is_the_same_text_from_libyaml_and_the_pure_emitter(monkeypatch):
    scene = sample.sample(load_scene("demo"), 0)
    fast = dump_scene(scene)
    monkeypatch.delattr(yaml, "CSafeDumper", raising=False)
    pure = dump_scene(scene)
    assert fast == pure
    from ruamel.yaml import YAML

    back = YAML(typ="safe").load(fast)
    assert back == sample.scene_to_data(scene)
