"""Shapes met again are not meshed again: shape_mesh and hollow give a new mesh of the same vertices
and faces, bit for bit, that no other caller shares; other parameters, tolerances or walls are
meshed anew; errors are not kept; the memory kept is bounded."""

from __future__ import annotations

import numpy as np
import pytest

from xraybag.engine.solids import meshes as M
from xraybag.errors import XraybagError
from xraybag.scenes.models import Shape

SWEEP = {"sweep": {"path": [[0, 0, 0], [60, 0, 0], [90, 30, 10]], "radius": 4.0, "spline": True}}


@pytest.fixture
def counted(monkeypatch):
    """The meshings actually done (not copied from what was kept), by shape kind."""
    monkeypatch.setattr(M, "_remembered_meshes", type(M._remembered_meshes)())
    monkeypatch.setattr(M, "_remembered_size", [0])
    calls: list[str] = []
    real_mesh, real_hollow = M._shape_mesh, M._hollow

    def shape_mesh(shape, tolerance):
        calls.append(shape.kind)
        return real_mesh(shape, tolerance)

    def hollow(shape, wall, tolerance):
        calls.append("hollow " + shape.kind)
        return real_hollow(shape, wall, tolerance)

    monkeypatch.setattr(M, "_shape_mesh", shape_mesh)
    monkeypatch.setattr(M, "_hollow", hollow)
    return calls


def same(a, b) -> bool:
    return (a.vertices.dtype == b.vertices.dtype and a.vertices.tobytes() == b.vertices.tobytes()
            and np.array_equal(a.faces, b.faces))


@pytest.mark.parametrize("spec", [{"box": {"size": [30, 20, 10]}}, {"cylinder": {"radius": 12, "height": 40}},
                                  {"ellipsoid": {"radii": [20, 10, 5]}}, SWEEP])
def test_a_shape_met_again_gets_its_own_copy_of_the_same_mesh(counted, spec):
    shape = Shape.model_validate(spec)
    first = M.shape_mesh(shape, 0.02)
    again = M.shape_mesh(Shape.model_validate(spec), 0.02)  # an equal shape, another object
    assert len(counted) == 1
    assert again is not first and same(again, first)
    assert again.is_watertight and again.volume > 0
    again.vertices[:] += 1000.0  # a caller that changes its mesh changes no one else's
    third = M.shape_mesh(shape, 0.02)
    assert same(third, first) and not same(third, again) and len(counted) == 1
    assert same(M._shape_mesh(shape, 0.02), first)  # what meshing it again would give


def test_other_parameters_tolerances_and_walls_are_meshed_anew(counted):
    cyl = Shape.model_validate({"cylinder": {"radius": 12, "height": 40}})
    M.shape_mesh(cyl, 0.02)
    M.shape_mesh(cyl, 0.05)  # another tolerance: other sections
    M.shape_mesh(Shape.model_validate({"cylinder": {"radius": 12.5, "height": 40}}), 0.02)
    assert counted == ["cylinder"] * 3
    assert len(M.shape_mesh(cyl, 0.02).vertices) > len(M.shape_mesh(cyl, 0.05).vertices)
    assert counted == ["cylinder"] * 3

    outer, inner = M.hollow(cyl, 1.0, 0.02)
    outer2, inner2 = M.hollow(cyl, 1.0, 0.02)
    assert counted.count("hollow cylinder") == 1 and same(outer, outer2) and same(inner, inner2)
    assert inner is not inner2
    _, thicker = M.hollow(cyl, 2.0, 0.02)
    assert counted.count("hollow cylinder") == 2 and thicker.volume < inner.volume


def test_errors_are_not_kept(counted):
    cyl = Shape.model_validate({"cylinder": {"radius": 5, "height": 40}})
    for _ in range(2):
        with pytest.raises(XraybagError, match="too thick"):
            M.hollow(cyl, 6.0, 0.02)
    assert counted.count("hollow cylinder") == 2


def test_what_is_kept_is_bounded(counted, monkeypatch):
    monkeypatch.setattr(M, "_REMEMBERED_BYTES", 50_000)
    for r in range(10, 30):
        M.shape_mesh(Shape.model_validate({"cylinder": {"radius": r, "height": 40}}), 0.02)
    kept = M._remembered_meshes
    assert 1 <= len(kept) < 20
    assert M._remembered_size[0] == sum(v.nbytes + f.nbytes for entry in kept.values() for v, f in entry)
    assert M._remembered_size[0] <= 50_000 or len(kept) == 1
    # the oldest went first: the last shape is still kept, the first is meshed again
    n = len(counted)
    M.shape_mesh(Shape.model_validate({"cylinder": {"radius": 29, "height": 40}}), 0.02)
    assert len(counted) == n
    M.shape_mesh(Shape.model_validate({"cylinder": {"radius": 10, "height": 40}}), 0.02)
    assert len(counted) == n + 1
