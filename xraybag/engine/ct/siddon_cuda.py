"""The Siddon projector of :mod:`xraybag.engine.ct.project` as a CUDA kernel (cupy backend).

One thread per ray, the same traversal and arithmetic as the numba reference (``_siddon``): mode 0
integrates a volume along the ray into the sinogram, mode 1 scatters a sinogram value along the
ray into the volume with ``atomicAdd`` (the exact transpose). Compiled by cupy on first use.
"""

from __future__ import annotations

_CUDA_SRC = r"""
extern "C" {

__device__ __forceinline__ double ray_setup(const double* src, const double* c, const double* eu,
        int k, double uj, double vi, double sdd, int curved,
        double* dx, double* dy, double* dz)
{
    double hx, hy, hz;
    if (curved) {
        double g = uj / sdd, cg = cos(g), sg = sin(g);
        hx = sdd * (cg * c[3*k] + sg * eu[3*k]);
        hy = sdd * (cg * c[3*k+1] + sg * eu[3*k+1]);
        hz = sdd * (cg * c[3*k+2] + sg * eu[3*k+2]);
    } else {
        hx = sdd * c[3*k] + uj * eu[3*k];
        hy = sdd * c[3*k+1] + uj * eu[3*k+1];
        hz = sdd * c[3*k+2] + uj * eu[3*k+2];
    }
    double px = src[3*k] + hx, py = src[3*k+1] + hy, pz = src[3*k+2] + hz + vi;
    double ax = px - src[3*k], ay = py - src[3*k+1], az = pz - src[3*k+2];
    double L = sqrt(ax*ax + ay*ay + az*az);
    *dx = ax / L; *dy = ay / L; *dz = az / L;
    return L;
}

// mode 0: return sum(vol * len); mode 1: atomicAdd(out, val * len)
__device__ double siddon(const float* vol, float* out, int mode, float val,
        double sx, double sy, double sz, double dx, double dy, double dz, double tmax,
        double lox, double loy, double loz, double hx, double hy, double hz,
        long long nx, long long ny, long long nz)
{
    double s[3] = {sx, sy, sz}, d[3] = {dx, dy, dz}, lo[3] = {lox, loy, loz}, h[3] = {hx, hy, hz};
    long long n[3] = {nx, ny, nz};
    double t0 = 0.0, t1 = tmax;
    for (int a = 0; a < 3; ++a) {
        if (d[a] == 0.0) {
            if (s[a] < lo[a] || s[a] > lo[a] + n[a] * h[a]) return 0.0;
        } else {
            double ta = (lo[a] - s[a]) / d[a], tb = (lo[a] + n[a] * h[a] - s[a]) / d[a];
            if (ta > tb) { double q = ta; ta = tb; tb = q; }
            if (ta > t0) t0 = ta;
            if (tb < t1) t1 = tb;
        }
    }
    if (t1 <= t0) return 0.0;
    double tm = (t1 - t0 < 1e-9) ? 0.5 * (t0 + t1) : t0;
    long long idx[3]; int step[3]; double tnext[3];
    for (int a = 0; a < 3; ++a) {
        double p = s[a] + d[a] * tm;
        long long i = (long long)floor((p - lo[a]) / h[a]);
        if (i < 0) i = 0;
        if (i > n[a] - 1) i = n[a] - 1;
        idx[a] = i;
        if (d[a] > 0.0) { step[a] = 1; tnext[a] = (lo[a] + (i + 1) * h[a] - s[a]) / d[a]; }
        else if (d[a] < 0.0) { step[a] = -1; tnext[a] = (lo[a] + i * h[a] - s[a]) / d[a]; }
        else { step[a] = 0; tnext[a] = 1e300; }
    }
    double acc = 0.0, t = t0;
    while (true) {
        int a = 0;
        if (tnext[1] < tnext[a]) a = 1;
        if (tnext[2] < tnext[a]) a = 2;
        double te = tnext[a] < t1 ? tnext[a] : t1;
        double seg = te - t;
        if (seg > 0.0) {
            long long off = (idx[2] * ny + idx[1]) * nx + idx[0];
            if (mode == 0) acc += (double)vol[off] * seg;
            else atomicAdd(out + off, (float)(val * seg));
            t = te;
        }
        if (tnext[a] >= t1) break;
        idx[a] += step[a];
        if (idx[a] < 0 || idx[a] >= n[a]) break;
        if (step[a] > 0) tnext[a] = (lo[a] + (idx[a] + 1) * h[a] - s[a]) / d[a];
        else tnext[a] = (lo[a] + idx[a] * h[a] - s[a]) / d[a];
    }
    return acc;
}

__global__ void siddon_kernel(int mode, const float* vol, float* out, float* sino,
        const double* src, const double* c, const double* eu, const double* u, const double* v,
        long long V, long long R, long long C, double sdd, int curved,
        double lox, double loy, double loz, double hx, double hy, double hz,
        long long nx, long long ny, long long nz)
{
    long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= V * R * C) return;
    long long k = r / (R * C);
    long long rem = r - k * R * C;
    long long i = rem / C;
    long long j = rem - i * C;
    double dx, dy, dz;
    double L = ray_setup(src, c, eu, (int)k, u[j], v[i], sdd, curved, &dx, &dy, &dz);
    if (mode == 0) {
        sino[r] = (float)siddon(vol, out, 0, 0.0f, src[3*k], src[3*k+1], src[3*k+2],
                                dx, dy, dz, L, lox, loy, loz, hx, hy, hz, nx, ny, nz);
    } else {
        float val = sino[r];
        if (val != 0.0f)
            siddon(vol, out, 1, val, src[3*k], src[3*k+1], src[3*k+2],
                   dx, dy, dz, L, lox, loy, loz, hx, hy, hz, nx, ny, nz);
    }
}

}
"""

_KERNEL = None


def siddon_kernel():
    """The compiled ``siddon_kernel`` (a ``cupy.RawKernel``), built once per process."""
    global _KERNEL
    if _KERNEL is None:
        import cupy as cp

        _KERNEL = cp.RawKernel(_CUDA_SRC, "siddon_kernel")
    return _KERNEL
