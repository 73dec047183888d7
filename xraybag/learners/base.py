"""The learner plugin API: base classes, options, devices and the entry-point registry.

A learner is a class registered under the entry-point group ``xraybag.learners``::

    [project.entry-points."xraybag.learners"]
    mean_box = "xraybag_example_learner:MeanBoxModel"

Three kinds exist. A :class:`Synthesizer` reads a dataset and writes another one in the same layout
(see ``docs/learners.md``). A :class:`Model` (a detector) trains on a
:class:`~xraybag.learners.data.DetectionDataset`, writes a weights file and predicts COCO box results.
A :class:`Segmenter` trains on instance masks (:class:`~xraybag.learners.seg_data.SegmentationDataset`)
and predicts COCO results with RLE masks, taking :class:`Prompt` s when it is interactive.
This module does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from xraybag.errors import XraybagError

if TYPE_CHECKING:  # pragma: no cover
    from xraybag.learners.data import DetectionDataset
    from xraybag.learners.seg_data import SegmentationDataset

GROUP = "xraybag.learners"
KINDS = ("model", "segmenter", "synthesizer")
INPUTS = ("rgb", "raw", "clcxray")

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


def convert_option(name: str, typ: type, value: Any) -> Any:
    """``value`` (possibly a string from the command line) as an option of type ``typ``."""
    if value is None:
        return None
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, (int, float)) and value in (0, 1):
                return bool(value)
            s = str(value).strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise ValueError(value)
        if typ is int:
            if isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError(value)
                return int(value)
            return int(str(value).strip())
        if typ is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if typ in (tuple, list):
            if isinstance(value, str):
                return typ(v.strip() for v in value.split(",") if v.strip())
            return typ(value)
        if typ is Path:
            return Path(value)
        if typ is str:
            return str(value)
        return typ(value)
    except (TypeError, ValueError):
        tname = getattr(typ, "__name__", str(typ))
        raise XraybagError(f"option {name!r} must be {tname}, got {value!r}") from None


def parse_opts(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["lr=0.01", "epochs=2"]`` -> ``{"lr": "0.01", "epochs": "2"}`` (values stay strings; the
    learner's constructor converts them to the declared types)."""
    out: dict[str, str] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise XraybagError(f"--opt takes key=value, got {p!r}")
        out[key] = value.strip()
    return out


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; an explicit CUDA device
    without CUDA is an error. Other strings (``"cpu"``, ``"cuda:1"``, ``"mps"``) pass through."""
    device = (device or "auto").strip().lower()
    try:
        import torch
    except ModuleNotFoundError:
        torch = None
    if device == "auto":
        return "cuda" if torch is not None and torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and (torch is None or not torch.cuda.is_available()):
        raise XraybagError(f"device {device!r} asked for, but no CUDA device is available (use --device cpu or auto)")
    return device


class Learner:
    """Base of every learner. Subclasses set ``name``, ``kind`` and ``description`` and declare
    their options by overriding :meth:`options`; the constructor takes those options as keyword
    arguments (strings are converted to the declared type) and stores them in ``self.config``
    (and as attributes of the same name when that does not clash with the class)."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: the image encodings this learner accepts (a model trained on one must be run on the same)
    inputs: ClassVar[tuple[str, ...]] = INPUTS

    @classmethod
    def options(cls) -> dict[str, tuple[type, Any, str]]:
        """The options, as ``{name: (type, default, help)}``."""
        return {}

    def __init__(self, **opts: Any):
        spec = self.options()
        unknown = sorted(set(opts) - set(spec))
        if unknown:
            known = ", ".join(sorted(spec)) or "none"
            raise XraybagError(
                f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for learner "
                f"{self.name or type(self).__name__!r} (its options: {known})"
            )
        self.config: dict[str, Any] = {}
        for key, (typ, default, _help) in spec.items():
            value = convert_option(key, typ, opts[key]) if key in opts else default
            self.config[key] = value
            if not hasattr(type(self), key):
                setattr(self, key, value)

    def check(self) -> None:
        """Cheap checks of the options that need no data (a weights file that is missing or of
        the wrong kind, a value out of range): raise a one-line :class:`XraybagError`. The command
        line calls this before it reads the dataset or writes anything; the default checks nothing."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"


class Synthesizer(Learner):
    """Dataset in, dataset out (same layout: ``annotations.json``, ``images/``, ``raw/`` ...)."""

    kind: ClassVar[str] = "synthesizer"
    #: whether it must be trained before it synthesizes (then it implements :meth:`train`, which
    #: ``xraybag learn train NAME --data A --target B -o RUN`` drives)
    trainable: ClassVar[bool] = False
    #: whether :meth:`train` learns from a second image set, ``--target`` (cyclegan: the look to learn);
    #: ``False`` for those that learn from ``--data`` alone (xsyn), whose ``train`` gets ``target=None``
    needs_target: ClassVar[bool] = True

    def check_data(self, data: Path) -> None:
        """Check the input before anything runs (default: an xraybag dataset)."""
        from xraybag.learners.data import DetectionDataset

        DetectionDataset(data, split="all")

    def synthesize(self, data: Path, out: Path, **kw: Any) -> Path:
        """Read the dataset at ``data``, write the new dataset at ``out``; return ``out``."""
        raise NotImplementedError

    def train(
        self,
        data: Path,
        target: Path | None,
        out: Path,
        device: str = "auto",
        resume: bool = False,
        progress: bool = True,
    ) -> Path:
        """For ``trainable`` synthesizers: learn from the image sets ``data`` (the source) and
        ``target`` (xraybag datasets or plain image folders; ``None`` when :attr:`needs_target` is
        false) writing into the folder ``out``
        (checkpoints, log); return the weights file that :meth:`synthesize` then takes (as an
        option). Check the inputs before writing anything; ``resume`` continues ``out``'s run."""
        raise NotImplementedError


class Model(Learner):
    """A detector: :meth:`train` writes a weights file, :meth:`predict` returns COCO results."""

    kind: ClassVar[str] = "model"

    def train(
        self,
        train: DetectionDataset,
        out: Path,
        val: DetectionDataset | None = None,
        device: str = "auto",
        resume: bool = False,
        progress: bool = True,
    ) -> Path:
        """Train on ``train`` writing into the folder ``out``; return the weights file."""
        raise NotImplementedError

    def predict(self, weights: Path, data: DetectionDataset, device: str = "auto") -> list[dict]:
        """COCO result dicts for every image of ``data``: ``image_id``, ``category_id`` (the
        dataset's COCO category ids), ``bbox`` ``[x, y, w, h]`` in pixels, ``score``."""
        raise NotImplementedError


@dataclass
class Prompt:
    """What a user gives an interactive segmenter for one object of one image.

    ``points``: ``(N, 2)`` float ``x, y`` in pixels (the image's own pixel grid, x to the right, y
    down); ``point_labels``: ``(N,)`` int, 1 = on the object, 0 = background; ``box``: ``x1, y1,
    x2, y2`` in pixels or ``None``. ``ann_id``: the ground-truth annotation the prompt was made for
    (evaluation sets it; a user's click leaves it ``None``); ``category_id``: the class the user
    names, if any. Check it against the image with :meth:`check`.
    """

    image_id: int
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    point_labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    box: tuple[float, float, float, float] | None = None
    ann_id: int | None = None
    category_id: int | None = None

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float32).reshape(-1, 2)
        if len(self.point_labels) == 0 and len(self.points):
            self.point_labels = np.ones(len(self.points), np.int64)
        self.point_labels = np.asarray(self.point_labels, dtype=np.int64).reshape(-1)
        if self.box is not None:
            self.box = tuple(float(v) for v in self.box)

    def check(self, width: int, height: int, where: str | None = None) -> Prompt:
        """``self`` when it fits an image of ``width x height`` pixels; otherwise a one-line
        :class:`XraybagError` at ``where`` saying which point or box is wrong."""
        where = where or f"prompt for image {self.image_id}"
        if len(self.points) == 0 and self.box is None:
            raise XraybagError("a prompt needs at least one point or a box", where)
        if len(self.point_labels) != len(self.points):
            raise XraybagError(f"{len(self.points)} points but {len(self.point_labels)} point labels", where)
        if not set(self.point_labels.tolist()) <= {0, 1}:
            raise XraybagError(f"point labels are 1 (object) or 0 (background), got {sorted(set(self.point_labels.tolist()))}", where)
        for x, y in self.points.tolist():
            if not (np.isfinite(x) and np.isfinite(y) and 0 <= x < width and 0 <= y < height):
                raise XraybagError(f"point ({x:g}, {y:g}) lies outside the image ({width} x {height})", where)
        if self.box is not None:
            if len(self.box) != 4 or not all(np.isfinite(self.box)):
                raise XraybagError(f"box must be 4 finite numbers x1, y1, x2, y2, got {self.box}", where)
            x1, y1, x2, y2 = self.box
            if not (x2 > x1 and y2 > y1):
                raise XraybagError(f"box {list(self.box)} is empty (needs x2 > x1 and y2 > y1)", where)
            if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
                raise XraybagError(f"box {list(self.box)} lies outside the image ({width} x {height})", where)
        return self


class Segmenter(Learner):
    """An instance segmenter: :meth:`train` writes a weights file from instance masks,
    :meth:`predict` returns COCO results with RLE masks. ``promptable`` segmenters (SAM-like)
    segment the object each :class:`Prompt` points at; the others find objects on their own."""

    kind: ClassVar[str] = "segmenter"
    #: whether :meth:`predict` takes prompts (interactive models); it then needs them
    promptable: ClassVar[bool] = False

    def train(
        self,
        train: SegmentationDataset,
        out: Path,
        val: SegmentationDataset | None = None,
        device: str = "auto",
        resume: bool = False,
        progress: bool = True,
    ) -> Path:
        """Train on the (cleaned) instance masks of ``train``, writing into the folder ``out``;
        return the weights file."""
        raise NotImplementedError

    def predict(
        self,
        weights: Path,
        data: SegmentationDataset,
        prompts: list[Prompt] | None = None,
        device: str = "auto",
    ) -> list[dict]:
        """COCO result dicts: ``image_id``, ``category_id`` (the dataset's COCO id), ``segmentation``
        (compressed RLE, ``counts`` a str, as :func:`xraybag.learners.seg_data.mask_to_rle`
        writes), ``score``, ``bbox`` ``[x, y, w, h]`` of the mask. A promptable segmenter returns
        one result per prompt, in order, carrying the prompt's ``ann_id`` (when set) so evaluation
        scores it against that object; without ``prompts`` it may make its own (e.g. one click
        inside each object) or raise :class:`XraybagError`."""
        raise NotImplementedError


def available() -> dict[str, metadata.EntryPoint]:
    """Every registered learner, name -> entry point (first one wins for a repeated name)."""
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=GROUP):
        found.setdefault(ep.name, ep)
    return dict(sorted(found.items()))


def load(name: str) -> type[Learner]:
    """The learner class registered as ``name``."""
    eps = available()
    if name not in eps:
        names = ", ".join(eps) or "none installed"
        raise XraybagError(f"unknown learner {name!r} (available: {names})")
    ep = eps[name]
    try:
        obj = ep.load()
    except ModuleNotFoundError as e:
        hint = " (install the 'learn' extra: pip install 'xraybag[learn]')" if e.name in ("torch", "torchvision") else ""
        raise XraybagError(f"learner {name!r} ({ep.value}) failed to import: {e}{hint}") from None
    except Exception as e:  # a broken plugin must not give a traceback
        raise XraybagError(f"learner {name!r} ({ep.value}) failed to import: {type(e).__name__}: {e}") from None
    if not (isinstance(obj, type) and issubclass(obj, Learner)):
        raise XraybagError(f"learner {name!r} ({ep.value}) is not a subclass of xraybag.learners.Learner")
    if obj.kind not in KINDS:
        raise XraybagError(f"learner {name!r} ({ep.value}) has kind {obj.kind!r}; expected one of {', '.join(KINDS)}")
    if not obj.name:
        obj.name = name
    return obj
