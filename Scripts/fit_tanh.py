"""The polynomial of ck_tanhf (CKernels/src/ck_math.h) for |x| < 0.625.

tanh x = x + x^3 P(x^2); P of degree 4 is a least-squares fit of
(tanh(x)/x - 1)/x^2 on 4000 Chebyshev nodes in s = x^2, weighted by s (the
error of P enters tanh scaled by x^2 relative to 1). Prints the coefficients,
constant term first, as floats, and the truncation error in ulp.

    python3 Scripts/fit_tanh.py
"""
import numpy as np

T, DEGREE, NODES = 0.625, 4, 4000
S = T * T
k = np.arange(NODES)
s = S * (1 - np.cos(np.pi * (k + 0.5) / NODES)) / 2
x = np.sqrt(s)
g = (np.tanh(x) / x - 1) / s
V = np.vander(s, DEGREE + 1, increasing=True)
c, *_ = np.linalg.lstsq(V * s[:, None], g * s, rcond=None)
xs = np.linspace(1e-4, T, 20001)
approx = xs + xs * xs * xs * np.polyval(c[::-1], xs * xs)
print("coefficients:", [float(np.float32(v)) for v in c])
print("truncation: %.3f ulp" % (np.max(np.abs(approx / np.tanh(xs) - 1)) / 2**-24))
