"""The ziggurat normal draws from a Generator's raw bits, against scipy's normal distribution."""

from __future__ import annotations

import numpy as np
from scipy import stats

from xraybag.engine.xray.normals import FI, KI, R, WI, _ziggurat, standard_normal


def test_draws_follow_the_normal_law():
    """4 million draws: chi-square over 102 bins (tails beyond +-5 included), moments, and the
    share beyond the ziggurat's base (the tail algorithm) and beyond 4."""
    z = standard_normal(np.random.default_rng(11), 4_000_000).astype(np.float64)
    edges = np.concatenate([[-np.inf], np.linspace(-5, 5, 101), [np.inf]])
    expected = np.diff(stats.norm.cdf(edges)) * z.size
    counts = np.histogram(z, edges)[0]
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert stats.chi2.sf(chi2, edges.size - 2) > 1e-4, chi2
    assert abs(z.mean()) < 5 * 0.0005 and abs(z.var() - 1) < 5 * 0.0007
    for t in (R, 4.0):
        share = (np.abs(z) > t).mean()
        p = 2 * stats.norm.sf(t)
        assert abs(share - p) < 5 * np.sqrt(p / z.size), (t, share, p)


def test_same_generator_state_same_draws():
    a = standard_normal(np.random.default_rng(3), 10_001)
    b = standard_normal(np.random.default_rng(3), 10_001)
    c = standard_normal(np.random.default_rng(4), 10_001)
    assert a.dtype == np.float32 and a.shape == (10_001,)
    assert a.tobytes() == b.tobytes() and not np.array_equal(a, c)
    rng = np.random.default_rng(3)
    standard_normal(rng, 5)
    assert not np.array_equal(standard_normal(rng, 5), a[:5])  # the generator advanced


def test_many_small_requests_follow_the_law_too():
    rng = np.random.default_rng(1)
    z = np.concatenate([standard_normal(rng, 3) for _ in range(100_000)]).astype(np.float64)
    assert stats.kstest(z, "norm").pvalue > 1e-4


def test_tables_are_the_ziggurat_of_the_normal_density():
    """Layer edges x_i = wi * 2^23 decrease with f(x_i) = fi, every layer (the base with the tail
    included) has the same area V, and a word is accepted outright with probability ~0.99."""
    x = WI.astype(np.float64) * 2.0**23
    assert abs(x[255] - R) < 1e-5
    assert np.all(np.diff(x[1:]) > 0)
    assert np.allclose(FI[1:], np.exp(-0.5 * x[1:] ** 2), rtol=1e-6)
    # layer i between x_i and x_{i-1} (i = 255 .. 2), the rectangle x_i (f(x_{i-1}) - f(x_i))
    areas = x[2:] * (np.exp(-0.5 * x[1:-1] ** 2) - np.exp(-0.5 * x[2:] ** 2))
    v = R * np.exp(-0.5 * R * R) + stats.norm.sf(R) * np.sqrt(2 * np.pi)
    assert np.allclose(areas, v, rtol=1e-4)
    accept = np.mean(KI[1:].astype(np.float64) / 2.0**23)
    assert 0.98 < accept < 1.0


def test_a_draw_in_the_tail_survives_running_out_of_words():
    """A word of layer 0 past its rectangle enters the tail; with too few words left for a try
    the draw stays pending (its sign kept) and the next words finish it beyond R with that sign."""
    rabs = 0x7FFFFF  # the largest abscissa: past ki[0]
    word = np.uint32((rabs << 9) | (1 << 8) | 0)  # layer 0, negative
    out = np.zeros(1, np.float32)
    i, tail = _ziggurat(np.array([word, 0], np.uint32), out, 0, -1, KI, WI, FI)
    assert (i, tail) == (0, 1)
    more = np.random.default_rng(0).integers(0, 2**32, 64, dtype=np.uint32)
    i, tail = _ziggurat(more, out, 0, tail, KI, WI, FI)
    assert (i, tail) == (1, -1) and out[0] < -R
