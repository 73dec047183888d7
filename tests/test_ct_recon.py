"""CT reconstruction (xraybag.engine.ct.recon) against analytic phantoms.

Sinograms are computed in closed form from ``geom.rays(k)``: the chord length of every ray
through z-aligned cylinders and ellipsoids times their attenuation (overlapping shapes add).
Reconstructions are checked by the mean over each insert's interior against the true mu, with
inserts placed off-centre and asymmetrically so that a mirrored or rotated image would fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from xraybag.engine.ct import geometry as G
from xraybag.engine.ct import recon as R

# ----------------------------------------------------------------------------- analytic phantoms


def _chord_cyl(S, d, cx, cy, r, z1=-np.inf, z2=np.inf):
    """Length of the rays S + l d (d unit) inside the cylinder (x-cx)^2+(y-cy)^2<r^2, z1<z<z2."""
    px, py, pz = S[..., 0] - cx, S[..., 1] - cy, S[..., 2]
    dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
    a = dx * dx + dy * dy
    b = px * dx + py * dy
    c = px * px + py * py - r * r
    disc = b * b - a * c
    ok = (disc > 0) & (a > 1e-15)
    sq = np.sqrt(np.where(ok, disc, 0.0))
    aa = np.where(ok, a, 1.0)
    l1, l2 = (-b - sq) / aa, (-b + sq) / aa
    flat = np.abs(dz) < 1e-15
    dzs = np.where(flat, 1.0, dz)
    za, zb = (z1 - pz) / dzs, (z2 - pz) / dzs
    inside = (pz >= z1) & (pz <= z2)
    lo = np.where(flat, np.where(inside, -np.inf, np.inf), np.minimum(za, zb))
    hi = np.where(flat, np.where(inside, np.inf, -np.inf), np.maximum(za, zb))
    return np.where(ok, np.maximum(np.minimum(l2, hi) - np.maximum(l1, lo), 0.0), 0.0)


def _chord_ell(S, d, centre, axes):
    """Length of the rays inside the axis-aligned ellipsoid (centre, semi-axes)."""
    ax = np.asarray(axes, dtype=float)
    p = (S - np.asarray(centre, dtype=float)) / ax
    q = d / ax
    a = (q * q).sum(-1)
    b = (p * q).sum(-1)
    c = (p * p).sum(-1) - 1.0
    disc = b * b - a * c
    return np.where(disc > 0, 2.0 * np.sqrt(np.maximum(disc, 0.0)) / a, 0.0)


def analytic_sinogram(geom, shapes, chunk=64):
    """(views, rows, cols) line integrals of ``shapes``: ("cyl", cx, cy, r, z1, z2, mu) or
    ("ell", centre, axes, mu)."""
    out = np.zeros(geom.shape)
    for k0 in range(0, geom.views, chunk):
        ks = range(k0, min(k0 + chunk, geom.views))
        rays = [geom.rays(k) for k in ks]
        S = np.stack([r[0] for r in rays])[:, None, None, :]
        d = np.stack([r[1] for r in rays])
        part = out[k0:k0 + len(ks)]
        for sh in shapes:
            if sh[0] == "cyl":
                _, cx, cy, r, z1, z2, mu = sh
                part += mu * _chord_cyl(S, d, cx, cy, r, z1, z2)
            else:
                _, c, ax, mu = sh
                part += mu * _chord_ell(S, d, c, ax)
    return out.astype(np.float32)


def parallel_disks(theta, t, disks):
    """p(theta, t) of disks (cx, cy, r, mu): 2 mu sqrt(r^2 - (t - c.n)^2)."""
    th = np.asarray(theta)[:, None]
    out = np.zeros((th.size, np.size(t)))
    for cx, cy, r, mu in disks:
        s = np.asarray(t)[None, :] - (cx * np.cos(th) + cy * np.sin(th))
        out += 2 * mu * np.sqrt(np.maximum(r * r - s * s, 0.0))
    return out


def disk_mean(img, grid, cx, cy, r):
    x, y = grid.axis("x"), grid.axis("y")
    X, Y = np.meshgrid(x, y)
    return float(img[(X - cx) ** 2 + (Y - cy) ** 2 < r * r].mean())


def ball_mean(vol, grid, cx, cy, cz, r):
    Z, Y, X = np.meshgrid(grid.axis("z"), grid.axis("y"), grid.axis("x"), indexing="ij")
    return float(vol[(X - cx) ** 2 + (Y - cy) ** 2 + (Z - cz) ** 2 < r * r].mean())


# background cylinder with off-centre rods; mu in 1/mm (true values in the comments)
DISKS = [(0.0, 0.0, 60.0, 0.02), (25.0, 10.0, 12.0, 0.03), (-20.0, -30.0, 10.0, -0.01)]
PROBES_2D = [((0.0, 40.0, 6.0), 0.02), ((25.0, 10.0, 8.0), 0.05), ((-20.0, -30.0, 6.0), 0.01),
             ((-35.0, 15.0, 6.0), 0.02)]


# ----------------------------------------------------------------------------- HU, filters


def test_hounsfield_water_air():
    mu_w = 0.0206
    hu = R.hounsfield(np.array([mu_w, 0.0, 2 * mu_w]), mu_w)
    np.testing.assert_allclose(hu, [0.0, -1000.0, 1000.0], atol=1e-3)
    mhu = R.modified_hounsfield(np.array([mu_w, 0.0]), mu_w)
    np.testing.assert_allclose(mhu, [1000.0, 0.0], atol=1e-3)
    assert hu.dtype == np.float32


def test_ramp_kernel_is_a_ramp_and_windows_roll_off():
    n, tau = 512, 0.5
    f = np.arange(n // 2 + 1) / (n * tau)  # cycles/mm
    ramp = R.ramp_kernel(n, tau, "ram-lak")
    mid = slice(n // 16, int(0.45 * n))
    np.testing.assert_allclose(ramp[mid], f[mid], rtol=0.01)
    assert ramp[0] > 0  # the discrete kernel keeps a small DC term (no zero-frequency hole)
    nyq = -1
    assert R.ramp_kernel(n, tau, "hann")[nyq] == pytest.approx(0.0, abs=1e-6 * ramp[nyq])
    assert R.ramp_kernel(n, tau, "cosine")[nyq] == pytest.approx(0.0, abs=1e-6 * ramp[nyq])
    assert R.ramp_kernel(n, tau, "shepp-logan")[nyq] == pytest.approx(2 / np.pi * ramp[nyq],
                                                                     rel=1e-6)
    with pytest.raises(ValueError):
        R.ramp_kernel(n, tau, "butterworth")


def test_ramp_filter_matches_direct_convolution():
    rng = np.random.default_rng(1)
    p = rng.random(37)
    tau = 0.8
    n = np.arange(-36, 37)
    h = np.zeros(n.size)
    h[n == 0] = 1 / (4 * tau * tau)
    odd = n % 2 == 1
    h[odd] = -1 / (np.pi * n[odd] * tau) ** 2
    direct = tau * np.convolve(p, h)[36:36 + 37]
    np.testing.assert_allclose(R.ramp_filter(p, tau), direct, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- 2D parallel


@pytest.mark.parametrize("filt", R.FILTERS)
def test_fbp_parallel_2d_disks(filt):
    grid = G.VolumeGrid.centred((160, 160, 1), 1.25)
    t = (np.arange(257) - 128) * 0.625
    theta = np.arange(180) * np.pi / 180
    p = parallel_disks(theta, t, DISKS)
    img = R.fbp_parallel_2d(p, theta, t, grid, filter=filt)
    assert img.shape == (128, 128)
    for (cx, cy, r), mu in PROBES_2D:
        assert disk_mean(img, grid, cx, cy, r) == pytest.approx(mu, rel=0.01), (filt, cx, cy)
    # outside the object
    assert abs(disk_mean(img, grid, 0, -70, 4)) < 2e-4


def test_fbp_parallel_2d_full_turn_equals_half_turn():
    grid = G.VolumeGrid.centred((128, 128, 1), 2.0)
    t = (np.arange(129) - 64) * 1.0
    half = np.arange(90) * np.pi / 90
    full = np.arange(180) * np.pi / 90
    a = R.fbp_parallel_2d(parallel_disks(half, t, DISKS), half, t, grid)
    b = R.fbp_parallel_2d(parallel_disks(full, t, DISKS), full, t, grid)
    assert np.abs(a - b).max() < 0.02 * 0.05
    assert disk_mean(b, grid, 25, 10, 8) == pytest.approx(0.05, rel=0.01)


def test_rebin_fan_to_parallel_matches_analytic_parallel_projections():
    for curved in (True, False):
        g = G.axial(500, 900, 200, 1.0, 360, [0.0], curved=curved, col_offset=0.25)
        sino = analytic_sinogram(g, [("cyl", cx, cy, r, -1, 1, mu) for cx, cy, r, mu in DISKS])
        par, theta, t = R.rebin_fan_to_parallel(sino, g)
        assert par.shape == (360, 1, t.size)
        ref = parallel_disks(theta, t, DISKS)
        inner = np.abs(t) < 0.9 * g.fov_radius
        err = np.abs(par[:, 0][:, inner] - ref[:, inner])
        assert err.max() < 0.03 * ref.max()  # linear-interpolation error at the disk edges
        assert err.mean() < 0.002 * ref.max()


# ----------------------------------------------------------------------------- axial fan beam


@pytest.mark.parametrize("curved", [True, False])
def test_axial_fan_beam(curved):
    # the third rod exists for z > 0 only: it must show in the upper slice alone
    shapes = [("cyl", 0, 0, 60, -50, 50, 0.02), ("cyl", 25, 10, 12, -50, 50, 0.03),
              ("cyl", -20, -30, 10, 0, 50, -0.01)]
    g = G.axial(500, 900, 200, 1.2, 240, [-6.0, 6.0], curved=curved)
    sino = analytic_sinogram(g, shapes)
    grid = G.VolumeGrid((3, 80, 80), (2.0, 2.0, 6.0), (-79.0, -79.0, -6.0))
    vol = R.reconstruct({"mu": sino}, g, grid)["mu"]
    assert vol.shape == grid.shape and vol.dtype == np.float32
    lo, mid, hi = vol
    assert disk_mean(lo, grid, 0, 40, 6) == pytest.approx(0.02, rel=0.01)
    assert disk_mean(lo, grid, 25, 10, 8) == pytest.approx(0.05, rel=0.01)
    assert disk_mean(lo, grid, -20, -30, 6) == pytest.approx(0.02, rel=0.01)
    assert disk_mean(hi, grid, -20, -30, 6) == pytest.approx(0.01, rel=0.02)
    assert disk_mean(hi, grid, 25, 10, 8) == pytest.approx(0.05, rel=0.01)
    # z = 0 lies halfway between the acquired slices: linear interpolation
    assert disk_mean(mid, grid, -20, -30, 6) == pytest.approx(0.015, rel=0.02)


def test_axial_single_slice_and_far_slices_are_empty():
    g = G.axial(500, 900, 160, 1.2, 180, [0.0], curved=True)
    sino = analytic_sinogram(g, [("cyl", 10, -5, 40, -5, 5, 0.02)])
    grid = G.VolumeGrid((2, 48, 48), (2.5, 2.5, 20.0), (-58.75, -58.75, 0.0))
    vol = R.reconstruct({"a": sino}, g, grid)["a"]
    assert disk_mean(vol[0], grid, 10, -5, 30) == pytest.approx(0.02, rel=0.01)
    assert np.all(vol[1] == 0)  # 20 mm away from the only slice


# ----------------------------------------------------------------------------- FDK


@pytest.mark.parametrize("curved", [True, False])
def test_fdk_circular_spheres(curved):
    shapes = [("ell", (0, 0, 0), (60, 60, 22), 0.02), ("ell", (25, 10, 0), (12, 12, 12), 0.03),
              ("ell", (-20, -30, 10), (8, 8, 8), -0.01), ("ell", (10, -25, -12), (8, 8, 8), 0.01)]
    g = G.circular(500, 900, 40, 160, 1.8, 1.6, 180, curved=curved)
    sino = analytic_sinogram(g, shapes)
    grid = G.VolumeGrid.centred((150, 150, 40), 2.5)
    vol = R.reconstruct({"mu": sino}, g, grid)["mu"]
    assert vol.shape == grid.shape
    assert ball_mean(vol, grid, 25, 10, 0, 6) == pytest.approx(0.05, rel=0.01)  # central slice
    assert ball_mean(vol, grid, 0, 40, 0, 6) == pytest.approx(0.02, rel=0.01)
    assert ball_mean(vol, grid, -20, -30, 10, 4) == pytest.approx(0.01, rel=0.03)  # off-plane
    assert ball_mean(vol, grid, 10, -25, -12, 4) == pytest.approx(0.03, rel=0.03)
    assert ball_mean(vol, grid, 0, 0, 12, 5) == pytest.approx(0.02, rel=0.02)
    assert ball_mean(vol, grid, -40, 20, -6, 5) == pytest.approx(0.02, rel=0.02)
    # z mirror check: the sphere at z = +10 is absent at z = -10
    assert ball_mean(vol, grid, -20, -30, -10, 4) == pytest.approx(0.02, rel=0.03)


# ----------------------------------------------------------------------------- helical


@pytest.mark.parametrize("curved", [True, False])
def test_helical_cylinder_with_rods(curved):
    shapes = [("cyl", 0, 0, 60, -200, 200, 0.02), ("cyl", 25, 10, 12, -200, 200, 0.03),
              ("cyl", -20, -30, 10, 0, 200, -0.01), ("cyl", 10, -25, 8, -200, 0, 0.01)]
    rows, row_pitch = 12, 1.8
    g = G.helical(500, 900, rows, 160, row_pitch, 1.6, 240, -24, 24, 0.0 + 12.0,
                  curved=curved)
    assert 0.9 < g.extras["pitch"] < 1.1
    sino = analytic_sinogram(g, shapes)
    grid = G.VolumeGrid((6, 64, 64), (2.5, 2.5, 4.0), (-78.75, -78.75, -10.0))
    calls = []
    vol = R.reconstruct({"mu": sino}, g, grid, progress=lambda d, n: calls.append((d, n)))["mu"]
    assert calls and calls[-1][0] == calls[-1][1]
    z = grid.axis("z")
    for iz in range(grid.shape[0]):
        sl = vol[iz]
        assert disk_mean(sl, grid, 0, 40, 6) == pytest.approx(0.02, rel=0.015)
        assert disk_mean(sl, grid, 25, 10, 8) == pytest.approx(0.05, rel=0.015)
        below = z[iz] < 0
        assert disk_mean(sl, grid, -20, -30, 6) == pytest.approx(0.02 if below else 0.01,
                                                                 rel=0.02)
        assert disk_mean(sl, grid, 10, -25, 4) == pytest.approx(0.03 if below else 0.02,
                                                                rel=0.02)


def test_reconstruct_channels_share_one_pass():
    g = G.helical(500, 900, 8, 120, 2.0, 2.0, 180, -10, 10, 8.0)
    sino = analytic_sinogram(g, [("cyl", 5, -10, 40, -100, 100, 0.02)])
    grid = G.VolumeGrid((2, 40, 40), (3.0, 3.0, 3.0), (-58.5, -58.5, -1.5))
    out = R.reconstruct({"lo": sino, "hi": 2 * sino, "c": np.zeros_like(sino)}, g, grid)
    assert list(out) == ["lo", "hi", "c"]
    np.testing.assert_allclose(out["hi"], 2 * out["lo"], rtol=1e-5, atol=1e-7)
    assert np.all(out["c"] == 0)
    assert disk_mean(out["lo"][0], grid, 5, -10, 30) == pytest.approx(0.02, rel=0.02)
    alone = R.reconstruct({"x": sino}, g, grid)["x"]
    np.testing.assert_allclose(alone, out["lo"], rtol=1e-5, atol=1e-7)


def test_reconstruct_rejects_bad_input():
    g = G.circular(500, 900, 1, 64, 1.0, 2.0, 90)
    grid = G.VolumeGrid.centred((64, 64, 1), 2.0)
    with pytest.raises(ValueError):
        R.reconstruct({"a": np.zeros((90, 1, 63))}, g, grid)
    with pytest.raises(ValueError):
        R.reconstruct({"a": np.zeros(g.shape)}, g, grid, method="art")
    with pytest.raises(ValueError):
        R.reconstruct({"a": np.zeros(g.shape)}, g, grid, filter="parzen")


# ----------------------------------------------------------------------------- iterative


class _AstraFan2D:
    """ASTRA's CPU line_fanflat projector on a (1, n, n) grid, as forward/back."""

    def __init__(self, astra, n, det_count, det_width, angles, so, od):
        self.astra = astra
        self.n = n
        vg = astra.create_vol_geom(n, n)
        pg = astra.create_proj_geom("fanflat", det_width, det_count, angles, so, od)
        self.pid = astra.create_projector("line_fanflat", pg, vg)
        self.shape = (len(angles), 1, det_count)

    def forward(self, vol):
        i, s = self.astra.create_sino(np.asarray(vol, np.float32).reshape(self.n, self.n),
                                      self.pid)
        self.astra.data2d.delete(i)
        return s.reshape(self.shape)

    def back(self, sino):
        i, b = self.astra.create_backprojection(
            np.asarray(sino, np.float32).reshape(self.shape[0], self.shape[2]), self.pid)
        self.astra.data2d.delete(i)
        return b.reshape(1, self.n, self.n)


def _astra_problem():
    astra = pytest.importorskip("astra")
    n = 64
    angles = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    proj = _AstraFan2D(astra, n, 96, 1.5, angles, 200.0, 100.0)
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2.0
    truth = np.zeros((1, n, n), np.float32)
    truth[0][xx ** 2 + yy ** 2 < 26 ** 2] = 0.02
    truth[0][(xx - 10) ** 2 + (yy + 6) ** 2 < 7 ** 2] = 0.05
    truth[0][(xx + 8) ** 2 + (yy - 12) ** 2 < 5 ** 2] = 0.0
    b = proj.forward(truth)
    return proj, truth, b, (xx, yy)


def test_sirt_converges_with_astra_projector():
    proj, truth, b, (xx, yy) = _astra_problem()
    hist: list[float] = []
    x10 = R.sirt(b, proj, iterations=10)
    x = R.sirt(b, proj, iterations=150, history=hist)
    assert all(h1 <= h0 * (1 + 1e-4) for h0, h1 in zip(hist, hist[1:]))  # residual decreasing
    assert hist[-1] < 0.05 * hist[0]
    assert np.linalg.norm(x - truth) < 0.6 * np.linalg.norm(x10 - truth)
    assert x.min() >= 0  # non-negativity
    inner = (xx - 10) ** 2 + (yy + 6) ** 2 < 4 ** 2
    assert float(x[0][inner].mean()) == pytest.approx(0.05, rel=0.03)
    bg = (xx + 14) ** 2 + (yy + 10) ** 2 < 4 ** 2
    assert float(x[0][bg].mean()) == pytest.approx(0.02, rel=0.03)
    # through the dispatcher (grid shape (1, n, n), sinogram (views, 1, cols))
    g = G.circular(200, 300, 1, 96, 1.0, 1.5 * 1.5, 180, curved=False)
    grid = G.VolumeGrid.centred((64, 64, 1), 1.0)
    out = R.reconstruct({"a": b, "b": 2 * b}, g, grid, method="sirt", iterations=30,
                        projector=proj)
    assert out["a"].shape == (1, 64, 64)
    np.testing.assert_allclose(out["b"], 2 * out["a"], rtol=1e-4, atol=1e-6)


def test_cgls_converges_with_astra_projector():
    proj, truth, b, (xx, yy) = _astra_problem()
    hist: list[float] = []
    x = R.cgls(b, proj, iterations=40, history=hist)
    assert hist[-1] < 0.01 * hist[0]
    assert hist[-1] <= min(hist) + 1e-9
    inner = (xx - 10) ** 2 + (yy + 6) ** 2 < 4 ** 2
    assert float(x[0][inner].mean()) == pytest.approx(0.05, rel=0.03)


def test_sirt_through_reconstruct_with_the_default_projector():
    """method='sirt' without a projector builds the voxel projector itself and converges on a
    small cone-beam problem whose data that projector made (a consistency check of the wiring:
    the cylinder's reconstructed interior approaches its value)."""
    from xraybag.engine.ct.project import Projector

    g = G.circular(300.0, 500.0, 8, 96, 1.5, 1.5, 90, curved=True)
    grid = G.VolumeGrid.centred((64.0, 64.0, 8.0), 2.0)
    x = grid.axis("x")[None, None, :]
    y = grid.axis("y")[None, :, None]
    truth = np.broadcast_to(np.where(np.hypot(x - 5, y + 3) < 20, 0.02, 0.0), grid.shape).astype(np.float32)
    sino = Projector(g, grid).forward(truth)
    early = R.reconstruct({"a": sino}, g, grid, method="sirt", iterations=3)["a"]
    late = R.reconstruct({"a": sino}, g, grid, method="sirt", iterations=60)["a"]
    inside = np.broadcast_to(np.hypot(x - 5, y + 3) < 14, grid.shape)
    assert abs(float(late[inside].mean()) / 0.02 - 1) < 0.03
    assert np.abs(late - truth).mean() < 0.5 * np.abs(early - truth).mean()


def test_helical_from_a_view_stream_equals_whole_sinograms():
    """Streaming views (made chunk by chunk, dropped once no slab needs them) gives the very
    volumes of the whole sinograms, makes each chunk once and in order, and holds far fewer
    views than the scan has."""
    g = G.helical(500, 900, 8, 120, 2.0, 2.0, 180, -40, 40, 8.0)
    shapes = [("cyl", 5, -10, 40, -100, 100, 0.02), ("cyl", -15, 20, 10, -100, 5, 0.03)]
    sino = analytic_sinogram(g, shapes).astype(np.float32)
    grid = G.VolumeGrid((20, 40, 40), (3.0, 3.0, 3.0), (-58.5, -58.5, -28.5))
    whole = R.helical_ssrb([sino, 3 * sino], g, grid, slab=2)
    # the slab's size (a partial last slab included) changes no bit of the volumes
    np.testing.assert_array_equal(R.helical_ssrb([sino, 3 * sino], g, grid, slab=7), whole)
    np.testing.assert_array_equal(R.helical_ssrb([sino, 3 * sino], g, grid), whole)
    calls = []

    def produce(start, stop):
        calls.append((start, stop))
        return [sino[start:stop].copy(), 3 * sino[start:stop]]

    stream = R.ViewStream(produce, g.shape, 2, chunk=37)
    streamed = R.helical_ssrb(stream, g, grid, slab=2)
    np.testing.assert_array_equal(streamed, whole)
    assert disk_mean(streamed[0, 10], grid, 5, -10, 25) == pytest.approx(0.02, rel=0.02)
    assert [c[0] for c in calls] == list(range(0, g.views, 37))
    assert calls[-1][1] == g.views
    assert stream.peak_views < g.views / 2
    with pytest.raises(RuntimeError):  # released views are gone
        stream.window(0, 10)
