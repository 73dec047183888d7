"""The scanner parts of the scene format: source spectra, detectors, noise and CT settings
(re-exported by :mod:`xraybag.scenes.models`, which holds :class:`~xraybag.scenes.models.Scanner`).

The bounds here keep every value within what the physics can compute: tube voltages within
spekpy's range, energies within the attenuation tables', and counts and sizes no real scanner
approaches (so a typo is refused up front rather than hanging or exhausting memory).
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from xraybag.scenes.numbers import Dist, name_or_choice, number, vector

Pos = number(gt=0)
NonNeg = number(ge=0)
MaterialName = name_or_choice("a material name")

#: Tube voltages spekpy models for a tungsten anode (kV): ``spekpy.Spek`` refuses others.
KVP_RANGE = (10.0, 500.0)
#: Photon energies (keV) of the attenuation tables (xraydb's Elam cross-sections: 0.1 to 800 keV;
#: above, they would be extrapolated as a constant).
KEV_RANGE = (1.0, 800.0)
#: The finest energy grid (keV): finer bins add nothing to the physics and cost memory per ray.
MIN_ENERGY_BIN = 0.1
#: CT views per rotation and label sub-samples per voxel edge: far beyond any scanner (hundreds to
#: a few thousand views; 2 to 4 sub-samples), short of what exhausts memory while planning.
MAX_VIEWS = 20000
MAX_SUPERSAMPLE = 8
Kev = number(ge=KEV_RANGE[0], le=KEV_RANGE[1])


class _Strict(BaseModel):  # as models.Strict (which imports this module)
    model_config = ConfigDict(extra="forbid", validate_default=True)


class Spectrum(_Strict):
    """The source: a tube spectrum (spekpy), a monochromatic line, or a table."""

    kvp: number(ge=KVP_RANGE[0], le=KVP_RANGE[1]) | None = Field(
        None, description="tube voltage (kV), 10 to 500; spectrum from spekpy")
    anode_angle: Pos = Field(12.0, description="degrees (spekpy's th)")
    filtration: dict[str, NonNeg] = Field(
        default_factory=dict, description="inherent + added filters: {element or material: mm}"
    )
    mas: Pos | None = Field(
        None, description="tube charge per image row (line scan) or per exposure (mAs)"
    )
    mono_kev: Kev | None = Field(None, description="a monochromatic line at this energy (keV), 1 to 800")
    table: list[list[float]] | None = Field(
        None, description="[[keV, relative photons], ...]: a user spectrum (keV 1 to 800)"
    )
    photons: number(gt=0, le=1e12) | None = Field(
        None,
        description="open-beam photons per detector pixel; overrides mas (mono_kev and table without it: 1e5)",
    )
    energy_bin: number(ge=MIN_ENERGY_BIN, le=20) = Field(1.0, description="keV, width of the energy grid (0.1 to 20)")

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in ("kvp", "mono_kev", "table") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"expected exactly one of kvp, mono_kev, table; got {len(given)}")
        lo, hi = KEV_RANGE
        if self.table is not None and (not self.table or any(
            len(r) != 2 or not lo <= r[0] <= hi or not 0 <= r[1] < float("inf") for r in self.table
        )):
            raise ValueError(f"table: expected rows [keV from {lo:g} to {hi:g}, photons >= 0] (finite numbers)")
        return self


class Layer(_Strict):
    material: MaterialName
    thickness: Pos = Field(description="mm")


class Detector(_Strict):
    """Detector response. ``dual_sandwich``: thin front layer (low channel), a filter, thick rear
    layer (high channel). ``integrating``: one energy-integrating layer (channel ``total``).
    ``photon_counting``: one layer counting photons in energy bins above ``thresholds``."""

    type: Literal["dual_sandwich", "integrating", "photon_counting"] = "dual_sandwich"
    front: Layer = Field(default_factory=lambda: Layer(material="csi", thickness=0.3))
    filter: Layer = Field(default_factory=lambda: Layer(material="copper", thickness=0.5))
    rear: Layer = Field(default_factory=lambda: Layer(material="cdwo4", thickness=2.5))
    layer: Layer = Field(
        default_factory=lambda: Layer(material="csi", thickness=2.0),
        description="the single layer of integrating and photon_counting detectors",
    )
    thresholds: list[Kev] = Field(
        default_factory=lambda: [20.0, 50.0], description="photon-counting thresholds (keV)"
    )
    white: number(gt=0, le=65535) = Field(60000.0, description="raw value of the open beam")

    @model_validator(mode="after")
    def _thresholds(self):
        t = self.thresholds
        fixed = all(isinstance(x, float) for x in t)
        if self.type == "photon_counting" and (not t or (fixed and any(b <= a for a, b in itertools.pairwise(t)))):
            raise ValueError("thresholds: expected increasing positive energies (keV)")
        return self


class Scatter(_Strict):
    offset: NonNeg = Field(0.002, description="constant scatter as a fraction of the open beam")
    fraction: NonNeg = Field(
        0.02, description="scatter-to-primary ratio of the smooth low-frequency term"
    )
    width: Pos = Field(40.0, description="width (sigma) of the low-frequency term (mm)")


class Noise(_Strict):
    enabled: bool = True
    quantum: bool = Field(True, description="Poisson noise from the photon count")
    electronic: NonNeg = Field(2.0, description="Gaussian electronic noise, sigma in raw counts")
    scatter: Scatter | None = Field(default_factory=Scatter)
    blur: number(ge=0, le=200) = Field(0.5, description="detector blur, Gaussian sigma in pixels (up to 200)")


def _noise(v: Any) -> Any:
    if v is True or v is None:
        return {}
    if v is False:
        return {"enabled": False, "quantum": False, "electronic": 0, "scatter": None, "blur": 0}
    return v


class CTReconstruction(_Strict):
    """How CT volumes are reconstructed from the sinograms."""

    method: Literal["fbp", "sirt", "cgls"] = Field(
        "fbp",
        description="fbp: fan-beam FBP (axial), FDK (circular), rebinning + FBP (helical); "
        "sirt / cgls: iterative (ASTRA with CUDA when present, else the CPU projector)",
    )
    filter: Literal["ram-lak", "shepp-logan", "cosine", "hann"] = Field(
        "shepp-logan", description="ramp filter window of the filtered back-projection"
    )
    iterations: number(gt=0, le=10000, integer=True) = Field(50, description="sirt / cgls iterations (up to 10000)")
    decompose: Literal["projection", "image", "none"] = Field(
        "projection",
        description="dual-energy decomposition into Compton / photoelectric coefficients: of the "
        "sinogram pair before reconstruction, of the reconstructed volumes, or none",
    )
    units: Literal["mu", "hu", "mhu"] = Field(
        "mu",
        description="values of mu_<channel>.npy: linear attenuation (1/mm), Hounsfield units, or "
        "modified Hounsfield units (HU + 1000)",
    )


class CT(_Strict):
    """A CT scanner. The defaults are a checked-baggage machine: 160 kVp, 800 mm bore, curved
    16-row detector, helical pitch 1, 720 views per rotation, 1 mm voxels."""

    geometry: Literal["axial", "circular", "helical"] = Field(
        "helical",
        description="axial: fan beam slice by slice; circular: one cone-beam rotation; helical: "
        "cone beam on a helix (the bag moves through the gantry)",
    )
    curved: bool = Field(True, description="cylindrical detector arc centred on the source (else a flat panel)")
    mode: Literal["dual_layer", "kvp_switching", "photon_counting", "single"] = Field(
        "dual_layer",
        description="how the energy channels are made: the detector's two layers (low, high), "
        "kVp switching between the `spectra`, photon-counting bins, or one integrating channel",
    )
    spectra: dict[str, Spectrum] | None = Field(
        None, description="kvp_switching: one spectrum per channel, e.g. {low: {kvp: 80}, high: {kvp: 160}}"
    )
    sid: Pos = Field(800.0, description="source to isocentre (mm)")
    sdd: Pos = Field(1350.0, description="source to detector (mm)")
    bore: Pos = Field(800.0, description="gantry opening (mm); the bag must pass through it")
    views: number(gt=0, le=MAX_VIEWS, integer=True) = Field(720, description="views per rotation (up to 20000)")
    cols: number(gt=0, le=16384, integer=True) = Field(672, description="detector columns (up to 16384)")
    rows: number(gt=0, le=1024, integer=True) = Field(16, description="detector rows (axial: 1 is used; up to 1024)")
    col_pitch: Pos = Field(2.0, description="column pitch at the detector (mm; arc length when curved)")
    row_pitch: Pos = Field(2.0, description="row pitch at the detector (mm)")
    pitch: number(ge=0.05) = Field(
        1.0, description="helical pitch: table feed per rotation / detector height at the isocentre (0.05 to 2)"
    )
    slice_step: Pos | None = Field(
        None, description="axial: table step between slices (mm); default: the voxel size"
    )
    voxel: Pos = Field(1.0, description="voxel edge of the reconstructed volumes (mm)")
    volume: vector(3, gt=0) | None = Field(
        None,
        description="reconstructed box (mm) along the conveyor, across, up, centred on the bag; "
        "default: the bag's outer box",
    )
    supersample: number(gt=0, le=MAX_SUPERSAMPLE, integer=True) = Field(
        2, description="sub-samples per voxel edge when voxelising labels (partial volume; up to 8)"
    )
    projector: Literal["mesh", "numba", "cupy", "astra"] = Field(
        "mesh",
        description="forward model: mesh = exact path lengths on the meshes (on the GPU with render "
        "--device cuda, or auto where one is present; else the CPU); numba / cupy / astra = projection of "
        "the voxelised scene",
    )
    reconstruction: CTReconstruction = Field(default_factory=CTReconstruction)
    sinograms: bool = Field(
        False,
        description="also write the sinograms (sino_<channel>.npy); they are then held whole in "
        "memory (views x rows x cols x 4 bytes per channel), where a helical scan on the meshes "
        "otherwise streams its views and holds only about a rotation of them",
    )
    dicom: bool = Field(False, description="also write the volumes as DICOM series (pydicom)")
    previews: bool = Field(True, description="PNG previews of axial, coronal and sagittal slices")
    mar_pair: bool = Field(
        False, description="render each bag twice, with and without its metal objects (MAR pairs)"
    )

    @model_validator(mode="after")
    def _consistent(self):
        if self.sdd <= self.sid:
            raise ValueError("sdd must be larger than sid")
        if not isinstance(self.bore, Dist) and not isinstance(self.sid, Dist) and self.bore / 2 >= self.sid:
            raise ValueError(f"bore {self.bore:g} mm: its radius must be smaller than sid {self.sid:g} mm")
        if self.mode == "kvp_switching" and (not self.spectra or len(self.spectra) < 2):
            raise ValueError(
                "mode kvp_switching needs spectra with one entry per channel, e.g. "
                "spectra: {low: {kvp: 80}, high: {kvp: 160}}"
            )
        if self.mode != "kvp_switching" and self.spectra:
            raise ValueError(f"spectra are for mode kvp_switching (mode is {self.mode})")
        if self.geometry == "helical" and not isinstance(self.pitch, Dist) and self.pitch > 2.0:
            raise ValueError(
                f"helical pitch {self.pitch:g} leaves gaps: every slice must be seen over half a "
                "rotation, which needs pitch <= 2"
            )
        return self
