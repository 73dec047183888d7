"""Cycle-GAN on the raw dual-energy signals (option ``signals=raw``; torch-free).

Instead of the pseudo-colour images, the networks see each view's two transmissions ``T_low``,
``T_high`` (the dataset's ``raw/`` tiffs over the detector's ``white``) as a two-channel image of
``v = sqrt(min(-ln T, A_MAX) / A_MAX)`` (:func:`to_unit`): log attenuation, so that a material's
layer shifts both channels the same way wherever it lies, with the square root spreading the thin
end (plastics, clothes) where a scanner's colour table changes fastest. A translated view is
turned back into transmissions (:func:`from_unit`), written as raw tiffs and coloured by the
*other* set's scanner (its colour calibration and table, read from that dataset's scenes at
training time and kept in the weights): translated A -> B images are coloured as B's scanner
colours its own signals. Why: the pixel-wise map between two scanners' dual-energy signals is a
smooth, monotone one (the same basis materials seen through other spectra), while the map between
their colour images goes through two colour tables, hue wraps and saturation curves, which an
unpaired game at small scale does not find (see docs/learners.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from xraybag.errors import XraybagError

#: attenuation (-ln T) that maps to 1; darker pixels (T < 1.2e-4) are starved on any scanner
A_MAX = 9.0
#: background tolerance in :func:`to_unit`'s units: 3-4 sigma of the empty belt's noise, an
#: attenuation of 0.013 above an empty belt
BACKGROUND_TOLERANCE = 0.03


def to_unit(t: np.ndarray) -> np.ndarray:
    """Transmission -> ``sqrt(clip(-ln T, 0, A_MAX) / A_MAX)`` in [0, 1] (float32)."""
    a = -np.log(np.clip(np.asarray(t, np.float64), np.exp(-A_MAX), None))
    return np.sqrt(np.clip(a, 0.0, A_MAX) / A_MAX).astype(np.float32)


def check_units(cfg: dict, where: str) -> None:
    """One-line error for weights whose networks learnt other units than :func:`to_unit`'s."""
    if float(cfg.get("a_max", A_MAX)) != A_MAX:
        raise XraybagError(f"the weights learnt signals in units of a_max={cfg['a_max']}; this xraybag's are "
                           f"a_max={A_MAX} (train again)", where)


def from_unit(v: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_unit`: ``exp(-A_MAX v^2)`` (float64; transmissions above 1, which
    :func:`to_unit` clips, come back as 1)."""
    v = np.clip(np.asarray(v, np.float64), 0.0, 1.0)
    return np.exp(-A_MAX * v * v)


@dataclass(frozen=True)
class RawView:
    """One view of a dataset: its raw low/high tiffs, the detector's ``white`` (raw counts of
    the open beam), the view's name and its pseudo-colour image's ``file_name`` in the dataset."""

    low: Path
    high: Path
    white: float
    view: str
    file_name: str = ""

    @property
    def name(self) -> str:
        return self.low.name

    def __str__(self) -> str:
        return str(self.low)

    def transmissions(self) -> tuple[np.ndarray, np.ndarray]:
        import tifffile

        out = []
        for p in (self.low, self.high):
            try:
                raw = np.asarray(tifffile.imread(p), dtype=np.float64)
            except Exception as e:  # a broken or missing file: one line
                raise XraybagError(f"cannot read the raw image: {type(e).__name__}: {e}", str(p)) from None
            if raw.ndim != 2:
                raise XraybagError(f"is not a one-channel raw image (shape {raw.shape})", str(p))
            out.append(raw / self.white)
        if out[0].shape != out[1].shape:
            raise XraybagError(f"low is {out[0].shape[::-1]} px and high {out[1].shape[::-1]} px", str(self.high))
        return out[0], out[1]

    def read(self) -> np.ndarray:
        """``H x W x 2`` float32: :func:`to_unit` of T_low and T_high."""
        lo, hi = self.transmissions()
        return np.stack([to_unit(lo), to_unit(hi)], axis=2)


def _top_level_block(text: str, key: str) -> str | None:
    """The lines of top-level key ``key`` of a block-style YAML text (a concrete scene is mostly its
    objects' meshes; its scanners are a few lines), or None when it has none."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"{key}:"):
            j = i + 1
            while j < len(lines) and (not lines[j] or lines[j][0] in " -#"):
                j += 1
            return "\n".join(lines[i:j])
    return None


def _scene_scanners(path: Path, where: str) -> dict[str, dict]:
    """The scanner blocks of a dataset's concrete scene, by name."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        text = path.read_text()
        spec = yaml.load(_top_level_block(text, "scanners") or text, Loader=loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise XraybagError(f"cannot read the scene: {type(e).__name__}", where) from None
    scanners = spec.get("scanners") if isinstance(spec, dict) else None
    if not isinstance(scanners, list) or not scanners:
        raise XraybagError("the scene has no scanners", where)
    return {str(s.get("name", k)): s for k, s in enumerate(scanners) if isinstance(s, dict)}


def raw_views(root: str | Path, what: str = "--data") -> tuple[list[RawView], dict[str, dict]]:
    """The raw views of an xraybag dataset (every image of ``annotations.json``, with its raw low /
    high and its scene) and the scanner blocks of its views, by view name (the first scene's
    where scenes differ). One-line errors for a folder that is not such a dataset."""
    from xraybag.learners.data import inside_dataset, read_json

    root = Path(root)
    ann = root / "annotations.json"
    if not ann.is_file():
        raise XraybagError(f"{what}: signals=raw needs an xraybag dataset with raw/ low and high images "
                           "(annotations.json and scenes/); this folder has no annotations.json", str(root))
    coco = read_json(ann, "annotations.json")
    views, scanners, cache = [], {}, {}
    for k, im in enumerate(coco.get("images", []) if isinstance(coco, dict) else []):
        where = f"{ann}: images[{k}]"
        raw = im.get("raw") if isinstance(im, dict) else None
        if not isinstance(raw, dict) or not raw.get("low") or not raw.get("high"):
            raise XraybagError(f"{what}: image has no raw low and high (signals=raw translates them)", where)
        scene, view = im.get("scene"), im.get("view")
        for rel in (scene, raw["low"], raw["high"], im.get("file_name")):
            if rel and not inside_dataset(str(rel)):
                raise XraybagError(f"{what}: path {rel!r} leaves the dataset folder", where)
        if not scene or not (root / scene).is_file():
            raise XraybagError(f"{what}: the image's scene {scene!r} does not exist (signals=raw reads its "
                               "scanner)", where)
        if scene not in cache:
            cache[scene] = _scene_scanners(root / scene, f"{root / scene}")
        blocks = cache[scene]
        block = blocks.get(str(view)) or (next(iter(blocks.values())) if len(blocks) == 1 else None)
        if block is None:
            raise XraybagError(f"{what}: view {view!r} is none of the scene's scanners ({', '.join(blocks)})", where)
        scanner = _scanner(block, f"{root / scene}: scanners.{view}")
        if scanner.type != "line_scan" or scanner.detector.type != "dual_sandwich":
            raise XraybagError(f"{what}: scanner {view!r} is not a dual-energy line scanner (type line_scan, "
                               "detector type dual_sandwich); signals=raw translates low/high pairs",
                               f"{root / scene}: scanners.{view}")
        white = float(scanner.detector.white)
        for ch in ("low", "high"):
            if not (root / raw[ch]).is_file():
                raise XraybagError(f"{what}: raw image {raw[ch]!r} does not exist", where)
        views.append(RawView(root / raw["low"], root / raw["high"], white, str(view), str(im.get("file_name") or "")))
        scanners.setdefault(str(view), scanner.model_dump(mode="json"))
    if not views:
        raise XraybagError(f"{what}: holds no images", str(ann))
    return views, scanners


def _scanner(block: dict, where: str):
    """The scene format's scanner of a concrete scene's block (one-line error when it is not one)."""
    from pydantic import ValidationError

    from xraybag.scenes.models import Scanner

    try:
        return Scanner.model_validate(block)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()))
        raise XraybagError(f"not a scanner of the scene format: {loc}: {err.get('msg')}", where) from None


def check_views(views: list[RawView], size: int, what: str, scale: float = 1.0) -> None:
    """One-line error for a view smaller than the training crop (once resampled by ``scale``)."""
    import tifffile

    from xraybag.learners.cyclegan.images import scaled_shape

    for v in views:
        for p in (v.low, v.high):
            try:
                with tifffile.TiffFile(p) as tif:
                    h, w = tif.pages[0].shape[:2]
            except Exception as e:
                raise XraybagError(f"cannot read the raw image: {type(e).__name__}: {e}", str(p)) from None
            sh, sw = scaled_shape(h, w, scale)
            if sh < size or sw < size:
                raise XraybagError(f"{what}: raw image is {w} x {h} px, smaller than the training crop {size} x {size} "
                                   "(use --opt size=...)", str(p))


@lru_cache(maxsize=8)
def _scanner_of(block_json: str):
    """The validated scanner of a block given as sorted JSON (cached: colour and detector share it)."""
    return _scanner(json.loads(block_json), "the weights' scanner")


@lru_cache(maxsize=8)
def _calibration(block_json: str):
    from xraybag.engine.xray.calibration import calibrate_colour
    from xraybag.materials import default_library

    return calibrate_colour(_scanner_of(block_json), default_library())


def scanner_for(scanners: dict[str, dict], view: str) -> dict:
    """The scanner block of ``view`` (by name; the only one when there is one)."""
    if view in scanners:
        return scanners[view]
    if len(scanners) == 1:
        return next(iter(scanners.values()))
    raise XraybagError(f"view {view!r} has no scanner among the weights' ({', '.join(scanners)}); the "
                       "colours of translated raw signals come from the other set's scanner of the same view")


def colour(t_low: np.ndarray, t_high: np.ndarray, block: dict) -> np.ndarray:
    """The pseudo-colour image (``H x W x 3`` uint8) scanner ``block`` shows for these transmissions."""
    from xraybag.engine.xray.colour import pseudo_colour

    return pseudo_colour(t_low, t_high, _calibration(json.dumps(block, sort_keys=True)))


# ------------------------------------------------------------------ the target's detector

@dataclass(frozen=True)
class DetectorNoise:
    """What a scanner's detector does to a view's transmissions, per pixel of its own pitch:
    ``quanta`` (per channel) of the open beam, ``m^2 / v`` of the compound Poisson signal as the
    engine draws it (:func:`xraybag.engine.xray.detect.detect`; 0: no quantum noise), ``blur``
    (Gaussian sigma, pixels), ``electronic`` (sigma, transmission units)."""

    channels: tuple[str, ...]
    quanta: tuple[float, ...]
    pixel_mm: float
    blur: float
    electronic: float


@lru_cache(maxsize=8)
def _detector_noise(block_json: str) -> DetectorNoise:
    scanner, pixel_mm, r = _response(block_json)
    noise, on = scanner.noise, bool(scanner.noise.enabled)
    var = (np.asarray(r.weights) * np.asarray(r.quanta)).sum(axis=0)
    quanta = np.asarray(r.open_beam) ** 2 / var if on and noise.quantum else np.zeros(len(r.channels))
    return DetectorNoise(tuple(r.channels), tuple(float(q) for q in quanta), pixel_mm,
                         float(noise.blur) if on else 0.0,
                         float(noise.electronic) / float(scanner.detector.white) if on else 0.0)


@lru_cache(maxsize=8)
def _response(block_json: str):
    """The scanner of a block, its pixel pitch at the detector (mm) and its channel response per
    pixel (the engine's own, :func:`~xraybag.engine.xray.detect.channel_response`)."""
    from xraybag.engine.xray.detect import channel_response
    from xraybag.engine.xray.scanners import view_geometry
    from xraybag.learners.tip.rawfolder import empty_scene
    from xraybag.materials import default_library

    scanner = _scanner_of(block_json)
    geom = view_geometry(scanner, empty_scene(scanner, 100.0))
    return scanner, float(geom.pixel_mm), channel_response(scanner, default_library(), geom.pixel_mm**2,
                                                           geom.distance_mm)


def detector_noise(block: dict) -> DetectorNoise:
    """:class:`DetectorNoise` of scanner ``block`` (cached)."""
    return _detector_noise(json.dumps(block, sort_keys=True))


def kernel_variance(sigma: float) -> float:
    """The variance (px^2) of the sampled Gaussian kernel ``scipy.ndimage.gaussian_filter`` uses
    for ``sigma`` (radius ``round(4 sigma)``): below a pixel it is not ``sigma^2`` (0.215 for 0.5)."""
    if sigma <= 0:
        return 0.0
    x = np.arange(-int(4.0 * sigma + 0.5), int(4.0 * sigma + 0.5) + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return float((w * x * x).sum() / w.sum())


def extra_blur(have: float, want: float) -> float:
    """The sigma (px) whose sampled kernel, after one of ``have``, gives the variance of one of
    ``want`` (variances of successive filters add); 0 when ``want`` is no wider."""
    need = kernel_variance(want) - kernel_variance(have)
    if need <= 1e-12:
        return 0.0
    lo, hi = 0.0, max(want, 1.0) * 2.0
    for _ in range(60):  # kernel_variance grows with sigma
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if kernel_variance(mid) < need else (lo, mid)
    return 0.5 * (lo + hi)


#: the basis materials of :func:`quantum_variances` and the thicknesses (mm) it fits between: below
#: zero too, so that water and iron themselves lie inside the fitted region, not on its edge (a
#: higher-Z material is iron less some water, a lower-Z one water less some iron)
VARIANCE_BASIS = (("water", -500.0, 2000.0), ("iron", -20.0, 100.0))
#: the table's log-attenuation plane: ``0 .. VARIANCE_A_MAX`` in steps of ``VARIANCE_A_STEP``
VARIANCE_A_MAX, VARIANCE_A_STEP = 10.0, 0.05
#: the Gaussian sigma (source pixels) of the local mean a pixel's material and variance are read from
VARIANCE_SMOOTH = 2.0


@dataclass(frozen=True)
class _SlabModel:
    """A scanner's detector response to uniform slabs of the :data:`VARIANCE_BASIS` materials."""

    weights: np.ndarray  # (E, C) open-beam signal per energy bin
    second: np.ndarray  # (E, C) weights times the quantum weight: the variance's terms
    mu: np.ndarray  # (M, E) 1/mm
    open_beam: np.ndarray  # (C,)
    offset: float
    fraction: float
    quantum: bool

    def signals(self, thick: np.ndarray, jacobian: bool = False):
        """For slabs ``thick`` (``(n, M)`` mm): transmission ``T`` and quantum variance ``V``
        (transmission units, per pixel of the scanner's pitch), ``(n, C)`` each, as
        :func:`~xraybag.engine.xray.detect.detect` measures them: the compound Poisson signal's
        mean ``sum W t`` and variance ``sum W Q t``, plus a uniform slab's scatter (``offset *
        open_beam + fraction * mean``, drawn at the open beam's mean quantum), flat-field
        corrected (``V = 0`` without quantum noise). With ``jacobian``: also ``dT/dthick``,
        ``(n, C, M)``."""
        t = np.exp(-np.clip(thick @ self.mu, -200.0, 200.0))  # (n, E); squares stay finite
        mean = t @ self.weights
        ref = self.open_beam * (1.0 + self.offset + self.fraction)
        scatter = self.offset * self.open_beam + self.fraction * mean
        T = (mean + scatter) / ref
        if self.quantum:
            q0 = self.second.sum(axis=0) / self.open_beam
            V = (t @ self.second + scatter * q0) / ref**2
        else:
            V = np.zeros_like(T)
        if not jacobian:
            return T, V
        dmean = -np.stack([(t * mu) @ self.weights for mu in self.mu], axis=2)  # (n, C, M)
        return T, V, (1.0 + self.fraction) * dmean / ref[None, :, None]


@lru_cache(maxsize=8)
def _slab_model(block_json: str) -> _SlabModel:
    from xraybag.engine.xray.detect import mu_table
    from xraybag.materials import default_library

    scanner, _, r = _response(block_json)
    noise = scanner.noise
    on = bool(noise.enabled)
    sc = noise.scatter if on else None
    w = np.asarray(r.weights, np.float64)
    return _SlabModel(w, w * np.asarray(r.quanta, np.float64),
                      np.asarray(mu_table([b[0] for b in VARIANCE_BASIS], default_library(), r.energies)),
                      np.asarray(r.open_beam, np.float64), float(sc.offset) if sc is not None else 0.0,
                      float(sc.fraction) if sc is not None else 0.0, on and bool(noise.quantum))


def fit_slabs(model: _SlabModel, att: np.ndarray, iterations: int = 40) -> np.ndarray:
    """The basis thicknesses (``(n, M)`` mm, within :data:`VARIANCE_BASIS`'s limits) whose
    log attenuations ``-ln T`` through ``model`` are ``att`` (``(n, C)``, C = M): Gauss-Newton with
    the thicknesses held to their limits, so a pair no slab gives (noise, or a material outside
    the basis) gets the nearest slab at a limit."""
    bottom, top = np.array([b[1] for b in VARIANCE_BASIS]), np.array([b[2] for b in VARIANCE_BASIS])
    mu_mean = model.mu @ model.weights / model.weights.sum(axis=0)  # (M, C): open-beam mean mu
    thick = np.zeros((att.shape[0], len(top)))
    thick[:, 0] = np.clip(att[:, -1] / mu_mean[0, -1], bottom[0], top[0])  # all the first material to start
    live = np.arange(att.shape[0])
    for _ in range(iterations):
        T, _, dT = model.signals(thick[live], jacobian=True)
        T = np.clip(T, 1e-150, None)
        r = -np.log(T) - att[live]  # (n, C)
        J = -dT / T[:, :, None]  # d(-ln T)/d thick, (n, C, M)
        JtJ = np.einsum("ncm,nck->nmk", J, J) + 1e-12 * np.eye(len(top))
        step = np.linalg.solve(JtJ, np.einsum("ncm,nc->nm", J, r)[..., None])[..., 0]
        new = np.clip(thick[live] - step, bottom, top)
        moved = np.abs(new - thick[live]).max(axis=1) > 1e-6
        thick[live] = new
        live = live[moved]
        if not len(live):
            break
    return thick


@lru_cache(maxsize=8)
def quantum_variances(source_json: str, target_json: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The quantum variances behind any material, on the target's log-attenuation plane: for each
    ``(A_low, A_high) = -ln T`` of scanner ``target`` (a grid of ``VARIANCE_A_STEP`` from 0 to
    ``VARIANCE_A_MAX``), the logarithms of ``VB``, the target's quantum variance (transmission
    units, its own pitch), and of ``RA``, the source's *relative* variance ``V / T^2`` of the same
    material (floored at 1e-300: no quantum noise), each ``(2, n, n)`` (channel, low index, high
    index), and the channels.

    A pixel's material is the water / iron pair (:data:`VARIANCE_BASIS`) whose target
    transmissions are the pixel's (:func:`fit_slabs`), so each spectrum's beam hardening is in
    both: behind metal a pixel holds fewer, harder quanta than ``N T``."""
    model_b, model_a = _slab_model(target_json), _slab_model(source_json)
    ch_a, ch_b = tuple(_response(source_json)[2].channels), tuple(_response(target_json)[2].channels)
    if ch_a != ch_b or len(ch_b) != len(VARIANCE_BASIS):
        raise XraybagError(f"the quantum variance table needs {len(VARIANCE_BASIS)} channels in both scanners "
                           f"(they have {', '.join(ch_a)}; {', '.join(ch_b)})")
    axis = np.arange(0.0, VARIANCE_A_MAX + VARIANCE_A_STEP / 2, VARIANCE_A_STEP)
    lo, hi = np.meshgrid(axis, axis, indexing="ij")
    thick = fit_slabs(model_b, np.stack([lo.ravel(), hi.ravel()], axis=1))
    _, v_b = model_b.signals(thick)
    t_a, v_a = model_a.signals(thick)
    ra = v_a / np.clip(t_a, 1e-150, None) ** 2
    if not (np.isfinite(v_b).all() and np.isfinite(ra).all()):
        raise XraybagError("the quantum variance table of these scanners is not finite")
    shape = (len(ch_b),) + lo.shape

    def log_table(v):
        return np.ascontiguousarray(np.log(np.clip(v, 1e-300, None)).T.reshape(shape))

    return log_table(v_b), log_table(ra), ch_b


def _table_lookup(log_table: np.ndarray, a_low: np.ndarray, a_high: np.ndarray) -> np.ndarray:
    """A table of :func:`quantum_variances` (its logarithm) at each pixel's log attenuations,
    interpolated linearly in the logarithm (the variances span orders of magnitude)."""
    from scipy.ndimage import map_coordinates

    coords = np.stack([np.clip(a_low, 0.0, VARIANCE_A_MAX), np.clip(a_high, 0.0, VARIANCE_A_MAX)]) / VARIANCE_A_STEP
    return np.exp(map_coordinates(log_table, coords, order=1, mode="nearest"))


def match_detector(t: dict[str, np.ndarray], source: dict, target: dict, rng: np.random.Generator) -> dict:
    """Transmissions ``t`` (``{channel: image}``) of a view recorded by scanner block ``source``
    and translated to the ``target``'s signals, given what the target's detector adds beyond the
    source's, on the source's pixel grid (the target's pixels as large as the source's):

    1. blur: the target's blur in mm (its sigma times its pitch) over the source's pixels; the image
       is filtered by :func:`extra_blur` (``sqrt(s_B^2 - s_A^2)`` pixels for wide kernels), so that
       the source's signal and noise, already filtered by ``s_A``, end filtered as by ``s_B``;
    2. quantum noise: the variance the target's detector gives the pixel's material (its quanta
       scaled to the source's pixel area), less the source's that the translation carried (the
       source's relative variance of the same material times ``T^2``: the noise keeps its size in
       log attenuation), drawn as Gaussian noise and filtered by ``s_B`` (the quanta are drawn
       before the blur). With ``low`` and ``high`` both given, the material is read from the pair
       and both variances include its beam hardening (:func:`quantum_variances`); otherwise a
       pixel holds ``N T`` quanta (``N``: the open beam's, :class:`DetectorNoise`) in both;
    3. electronic noise: Gaussian, ``sqrt(e_B^2 - e_A^2)``.

    Noise the source has beyond the target's is not removed (the differences are taken at 0). The
    scatter is that of a uniform slab. ``source == target`` changes nothing. Returns new float64
    images; ``rng`` draws two normal images per channel, in ``t``'s order."""
    from scipy.ndimage import gaussian_filter

    a, b = detector_noise(source), detector_noise(target)
    for ch in t:
        if ch not in a.channels or ch not in b.channels:
            raise XraybagError(f"channel {ch!r} is not one of both scanners' ({', '.join(a.channels)}; "
                               f"{', '.join(b.channels)})")
    area = (a.pixel_mm / b.pixel_mm) ** 2
    s_b = b.blur * b.pixel_mm / a.pixel_mm
    s_x = extra_blur(a.blur, s_b)
    e = float(np.sqrt(max(b.electronic**2 - a.electronic**2, 0.0)))
    ys = {ch: gaussian_filter(np.asarray(img, np.float64), s_x, mode="nearest") if s_x > 0
          else np.array(img, np.float64) for ch, img in t.items()}
    same = source == target
    hardening = {"low", "high"} <= set(t) and not same
    if hardening:
        vb, ra, chans = quantum_variances(json.dumps(source, sort_keys=True), json.dumps(target, sort_keys=True))
        local = {c: gaussian_filter(ys[c], VARIANCE_SMOOTH, mode="nearest") for c in ("low", "high")}
        att = [-np.log(np.clip(local[c], 1e-12, None)) for c in ("low", "high")]
    out = {}
    for ch, y in ys.items():
        if same:
            var = None
        elif hardening:
            k = chans.index(ch)
            var = _table_lookup(vb[k], *att) / area - local[ch] ** 2 * _table_lookup(ra[k], *att)
        else:
            n_a, n_b = a.quanta[a.channels.index(ch)], b.quanta[b.channels.index(ch)] * area
            var = np.clip(y, 0.0, None) * ((1.0 / n_b if n_b > 0 else 0.0) - (1.0 / n_a if n_a > 0 else 0.0))
        z = rng.standard_normal(y.shape)
        if var is not None and (var > 0).any():
            q = np.sqrt(np.clip(var, 0.0, None)) * z
            y += gaussian_filter(q, s_b, mode="nearest") if s_b > 0 else q
        z = rng.standard_normal(y.shape)
        if e > 0:
            y += e * z
        out[ch] = y
    return out
