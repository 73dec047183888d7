"""The ``xsyn`` synthesizer (Xsyn: text-grounded inpainting with a GLIGEN diffusion model, CAR and BOM).

``xraybag learn train xsyn --data DIR -o RUN`` trains the generator on the dataset's train split
(:mod:`.trainer`; no ``--target``: it learns from one labelled set) and writes ``RUN/pipeline/``;
``xraybag learn synthesize xsyn --data DIR --out DIR --opt checkpoint=RUN/pipeline`` repaints the
dataset's images (``variant=M``: every annotated object, the paper's ``G_mod``, ``Y_mod``;
``variant=A``: one new object per image in an idle region chosen by Eq. 3, ``G_add``, ``Y_add``),
refines each painted object's box with CAR (:mod:`.car`) and occludes it with BOM (Eq. 5-9) from a
background segment, and writes a dataset in the same layout. See ``docs/learners.md``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from xraybag.errors import XraybagError
from xraybag.learners.base import Synthesizer, resolve_device

VARIANTS = ("M", "A")


class XsynSynthesizer(Synthesizer):
    name = "xsyn"
    description = ("Xsyn: GLIGEN text-grounded diffusion inpainting of labelled objects (variant M: repaint, A: add), "
                   "boxes refined by cross-attention + a promptable segmenter (CAR), background occlusion (BOM)")
    trainable: ClassVar[bool] = True
    needs_target: ClassVar[bool] = False

    @classmethod
    def options(cls):
        return {
            # the generator and its training
            "checkpoint": (Path, None, ("a local diffusers GLIGEN inpainting pipeline folder: train fine-tunes it, "
                                        "synthesize generates with it (learn train writes RUN/pipeline)")),
            "preset": (str, "tiny", "train from scratch when no checkpoint: tiny (CPU) or paper (SD 1.x shapes, GPU)"),
            "size": (int, 0, "training crop in px (0: the preset's, tiny 64, paper 512)"),
            "batch": (int, 4, "training batch"),
            "iterations": (int, 3000, "UNet training iterations"),
            "vae_iterations": (int, 1500, "autoencoder iterations first (from scratch only; a checkpoint keeps its VAE)"),
            "lr": (float, 3e-4, "UNet AdamW learning rate"),
            "vae_lr": (float, 5e-4, "autoencoder AdamW learning rate"),
            "kl_weight": (float, 1e-6, "weight of the autoencoder's KL term"),
            "dilate": (int, 4, "px the objects' boxes grow by to make the inpainting mask"),
            "p_uncond": (float, 0.1, "probability of dropping prompt and grounding in training (for guidance)"),
            "checkpoint_every": (int, 250, "iterations between checkpoints"),
            "val_every": (int, 0, "UNet iterations between validation grids (0: once per epoch of the train split)"),
            "val_images": (int, 4, "validation images in each grid"),
            "seed": (int, 0, "seed of the initialisation, crops, noise and generation"),
            "threads": (int, 0, "torch CPU threads (0: torch's default)"),
            # generation
            "variant": (str, "M", "M: repaint every annotated object; A: add one object per image in an idle region"),
            "steps": (int, 25, "DDIM steps"),
            "guidance": (float, 7.5, "classifier-free guidance scale"),
            "window": (int, 0, ("paint each object in a window of this many px around it (0: the whole image at "
                                "once; on a CPU, about the training size keeps the attention cheap)")),
            "relabel": (str, "", "M: paint another class in an object's box, as old:new[,old:new]"),
            "add_classes": (tuple, (), "A: the classes to add (default: every class the model knows)"),
            "min_box_ratio": (float, 0.001, "boxes under this share of the image area are not painted (nor idle regions)"),
            "car": (bool, True, "refine each painted object's box with CAR"),
            "car_n": (int, 4, "CAR's median point sampling divisions n (2**n - 1 points + 1 background)"),
            "car_compare": (tuple, (), "also record CAR's boxes for these n in the annotations (e.g. 0,2,4)"),
            "segmenter": (str, "sam_finetune", "the promptable segmenter of CAR, BOM's and A's segments"),
            "segmenter_weights": (Path, None, "its weights.pt (needed by car, bom and variant A)"),
            "grid": (int, 8, "segments of an image: the segmenter prompted on a grid x grid of points"),
            "bom": (bool, True, "occlude painted objects with a background segment in latent space (BOM)"),
            "alpha": (float, 0.3, "BOM's occlusion coefficient"),
            "d": (float, 0.1, "Eq. 3's IoU threshold: idle regions and occluders overlap no object more"),
            "keep_original": (bool, False, "also copy the input images into the output"),
            "max_images": (int, 0, "generate from at most this many input images (0: all)"),
        }

    # ------------------------------------------------------------------ options
    def check(self) -> None:
        from xraybag.learners.xsyn.model import PRESETS

        if self.preset not in PRESETS:
            raise XraybagError(f"option preset: {self.preset!r}; expected one of {', '.join(PRESETS)}")
        if self.variant not in VARIANTS:
            raise XraybagError(f"option variant: {self.variant!r}; expected M or A")
        for key in ("batch", "steps"):
            if getattr(self, key) < 1:
                raise XraybagError(f"option {key}: {getattr(self, key)} must be at least 1")
        for key in ("iterations", "vae_iterations", "dilate", "checkpoint_every", "val_every", "val_images",
                    "threads", "max_images", "size", "car_n", "window"):
            if getattr(self, key) < 0:
                raise XraybagError(f"option {key}: {getattr(self, key)} must not be negative")
        if not 0 <= self.alpha <= 1:
            raise XraybagError(f"option alpha: {self.alpha} must lie in [0, 1]")
        if not 0 < self.d <= 1 or not 0 <= self.min_box_ratio < 1 or not 0 <= self.p_uncond <= 1:
            raise XraybagError("options 0 < d <= 1, 0 <= min_box_ratio < 1 and 0 <= p_uncond <= 1")
        if self.car_n > 8 or any(int(n) < 0 or int(n) > 8 for n in self.compare_n()):
            raise XraybagError("options car_n and car_compare take division counts 0 to 8")
        self.relabel_map()
        if self.checkpoint is not None:
            from xraybag.learners.xsyn.model import check_folder

            check_folder(Path(self.checkpoint))

    def compare_n(self) -> list[int]:
        try:
            return [int(n) for n in self.car_compare]
        except ValueError:
            raise XraybagError(f"option car_compare: {','.join(self.car_compare)!r} must be integers") from None

    def relabel_map(self) -> dict[str, str]:
        out = {}
        for pair in (p for p in self.relabel.split(",") if p.strip()):
            old, sep, new = pair.partition(":")
            if not sep or not old.strip() or not new.strip():
                raise XraybagError(f"option relabel: {pair!r} must be old:new")
            out[old.strip()] = new.strip()
        return out

    def _threads(self) -> None:
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)

    # ------------------------------------------------------------------ train
    def train(self, data: Path, target: Path | None, out: Path, device: str = "auto", resume: bool = False,
              progress: bool = True) -> Path:
        """Grounded-inpainting training on ``data``'s train split; return ``out/pipeline``."""
        from xraybag.learners.data import DetectionDataset

        if target is not None:
            raise XraybagError("xsyn learns from one labelled dataset (--data); --target is for cyclegan")
        self.check()
        train = DetectionDataset(data, split="train")
        val = DetectionDataset(data, split="val")
        n_obj = sum(1 for im in train.images for a in train.annotations(im["id"]) if not a.get("iscrowd", 0))
        if len(train) == 0 or n_obj == 0:
            raise XraybagError("the train split has no annotated objects to learn from", str(data))
        self._threads()
        from xraybag.learners.xsyn import model, trainer

        if self.checkpoint is not None:
            pipe = model.load_pipeline(Path(self.checkpoint))
            if pipe.class_names:
                model.check_phrases(pipe, train.class_names, str(data))
            vae_its = 0
        else:
            pipe = model.build(self.preset, train.class_names, self.seed)
            vae_its = self.vae_iterations
        size = self.size or model.PRESETS[self.preset]["size"]
        if size % pipe.multiple:
            raise XraybagError(f"option size: {size} must be a multiple of {pipe.multiple} for this model")
        pipe.meta.update(class_names=sorted(set(pipe.class_names) | set(train.class_names)),
                         class_areas=_class_areas(train), dilate=self.dilate, data=str(Path(data).resolve()))
        epoch = max(1, len(train) // self.batch)
        cfg = {"size": size, "dilate": self.dilate, "seed": self.seed, "batch": self.batch,
               "vae_iterations": vae_its, "iterations": self.iterations, "vae_lr": self.vae_lr, "lr": self.lr,
               "kl_weight": self.kl_weight, "p_uncond": self.p_uncond, "checkpoint_every": self.checkpoint_every or 250,
               "val_every": self.val_every or epoch, "val_images": self.val_images, "val_steps": min(self.steps, 20),
               "guidance": self.guidance}
        return trainer.train(pipe, train, val, Path(out), cfg, device=resolve_device(device), resume=resume,
                             progress=progress)

    # ------------------------------------------------------------------ synthesize
    def synthesize(self, data: Path, out: Path, **kw: Any) -> Path:
        from xraybag.learners.data import DetectionDataset

        if self.checkpoint is None:
            raise XraybagError("option checkpoint is required: --opt checkpoint=RUN/pipeline (from 'xraybag learn "
                               "train xsyn') or a local GLIGEN inpainting pipeline folder")
        self.check()
        data, out = Path(data), Path(out)
        if out.exists() and any(out.iterdir()):
            raise XraybagError("exists and is not empty; choose a new output folder", str(out))
        ds = DetectionDataset(data, split="all")
        if not ds.images:
            raise XraybagError("holds no images", str(ds.ann_file))
        self._threads()
        from xraybag.learners.xsyn import model

        pipe = model.load_pipeline(Path(self.checkpoint))
        names = {c["id"]: c["name"] for c in ds.categories}
        relabel = self.relabel_map()
        for old, new in relabel.items():
            if old not in names.values():
                raise XraybagError(f"option relabel: the dataset has no class {old!r}", str(ds.ann_file))
            model.check_phrases(pipe, [new], "option relabel")
        if self.variant == "M":
            for i, a in enumerate(ds.coco["annotations"]):
                name = relabel.get(names[a["category_id"]], names[a["category_id"]])
                model.check_phrases(pipe, [name], f"{ds.ann_file}: annotations[{i}] (id {a['id']})")
        else:
            model.check_phrases(pipe, list(self.add_classes) or pipe.class_names, "option add_classes")
        seg = None
        if self.car or self.bom or self.variant == "A":
            from xraybag.learners.xsyn.car import load_segmenter

            seg = load_segmenter(self.segmenter, self.segmenter_weights)
        from xraybag.learners.xsyn.generate import Generator

        gen = Generator(self, pipe, ds, seg, relabel, resolve_device("auto"))
        work = out / ".xsyn_work"
        try:
            gen.run(out, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return out


def _class_areas(ds) -> dict[str, float]:
    """The median box area (px) of each class in ``ds``: how large Xsyn-A paints each class."""
    areas: dict[str, list[float]] = {}
    for im in ds.images:
        for a in ds.annotations(im["id"]):
            if not a.get("iscrowd", 0):
                name = ds.class_names[ds.category_id_to_label[a["category_id"]]]
                areas.setdefault(name, []).append(float(a["bbox"][2] * a["bbox"][3]))
    return {k: float(np.median(v)) for k, v in sorted(areas.items())}
