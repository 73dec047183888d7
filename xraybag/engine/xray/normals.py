"""Standard normal float32 draws from a numpy Generator's raw bits, as a compiled pass.

numpy's ``Generator.standard_normal(dtype=float32)`` costs ~8.6 ns a draw here (a call through the
bit generator per 32 bits); the noise model draws four images a view. :func:`standard_normal`
takes the raw 64-bit words in one call (``bit_generator.random_raw``, ~1 ns a draw) and turns
them into normals with the same algorithm numpy uses: Marsaglia and Tsang's ziggurat (J. Stat.
Software 5(8), 2000) with 256 layers, 32 bits a draw (8 for the layer, 1 for the sign, 23 for
the abscissa), the tail beyond r = 3.6541528853610088 by Marsaglia's exponential method. The
draws are a different sequence from numpy's, with the same law (tests compare it with scipy's
normal distribution); the same generator state gives the same draws.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: the ziggurat's rightmost layer edge and the area of each of its 256 layers
R = 3.6541528853610088
V = 0.00492867323399


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ki (uint32), wi (float32), fi (float32): Marsaglia and Tsang's set-up for 23-bit abscissae."""
    m1 = 2.0**23
    ki = np.zeros(256, np.float64)
    wi = np.zeros(256, np.float64)
    fi = np.zeros(256, np.float64)
    dn = tn = R
    q = V / math.exp(-0.5 * dn * dn)
    ki[0] = (dn / q) * m1
    ki[1] = 0
    wi[0] = q / m1
    wi[255] = dn / m1
    fi[0] = 1.0
    fi[255] = math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(V / dn + math.exp(-0.5 * dn * dn)))
        ki[i + 1] = (dn / tn) * m1
        tn = dn
        fi[i] = math.exp(-0.5 * dn * dn)
        wi[i] = dn / m1
    return ki.astype(np.uint32), wi.astype(np.float32), fi.astype(np.float32)


KI, WI, FI = _tables()


@numba.njit(cache=True, nogil=True)
def _ziggurat(words, out, start, tail, ki, wi, fi):
    """Fill ``out[start:]`` from the 32-bit ``words``. Returns (next index of ``out``, pending
    tail): when the words run out inside the tail's loop, the draw ``out[i]`` stays in that loop
    with the next words (``tail``: -1 none, else the sign bit of the pending draw)."""
    n_words = words.size
    w = 0
    i = start
    inv24 = np.float32(1.0 / 16777216.0)
    r_f = np.float32(R)
    inv_r = np.float32(1.0 / R)
    while i < out.size:
        if tail < 0:
            if n_words - w < 2:  # a word for the layer and one for a wedge's test
                return i, -1
            r = words[w]
            w += 1
            idx = r & 0xFF
            rabs = (r >> 9) & 0x7FFFFF
            x = np.float32(rabs) * wi[idx]
            if (r >> 8) & 1:
                x = -x
            if rabs < ki[idx]:
                out[i] = x
                i += 1
                continue
            if idx != 0:  # a wedge: accept under the density, else start over
                u = np.float32(words[w] >> 8) * inv24
                w += 1
                if (fi[idx - 1] - fi[idx]) * u + fi[idx] < math.exp(-0.5 * x * x):
                    out[i] = x
                    i += 1
                continue
            tail = (rabs >> 8) & 1
        # the tail beyond R: Marsaglia's exponential method, 2 words a try, until one is accepted
        while True:
            if n_words - w < 2:
                return i, tail
            u1 = np.float32(words[w] >> 8) * inv24
            u2 = np.float32(words[w + 1] >> 8) * inv24
            w += 2
            xx = -inv_r * np.float32(math.log1p(-u1))
            yy = -np.float32(math.log1p(-u2))
            if yy + yy > xx * xx:
                out[i] = -(r_f + xx) if tail else r_f + xx
                i += 1
                tail = -1
                break
    return i, -1


def standard_normal(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` standard normal float32 draws from ``rng``'s bit generator (its raw 64-bit words,
    each two 32-bit words, low half first); the generator advances by the words taken."""
    out = np.empty(int(n), dtype=np.float32)
    i, tail = 0, -1
    while i < out.size:
        need = out.size - i
        words = rng.bit_generator.random_raw(need // 2 + need // 64 + 8).view(np.uint32)
        i, tail = _ziggurat(words, out, i, tail, KI, WI, FI)
    return out
