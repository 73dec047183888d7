"""Material database: compositions, densities and X-ray attenuation (see ``database`` and ``library``)."""

from xraybag.materials.database import (
    CATEGORIES,
    Material,
    MaterialDefinitionError,
    formula_mass_fractions,
)
from xraybag.materials.library import (
    MaterialLibrary,
    default_library,
    load_library_file,
    material_from_def,
)

__all__ = [
    "CATEGORIES",
    "Material",
    "MaterialDefinitionError",
    "MaterialLibrary",
    "default_library",
    "formula_mass_fractions",
    "load_library_file",
    "material_from_def",
]
