"""benchmarks/cyclegan_stats.py compares the scored source images with the target's images of the
same views (a side view and a top view of one bag differ more than two scanners do)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture()
def stats_module(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("cyclegan_stats")


def dataset(root: Path, views: dict[str, str | None]) -> list[Path]:
    (root / "images").mkdir(parents=True)
    images = []
    for k, (name, view) in enumerate(views.items()):
        (root / "images" / name).write_bytes(b"")
        images.append({"id": k + 1, "file_name": f"images/{name}", **({"view": view} if view else {})})
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": [], "categories": []}))
    return [root / "images" / n for n in views]


def test_target_is_restricted_to_the_scored_views(tmp_path, stats_module):
    src = dataset(tmp_path / "a", {"0_side.png": "side", "0_top.png": "top", "1_side.png": "side",
                                   "1_top.png": "top"})
    tgt = dataset(tmp_path / "b", {"5_side.png": "side", "5_top.png": "top", "6_side.png": "side",
                                   "6_top.png": "top", "7_top.png": "top"})
    side = [src[0], src[2]]
    kept, held = stats_module.matched_target(side, tmp_path / "a", tgt, tmp_path / "b")
    assert [p.name for p in kept] == ["5_side.png", "6_side.png"] and held == {"side": 2}
    kept, held = stats_module.matched_target(src, tmp_path / "a", tgt, tmp_path / "b")
    assert kept == tgt and held == {"side": 2, "top": 2}
    kept, held = stats_module.matched_target(side, tmp_path / "a", tgt, tmp_path / "b", views="all")
    assert kept == tgt and held is None


def test_folders_without_views_compare_with_every_target_image(tmp_path, stats_module):
    src = dataset(tmp_path / "a", {"0_side.png": "side", "1_side.png": "side"})
    tgt = dataset(tmp_path / "b", {"5.png": None, "6.png": "top"})  # one image names no view
    assert stats_module.matched_target(src, tmp_path / "a", tgt, tmp_path / "b") == (tgt, None)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "x.png").write_bytes(b"")
    assert stats_module.matched_target(src, tmp_path / "a", [plain / "x.png"], plain) == ([plain / "x.png"], None)


def test_a_target_without_the_scored_views_is_refused(tmp_path, stats_module):
    src = dataset(tmp_path / "a", {"0_side.png": "side"})
    tgt = dataset(tmp_path / "b", {"5_top.png": "top"})
    with pytest.raises(ValueError, match="no image of the scored views"):
        stats_module.matched_target(src, tmp_path / "a", tgt, tmp_path / "b")
