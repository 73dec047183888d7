"""Where a threat goes: poses inside a bag's interior and its footprint, at random or hidden
behind dense material; and which threat goes in (class-balanced choices).

A pose is drawn as a rotation (about z uniform in [0, 360), turned over about x with probability
1/2: a threat lies flat, as in a packed bag) and a position uniform over the positions at which the
rotated threat's box lies inside the bag's interior. ``hidden`` draws ``candidates`` such poses and
keeps the one whose mask the bag covers most (the engine's occlusion measure: the share of the
threat's mask where the bag attenuates more than the threat, at each view's effective energy,
averaged over the views). Every pose must also lie in the bag's footprint *as its signals show it*:
at least :data:`FOOTPRINT_SHARE` of the threat's mask where the stored low channel is below
:data:`FOOTPRINT_T` (the bag attenuates there).
"""

from __future__ import annotations

import numpy as np

from xraybag.engine.packing.base import aabb
from xraybag.engine.solids.scene import object_points
from xraybag.errors import XraybagError
from xraybag.scenes.models import Object, Pose

PLACEMENTS = ("random", "hidden")
FOOTPRINT_T = 0.995
FOOTPRINT_SHARE = 0.9


def draw_pose(obj: Object, interior: np.ndarray, rng: np.random.Generator, attempts: int = 72,
              offset: np.ndarray | None = None) -> Pose | None:
    """A random pose at which ``obj`` lies wholly inside a bag interior of ``interior`` (sx, sy, sz)
    mm (bag frame: x, y centred, z from the floor), or None when none of ``attempts`` rotations
    about z (one in each of ``attempts`` equal sectors of the circle, in random order; so a long
    threat that fits only along the diagonal is found) lets it fit. ``offset``: the interior's floor
    centre in the frame of the poses (a bag known only from its image: :mod:`.rawfolder`)."""
    pts = object_points(obj, name=obj.name)
    half = np.array([interior[0] / 2, interior[1] / 2, 0.0])
    top = np.array([interior[0] / 2, interior[1] / 2, interior[2]])
    sector = 360.0 / attempts
    for k in rng.permutation(attempts):
        rot = [180.0 if rng.random() < 0.5 else 0.0, 0.0, float((k + rng.random()) * sector)]
        lo, hi = aabb(pts, rot)
        pmin, pmax = -half - lo, top - hi
        if np.all(pmax >= pmin):
            pos = rng.uniform(pmin, pmax) + (0.0 if offset is None else offset)
            return Pose.model_validate({"position": [float(v) for v in pos], "rotation_deg": rot})
    return None


def fits_nowhere(name: str, obj: Object, interiors: dict[int, np.ndarray]) -> XraybagError:
    pts = object_points(obj, name=obj.name)
    size = pts.max(axis=0) - pts.min(axis=0)
    largest = max(interiors.values(), key=lambda s: float(np.prod(s)))
    return XraybagError(
        f"threat {name} ({size[0]:.0f} x {size[1]:.0f} x {size[2]:.0f} mm) fits in none of the "
        f"{len(interiors)} bags (the largest interior is {largest[0]:.0f} x {largest[1]:.0f} x "
        f"{largest[2]:.0f} mm)"
    )


def threat_occlusion(bag, view: str, thr, mu_of) -> tuple[float, np.ndarray]:
    """The share of the threat's mask where the bag attenuates more than the threat (the engine's
    occlusion of the threat at the view's effective energy), and the mask."""
    bv = bag.views[view]
    own = thr.paths.astype(np.float64) @ mu_of(thr.materials, bv.effective_kev)
    rest = bv.trace.paths.astype(np.float64) @ mu_of(bv.trace.materials, bv.effective_kev)
    mask = thr.paths.sum(axis=2) > 1e-3
    if not mask.any():
        return 0.0, mask
    return float(np.mean(rest[mask] > own[mask])), mask


def in_footprint(mask: np.ndarray, t_low: np.ndarray) -> bool:
    """At least :data:`FOOTPRINT_SHARE` of ``mask`` where the stored low channel shows the bag."""
    return bool(mask.any()) and float(np.mean(t_low[mask] < FOOTPRINT_T)) >= FOOTPRINT_SHARE


def choose_pose(bag, obj: Object, index: int, stored_low: dict, rng: np.random.Generator,
                placement: str = "random", candidates: int = 8, attempts: int = 72):
    """A pose for threat ``obj`` (object number ``index``) in ``bag`` and its occlusion, or None.

    ``stored_low``: view -> the stored low-channel transmission (the footprint test)."""
    from xraybag.learners.tip.core import trace_threat

    if placement not in PLACEMENTS:
        raise XraybagError(f"unknown placement {placement!r}; expected one of {', '.join(PLACEMENTS)}")
    cache: dict = {}

    def mu_of(materials, kev):
        return np.array([cache.setdefault((m, kev), float(bag.library.get(m).mu(np.array([kev]))[0]))
                         for m in materials])

    best = None
    tries = candidates if placement == "hidden" else 1
    for _ in range(tries * 4):
        pose = draw_pose(obj, bag.interior, rng, attempts, getattr(bag, "offset", None))
        if pose is None:
            return None
        posed = obj.model_copy(update={"pose": pose})
        occl, ok = [], True
        for view in bag.views:
            thr = trace_threat(bag, view, posed, index)
            o, mask = threat_occlusion(bag, view, thr, mu_of)
            if view in stored_low and not in_footprint(mask, stored_low[view]):
                ok = False
                break
            occl.append(o)
        if not ok:
            continue
        score = float(np.mean(occl)) if occl else 0.0
        if best is None or score > best[1]:
            best = (posed, score)
        tries -= 1
        if tries <= 0:
            break
    return best


# ------------------------------------------------------------------------------ class balance


def pick_threats(threat_classes: dict[str, str], counts: dict[str, int], n: int, rng: np.random.Generator,
                 balance: str = "none", rare: str | None = None, share: float = 0.0,
                 adds: list[tuple[dict[str, int], int]] | None = None) -> list[str]:
    """``n`` threat names (keys of ``threat_classes``: name -> class) for ``n`` composites.

    ``balance="none"``: uniform draws. ``"equal"``: each composite takes a threat of the class with
    the fewest objects so far (``counts``: class -> objects already in the data, updated as it
    goes). ``"share"``: threats of class ``rare`` until its share of all objects reaches
    ``share``, then the others (uniformly). Ties and choices within a class are drawn from ``rng``.

    ``adds`` (one entry per composite) says what composite ``k`` brings to the output besides its
    threat: the annotations per class of the bag copy it is made from, and how many annotations
    its threat makes (one per view). Without it, each composite adds one annotation of its
    threat's class and nothing else. The shares are those of the written dataset.
    """
    names = sorted(threat_classes)
    if not names:
        raise XraybagError("no threats given (option threats)")
    by_class: dict[str, list[str]] = {}
    for t in names:
        by_class.setdefault(threat_classes[t], []).append(t)
    counts = dict(counts)
    for c in by_class:
        counts.setdefault(c, 0)
    if balance == "share":
        if rare not in by_class:
            raise XraybagError(f"option rare: {rare!r} is not the class of any threat; threat classes: "
                               f"{', '.join(sorted(by_class))}")
        if not 0.0 < share < 1.0:
            raise XraybagError(f"option share: {share:g} must lie strictly between 0 and 1")
    elif balance not in ("none", "equal"):
        raise XraybagError(f"option balance: {balance!r}; expected none, equal or share")
    out = []
    for k in range(n):
        bag_counts, per_threat = adds[k] if adds is not None else ({}, 1)
        for c, m in bag_counts.items():
            counts[c] = counts.get(c, 0) + m
        if balance == "equal":
            low = min(counts[c] for c in by_class)
            cls = sorted(c for c in by_class if counts[c] == low)
            c = cls[int(rng.integers(len(cls)))]
            t = by_class[c][int(rng.integers(len(by_class[c])))]
        elif balance == "share":
            total = sum(counts.values())
            others = [x for x in names if threat_classes[x] != rare]
            if counts[rare] < share * (total + per_threat) or not others:
                pool = by_class[rare]
            else:
                pool = others
            t = pool[int(rng.integers(len(pool)))]
        else:
            t = names[int(rng.integers(len(names)))]
        counts[threat_classes[t]] = counts.get(threat_classes[t], 0) + per_threat
        out.append(t)
    return out


def class_counts(coco: dict, bags: dict[int, list[dict]], copies: int):
    """The input's annotations per class (``before``) and what each of ``copies`` composites per bag
    (bags in sorted order) writes besides its threat: the copy of its bag's annotations per class,
    and one threat annotation per view, as :func:`pick_threats` takes them (``adds``), so that the
    balanced shares are those of the output."""
    cat_names = {c["id"]: c["name"] for c in coco.get("categories", [])}
    before = {c: 0 for c in cat_names.values()}
    order = sorted(bags)
    bag_of = {im["id"]: b for b in order for im in bags[b]}
    per_bag: dict[int, dict[str, int]] = {b: {} for b in order}
    for a in coco.get("annotations", []):
        if a.get("iscrowd"):
            continue
        name = cat_names.get(a["category_id"], str(a["category_id"]))
        before[name] = before.get(name, 0) + 1
        if a.get("image_id") in bag_of:
            cb = per_bag[bag_of[a["image_id"]]]
            cb[name] = cb.get(name, 0) + 1
    return before, [(per_bag[b], len(bags[b])) for b in order for _ in range(copies)]
