"""Physics threat-image projection: a threat traced alone through a bag's scanner views and
composited into the bag's measured signals.

A bag of an xraybag dataset comes with its concrete scene (``scenes/<bag>.yaml``), hence its
scanners and the exact rays of every view. :func:`load_bag` rebuilds the bag's solids and traces
every 2D view (path lengths per material, for the labels); :func:`threat_object` samples a catalog
template (or takes an object entry) at a pose; :func:`trace_threat` traces the threat alone
through the same rays. :func:`composite_view` then makes the view's new signals:

* ``signal="basis"`` (the default): each pixel's measured pair (T_low, T_high) is solved for the
  thicknesses (a, b) of two basis materials (:data:`BASIS`, organic and aluminium) that give
  exactly that pair through the scanner's own spectrum and detector layers; the combined
  polychromatic transmission ``sum_E W_c(E) exp(-a mu_A - b mu_B - sum_m t_m mu_m) / sum_E W_c``
  (t_m: the threat's path lengths) then replaces the bag's, as the ratio to the fitted bag
  transmission times the stored signal. Beam hardening is modelled; only the spectral shape of the
  bag's attenuation is approximated by the two bases.
* ``signal="product"``: the stored transmission times the threat's own polychromatic
  transmission (classic TIP: exact per energy, off by the beam hardening after integration).
* ``signal="retrace"``: the bag's and the threat's path lengths added and passed through the
  engine's spectral pass and noise model (:func:`xraybag.engine.xray.detect.detect`) with the
  view's own noise key (the counter draws of the bag's render, :attr:`BagView.draws`): the
  engine's render of the combined scene, noise included, so the pixels the threat does not reach
  keep the bag's noise. A bag not rendered by the engine draws its key from the caller's
  generator.

Noise: the stored signal already holds the bag's noise, blur and scatter. With ``basis`` or
``product`` the scanner's scatter model is taken out first (:func:`primary_estimate`: the primary
transmission under the stored signal), the threat's factor ``f`` applied to that primary, the
change blurred by the detector blur and given its own scatter (a low-pass of the change: the
threat also removes scatter around it), and added to the stored signal. Scaling the stored signal
by ``f`` scales its noise by ``f``; a real scan of the combined scene has more noise relative to
its signal (fewer photons), so the missing variance ``max(0, v(T_c) - f^2 v(T_bag))`` (quantum
variances from the spectrum's quanta; this noise blurred like the engine's) and ``(1 - f^2)
sigma_e^2`` (electronic, white) is drawn and added, where the scanner's noise is enabled.

Labels: the bag's traced path lengths plus the threat's go through the engine's labelling
(:func:`xraybag.engine.xray.annotate.label_objects`), so the threat's mask, box, occlusion and
difficulty, and the new instance map, are what the engine gives for the combined scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xraybag.engine.output.pipeline import effective_energy
from xraybag.engine.packing import pack_bag
from xraybag.engine.solids.scene import build_solids, object_solids
from xraybag.engine.xray.annotate import ObjectLabel, label_objects
from xraybag.engine.xray.calibration import calibrate_colour, low_high_channels
from xraybag.engine.xray.colour import pseudo_colour
from xraybag.engine.xray.counter import CounterDraws, draws_from
from xraybag.engine.xray.detect import (
    ChannelResponse,
    channel_response,
    detect,
    mu_table,
    to_raw,
)
from xraybag.engine.xray.filters import blur_and_add, lowpass
from xraybag.engine.xray.scanners import view_geometry
from xraybag.engine.xray.trace import ObjectTrace, RayGeometry, TraceResult, trace
from xraybag.errors import XraybagError
from xraybag.scenes.loader import load_scene, load_scene_data
from xraybag.scenes.models import Object, Pose, Scanner, Scene
from xraybag.scenes.yamlsrc import SourceMap
from xraybag.streams import STREAM_NOISE, bag_rng

#: the two basis materials of the dual-energy fit: a light organic and aluminium
BASIS = ("pmma", "aluminum")
SIGNALS = ("basis", "product", "retrace")
#: transmissions are clipped to this before logarithms (a fully dark pixel stays dark)
T_MIN = 1e-6


@dataclass
class BagView:
    """One 2D view of a bag: its scanner, rays, detector response and the bag's traced paths."""

    scanner: Scanner
    geometry: RayGeometry
    response: ChannelResponse
    trace: TraceResult
    effective_kev: float
    #: the key of the view's noise draws in the bag's own render (:mod:`xraybag.engine.xray.counter`);
    #: None where the bag was not rendered by the engine (a folder of a real scanner's images)
    draws: CounterDraws | None = None


@dataclass
class Bag:
    scene: Scene  # the packed concrete scene
    library: Any
    objects: list  # ObjectInfo of each object (index 1..N)
    views: dict[str, BagView] = field(default_factory=dict)

    @property
    def interior(self) -> np.ndarray:
        return np.array([float(s) for s in self.scene.bag.size])


def load_bag(scene_path: str | Path) -> Bag:
    """The bag of a concrete scene file (``scenes/<bag>.yaml``): its solids traced in every 2D view
    (CT scanners are skipped)."""
    loaded = load_scene(scene_path)
    packed, _ = pack_bag(loaded, 0)
    solids, infos = build_solids(packed, tolerance=packed.tolerance)
    bag = Bag(packed, loaded.library, infos)
    for v, scanner in enumerate(packed.scanners):
        if scanner.type == "ct":
            continue
        geom = view_geometry(scanner, packed)
        response = channel_response(scanner, loaded.library, geom.pixel_mm**2, geom.distance_mm)
        # the key render_bag drew this view's noise with (its scanner's stream of the bag's seed)
        draws = draws_from(bag_rng(packed.seed, packed.bag_index, STREAM_NOISE + v))
        bag.views[scanner.name] = BagView(scanner, geom, response, trace(solids, geom),
                                          effective_energy(response), draws)
    return bag


def threat_object(threat: str | dict, seed: int, pose: Pose | dict | None = None,
                  library_scene: Scene | None = None) -> Object:
    """A concrete threat object: a catalog or built-in template name sampled with ``seed``, or an
    object entry of the scene format (a dict, e.g. ``{"shape": ..., "material": ..., "label":
    ...}``); ``pose`` (``{"position": [x, y, z], "rotation_deg": [...]}``) given to it. Scene
    materials of ``library_scene`` (user materials of the bag) are known to it."""
    from xraybag.scenes.sample import sample

    entry = {"template": threat} if isinstance(threat, str) else dict(threat)
    name = threat if isinstance(threat, str) else str(entry.get("name") or entry.get("label") or "threat")
    entry.setdefault("name", name)
    data: dict[str, Any] = {"seed": int(seed), "bag": {"size": [2000, 2000, 2000]}, "objects": [entry]}
    if library_scene is not None and library_scene.materials:
        data["materials"] = {k: v.model_dump(exclude_none=True) for k, v in library_scene.materials.items()}
    source = SourceMap(f"threat {name}")
    loaded = load_scene_data(data, source, Path.cwd(), name="threat")
    obj = sample(loaded, 0, int(seed)).objects[0]
    if pose is not None:
        obj = obj.model_copy(update={"pose": Pose.model_validate(pose) if isinstance(pose, dict) else pose})
    return obj


def threat_samples(threats: str, seed: int) -> tuple[dict[str, Object], dict[str, str]]:
    """The threats of the ``threats`` option (comma-separated names), each sampled with ``seed``,
    and their classes; a threat without a label is an error."""
    names = [t.strip() for t in threats.split(",") if t.strip()]
    samples = {t: threat_object(t, seed) for t in names}
    for t, obj in samples.items():
        if not obj.label:
            raise XraybagError(f"threat {t} has no label (class); give the object entry a label")
    return samples, {t: obj.label for t, obj in samples.items()}


def outside_reach(bag: Bag, obj: Object) -> float:
    """How far (mm) the posed threat reaches out of the bag's interior (0: it fits)."""
    from xraybag.engine.packing.base import outside_bag
    from xraybag.engine.solids.scene import object_points

    return outside_bag(object_points(obj, name=obj.name), obj.pose, bag.interior)[0]


def trace_threat(bag: Bag, view: str, obj: Object, index: int) -> TraceResult:
    """The threat alone (object number ``index``) traced through the rays of ``view``."""
    solids, _ = object_solids(obj, index, bag.scene.tolerance)
    return trace(solids, bag.views[view].geometry)


def threat_info(obj: Object, index: int, tolerance: float = 0.02):
    """The engine's ObjectInfo of the threat as object ``index`` (name, label, materials, pose)."""
    return object_solids(obj, index, tolerance)[1]


def combine_traces(bag_tr: TraceResult, thr: TraceResult) -> TraceResult:
    """The trace of bag and threat together: materials united, path lengths added, objects listed
    (the threat's material indices renumbered into the united list)."""
    materials = list(bag_tr.materials)
    for m in thr.materials:
        if m not in materials:
            materials.append(m)
    rows, cols = bag_tr.paths.shape[:2]
    paths = np.zeros((rows, cols, len(materials)), dtype=np.float32)
    paths[:, :, : len(bag_tr.materials)] = bag_tr.paths
    where = [materials.index(m) for m in thr.materials]
    for k, j in enumerate(where):
        paths[:, :, j] += thr.paths[:, :, k]
    objects = list(bag_tr.objects)
    for ot in thr.objects:
        objects.append(ObjectTrace(ot.index, ot.r0, ot.c0, ot.paths, [where[i] for i in ot.materials]))
    return TraceResult(materials, paths, objects)


# ------------------------------------------------------------------------------ dual-energy basis


def _norm_weights(response: ChannelResponse, channels: list[str]) -> np.ndarray:
    """(E, C) detector weights of ``channels``, each column summing to 1."""
    idx = [response.channels.index(c) for c in channels]
    w = np.asarray(response.weights, dtype=np.float64)[:, idx]
    return w / w.sum(axis=0)


def fit_basis(t_low: np.ndarray, t_high: np.ndarray, response: ChannelResponse, library,
              basis: tuple[str, str] = BASIS, iterations: int = 30) -> np.ndarray:
    """Thicknesses (n, 2) mm of the two ``basis`` materials whose polychromatic transmissions
    through the detector's low and high channels are ``t_low``, ``t_high`` (n,) (Newton's method on
    the log signals, started from the open-beam effective attenuations)."""
    low, high = low_high_channels(list(response.channels))
    wn = _norm_weights(response, [low, high])  # (E, 2)
    mu = mu_table(list(basis), library, response.energies)  # (2, E)
    p = -np.log(np.clip(np.stack([t_low, t_high], axis=1), T_MIN, None))  # (n, 2)
    m0 = wn.T @ mu.T  # (C, J): open-beam mean attenuation of basis j in channel c
    x = np.linalg.solve(m0, p.T).T
    for _ in range(iterations):
        e = np.exp(-np.clip(x @ mu, -50.0, 700.0))  # (n, E)
        f = np.maximum(e @ wn, 1e-300)  # (n, C)
        r = p + np.log(f)  # measured minus model log attenuation, (n, C)
        jac = np.einsum("ec,je,ne->ncj", wn, mu, e) / f[:, :, None]  # d(-log f_c)/dx_j
        det = jac[:, 0, 0] * jac[:, 1, 1] - jac[:, 0, 1] * jac[:, 1, 0]
        det = np.where(np.abs(det) > 1e-30, det, 1e-30)
        dx0 = (jac[:, 1, 1] * r[:, 0] - jac[:, 0, 1] * r[:, 1]) / det
        dx1 = (-jac[:, 1, 0] * r[:, 0] + jac[:, 0, 0] * r[:, 1]) / det
        x = x + np.stack([dx0, dx1], axis=1)
        if np.max(np.abs(r)) < 1e-9:
            break
    return x


def _spectral(att: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``exp(-att) @ w``: (n, E), (E, C) -> (n, C)."""
    return np.exp(-np.clip(att, -50.0, 700.0)) @ w


def composite_signals(t_bag: dict[str, np.ndarray], thr: TraceResult, response: ChannelResponse,
                      library, signal: str = "basis", basis: tuple[str, str] = BASIS):
    """New noise-free-composited transmissions of every channel and the noise bookkeeping.

    ``t_bag``: channel -> (rows, cols) stored transmission (raw / white); ``thr``: the threat's trace.
    Only pixels the threat crosses change. Returns ``(t_out, factor, var_bag, var_out, pixels)``:
    the composited transmissions, and for the changed pixels (a boolean image ``pixels``) the
    factor ``t_out / t_bag`` and the model's quantum variances (transmission units) of the bag and
    of the composite, per channel (n, C) in ``response.channels`` order.
    """
    channels = list(response.channels)
    length = thr.paths.sum(axis=2)
    pixels = length > 0
    t_out = {c: np.array(t_bag[c], dtype=np.float64, copy=True) for c in channels}
    n = int(pixels.sum())
    if n == 0:
        z = np.zeros((0, len(channels)))
        return t_out, z, z, z, pixels
    w = np.asarray(response.weights, dtype=np.float64)
    q = np.asarray(response.quanta, dtype=np.float64)
    ref = w.sum(axis=0)
    wn = w / ref
    wq = w * q / ref**2
    mu_t = mu_table(list(thr.materials), library, response.energies)
    att_t = thr.paths[pixels].astype(np.float64) @ mu_t  # (n, E)
    stored = np.stack([t_bag[c][pixels] for c in channels], axis=1).astype(np.float64)
    if signal == "product":
        factor = _spectral(att_t, wn)
        low, high = low_high_channels(channels)
        x = fit_basis(stored[:, channels.index(low)], stored[:, channels.index(high)], response, library, basis)
        att_b = x @ mu_table(list(basis), library, response.energies)  # for the variance model only
    elif signal == "basis":
        low, high = low_high_channels(channels)
        x = fit_basis(stored[:, channels.index(low)], stored[:, channels.index(high)], response, library, basis)
        att_b = x @ mu_table(list(basis), library, response.energies)
        bag_model = _spectral(att_b, wn)
        factor = _spectral(att_b + att_t, wn) / np.maximum(bag_model, 1e-300)
    else:
        raise XraybagError(f"signal {signal!r} is not a compositing of stored signals; expected basis or product")
    var_bag = _spectral(att_b, wq)
    var_out = _spectral(att_b + att_t, wq)
    # where the fit did not reproduce the stored pair (noisy, starved pixels behind dense metal:
    # Newton can run off to huge thicknesses), the threat's own transmission and no added quantum
    # noise, rather than factors and variances that overflow
    il, ih = channels.index(low), channels.index(high)
    model = np.log(np.maximum(_spectral(att_b, wn)[:, [il, ih]], 1e-300))
    bad = np.abs(model - np.log(np.clip(stored[:, [il, ih]], T_MIN, None))).max(axis=1) > 1e-3
    bad |= ~np.isfinite(factor).all(axis=1) | (factor < 0).any(axis=1) | (factor > 1.0 + 1e-9).any(axis=1)
    if bad.any():
        factor[bad] = _spectral(att_t[bad], wn)
        var_bag[bad] = 0.0
        var_out[bad] = 0.0
    for k, c in enumerate(channels):
        t_out[c][pixels] = stored[:, k] * factor[:, k]
    return t_out, factor, var_bag, var_out, pixels


def primary_estimate(t: np.ndarray, scatter, sigma_px: float) -> np.ndarray:
    """The primary transmission (open beam = 1) under a stored signal ``t`` that holds the
    scanner's scatter model (:func:`xraybag.engine.xray.detect.detect`: ``(p + offset + fraction
    lowpass(p)) / (1 + offset + fraction)``), by two fixed-point steps (the fraction is small).
    The threat's change of the primary then enters the stored signal with its own scatter."""
    if scatter is None:
        return np.asarray(t, dtype=np.float64)
    scaled = np.asarray(t, dtype=np.float64) * (1.0 + scatter.offset + scatter.fraction) - scatter.offset
    p = scaled
    if scatter.fraction > 0:
        for _ in range(2):
            p = scaled - lowpass(p, sigma_px, scatter.fraction)
    return p


def add_missing_noise(t_out: dict[str, np.ndarray], factor, var_bag, var_out, pixels, scanner: Scanner,
                      channels: list[str], rng: np.random.Generator) -> None:
    """Add, in place, the noise variance the lower count of the composite implies beyond the
    stored noise scaled by the threat's factor (see the module notes): the quantum part blurred by
    the detector blur, as the engine blurs its quantum noise, the electronic part white; nothing
    when the scanner's noise is off."""
    noise = scanner.noise
    if not noise.enabled or factor.size == 0:
        return
    sigma_e = float(noise.electronic) / float(scanner.detector.white) if noise.electronic > 0 else 0.0
    sc = noise.scatter
    norm = (1.0 + sc.offset + sc.fraction) ** 2 if sc is not None else 1.0
    n = int(pixels.sum())
    for k, c in enumerate(channels):
        f2 = factor[:, k] ** 2
        if noise.quantum:
            field = np.zeros(pixels.shape)
            field[pixels] = np.sqrt(np.maximum(var_out[:, k] - f2 * var_bag[:, k], 0.0) / norm)
            field[pixels] *= rng.standard_normal(n)
            t_out[c] += blur_and_add(field, float(noise.blur)) if noise.blur > 0 else field
        t_out[c][pixels] += np.sqrt(np.maximum(1.0 - f2, 0.0)) * sigma_e * rng.standard_normal(n)


@dataclass
class ViewComposite:
    transmission: dict[str, np.ndarray]  # channel -> float64 (rows, cols)
    raw: dict[str, np.ndarray]  # channel -> uint16
    rgb: np.ndarray
    instance: np.ndarray
    labels: dict[int, ObjectLabel]
    threat_trace: TraceResult


def composite_view(bag: Bag, view: str, t_bag: dict[str, np.ndarray], thr: TraceResult,
                   rng: np.random.Generator, signal: str = "basis", basis: tuple[str, str] = BASIS,
                   ) -> ViewComposite:
    """One view of the bag with the threat (traced alone as ``thr``) composited in: signals (see
    :func:`composite_signals`, or the engine's spectral pass for ``retrace``), raw, pseudo-colour,
    instance map and labels of every object."""
    if signal not in SIGNALS:
        raise XraybagError(f"unknown signal {signal!r}; expected one of {', '.join(SIGNALS)}")
    bv = bag.views[view]
    scanner = bv.scanner
    combined = combine_traces(bv.trace, thr)
    if signal == "retrace":  # the bag's own noise key: the engine's render of the combined scene
        draws = bv.draws if bv.draws is not None else draws_from(rng)
        t_out = detect(combined.paths, combined.materials, scanner, bv.response, bag.library, None,
                       bv.geometry.pixel_mm, draws=draws)
    else:  # on the primary signal: scatter taken out before and put back after; the change blurred
        noise = scanner.noise
        sc = noise.scatter if noise.enabled else None
        sigma = float(sc.width) / float(bv.geometry.pixel_mm) if sc is not None else 0.0
        prim = {c: primary_estimate(t_bag[c], sc, sigma) for c in t_bag}
        p_out, factor, vb, vo, pix = composite_signals(prim, thr, bv.response, bag.library, signal, basis)
        if noise.enabled and noise.blur > 0:
            for c in p_out:
                p_out[c] = prim[c] + blur_and_add(p_out[c] - prim[c], float(noise.blur))
        t_out = {}
        for c in p_out:  # the stored signal plus the change the threat makes, scatter included
            if sc is None and not (noise.enabled and noise.blur > 0):
                t_out[c] = p_out[c]  # the stored signal times the factor (exact in dark pixels)
                continue
            delta = p_out[c] - prim[c]
            if sc is not None:
                delta = (delta + (lowpass(delta, sigma, sc.fraction) if sc.fraction > 0 else 0.0)) / (
                    1.0 + sc.offset + sc.fraction)
            t_out[c] = np.asarray(t_bag[c], dtype=np.float64) + delta
        add_missing_noise(t_out, factor, vb, vo, pix, scanner, list(bv.response.channels), rng)
    raw = {c: to_raw(t_out[c], scanner.detector) for c in t_out}
    if len(t_out) >= 2:
        low, high = low_high_channels(list(t_out))
        rgb = pseudo_colour(t_out[low], t_out[high], calibrate_colour(scanner, bag.library))
    else:
        total = np.mean([t_out[c] for c in t_out], axis=0)
        grey = np.clip(total, 0.0, 1.0) ** 0.5 * 255.0
        rgb = np.repeat(np.round(grey).astype(np.uint8)[:, :, None], 3, axis=2)
    mu = np.array([bag.library.get(m).mu(np.array([bv.effective_kev]))[0] for m in combined.materials])
    ann = bag.scene.annotation
    instance, labels = label_objects(combined, mu, ann.hard, ann.hidden)
    return ViewComposite(t_out, raw, rgb, instance, labels, thr)


def bag_with_threat(bag: Bag, obj: Object) -> Scene:
    """The bag's concrete scene with the threat added as its last object (rendering it with the
    engine gives the composite's reference)."""
    return bag.scene.model_copy(update={"objects": [*bag.scene.objects, obj]})
