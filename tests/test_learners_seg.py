"""The segmentation kind of learner: the Segmenter base and prompts, the segmentation dataset
reader (cleaning, raw and pseudo-colour channels), and mIoU / Dice / COCO segm metrics."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest

from xraybag.errors import XraybagError
from xraybag.learners import base
from xraybag.learners.base import Prompt, Segmenter, load


class ToySeg(Segmenter):
    name = "toyseg"
    description = "a toy segmenter"
    promptable = True

    @classmethod
    def options(cls):
        return {"size": (int, 3, "square side")}


def test_segmenter_kind_registry_and_options(monkeypatch):
    eps = [metadata.EntryPoint("toyseg", f"{__name__}:ToySeg", base.GROUP)]
    monkeypatch.setattr(base.metadata, "entry_points", lambda group=None: [e for e in eps if e.group == group])
    cls = load("toyseg")
    assert cls is ToySeg and cls.kind == "segmenter" and "segmenter" in base.KINDS
    assert ToySeg(size="5").size == 5 and Segmenter.promptable is False and ToySeg.promptable is True
    with pytest.raises(NotImplementedError):
        ToySeg().predict(None, None)


def test_cli_refuses_a_segmenter_for_model_commands(monkeypatch):
    from xraybag.cli.learn import _learner

    eps = [metadata.EntryPoint("toyseg", f"{__name__}:ToySeg", base.GROUP)]
    monkeypatch.setattr(base.metadata, "entry_points", lambda group=None: [e for e in eps if e.group == group])
    with pytest.raises(XraybagError, match="learner 'toyseg' is a segmenter; the command line does not drive"):
        _learner("toyseg", "model", {})


def test_prompt_defaults_and_checks():
    p = Prompt(image_id=4, points=[[3, 2]])
    assert p.points.shape == (1, 2) and p.point_labels.tolist() == [1]
    assert p.check(10, 5) is p
    assert Prompt(image_id=4, box=(0, 0, 10, 5)).check(10, 5).box == (0.0, 0.0, 10.0, 5.0)
    cases = [
        (Prompt(4, points=[[10, 2]]), r"prompt for image 4: point \(10, 2\) lies outside the image \(10 x 5\)"),
        (Prompt(4, points=[[3, -0.5]]), r"point \(3, -0.5\) lies outside"),
        (Prompt(4, box=(1, 1, 11, 4)), r"box \[1.0, 1.0, 11.0, 4.0\] lies outside the image \(10 x 5\)"),
        (Prompt(4, box=(5, 1, 5, 4)), "is empty"),
        (Prompt(4), "needs at least one point or a box"),
        (Prompt(4, points=[[1, 1]], point_labels=[2]), "point labels are 1"),
        (Prompt(4, points=[[1, 1], [2, 2]], point_labels=[1]), "2 points but 1 point labels"),
    ]
    for prompt, words in cases:
        with pytest.raises(XraybagError, match=words) as e:
            prompt.check(10, 5)
        assert "\n" not in str(e.value)
    with pytest.raises(XraybagError, match=r"^here: point"):
        Prompt(4, points=[[99, 0]]).check(10, 5, where="here")
