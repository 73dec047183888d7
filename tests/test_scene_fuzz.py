"""Property: any document fed to the loader is either a valid scene or one clean error line."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings, strategies as st
from ruamel.yaml import YAML

from xraybag.errors import XraybagError
from xraybag.scenes.loader import load_scene

KEYS = ["seed", "bag", "size", "wall", "objects", "shape", "box", "cylinder", "sphere", "radius",
        "height", "material", "pose", "position", "rotation_deg", "label", "container", "fill",
        "level", "repeat", "template", "uniform", "normal", "choice", "scanners", "name", "type",
        "spectrum", "kvp", "mono_kev", "noise", "include", "materials", "density", "formula",
        "parts", "mesh", "path", "thickness", "packing", "method", "bogus"]
VALUES = ["water", "aluminum", "steel", "PET", "line_scan", "radiograph", "book", "../x.stl", "random"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 600), st.floats(-10, 600, allow_nan=False),
    st.sampled_from(VALUES), st.text(max_size=5),
)
docs = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    ),
    max_leaves=25,
)
# documents that start close to valid, so the fuzzer reaches deep fields
near_valid = st.fixed_dictionaries(
    {"bag": st.fixed_dictionaries({"size": st.lists(st.one_of(st.integers(-10, 600), docs), min_size=2, max_size=4)})},
    optional={"objects": st.lists(st.dictionaries(st.sampled_from(KEYS), docs, max_size=5), max_size=3),
              "scanners": st.lists(st.dictionaries(st.sampled_from(KEYS), docs, max_size=5), max_size=2),
              "seed": docs},
)


def dump(doc) -> str:
    buf = io.StringIO()
    YAML(typ="safe", pure=True).dump(doc, buf)
    return buf.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.one_of(docs, near_valid))
def test_loader_is_total(tmp_path, doc):
    path = tmp_path / "fuzz.yaml"
    path.write_text(dump(doc))
    try:
        load_scene(path)
    except XraybagError as e:
        text = str(e)
        assert text and "\n" not in text
        assert "fuzz.yaml" in text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list("abz:-[]{}, \n\t'\"!&*|>#0123456789.")), max_size=80))
def test_loader_survives_raw_text(tmp_path, text):
    path = tmp_path / "raw.yaml"
    path.write_text(text)
    try:
        load_scene(path)
    except XraybagError as e:
        assert "\n" not in str(e)
