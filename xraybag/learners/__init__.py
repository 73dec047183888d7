"""Learners: plugins that train on, evaluate on and synthesize xraybag datasets.

Import-light: nothing here imports torch. See ``docs/learners.md``.
"""

from xraybag.learners.base import (
    GROUP,
    Learner,
    Model,
    Prompt,
    Segmenter,
    Synthesizer,
    available,
    load,
    parse_opts,
    resolve_device,
)
from xraybag.learners.data import DetectionDataset, Sample

__all__ = [
    "GROUP",
    "DetectionDataset",
    "Learner",
    "Model",
    "Prompt",
    "Sample",
    "Segmenter",
    "Synthesizer",
    "available",
    "load",
    "parse_opts",
    "resolve_device",
]
