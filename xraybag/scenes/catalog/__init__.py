"""The procedural object catalog: ``template: NAME`` with overridable parameters.

Every entry is a parametric object (a knife, a pistol, a vacuum cup, ...) built from the scene
format's primitives as a tree of parts of realistic materials. Its parameters are drawn per sample
from their default distributions unless the object's ``params`` gives a value or a distribution:

.. code-block:: yaml

    - template: chef_knife
      params: {blade_length: {uniform: [150, 220]}, blade_material: steel}

:data:`CATALOG` maps names to :class:`CatalogEntry`; :meth:`CatalogEntry.sample` returns a plain
object-spec dict (``shape``/``material``/``container``/``parts`` with numbers only, or a ``sheet``),
the same structure a YAML template expands to. Lengths in mm, angles in degrees.
"""

from __future__ import annotations

# isort: off
# the families register their entries on import, in this order (the order of docs/catalog.md)
from xraybag.scenes.catalog import guns, threats, tools, cutters, containers, electronics, clutter, garments, toiletries, personal, gadgets  # noqa: F401
# isort: on
from xraybag.scenes.catalog.registry import (
    CATALOG, CatalogEntry, ParamSpec, get_entry, labels, object_scene, register, sample_object, unknown_param,
)

__all__ = ["CATALOG", "CatalogEntry", "ParamSpec", "get_entry", "labels", "object_scene", "register", "sample_object",
           "unknown_param"]
