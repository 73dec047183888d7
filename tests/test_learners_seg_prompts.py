"""Prompts for promptable segmenters from the command line (``--image``, ``--points``, ``--box``)
and from a prompts JSON file: what they become, and the one-line errors for bad ones."""

from __future__ import annotations

import json

import pytest
from test_learners_seg import _box_mask, write_dataset

from xraybag.cli.seg import cli_prompts, file_prompts, find_image
from xraybag.errors import XraybagError
from xraybag.learners.seg_data import SegmentationDataset


@pytest.fixture
def ds(tmp_path):
    m = _box_mask(10, 20, 2, 2, 5, 4)
    root = write_dataset(tmp_path / "d", [
        {"w": 20, "h": 10, "anns": [(m, 3, "easy", {})]},
        {"w": 20, "h": 10, "anns": [(m, 7, "hard", {})]},
    ])
    return SegmentationDataset(root, split="all", min_side=1)


def test_points_and_boxes_become_one_prompt_each(ds):
    ps = cli_prompts(ds, "000001_top", ("5,3", " 19.5, 9.5"), ("1,1,8,6",))
    assert [p.image_id for p in ps] == [2, 2, 2]
    assert ps[0].points.tolist() == [[5, 3]] and ps[0].point_labels.tolist() == [1] and ps[0].box is None
    assert ps[1].points.tolist() == [[19.5, 9.5]]
    assert ps[2].box == (1.0, 1.0, 8.0, 6.0) and len(ps[2].points) == 0
    assert cli_prompts(ds, None, (), ()) == []
    assert find_image(ds, "1", "x")["id"] == 1 and find_image(ds, "images/000000_top.png", "x")["id"] == 1


@pytest.mark.parametrize("image, points, boxes, message", [
    ("000000_top", ("20,3",), (), "--points 20,3: point (20, 3) lies outside the image (20 x 10)"),
    ("000000_top", ("-1,3",), (), "--points -1,3: point (-1, 3) lies outside the image (20 x 10)"),
    ("000000_top", ("5",), (), "--points takes 2 comma-separated numbers, got '5'"),
    ("000000_top", (), ("1,1,30,6",), "--box 1,1,30,6: box [1.0, 1.0, 30.0, 6.0] lies outside the image (20 x 10)"),
    ("000000_top", (), ("5,5,2,6",), "is empty (needs x2 > x1 and y2 > y1)"),
    (None, ("5,3",), (), "--points and --box need --image"),
    ("bag9", ("5,3",), (), "--image: no image 'bag9' in the dataset"),
])
def test_bad_command_line_prompts(ds, image, points, boxes, message):
    with pytest.raises(XraybagError) as e:
        cli_prompts(ds, image, points, boxes)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_prompts_file(ds, tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"prompts": [
        {"image": "000000_top.png", "points": [[4, 4], [15, 8]], "labels": [1, 0], "category": "gun"},
        {"image": 2, "box": [2, 2, 7, 6]},
    ]}))
    ps = file_prompts(ds, f)
    assert ps[0].image_id == 1 and ps[0].points.tolist() == [[4, 4], [15, 8]]
    assert ps[0].point_labels.tolist() == [1, 0] and ps[0].category_id == 7
    assert ps[1].image_id == 2 and ps[1].box == (2.0, 2.0, 7.0, 6.0) and ps[1].category_id is None


@pytest.mark.parametrize("text, message", [
    ('[{"image": 1, "points": [[4, 4]]},\n {"image": 1, "points": [[4, 40]]}]',
     "p.json: prompts[1]: point (4, 40) lies outside the image (20 x 10)"),
    ('[{"image": 1,\n "points": [[4, 4]],,}]', "p.json:2: not valid JSON"),
    ('[{"image": 1, "point": [[4, 4]]}]', "p.json: prompts[0]: unknown key 'point'"),
    ('[{"image": "nope", "points": [[4, 4]]}]', "p.json: prompts[0].image: no image 'nope'"),
    ('[{"image": 1, "points": [[4, 4]], "category": "axe"}]', "prompts[0].category: no category 'axe' in the dataset (its categories: knife, gun)"),
    ('[{"image": 1, "points": [[4, 4]], "labels": [2]}]', "point labels are 1 (object) or 0 (background)"),
    ('[{"image": 1}]', "a prompt needs at least one point or a box"),
    ('[]', "a prompts file is a non-empty JSON list"),
])
def test_bad_prompts_files(ds, tmp_path, text, message):
    f = tmp_path / "p.json"
    f.write_text(text)
    with pytest.raises(XraybagError) as e:
        file_prompts(ds, f)
    assert message in str(e.value) and "\n" not in str(e.value)
