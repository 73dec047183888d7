"""The preflight's cheap and decisive builds (see :mod:`.preflight`): each scanner's source
spectrum and detector channel response, and the objects of the first bag, built as a render would
build them. A scene that validates but could not render (a spectrum spekpy cannot make, a detector
channel that receives no photons, a container wall with no room inside, a catalog object whose
parameters cannot be modelled) is refused here, as one line at the file, line and field, before
``render`` makes its output folder.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from xraybag.errors import XraybagError
from xraybag.scenes.loader import LoadedScene
from xraybag.scenes.models import Object, Pose, Scanner
from xraybag.scenes.sample import expand_entry, resolve
from xraybag.streams import STREAM_SCANNERS, bag_rng

#: Bags up to this many per run (``render -n``): far beyond any dataset, short of the bookkeeping
#: of the bag indices exhausting memory before the first bag.
MAX_BAGS = 10**7


def check_count(n: int) -> None:
    """Refuse a bag count no dataset needs (``render -n``)."""
    if int(n) > MAX_BAGS:
        raise XraybagError(f"-n {n}: at most {MAX_BAGS} bags per run (render larger datasets in parts "
                           "into the same folder with a larger -n each time: finished bags are kept)")


def check_first_bag(loaded: LoadedScene, seed: int | None = None) -> None:
    """Build every scanner's channel response and the first bag's objects (same draws as render)."""
    spec = loaded.spec
    seed = spec.seed if seed is None else int(seed)
    index = spec.bag_index or 0
    scanners = resolve(spec.scanners, bag_rng(seed, index, STREAM_SCANNERS))
    for k, data in enumerate(scanners):
        try:
            scanner = Scanner.model_validate(data)
        except ValidationError as e:  # a drawn value breaks a rule
            raise loaded.source.error(("scanners", k), e.errors(include_url=False)[0]["msg"]) from None
        check_response(loaded, k, scanner)
    for k, entry in enumerate(spec.objects):
        check_entry(loaded, k, entry, seed, index)


def _response_loc(scanner: Scanner, message: str) -> tuple:
    if "receives no photons" in message:
        return ("detector", "thresholds") if scanner.detector.type == "photon_counting" else ("detector",)
    if "filtration" in message:
        return ("spectrum", "filtration")
    if "spekpy" in message:
        return ("spectrum", "kvp")
    return ("spectrum",)


def check_response(loaded: LoadedScene, k: int, scanner: Scanner) -> None:
    """Scanner ``k``'s source spectrum (each of a kVp-switching CT's) and detector response."""
    from xraybag.engine.xray.detect import channel_response

    spectra: list[tuple[tuple, Any]] = [((), scanner)]
    if scanner.type == "ct" and scanner.ct is not None and scanner.ct.mode == "kvp_switching":
        spectra = [(("ct", "spectra", name), scanner.model_copy(update={"spectrum": s}))
                   for name, s in (scanner.ct.spectra or {}).items()]
    for root, sc in spectra:
        try:  # the count's scale (pixel area, distance) cannot empty a channel: any will do
            channel_response(sc, loaded.library, 1.0, 1000.0)
        except XraybagError as e:
            loc = root or _response_loc(sc, e.message)
            msg = e.message.removeprefix("spectrum: ").removeprefix(f"scanner {sc.name}: ")
            raise loaded.source.error(("scanners", k, *loc), msg) from None
        except (ValueError, ArithmeticError, MemoryError) as e:
            raise loaded.source.error(("scanners", k, *(root or ("spectrum",))),
                                      f"cannot make this source's spectrum: {type(e).__name__}: {e}") from None


def _where(loaded: LoadedScene, k: int, entry: Object, message: str) -> tuple:
    if "container wall" in message and entry.container is not None:
        return ("objects", k, "container", "wall")
    return ("objects", k)


def check_entry(loaded: LoadedScene, k: int, entry: Object, seed: int, index: int) -> None:
    """Object entry ``k`` of the first bag, expanded (template, catalog, repeat: its first copy
    only when every copy is drawn alike) and built into solids at a stand-in pose."""
    from xraybag.engine.solids.scene import object_solids

    try:
        copies = expand_entry(entry, k, loaded, bag_rng(seed, index, k))
    except XraybagError as e:
        raise (e if e.where else loaded.source.error(("objects", k), e.message)) from None
    except (ValueError, ArithmeticError, MemoryError) as e:
        raise loaded.source.error(("objects", k), f"cannot be sampled: {type(e).__name__}: {e}") from None
    for data in copies[:2]:
        if data.get("sheet") is not None:  # draped when packed; its numbers are checked by its model
            continue
        try:
            obj = Object.model_validate(data)
        except ValidationError as e:
            err = e.errors(include_url=False)[0]
            path = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            hint = f" (from template {data.get('template') or entry.template!r} with these params)" if entry.params else ""
            raise loaded.source.error(("objects", k), f"{path + ': ' if path else ''}{msg}{hint}") from None
        if obj.pose is None:
            obj = obj.model_copy(update={"pose": Pose(position=[0.0, 0.0, 0.0])})
        try:
            object_solids(obj, k, tolerance=float(loaded.spec.tolerance))
        except XraybagError as e:
            raise loaded.source.error(_where(loaded, k, entry, e.message), e.message) from None
        except (ValueError, ArithmeticError, MemoryError, RuntimeError) as e:
            raise loaded.source.error(("objects", k), f"cannot be built: {type(e).__name__}: {e}") from None
