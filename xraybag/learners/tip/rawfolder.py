"""``tip`` on a plain folder of raw dual-energy images with a scanner description (no scenes).

Each image pair (``NAME_low.tif[f]`` + ``NAME_high.tif[f]``, or ``low/NAME.tif[f]`` +
``high/NAME.tif[f]``: uint16, one channel, the open beam at the detector's ``white``) is one view
of one bag, taken by the scanner of the description file (one scanner block of the scene format,
validated by the scene format's own model). The bag is rebuilt as far as the image shows it:

* the view's rays are the engine's line-scan geometry (:func:`view_geometry`) for a bag as long as
  the image (rows) on the belt (z = 0); the image must have the geometry's detector columns;
* the bag's interior (where threats may go) is the box whose shadow is the footprint
  (:func:`footprint`): along the belt from its rows, across from its columns
  back-projected onto the plane nearest the source (the belt for a vertical view), and along the
  beam ``bag_depth`` mm (option; one image does not show it);
* the bag's "trace" is its dual-energy basis fit per pixel (thicknesses of the two basis
  materials), standing in for its path lengths in the labels (the threat's occlusion) and in
  ``placement=hidden``.

The threat is then traced, composited (:func:`core.composite_view`), coloured and labelled as in
the scene-based path; the frame of the poses: x along the belt from the image's middle row, y
across from the tunnel's centre, z up from the belt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xraybag.errors import XraybagError
from xraybag.learners.tip.core import Bag, BagView, fit_basis
from xraybag.learners.tip.place import FOOTPRINT_T

RAW_OPTIONS = {
    "scanner": (str, "", "a scanner description (YAML: one scanner block of the scene format): --data is then a "
                "plain folder of raw NAME_low/NAME_high (or low/NAME, high/NAME) 16-bit tiffs"),
    "bag_depth": (float, 200.0, "raw folders: the bags' extent along the beam in mm (their height in a vertical "
                  "view, their width across the belt in a horizontal one)"),
}
SUFFIXES = (".tif", ".tiff")


@dataclass
class RawImage:
    name: str
    low: Path
    high: Path


# ------------------------------------------------------------------------------ input checks


def read_scanner(path: str | Path):
    """The scanner of a description file, validated as a scene's scanner; it must be a
    dual-energy line scanner with every number fixed."""
    from xraybag.materials import default_library
    from xraybag.scenes.loader import check_materials, validate_model, walk
    from xraybag.scenes.models import Scanner
    from xraybag.scenes.numbers import Dist
    from xraybag.scenes.yamlsrc import read_yaml

    data, source = read_yaml(path)
    if isinstance(data, dict) and "scanners" in data:
        raise XraybagError("expected one scanner block (the fields of one entry of a scene's scanners), "
                           "not a scene", source.where(("scanners",), key=True))
    scanner = validate_model(Scanner, data, source)
    check_materials(scanner, default_library(), source)
    for loc, _, value in walk(scanner):
        if isinstance(value, Dist):
            raise source.error(loc, "expected a fixed value: a scanner description describes one scanner")
    if scanner.type != "line_scan":
        raise source.error(("type",), f"{scanner.type} is not a line scanner; tip on raw images takes "
                           "type: line_scan", key=True)
    if scanner.detector.type != "dual_sandwich":
        raise source.error(("detector", "type"), f"{scanner.detector.type} is not a dual-energy detector; tip "
                           "composites into raw low/high pairs (type: dual_sandwich)")
    return scanner, source


def find_pairs(folder: Path) -> list[RawImage]:
    """The image pairs of ``folder`` (sorted by name); a channel without its partner is an error."""
    if not folder.is_dir():
        raise XraybagError("is not a folder", str(folder))
    found: dict[str, dict[str, Path]] = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in SUFFIXES:
            continue
        rel = p.relative_to(folder)
        stem = p.stem
        if len(rel.parts) == 2 and rel.parts[0] in ("low", "high"):
            name, ch = stem, rel.parts[0]
        elif len(rel.parts) == 1 and stem.endswith(("_low", "_high")):
            name, _, ch = stem.rpartition("_")
        else:
            continue
        if ch in found.setdefault(name, {}):
            raise XraybagError(f"a second {ch} channel of {name} (also {found[name][ch]})", str(p))
        found[name][ch] = p
    if not found:
        raise XraybagError("holds no raw images (expected NAME_low.tiff + NAME_high.tiff, or low/NAME.tiff + "
                           "high/NAME.tiff)", str(folder))
    out = []
    for name, chans in sorted(found.items()):
        for ch, other in (("low", "high"), ("high", "low")):
            if ch in chans and other not in chans:
                raise XraybagError(f"has no partner {other} channel ({name}_{other}.tiff or {other}/{name}.tiff)",
                                   str(chans[ch]))
        out.append(RawImage(name, chans["low"], chans["high"]))
    return out


def _shape(path: Path) -> tuple[int, int]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            shape, dtype = tuple(page.shape), np.dtype(page.dtype)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's
        raise XraybagError(f"cannot read as a TIFF image ({type(e).__name__})", str(path)) from None
    if len(shape) != 2:
        raise XraybagError(f"has {shape[-1] if len(shape) == 3 else shape} channels / samples; a raw channel is "
                           "one 16-bit grey image", str(path))
    if dtype != np.uint16:
        raise XraybagError(f"is {dtype} ({dtype.itemsize * 8}-bit); raw channels are 16-bit (uint16)", str(path))
    return shape  # type: ignore[return-value]


def read_raw(path: Path) -> np.ndarray:
    import tifffile

    _shape(path)
    return tifffile.imread(path)


def detector_columns(scanner) -> int:
    """The detector columns the engine's view geometry gives ``scanner`` (they do not depend on
    the bag: tunnel, source distance, layout, pitch)."""
    from xraybag.engine.xray.scanners import view_geometry

    return view_geometry(scanner, empty_scene(scanner, 100.0)).cols


def min_rows(scanner) -> int:
    from xraybag.engine.xray.scanners import MARGIN_MM

    return int(np.floor(2 * MARGIN_MM / scanner.pitch + 1.5)) + 1


def check_folder(folder: Path, scanner, source) -> list[RawImage]:
    """Every pair's files: uint16, one channel, low and high of one size, as many columns as the
    scanner's geometry has detector elements, enough rows for the geometry's margins."""
    pairs = find_pairs(folder)
    cols = detector_columns(scanner)
    fields = f"{source.file}: tunnel {list(scanner.tunnel)}, source_distance {scanner.source_distance:g}, " \
             f"layout {scanner.layout}, pitch {scanner.pitch:g}"
    for im in pairs:
        lo, hi = _shape(im.low), _shape(im.high)
        if lo != hi:
            raise XraybagError(f"is {hi[1]} x {hi[0]} px but its low channel {im.low.name} is {lo[1]} x {lo[0]}",
                               str(im.high))
        if lo[1] != cols:
            raise XraybagError(f"is {lo[1]} px wide, but the scanner description gives {cols} detector columns "
                               f"({fields})", str(im.low))
        if lo[0] < min_rows(scanner):
            raise XraybagError(f"has {lo[0]} rows; the scanner's line-scan geometry needs at least "
                               f"{min_rows(scanner)} (the belt margins at pitch {scanner.pitch:g} mm)", str(im.low))
    return pairs


# ------------------------------------------------------------------------------ the bag


def empty_scene(scanner, length: float):
    """A scene of an empty, wall-less bag ``length`` mm long on the belt (z = 0) in ``scanner``."""
    from xraybag.scenes.models import Scene

    return Scene.model_validate({"bag": {"size": [length, 10.0, 10.0], "wall": {"thickness": 0.0}},
                                 "scanners": [scanner]})


class RawBag(Bag):
    """A bag known from one stored view: ``interior`` and ``offset`` (its centre on the floor)
    from the footprint, the view's trace its basis fit."""

    box: np.ndarray
    offset: np.ndarray

    @property
    def interior(self) -> np.ndarray:
        return self.box


def footprint(t_low: np.ndarray) -> np.ndarray:
    """Where the image shows the bag: the low channel's 3x3 median below :data:`FOOTPRINT_T`,
    within the connected parts (of at least 5 % of the largest) of where its Gaussian smoothing
    (1 px: the open beam's noise well inside the threshold's margin) is below it: specks of
    noise dropped, edges kept where they are."""
    from scipy.ndimage import gaussian_filter, label, median_filter

    t_low = np.asarray(t_low, dtype=np.float64)
    smooth = gaussian_filter(t_low, 1.0) < FOOTPRINT_T
    parts, n = label(smooth)
    if n > 1:
        sizes = np.bincount(parts.ravel())[1:]
        smooth = np.isin(parts, 1 + np.nonzero(sizes >= 0.05 * sizes.max())[0])
    return smooth & (median_filter(t_low, size=3) < FOOTPRINT_T)


def raw_bag(t_low: np.ndarray, t_high: np.ndarray, scanner, library, depth: float,
            basis: tuple[str, str]) -> RawBag | None:
    """The bag of one stored view (transmissions ``t_low``, ``t_high``), or None when the image
    shows no bag (nothing below :data:`FOOTPRINT_T`)."""
    from xraybag.engine.output.pipeline import effective_energy
    from xraybag.engine.xray.detect import channel_response
    from xraybag.engine.xray.scanners import MARGIN_MM, view_geometry
    from xraybag.engine.xray.trace import TraceResult

    rows, cols = t_low.shape
    scene = empty_scene(scanner, (rows - 1.5) * scanner.pitch - 2 * MARGIN_MM)
    geom = view_geometry(scanner, scene)
    assert (geom.rows, geom.cols) == (rows, cols)
    response = channel_response(scanner, library, geom.pixel_mm**2, geom.distance_mm)
    seen = footprint(t_low)
    if not seen.any():
        return None
    paths = np.zeros((rows, cols, 2), dtype=np.float32)
    where = np.argwhere(t_low < FOOTPRINT_T)
    for k in range(0, len(where), 50_000):
        r, c = where[k:k + 50_000].T
        paths[r, c] = fit_basis(t_low[r, c], t_high[r, c], response, library, basis)
    trace = TraceResult(list(basis), paths, [])
    view = BagView(scanner, geom, response, trace, effective_energy(response))
    rr, cc = np.nonzero(seen)
    x0 = geom.extras["x0"]
    xa, xb = x0 + scanner.pitch * rr.min(), x0 + scanner.pitch * rr.max()
    src, el = geom.extras["source_yz"], geom.extras["elements_yz"]
    ends = el[[cc.min(), cc.max()]]
    if scanner.view == "vertical":  # the shadow's edges come from the floor (nearest the source)
        t = (0.0 - src[1]) / (ends[:, 1] - src[1])
        ya, yb = sorted(src[0] + t * (ends[:, 0] - src[0]))
        box, offset = [xb - xa, yb - ya, depth], [(xa + xb) / 2, (ya + yb) / 2, 0.0]
    else:  # horizontal: the bag taken as centred across the belt; its near face
        near = -depth / 2
        t = (near - src[0]) / (ends[:, 0] - src[0])
        za, zb = sorted(src[1] + t * (ends[:, 1] - src[1]))
        za = max(za, 0.0)
        box, offset = [xb - xa, depth, max(zb - za, 1.0)], [(xa + xb) / 2, 0.0, za]
    bag = RawBag(scene, library, [], {scanner.name: view})
    bag.box = np.maximum(np.array(box, dtype=float), 1.0)
    bag.offset = np.array(offset, dtype=float)
    return bag


# ------------------------------------------------------------------------------ the synthesizer


def synthesize_raw(synth, data: Path, out: Path) -> Path:
    """``tip`` with ``scanner=FILE`` over the plain folder ``data``: everything checked first,
    then the originals (``keep_original``, unlabelled) and the composites written to ``out``."""
    from xraybag.engine.output.files import (
        encode_png,
        encode_tiff,
        sha256,
        write_atomic,
    )
    from xraybag.engine.xray.calibration import calibrate_colour
    from xraybag.engine.xray.colour import pseudo_colour
    from xraybag.learners.tip.core import (
        composite_view,
        threat_info,
        threat_object,
        threat_samples,
        trace_threat,
    )
    from xraybag.learners.tip.place import (
        choose_pose,
        draw_pose,
        fits_nowhere,
        pick_threats,
    )
    from xraybag.materials import default_library

    data, out = Path(data), Path(out)
    if synth.signal == "retrace":
        raise XraybagError("option signal: retrace needs the bags' scenes; raw folders take basis or product")
    scanner, source = read_scanner(synth.scanner)
    if (data / "annotations.json").is_file():
        raise XraybagError("is an xraybag dataset (annotations.json): its scenes give the scanners; the scanner "
                           "option is for plain folders of raw images", str(data))
    if synth.bag_depth <= 0:
        raise XraybagError(f"option bag_depth: {synth.bag_depth:g} must be positive (mm)")
    pairs = check_folder(data, scanner, source)
    if out.exists() and any(out.iterdir()):
        raise XraybagError("exists and is not empty; choose a new output folder", str(out))
    library = default_library()
    for m in synth.basis_pair():
        try:
            library.get(m)
        except XraybagError as e:
            raise XraybagError(f"option basis: {e}") from None
    white = float(scanner.detector.white)
    stored, bags = [], []
    for im in pairs:
        s = {"low": read_raw(im.low).astype(np.float64) / white, "high": read_raw(im.high).astype(np.float64) / white}
        stored.append(s)
        bags.append(raw_bag(s["low"], s["high"], scanner, library, synth.bag_depth, synth.basis_pair()))
    interiors = {k: b.interior for k, b in enumerate(bags) if b is not None}
    if not interiors:
        raise XraybagError(f"no image shows a bag (every pixel of the low channels at or above {FOOTPRINT_T} "
                           "of the open beam)", str(data))
    samples, classes = threat_samples(synth.threats, synth.seed)
    for t, obj in samples.items():
        if not any(draw_pose(obj, s, np.random.default_rng([synth.seed, 3])) for s in interiors.values()):
            raise fits_nowhere(t, obj, interiors)
    rng = np.random.default_rng([synth.seed, 7])
    n_comp = len(pairs) * synth.copies
    picks = pick_threats(classes, {}, n_comp, rng, synth.balance, synth.rare or None, synth.share,
                         [({}, 1)] * n_comp)

    out.mkdir(parents=True, exist_ok=True)
    view = scanner.name
    colour = calibrate_colour(scanner, library)
    categories, cat_id = [], {}
    images, annotations, manifest, skipped = [], [], [], []
    next_image = 1
    for b, (im, s) in enumerate(zip(pairs, stored)):
        if not synth.keep_original:
            continue
        stem = f"{b:06d}_{view}"
        files = {f"images/{stem}.png": encode_png(pseudo_colour(s["low"], s["high"], colour))}
        for c in ("low", "high"):
            files[f"raw/{stem}_{c}.tiff"] = encode_tiff(read_raw(getattr(im, c)))
        images.append(_record(next_image, b, view, stem, s["low"].shape, scanner, bags[b],
                              {"source": {"low": str(im.low.relative_to(data)), "high": str(im.high.relative_to(data))},
                               "unlabelled": True}))
        next_image += 1
        manifest.append(_write_bag(out, b, {"source": im.name}, files, write_atomic, sha256))
    next_bag = len(pairs)
    counts: dict[str, int] = {}
    for n, t in enumerate(picks):
        b = n // synth.copies
        seed = synth.seed * 1_000_003 + n
        bag = bags[b]
        obj = threat_object(t, seed)
        if bag is None or draw_pose(obj, bag.interior, np.random.default_rng([seed, 1])) is None:
            skipped.append({"image": pairs[b].name, "threat": t, "why": "does not fit the bag's interior"})
            continue
        comp_rng = np.random.default_rng([seed, 2])
        chosen = choose_pose(bag, obj, 1, {view: stored[b]["low"]}, comp_rng, synth.placement, synth.candidates)
        if chosen is None:
            skipped.append({"image": pairs[b].name, "threat": t, "why": "no pose inside the bag's footprint"})
            continue
        posed = chosen[0]
        info = threat_info(posed, 1, bag.scene.tolerance)
        if info.label not in cat_id:
            cat_id[info.label] = len(categories) + 1
            categories.append({"id": cat_id[info.label], "name": info.label, "supercategory": "item"})
        thr = trace_threat(bag, view, posed, 1)
        comp = composite_view(bag, view, stored[b], thr, comp_rng, synth.signal, synth.basis_pair())
        new_bag, stem = next_bag, f"{next_bag:06d}_{view}"
        next_bag += 1
        provenance = {"method": "tip", "threat": t, "seed": seed, "signal": synth.signal,
                      "basis": list(synth.basis_pair()), "placement": synth.placement,
                      "source_image": pairs[b].name, "scanner": str(synth.scanner), "bag_depth": synth.bag_depth,
                      "pose": {"position": [float(x) for x in posed.pose.position],
                               "rotation_deg": [float(x) for x in posed.pose.rotation_deg],
                               "frame": "raw view: x along the belt from the middle row, y across from the "
                                        "tunnel centre, z up from the belt"}}
        files = {f"images/{stem}.png": encode_png(comp.rgb), f"labels/{stem}.png": encode_png(comp.instance)}
        for c, raw in comp.raw.items():
            files[f"raw/{stem}_{c}.tiff"] = encode_tiff(raw)
        images.append(_record(next_image, new_bag, view, stem, comp.rgb.shape[:2], scanner, bag,
                              {"labels": f"labels/{stem}.png", "synthetic": provenance}))
        lab = comp.labels.get(1)
        if lab is not None and lab.area >= bag.scene.annotation.min_pixels:
            annotations.append({
                "id": next_image * 10000 + 1, "image_id": next_image, "category_id": cat_id[info.label],
                "bbox": lab.bbox, "area": lab.area, "segmentation": lab.rle(), "iscrowd": 0, "object_index": 1,
                "name": info.name, "material": info.materials[0] if info.materials else None,
                "materials": list(info.materials), "occlusion": round(lab.occlusion, 6),
                "difficulty": lab.difficulty, "pose": provenance["pose"], "synthetic": provenance})
            counts[info.label] = counts.get(info.label, 0) + 1
        next_image += 1
        manifest.append(_write_bag(out, new_bag, {"seed": seed, "synthetic": provenance}, files, write_atomic, sha256))
    coco = {"info": {"description": "xraybag tip composites into raw images", "version": "0.1.0"}, "licenses": [],
            "categories": categories, "images": images, "annotations": annotations}
    write_atomic(out / "annotations.json", json.dumps(coco).encode())
    write_atomic(out / "manifest.jsonl", ("\n".join(manifest) + "\n").encode() if manifest else b"")
    report = {"options": dict(synth.config), "source": "raw folder", "images": len(pairs),
              "composites": len(picks) - len(skipped), "skipped": skipped, "objects_before": {},
              "objects_after": counts,
              "share_after": {c: round(k / max(1, sum(counts.values())), 4) for c, k in counts.items()}}
    write_atomic(out / "tip.json", json.dumps(report, indent=1).encode())
    return out


def _record(image_id: int, bag: int, view: str, stem: str, shape, scanner, rb, extra: dict) -> dict:
    return {"id": image_id, "bag": bag, "view": view, "file_name": f"images/{stem}.png", "height": int(shape[0]),
            "width": int(shape[1]), "pixel_mm": float(scanner.pitch),
            "effective_kev": round(rb.views[view].effective_kev, 3) if rb is not None else None,
            "raw": {c: f"raw/{stem}_{c}.tiff" for c in ("high", "low")}, **extra}


def _write_bag(out: Path, bag: int, entry: dict, files: dict, write_atomic, sha256) -> str:
    for rel, blob in files.items():
        write_atomic(out / rel, blob)
    return json.dumps({"bag": bag, **entry, "files": {rel: sha256(blob) for rel, blob in files.items()}},
                      sort_keys=True)
