"""Counter-based noise draws (:mod:`xraybag.engine.xray.counter`): Philox4x32-10 against the
Random123 known answers, the laws of the normals and Poisson counts (scipy.stats), and draws that
do not depend on how the views are chunked or on the threads."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import stats

from xraybag.engine.xray.counter import (
    NORMAL_ABOVE,
    CounterDraws,
    channel_noise,
    draws_from,
    noise_pixel,
    philox,
)
from xraybag.engine.xray.detect import NORMAL_ABOVE as DETECT_NORMAL_ABOVE

# Random123's kat_vectors for philox4x32 with 10 rounds: counter (4 words), key (2), result (4)
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize(("ctr", "key", "expected"), KAT)
def test_philox_known_answers(ctr, key, expected):
    assert tuple(int(w) for w in philox(*ctr, *key)) == expected


def test_the_limit_is_the_detectors():
    assert NORMAL_ABOVE == DETECT_NORMAL_ABOVE


def sums_of(lam: float, n: int, weight: float = 2.5) -> np.ndarray:
    """(n, 2) means and variances of a signal of ``lam`` quanta of ``weight`` each."""
    s = np.empty((n, 2))
    s[:, 0] = lam * weight
    s[:, 1] = lam * weight * weight
    return s


def test_normals_follow_the_normal_law_tails_included():
    n = 400_000
    _, z = channel_noise(np.zeros((n, 2)), 0, 0, 1, None, 0.0, 1.0, 1000, CounterDraws(11, 12), False, True)
    assert z.dtype == np.float32
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert z.mean() == pytest.approx(0.0, abs=0.006)
    assert z.std() == pytest.approx(1.0, abs=0.004)
    # beyond the ziggurat's last layer (R = 3.654...) the draws take the tail's loop
    tail = np.mean(np.abs(z) > 3.6541528853610088)
    assert tail == pytest.approx(2 * stats.norm.sf(3.6541528853610088), rel=0.2)
    assert np.mean(np.abs(z) > 4.5) == pytest.approx(2 * stats.norm.sf(4.5), rel=0.5)


@pytest.mark.parametrize("lam", [0.4, 3.0, 9.9, 10.0, 37.0, 90.0, 399.0, 2500.0])
def test_quantum_counts_follow_the_poisson_law(lam):
    """Whole quanta, Poisson by inversion below the limit and its normal approximation above:
    mean, variance, and Pearson's chi-square against scipy's Poisson law (bins of at least 20
    expected counts, the tails pooled) below the limit; total variation distance under 0.02
    above it (the approximation's own distance is about 0.01)."""
    n = 200_000
    k, _ = channel_noise(sums_of(lam, n), 0, 0, 1, None, 0.0, 2.5, 500, CounterDraws(3, 4, 77), True, False)
    assert np.allclose(k, np.rint(k))
    assert k.mean() == pytest.approx(lam, rel=0.01, abs=0.01)
    assert k.var() == pytest.approx(lam, rel=0.02)
    k = np.rint(k).astype(np.int64)
    if lam < NORMAL_ABOVE:
        support = np.arange(int(stats.poisson.ppf(1e-9, lam)), int(stats.poisson.ppf(1 - 1e-9, lam)) + 1)
        expected = stats.poisson.pmf(support, lam) * n
        keep = expected >= 20
        edges = support[keep]
        observed = np.histogram(k, bins=np.concatenate([[-1], edges[:-1] + 0.5, [k.max() + 1]]))[0]
        cdf = stats.poisson.cdf(np.concatenate([edges[:-1], [np.inf]]), lam)
        exp_bins = np.diff(np.concatenate([[0.0], cdf])) * n
        assert stats.chisquare(observed, exp_bins).pvalue > 1e-3
    else:
        values, counts = np.unique(k, return_counts=True)
        lo, hi = int(stats.poisson.ppf(1e-6, lam)), int(stats.poisson.ppf(1 - 1e-6, lam))
        support = np.arange(lo, hi + 1)
        emp = np.zeros(support.size)
        inside = (values >= lo) & (values <= hi)
        emp[values[inside] - lo] = counts[inside] / n
        tv = 0.5 * (np.abs(emp - stats.poisson.pmf(support, lam)).sum() + counts[~inside].sum() / n)
        assert tv < 0.02, tv


def test_no_signal_gives_no_counts():
    s = np.zeros((50, 2))
    s[:25, 1] = 1.0  # a variance without a mean
    k, _ = channel_noise(s, 0, 0, 1, None, 0.0, 1.0, 50, CounterDraws(1, 2), True, False)
    assert np.array_equal(k, np.zeros(50))


def test_scatter_adds_its_mean_and_variance():
    n = 100_000
    extra = np.full(n, 700.0)  # quanta of weight q0 = 2.0
    k, _ = channel_noise(sums_of(300.0, n, 2.0), 0, 0, 1, extra, 2.0, 1.0, 100, CounterDraws(5, 6), True, False)
    assert k.mean() == pytest.approx(600.0 + 700.0, rel=0.002)
    assert k.var() == pytest.approx((600.0 + 700.0) * 2.0, rel=0.03)


def test_a_views_draws_do_not_depend_on_the_chunk_or_the_threads():
    rng = np.random.default_rng(0)
    per_view, views = 37 * 11, 6
    s = np.empty((views * per_view, 4))
    s[:, 0] = rng.uniform(1, 3000, s.shape[0])  # Poisson and normal pixels
    s[:, 2] = s[:, 0] * rng.uniform(1, 40, s.shape[0])
    s[:, 1] = s[:, 3] = 1.0
    d = draws_from(np.random.default_rng(9))
    whole = channel_noise(s, 1, 0, 2, None, 0.0, 1.0, per_view, d, True, True)
    cut = 2 * per_view
    head = channel_noise(s[:cut], 1, 0, 2, None, 0.0, 1.0, per_view, d.at(0), True, True)
    tail = channel_noise(s[cut:], 1, 0, 2, None, 0.0, 1.0, per_view, d.at(2), True, True)
    for i in range(2):
        assert np.array_equal(whole[i], np.concatenate([head[i], tail[i]]))
    before = numba.get_num_threads()
    try:
        for t in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(t)
            threaded = channel_noise(s, 1, 0, 2, None, 0.0, 1.0, per_view, d, True, True, threads=True)
            for i in range(2):
                assert np.array_equal(whole[i], threaded[i])
    finally:
        numba.set_num_threads(before)
    # another channel, view or key draws other numbers
    other = channel_noise(s, 0, 0, 2, None, 0.0, 1.0, per_view, d, True, True)
    assert abs(np.corrcoef(whole[1], other[1])[0, 1]) < 0.05
    # a view's normals are those of its index in the scan
    shifted = channel_noise(s[per_view:], 1, 0, 2, None, 0.0, 1.0, per_view, d.at(1), True, True)
    assert np.array_equal(shifted[1], whole[1][per_view:])
    assert not np.array_equal(shifted[1][:per_view], whole[1][:per_view])
    assert draws_from(np.random.default_rng(9)) == d
    assert draws_from(np.random.default_rng(10)) != d



@numba.njit(cache=True)
def _pixel_by_pixel(sums, c_mean, c_var, extra, q0, ref, per_view, first_view, c, k0, k1, out, ze):
    """:func:`noise_pixel` (the GPU kernel's per-pixel function) over every element in turn."""
    for i in range(sums.shape[0]):
        view = i // per_view
        p = i - view * per_view
        w0, w1, w2, w3 = philox(p, first_view + view, 4 * c, 0, k0, k1)
        noise_pixel(i, p, first_view + view, w0, w1, w2, w3, sums, c_mean, c_var, extra, q0, ref, c,
                    k0, k1, out, ze)


@pytest.mark.parametrize(("with_extra", "quantum", "electronic"),
                         [(True, True, True), (False, True, True), (False, True, False), (False, False, True)])
def test_vectorised_blocks_draw_what_each_pixel_draws(with_extra, quantum, electronic):
    """The CPU's blocks (the words, moments, first ziggurat steps and normal counts as whole-block
    loops, the rest redone one by one) give :func:`noise_pixel`'s numbers bit for bit: normals
    past the first step (wedges and the tail, about 1.2 %), Poisson counts by inversion and by
    PTRS, normal counts, no signal, views that start inside a block."""
    rng = np.random.default_rng(4)
    per_view, views = 5003, 9  # blocks of 4096 elements cut across views
    n = per_view * views
    s = np.empty((n, 4))
    s[:, 1] = rng.uniform(0, 2e5, n)
    s[:, 3] = s[:, 1] * rng.uniform(1, 40, n)
    lam = np.exp(rng.uniform(np.log(0.05), np.log(5e4), n))  # inversion, PTRS and normal counts
    weight = rng.uniform(0.5, 30, n)
    s[:, 1], s[:, 3] = lam * weight, lam * weight * weight
    s[rng.random(n) < 0.05, 1] = 0.0  # no signal
    s[:, 0] = s[:, 2] = np.nan  # the other channel's sums are not read
    extra = rng.uniform(0, 80, n) if with_extra else None
    d = CounterDraws(0x9E3779B9, 77, 3)
    got = channel_noise(s, 1, 1, 3, extra, 1.7, 1.3, per_view, d, quantum, electronic)
    out = np.empty(n if quantum else 0)
    ze = np.empty(n if electronic else 0, dtype=np.float32)
    _pixel_by_pixel(s, 1, 3, np.empty(0) if extra is None else extra, 1.7, 1.3, per_view, 3, 1, d.key0, d.key1,
                    out, ze)
    if quantum:
        assert np.array_equal(got[0], out)
        dim = lam < NORMAL_ABOVE
        assert dim.sum() > 1000 and (~dim).sum() > 1000
    else:
        assert got[0] is None
    if electronic:
        assert np.array_equal(got[1], ze)
        assert np.mean(np.abs(ze) > 3.6541528853610088) > 0  # the tail's loop ran
    else:
        assert got[1] is None

SIMULATED = """
import json
import numpy as np
from xraybag.engine.xray.counter import CounterDraws, channel_noise
from xraybag.engine.xray.counter_cuda import channel_noise_cuda

rng = np.random.default_rng(0)
per_view, views = 23 * 7, 4
n = per_view * views
s = np.empty((n, 4))
s[:, 0] = rng.uniform(1, 3000, n)
s[:, 2] = s[:, 0] * rng.uniform(1, 40, n)  # from 0.03 to 3000 quanta: inversion and normal draws
s[:, 1] = s[:, 3] = 1.0
extra = rng.uniform(0, 50, n)
d = CounterDraws(123, 456, 5)
out = {}
for name, args in {"quantum_electronic": (extra, True, True), "quantum": (None, True, False),
                   "electronic": (None, False, True)}.items():
    cpu = channel_noise(s, 1, 0, 2, args[0], 1.5, 1.3, per_view, d, args[1], args[2])
    gpu = channel_noise_cuda(s, 1, 0, 2, args[0], 1.5, 1.3, per_view, d, args[1], args[2])
    out[name] = [None if a is None else bool(b is not None and np.array_equal(a, b.copy_to_host()))
                 for a, b in zip(cpu, gpu)]
    out[name + "_none"] = [a is None and b is None for a, b in zip(cpu, gpu)]
print(json.dumps(out))
"""


def test_simulated_cuda_draws_equal_the_cpus():
    """The same functions compiled for CUDA (numba's simulator): the same draws, bit for bit,
    and nothing drawn that is not asked for."""
    import json

    from helpers import run_python

    proc = run_python(["-c", SIMULATED], sim=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["quantum_electronic"] == [True, True]
    assert r["quantum"] == [True, None] and r["quantum_none"] == [False, True]
    assert r["electronic"] == [None, True] and r["electronic_none"] == [True, False]


def test_draw_kernel_compiles_for_a_real_gpu():
    """numba's CUDA typing and NVVM on the draws' kernel (the CPU's functions as device
    functions): no GPU needed."""
    from helpers import ptx_of

    size, muls = ptx_of("""
        from xraybag.engine.xray import counter_cuda as K
        f1, f2 = nt.float64[::1], nt.float64[:, ::1]
        sig = (f2, nt.int64, nt.int64, f1, nt.float64, nt.float64, nt.int64, nt.int64, nt.int64, nt.int64,
               nt.int64, f1, nt.float32[::1])
        ptx, _ = cuda.compile_ptx(K._noise_kernel.py_func, sig, cc=(9, 0))
        print("PTX", len(ptx), ptx.count("mul.wide.u32") + ptx.count("mul.lo.s64") + ptx.count("mul.hi.u64"))
    """)
    assert size > 5_000 and muls >= 1
