"""Material database: compositions, densities and X-ray attenuation (see ``database``)."""

from xraybag.materials.database import (
    CATEGORIES,
    Material,
    MaterialDefinitionError,
    MaterialLibrary,
    default_library,
    formula_mass_fractions,
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
