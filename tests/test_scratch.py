"""The thread's scratch memory for a view's temporaries (:mod:`xraybag.engine.xray.scratch`)."""

import threading

import numpy as np
import pytest

from xraybag.engine.xray.scratch import release, scratch


def test_a_name_gets_its_memory_again_grown_when_too_small():
    release()
    a = scratch("t.a", (100, 4))
    assert a.shape == (100, 4) and a.dtype == np.float64 and a.flags.c_contiguous
    a[:] = 7.0
    again = scratch("t.a", 300, np.float32)  # fewer bytes: the same memory, a new view
    assert np.shares_memory(a, again) and again.shape == (300,) and again.dtype == np.float32
    other = scratch("t.b", (100, 4))  # another name: other memory
    assert not np.shares_memory(a, other)
    grown = scratch("t.a", (200, 4))  # more bytes: new memory, which the name keeps from now on
    assert not np.shares_memory(a, grown) and np.shares_memory(grown, scratch("t.a", 10))
    assert scratch("t.empty", (0, 4)).shape == (0, 4)
    assert release() >= 200 * 4 * 8 + 100 * 4 * 8
    assert release() == 0
    assert not np.shares_memory(grown, scratch("t.a", 10))  # released: new memory


def test_each_thread_has_its_own():
    release()
    mine = scratch("t.a", 64)
    theirs = []
    t = threading.Thread(target=lambda: theirs.append(scratch("t.a", 64)))
    t.start()
    t.join()
    assert not np.shares_memory(mine, theirs[0])
    release()


def test_the_spectral_sums_layout_is_checked():
    """The spectral passes write their (n, K) sums channel after channel (the transpose of a
    (K, n) array); an ``out`` laid out otherwise, or of another shape or type, is refused."""
    from xraybag.engine.xray.paths import SparsePaths
    from xraybag.engine.xray.spectral import dense_signals, signal_array, sparse_signals

    rng = np.random.default_rng(0)
    L = (rng.random((4, 5, 2)) * 10).astype(np.float32)
    mu, w = rng.random((2, 7)) * 0.1, rng.random((7, 3))
    ref = dense_signals(L.reshape(-1, 2), mu, w)
    assert ref.shape == (20, 3) and ref.T.flags.c_contiguous
    out = signal_array(20, 3)
    assert sparse_signals(SparsePaths.from_dense(L), mu, w, out=out) is out and np.array_equal(out, ref)
    for bad in (np.empty((20, 3)), np.empty((3, 20)).T[:19], np.empty((3, 20), np.float32).T):
        with pytest.raises(ValueError, match="channel after channel"):
            dense_signals(L.reshape(-1, 2), mu, w, out=bad)
    with pytest.raises(ValueError, match="expected C-contiguous float64"):
        signal_array(20, 3, np.empty((20, 3)))
