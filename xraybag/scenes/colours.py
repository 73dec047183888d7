"""The colour table of a scanner's display (``scanners[].colour``): the pseudo-colour mapping.

Real scanners of different vendors classify materials the same way but show them differently: the
hue of organic, inorganic and metal, how saturation and brightness follow the attenuation, and the
colour of the empty belt. A table is one of the built-in :data:`TABLES`, optionally with some of its
values replaced. The engine (:mod:`xraybag.engine.xray.calibration`) turns the resolved values into
its colour look-up table; ``standard`` is the engine's own default (the colours of every scene
without ``colour``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from xraybag.scenes.numbers import number

#: The built-in colour tables. Hues in degrees (HSV); ``saturation = max (1 - exp(-h / scale))`` and
#: ``brightness = 1 - dark (1 - exp(-h / scale))`` of a pixel of high-energy attenuation
#: ``h = -ln T_high``; the background is the empty belt's colour, which thin objects fade into.
TABLES: dict[str, dict[str, Any]] = {
    # orange / green / blue, pale for thin objects, white belt (the engine's defaults)
    "standard": {
        "organic": 30.0, "inorganic": 120.0, "metal": 225.0,
        "saturation": {"max": 0.9, "scale": 0.7},
        "brightness": {"dark": 0.8, "scale": 3.0},
        "background": "#ffffff",
    },
    # a second vendor's display: redder orange, yellow-green, violet-blue; colour saturates at
    # smaller thickness and darkens sooner; a cool off-white belt
    "vendor_b": {
        "organic": 20.0, "inorganic": 95.0, "metal": 245.0,
        "saturation": {"max": 1.0, "scale": 0.45},
        "brightness": {"dark": 0.9, "scale": 2.0},
        "background": "#f2f5fa",
    },
}

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def _hex_colour(v: Any) -> Any:
    if not isinstance(v, str) or not _HEX.match(v):
        raise ValueError(f"expected a colour '#rrggbb' (hexadecimal red, green, blue), got {v!r}")
    return v.lower()


Hue = number(ge=0, lt=360)
Hex = Annotated[str, BeforeValidator(_hex_colour)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class Saturation(_Strict):
    """Saturation ``max (1 - exp(-h / scale))`` at high-energy attenuation ``h = -ln T_high``."""

    max: number(ge=0, le=1) | None = Field(None, description="saturation of very thick objects (default: the table's)")
    scale: number(gt=0) | None = Field(None, description="h at which 63 % of it is reached (default: the table's)")


class Brightness(_Strict):
    """Brightness ``1 - dark (1 - exp(-h / scale))`` at high-energy attenuation ``h = -ln T_high``."""

    dark: number(ge=0, le=1) | None = Field(None, description="darkening of very thick objects (default: the table's)")
    scale: number(gt=0) | None = Field(None, description="h at which 63 % of it is reached (default: the table's)")


class Colour(_Strict):
    """The display's colour table (pseudo-colour): a built-in table, optionally with values replaced.
    ``colour: vendor_b`` is short for ``colour: {table: vendor_b}``. Hues are blended over one Z unit
    at the class boundaries (along the shorter way round the colour wheel); starved pixels take the
    metal hue. Only the colours change: classes and Zeff stay the calibration's."""

    table: Literal["standard", "vendor_b"] = Field(
        "standard",
        description="standard: orange / green / blue (30, 120, 225 degrees) on white; vendor_b: "
        "20, 95, 245 degrees, saturating and darkening sooner, on #f2f5fa",
    )
    organic: Hue | None = Field(None, description="hue of organic materials (degrees, 0-360)")
    inorganic: Hue | None = Field(None, description="hue of inorganic materials (degrees)")
    metal: Hue | None = Field(None, description="hue of metal (degrees)")
    saturation: Saturation | None = Field(None, description="how saturation grows with h")
    brightness: Brightness | None = Field(None, description="how brightness falls with h")
    background: Hex | None = Field(None, description="the empty belt, '#rrggbb'; thin objects fade into it")

    def resolved(self) -> dict[str, Any]:
        """The table's values with the given ones replaced (a concrete scene's: no distributions):
        ``organic``, ``inorganic``, ``metal`` (degrees), ``sat_max``, ``sat_scale``, ``dark_max``,
        ``dark_scale`` and ``background`` as an ``(r, g, b)`` tuple of 0..255."""
        base = TABLES[self.table]
        out = {k: float(getattr(self, k) if getattr(self, k) is not None else base[k])
               for k in ("organic", "inorganic", "metal")}
        sat, bright = self.saturation or Saturation(), self.brightness or Brightness()
        out["sat_max"] = float(base["saturation"]["max"] if sat.max is None else sat.max)
        out["sat_scale"] = float(base["saturation"]["scale"] if sat.scale is None else sat.scale)
        out["dark_max"] = float(base["brightness"]["dark"] if bright.dark is None else bright.dark)
        out["dark_scale"] = float(base["brightness"]["scale"] if bright.scale is None else bright.scale)
        bg = self.background or base["background"]
        out["background"] = tuple(int(bg[i:i + 2], 16) for i in (1, 3, 5))
        return out


def colour_shorthand(v: Any) -> Any:
    """``colour: NAME`` for ``colour: {table: NAME}``."""
    return {"table": v} if isinstance(v, str) else v
