"""The ``cyclegan`` synthesizer: :meth:`CycleGANSynthesizer.train` learns the two mappings between
image sets A and B (:mod:`.trainer`); :meth:`CycleGANSynthesizer.synthesize` translates every
pseudo-colour image of a labelled xraybag dataset with one of them (``direction``: ``AtoB`` by
default) and writes the dataset again in the same layout.

Translation runs the fully convolutional generator at the image's own resolution, so no pixel
moves: boxes, masks and ``labels/`` stay valid and are copied unchanged. By default (``tile=-1``)
it runs on overlapping windows of the training crop's size, blended (:func:`translate_tiled`):
instance norm normalises each window as it normalised the training crops, where a whole bag image
(mostly empty belt) would be normalised otherwise and come out washed out. ``tile=0`` runs the
whole image at once (padded by reflection to a multiple of 4, then cropped back). ``annotations.json`` is the input's with one key added to each
image, ``synthetic`` (method ``cyclegan``, direction, weights file and its sha256, training
iteration, source image, and ``raw_translated: false``, plus the image's earlier ``synthetic``
under ``earlier``). The raw low/high channels (and the CLCXray encodings computed from them) are
not translated: ``raw=copy`` (default) copies them as they are, ``raw=drop`` leaves ``raw/`` and
``clcxray/`` out and removes ``raw`` from the image records. Weights trained with ``signals=raw``
(:mod:`.rawsignals`) translate the raw signals instead: ``raw/`` is written translated, the images
are the other set's scanner's colours of them and ``clcxray/`` is recomputed
(:func:`translate_raw_view`; ``raw_translated: true``); ``detector=target`` also gives them the
blur and noise the other set's detector adds beyond their own (:func:`.rawsignals.match_detector`,
drawn with ``seed``). ``manifest.jsonl`` gets the new files' hashes. Everything is checked before
anything is written. Imports torch only when called.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from xraybag.errors import XraybagError
from xraybag.learners.base import Synthesizer, resolve_device

#: preset -> (size, ngf, ndf, n_blocks, epochs)
PRESETS = {
    "paper": (256, 64, 64, 9, 200),  # the paper's 256 px setting (100 epochs constant + 100 decaying)
    "cpu": (128, 32, 64, 6, 20),     # about 2 s an iteration on one core
    "test": (64, 16, 64, 3, 1),      # a test size
}
DIRECTIONS = {"AtoB": "G_AB", "BtoA": "G_BA"}
RAW = ("copy", "drop")
SIGNALS = ("rgb", "raw")
#: option ``detector`` (signals=raw): translated signals as the generator gives them (``source``: the
#: source detector's blur and noise) or with what the target's detector adds beyond it
DETECTORS = ("source", "target")


class CycleGANSynthesizer(Synthesizer):
    name = "cyclegan"
    description = ("Cycle-GAN (Zhu et al. 2017): learn A<->B from unpaired image sets (learn train --target), "
                   "then translate a labelled dataset's images, labels unchanged")
    trainable: ClassVar[bool] = True

    @classmethod
    def options(cls):
        return {
            "preset": (str, "cpu", "paper (256 px, ngf 64, 9 blocks), cpu (128 px, ngf 32, 6 blocks) or test "
                                   "(64 px, ngf 16, 3 blocks)"),
            "size": (int, 0, "training crop in px (0: the preset's)"),
            "ngf": (int, 0, "generator filters in the first layer (0: the preset's)"),
            "ndf": (int, 0, "discriminator filters in the first layer (0: the preset's)"),
            "n_blocks": (int, 0, "generator residual blocks (0: the preset's)"),
            "residual": (bool, False, "generators output a change to their input, clamp(x + G(x)) (not the paper's: "
                                      "keeps the colours instance norm discards in flat regions; see docs)"),
            "pointwise": (int, 0, "with residual: filters of a per-pixel colour term added to the change, "
                                  "clamp(x + G(x) + P(x)) (not the paper's: instance norm hides a flat "
                                  "region's absolute colour from G, so G alone cannot redraw a colour table; "
                                  "0: off; see docs)"),
            "pixel_gan": (float, 0.0, "weight of a second, 1x1 discriminator per set that judges each pixel's "
                                      "colour alone (a PixelGAN; not the paper's: it aims the game at the colour "
                                      "table, not texture or noise; 0: off; see docs)"),
            "pixel_bag": (bool, False, "with pixel_gan: the 1x1 discriminators judge only the bag's pixels (not "
                                       "the belt's, which would otherwise outnumber them; see docs)"),
            "pixel_pool": (int, 0, "with pixel_gan: the 1x1 discriminators learn from a history of this many "
                                   "pixels of each set, real and generated, drawn uniformly (not one crop's: "
                                   "they see how often each colour occurs in a set; 0: off; see docs)"),
            "pixel_lr": (float, 1.0, "with pixel_gan: the 1x1 discriminators' learning rate as a multiple of lr "
                                     "(a faster critic of the colours; 1: the same; see docs)"),
            "signals": (str, "rgb", "rgb: learn and translate the pseudo-colour images (the paper's way); raw: the "
                                    "raw low/high signals of xraybag datasets, coloured after translation by the "
                                    "other set's scanner (not the paper's; see docs)"),
            "epochs": (int, 0, "passes over the larger set (0: the preset's: paper 200, cpu 20, test 1)"),
            "iterations": (int, 0, "training iterations (batch 1); overrides epochs when > 0"),
            "decay_start": (int, -1, "iteration from which the lr decays linearly to 0 (-1: half way)"),
            "lr": (float, 2e-4, "Adam learning rate"),
            "beta1": (float, 0.5, "Adam beta1 (beta2 0.999)"),
            "lambda_cycle": (float, 10.0, "weight of the cycle loss"),
            "lambda_identity": (float, 0.5, "weight of the identity loss, relative to lambda_cycle (0: off)"),
            "pool_size": (int, 50, "generated images kept for the discriminators (0: none)"),
            "warmup": (int, 0, "iterations at the start that train both generators to give back their input "
                               "(L1 on images of both sets; no discriminators, no pools): generators that "
                               "start as the identity keep every colour while the game learns the translation "
                               "(the paper has none: 0)"),
            "content": (float, 0.0, "training crops hold at least this share of non-background pixels (the "
                                    "bag, not the empty belt around it; up to 16 windows drawn, else the "
                                    "fullest); 0: uniform random crops as in the paper"),
            "target_scale": (float, 0.0, "resample --target's images by this factor before cropping, so both sets "
                                         "are learnt at one pixel size (0: auto, the ratio of the two datasets' "
                                         "pixel_mm when both record one, else 1); synthesize resamples the "
                                         "other way where needed, so images keep their size"),
            "seed": (int, 0, "seed of the initialisation, image order, crops, flips and pools (synthesize with "
                             "detector=target: of the added noise)"),
            "checkpoint_every": (int, 100, "iterations between checkpoints"),
            "threads": (int, 0, "torch CPU threads (0: torch's default)"),
            "weights": (Path, None, "synthesize: the weights.pt 'learn train cyclegan' wrote"),
            "direction": (str, "AtoB", "synthesize: AtoB (--data's look -> --target's) or BtoA"),
            "raw": (str, "copy", "synthesize: copy the raw low/high channels untranslated, or drop them"),
            "detector": (str, "source", "synthesize, weights trained with signals=raw: source (the translated signals "
                                        "as the generator gives them, with the source detector's blur and noise) or "
                                        "target (plus the blur and noise the target scanner's detector adds beyond "
                                        "the source's, from its scanner description; drawn with seed; see docs)"),
            "tile": (int, -1, "synthesize: translate in overlapping windows of this many px, blended (-1: the "
                              "training crop's size, as instance norm saw it; 0: the whole image at once)"),
        }

    # ------------------------------------------------------------------ options
    def check(self) -> None:
        if self.preset not in PRESETS:
            raise XraybagError(f"option preset: {self.preset!r}; expected one of {', '.join(PRESETS)}")
        if self.direction not in DIRECTIONS:
            raise XraybagError(f"option direction: {self.direction!r}; expected AtoB or BtoA")
        if self.signals not in SIGNALS:
            raise XraybagError(f"option signals: {self.signals!r}; expected rgb or raw")
        if self.detector not in DETECTORS:
            raise XraybagError(f"option detector: {self.detector!r}; expected source or target")
        if self.raw not in RAW:
            raise XraybagError(f"option raw: {self.raw!r}; expected copy or drop")
        if self.tile < -1 or 0 < self.tile < 16:
            raise XraybagError(f"option tile: {self.tile}; expected -1 (the training crop), 0 (whole images) or "
                               "at least 16 px")
        cfg = self.arch()
        if cfg["size"] < 16 or cfg["size"] % 4:
            raise XraybagError(f"option size: {cfg['size']} must be a multiple of 4, at least 16")
        for key in ("ngf", "ndf", "n_blocks", "epochs", "iterations", "pool_size", "checkpoint_every", "threads",
                    "warmup", "pointwise"):
            if getattr(self, key) < 0:
                raise XraybagError(f"option {key}: {getattr(self, key)} must not be negative")
        if self.pointwise and not self.residual:
            raise XraybagError(f"option pointwise: {self.pointwise} needs residual=true (the colour term is added "
                               "to the residual generator's change)")
        if not 0 <= self.target_scale <= 16:
            raise XraybagError(f"option target_scale: {self.target_scale} must lie in 0..16 (0: from the datasets' "
                               "pixel_mm)")
        if not 0 <= self.pixel_gan <= 100:
            raise XraybagError(f"option pixel_gan: {self.pixel_gan} must lie in 0..100 (0: off)")
        if self.pixel_bag and not self.pixel_gan:
            raise XraybagError("option pixel_bag: true needs pixel_gan > 0 (it confines the pixel discriminators)")
        if self.pixel_pool < 0 or (self.pixel_pool and not self.pixel_gan):
            raise XraybagError(f"option pixel_pool: {self.pixel_pool} must be 0 or, with pixel_gan > 0, a number of "
                               "pixels")
        if not 0 < self.pixel_lr <= 100 or (self.pixel_lr != 1 and not self.pixel_gan):
            raise XraybagError(f"option pixel_lr: {self.pixel_lr} must lie in (0, 100] and, other than 1, needs "
                               "pixel_gan > 0")
        if not 0 <= self.content <= 1:
            raise XraybagError(f"option content: {self.content} must lie in 0..1 (a share of the crop's pixels)")
        if self.lr <= 0 or not 0 <= self.beta1 < 1 or self.lambda_cycle < 0 or self.lambda_identity < 0:
            raise XraybagError("options lr > 0, 0 <= beta1 < 1, lambda_cycle >= 0 and lambda_identity >= 0")
        if self.weights is not None and getattr(self, "_loaded", None) != str(self.weights):
            self._state = self.load_weights()
            self._loaded = str(self.weights)

    def arch(self) -> dict[str, int]:
        size, ngf, ndf, n_blocks, epochs = PRESETS.get(self.preset, PRESETS["cpu"])
        return {"size": self.size or size, "ngf": self.ngf or ngf, "ndf": self.ndf or ndf,
                "n_blocks": self.n_blocks or n_blocks, "epochs": self.epochs or epochs}

    def load_weights(self) -> dict:
        from xraybag.learners.cyclegan.trainer import load_checkpoint

        path = Path(self.weights)
        if not path.is_file():
            raise XraybagError("option weights: file does not exist", str(path))
        state = load_checkpoint(path, "weights file")
        if DIRECTIONS[self.direction] not in state:
            raise XraybagError(f"has no generator {DIRECTIONS[self.direction]} (direction {self.direction})", str(path))
        return state

    def _threads(self) -> None:
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)

    # ------------------------------------------------------------------ train
    def train(self, data: Path, target: Path, out: Path, device: str = "auto", resume: bool = False,
              progress: bool = True) -> Path:
        """Learn A (``data``) <-> B (``target``); return ``out/weights.pt``."""
        from xraybag.learners.cyclegan.images import check_set, image_files, pixel_size

        self.check()
        arch = self.arch()
        mm_a, mm_b = pixel_size(data), pixel_size(target)
        scale = self.target_scale or (mm_b / mm_a if mm_a and mm_b else 1.0)
        raw_cfg: dict[str, Any] = {}
        if self.signals == "raw":
            from xraybag.learners.cyclegan import rawsignals

            files_a, scanners_a = rawsignals.raw_views(data, "--data")
            files_b, scanners_b = rawsignals.raw_views(target, "--target")
            rawsignals.check_views(files_a, arch["size"], "--data")
            rawsignals.check_views(files_b, arch["size"], "--target", scale)
            c_a = c_b = 2
            raw_cfg = {"background_tolerance": rawsignals.BACKGROUND_TOLERANCE, "a_max": rawsignals.A_MAX,
                       "scanners_A": scanners_a, "scanners_B": scanners_b}
        else:
            files_a, files_b = image_files(data, "--data"), image_files(target, "--target")
            c_a = check_set(files_a, arch["size"], "--data")
            c_b = check_set(files_b, arch["size"], "--target", scale)
        if c_a != c_b:
            raise XraybagError(f"--data's images have {c_a} channels and --target's {c_b}; cyclegan maps between "
                               "images of the same channels (the identity loss compares them)")
        iterations = self.iterations or arch["epochs"] * max(len(files_a), len(files_b))
        decay = iterations // 2 if self.decay_start < 0 else min(self.decay_start, iterations)
        cfg = {"channels": c_a, "size": arch["size"], "ngf": arch["ngf"], "ndf": arch["ndf"],
               "n_blocks": arch["n_blocks"], "iterations": iterations, "decay_start": decay, "lr": self.lr,
               "beta1": self.beta1, "lambda_cycle": self.lambda_cycle, "lambda_identity": self.lambda_identity,
               "pool_size": self.pool_size, "seed": self.seed, "checkpoint_every": self.checkpoint_every or 100,
               "warmup": self.warmup, "residual": bool(self.residual),
               "pointwise": self.pointwise, "pixel_gan": self.pixel_gan, "pixel_bag": self.pixel_bag,
               "pixel_pool": self.pixel_pool, "pixel_lr": self.pixel_lr,
               "content": self.content, "target_scale": scale,
               "pixel_mm": mm_a or (mm_b / scale if mm_b else None), "signals": self.signals, **raw_cfg}
        if self.warmup >= iterations:
            raise XraybagError(f"option warmup: {self.warmup} iterations leave none of the {iterations} for the "
                               "translation")
        extra = {"data": str(Path(data).resolve()), "target": str(Path(target).resolve()),
                 "images_A": len(files_a), "images_B": len(files_b), "pixel_mm_A": mm_a, "pixel_mm_B": mm_b}
        self._threads()
        from xraybag.learners.cyclegan import trainer

        return trainer.train(files_a, files_b, Path(out), cfg, device=resolve_device(device), resume=resume,
                             progress=progress, extra=extra)

    # ------------------------------------------------------------------ synthesize
    def synthesize(self, data: Path, out: Path, **kw: Any) -> Path:
        from xraybag.learners.data import inside_dataset, read_json

        if self.weights is None:
            raise XraybagError("option weights is required: --opt weights=RUN/weights.pt (from 'xraybag learn "
                               "train cyclegan')")
        self.check()
        state = self._state
        data, out = Path(data), Path(out)
        coco = read_json(data / "annotations.json", "annotations.json")
        if out.exists() and any(out.iterdir()):
            raise XraybagError("exists and is not empty; choose a new output folder", str(out))
        if state["config"].get("signals", "rgb") == "raw":
            from xraybag.learners.cyclegan.rawsignals import check_units, raw_views

            check_units(state["config"], str(self.weights))
            if self.raw == "drop":
                raise XraybagError("option raw=drop: weights trained with signals=raw translate the raw signals and "
                                   "write them; drop them afterwards if they are not wanted")
            views, _ = raw_views(data, "--data")
            return self._write(data, out, coco, state, views)
        if self.detector != "source":
            raise XraybagError(f"option detector={self.detector}: only weights trained with signals=raw translate "
                               "the raw signals a detector records; these translate pseudo-colour images")
        channels = int(state["config"]["channels"])
        for k, im in enumerate(coco.get("images", [])):
            if not inside_dataset(str(im.get("file_name", ""))):
                raise XraybagError(f"path {im['file_name']!r} leaves the dataset folder",
                                   f"{data / 'annotations.json'}: images[{k}]")
            path = data / im["file_name"]
            c = _channels(path)
            if c != channels:
                raise XraybagError(f"has {c} channels; the weights translate images of {channels}",
                                   f"{data / 'annotations.json'}: images[{k}] ({im['file_name']})")
        if not coco.get("images"):
            raise XraybagError("holds no images", str(data / "annotations.json"))
        return self._write(data, out, coco, state)

    def _write(self, data: Path, out: Path, coco: dict, state: dict, views: list | None = None) -> Path:
        """Write the translated dataset; ``views``: the images' raw views (weights trained with
        ``signals=raw``: the raw signals are translated, written and coloured by the other set's
        scanner, and the CLCXray encodings recomputed)."""
        import torch

        from xraybag.engine.output.files import sha256, write_atomic
        from xraybag.learners.cyclegan.images import read_image, rescale, resize
        from xraybag.learners.cyclegan.networks import generator_for

        self._threads()
        cfg = state["config"]
        gen = generator_for(cfg)
        gen.load_state_dict(state[DIRECTIONS[self.direction]])
        dev = torch.device(resolve_device("auto"))
        gen.to(dev).eval()
        weights_sha = hashlib.sha256(Path(self.weights).read_bytes()).hexdigest()
        translated = {im["file_name"] for im in coco["images"]}
        if views is not None:
            translated |= {rel for im in coco["images"] for rel in (im["raw"]["low"], im["raw"]["high"],
                                                                    f"clcxray/{Path(im['file_name']).name}")}
        skip = {"annotations.json", "manifest.jsonl", *translated}
        if self.raw == "drop":
            skip |= {"raw", "clcxray"}
        out.mkdir(parents=True, exist_ok=True)
        for src in sorted(data.rglob("*")):
            rel = src.relative_to(data)
            if (rel.as_posix() in skip or rel.parts[0] in skip or not src.is_file()
                    or any(part.startswith(".") for part in rel.parts)):  # not the renderer's state
                continue
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out / rel)
        hashes, images = {}, []
        tile = int(cfg["size"]) if self.tile < 0 else int(self.tile)
        for k, im in enumerate(coco["images"]):
            scale = self.input_scale(cfg, im)
            if views is None:
                arr = read_image(data / im["file_name"])
                with torch.no_grad():
                    res = translate_tiled(gen, rescale(arr, scale), dev, tile)
                blob = _encode(resize(res, arr.shape[0], arr.shape[1]), data / im["file_name"])
            else:
                files, colour_of = translate_raw_view(gen, views[k], cfg, self.direction, dev, tile, scale,
                                                      self.detector, np.random.default_rng([self.seed, k]))
                blob, enc = files["rgb"], f"clcxray/{Path(im['file_name']).name}"
                for rel, data_bytes in ((im["raw"]["low"], files["low"]), (im["raw"]["high"], files["high"]),
                                        *(((enc, files["clcxray"]),) if (data / enc).is_file() else ())):
                    (out / rel).parent.mkdir(parents=True, exist_ok=True)
                    write_atomic(out / rel, data_bytes)
                    hashes[rel] = sha256(data_bytes)
            write_atomic(out / im["file_name"], blob)
            hashes[im["file_name"]] = sha256(blob)
            note = {"method": "cyclegan", "direction": self.direction, "weights": str(Path(self.weights)),
                    "weights_sha256": weights_sha, "iteration": int(state.get("iteration", 0)),
                    "source_image": im["id"], "raw_translated": views is not None, "tile": tile,
                    "raw": "copied" if self.raw == "copy" else "dropped", "resampled": scale}
            if views is not None:
                note.update(raw="translated", signals="raw", coloured_by=colour_of, detector=self.detector)
                if self.detector == "target":
                    note["seed"] = self.seed
            if "synthetic" in im:
                note["earlier"] = im["synthetic"]
            new = {k: v for k, v in im.items() if not (k == "raw" and self.raw == "drop")}
            new.pop("synthetic", None)
            images.append(dict(new, synthetic=note))
        result = dict(coco, images=images)
        write_atomic(out / "annotations.json", json.dumps(result).encode())
        if (data / "manifest.jsonl").is_file():
            write_atomic(out / "manifest.jsonl", _manifest(data / "manifest.jsonl", hashes, self.raw == "drop",
                                                           {"method": "cyclegan", "direction": self.direction,
                                                            "weights_sha256": weights_sha}))
        return out

    def input_scale(self, cfg: dict, im: dict) -> float:
        """The factor an image is resampled by before translation (and back after): to the pixel
        size the generators learnt at (``pixel_mm`` in the weights) from the image's own
        ``pixel_mm``; for images without one, set B's ``target_scale`` when translating B -> A and
        1 when translating A -> B (set A was learnt as stored)."""
        learnt, own = cfg.get("pixel_mm"), im.get("pixel_mm")
        if isinstance(learnt, (int, float)) and learnt > 0 and isinstance(own, (int, float)) and own > 0:
            return float(own) / float(learnt)
        return float(cfg.get("target_scale", 1.0)) if self.direction == "BtoA" else 1.0


def translate(gen, img: np.ndarray, device) -> np.ndarray:
    """``img`` (``H x W x C`` in [0, 1]) through generator ``gen`` at its own size: padded to a
    multiple of 4 (reflection where the image is large enough, else edge copies), then cropped."""
    import torch
    import torch.nn.functional as F

    h, w = img.shape[:2]
    ph, pw = (-h) % 4, (-w) % 4
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).unsqueeze(0).to(device) * 2.0 - 1.0
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    y = gen(x)[0, :, :h, :w]
    return ((y.clamp(-1, 1) + 1.0) / 2.0).permute(1, 2, 0).cpu().numpy()


def translate_raw_view(gen, view, cfg: dict, direction: str, device, tile: int, scale: float = 1.0,
                       detector: str = "source", rng: np.random.Generator | None = None):
    """One raw view (:class:`.rawsignals.RawView`) through ``gen`` (weights trained with
    ``signals=raw``): its two channels of log attenuation translated as :func:`translate_tiled`
    translates an image (resampled by ``scale`` and back), turned back into transmissions
    (``detector="target"``: given the blur and noise the other set's detector adds beyond this
    set's, :func:`.rawsignals.match_detector`, drawn from ``rng``) and raw counts at the view's own
    ``white``, coloured by the other set's scanner of the same view, and CLCXray-encoded. Returns ``({"low", "high", "rgb", "clcxray": file bytes}, the colouring
    scanner's name)``."""
    import torch

    from xraybag.engine.output.files import encode_png, encode_tiff
    from xraybag.engine.xray.colour import clcxray_encoding
    from xraybag.engine.xray.detect import to_raw
    from xraybag.learners.cyclegan.images import rescale, resize
    from xraybag.learners.cyclegan.rawsignals import (
        colour,
        from_unit,
        match_detector,
        scanner_for,
    )

    arr = view.read()
    with torch.no_grad():
        res = resize(translate_tiled(gen, rescale(arr, scale), device, tile), arr.shape[0], arr.shape[1])
    t = {"low": from_unit(res[:, :, 0]), "high": from_unit(res[:, :, 1])}
    own, other = ("scanners_A", "scanners_B") if direction == "AtoB" else ("scanners_B", "scanners_A")
    block = scanner_for(cfg[other], view.view)
    if detector == "target":
        if rng is None:
            raise ValueError("detector='target' draws noise: give rng")
        t = match_detector(t, scanner_for(cfg[own], view.view), block, rng)
    raw = {ch: to_raw(v, white=view.white) for ch, v in t.items()}
    rgb = colour(raw["low"] / view.white, raw["high"] / view.white, block)
    return ({"low": encode_tiff(raw["low"]), "high": encode_tiff(raw["high"]), "rgb": encode_png(rgb),
             "clcxray": encode_png(clcxray_encoding(raw["high"], raw["low"]))}, str(block.get("name", view.view)))


def hann_weights(n: int) -> np.ndarray:
    """``sin^2(pi (i + 0.5) / n)``, i < n: a Hann window with no zero weight, for blending tiles."""
    return np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2


def tile_starts(size: int, tile: int) -> list[int]:
    """Starts of windows of ``tile`` over ``size`` (>= tile) pixels, half a window apart, the last
    ending at the edge."""
    step = max(1, tile // 2)
    return sorted({*range(0, size - tile + 1, step), size - tile})


def translate_tiled(gen, img: np.ndarray, device, tile: int) -> np.ndarray:
    """``img`` through ``gen`` in windows of ``tile`` x ``tile`` px (smaller where the image is),
    half a window apart, each translated on its own (:func:`translate`) and blended with Hann
    weights, so every pixel is a weighted mean of the windows over it. ``tile <= 0``, or an image
    no larger than one window: the whole image at once."""
    h, w = img.shape[:2]
    if tile <= 0 or (h <= tile and w <= tile):
        return translate(gen, img, device)
    th, tw = min(tile, h), min(tile, w)
    wy, wx = hann_weights(th), hann_weights(tw)
    weight = (wy[:, None] * wx[None, :])[:, :, None]
    acc = np.zeros(img.shape[:2] + (img.shape[2],), np.float64)
    norm = np.zeros(img.shape[:2] + (1,), np.float64)
    for y in tile_starts(h, th):
        for x in tile_starts(w, tw):
            acc[y : y + th, x : x + tw] += translate(gen, img[y : y + th, x : x + tw], device) * weight
            norm[y : y + th, x : x + tw] += weight
    return (acc / norm).astype(np.float32)


def _channels(path: Path) -> int:
    """The channel count of an image file as :func:`.images.read_image` reads it (header only
    for PIL's formats)."""
    from xraybag.learners.cyclegan.images import image_info

    if not path.is_file():
        raise XraybagError("image file does not exist", str(path))
    if path.suffix.lower() not in (".tif", ".tiff"):
        from PIL import Image

        try:
            with Image.open(path) as im:
                mode = im.mode
        except Exception as e:
            raise XraybagError(f"cannot read the image: {type(e).__name__}: {e}", str(path)) from None
        return 1 if mode in ("L", "LA", "1", "I", "I;16", "F") else 3
    return image_info(path)[2]


def _encode(img: np.ndarray, like: Path) -> bytes:
    """``img`` in [0, 1] as 8-bit, in the format of ``like`` (PNG for xraybag's images)."""
    import io

    from PIL import Image

    from xraybag.engine.output.files import encode_png

    arr = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    if arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if like.suffix.lower() == ".png":
        return encode_png(arr)
    buf = io.BytesIO()
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(like.suffix.lower(), "PNG")
    Image.fromarray(arr).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _manifest(path: Path, hashes: dict[str, str], drop_raw: bool, note: dict) -> bytes:
    """The input manifest with the translated images' hashes (and without raw files when dropped)."""
    lines = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        files = rec.get("files") if isinstance(rec, dict) else None
        if isinstance(files, dict):
            files = {rel: hashes.get(rel, h) for rel, h in files.items()
                     if not (drop_raw and rel.split("/")[0] in ("raw", "clcxray"))}
            rec = dict(rec, files=files, translated=note)
        lines.append(json.dumps(rec, sort_keys=True))
    return ("\n".join(lines) + "\n").encode() if lines else b""
