"""Re-derive the Mills-ratio rational of ``crossmargin.pricing._vecmath`` (needs mpmath).

    python -m tests.pricing.fit_mills [--points 1500] [--iterations 40]

Fits ``M(x) = N(-x)/n(x) ~ P_9(x) / Q_10(x)`` on ``[0, 38]`` for minimal relative error:
linearized least squares (the unknowns are the coefficients of ``P`` and ``Q``, ``q_0 = 1``;
residual ``(P - M Q) / (M Q_prev)``, the previous iterate's ``Q`` making it relative, as in
Sanathanan-Koerner), with Lawson's reweighting (weights multiplied by the absolute error) from
the 6th iteration on, which drives the least-squares solution towards the minimax one. All in
40-digit arithmetic on Chebyshev nodes. Prints the maximal relative error and the coefficients.
Takes several minutes.
"""

from __future__ import annotations

import argparse

import mpmath as mp

DEGREE_P, DEGREE_Q, X_MAX = 9, 10, 38.0


def mills(x: mp.mpf) -> mp.mpf:
    """N(-x)/n(x) = sqrt(pi/2) exp(x^2/2) erfc(x/sqrt 2), in the current mpmath precision."""
    return mp.sqrt(mp.pi / 2) * mp.exp(x * x / 2) * mp.erfc(x / mp.sqrt(2))


def horner(coefficients: list[mp.mpf], x: mp.mpf) -> mp.mpf:
    result = mp.mpf(0)
    for c in reversed(coefficients):
        result = result * x + c
    return result


def fit(points: int, iterations: int) -> tuple[list[float], list[float], float]:
    mp.mp.dps = 40
    xs = [X_MAX * (1 - mp.cos(mp.pi * (i + mp.mpf(0.5)) / points)) / 2 for i in range(points)]
    ms = [mills(x) for x in xs]
    lawson = [mp.mpf(1)] * points
    q_prev = [mp.mpf(1)] * points
    n_unknowns = DEGREE_P + 1 + DEGREE_Q
    p: list[mp.mpf] = []
    q: list[mp.mpf] = []
    worst = mp.mpf(0)
    for iteration in range(iterations):
        a = mp.matrix(points, n_unknowns)
        b = mp.matrix(points, 1)
        for i, (x, m) in enumerate(zip(xs, ms, strict=True)):
            scale = mp.sqrt(lawson[i]) / (m * q_prev[i])
            power = mp.mpf(1)
            for j in range(DEGREE_P + 1):
                a[i, j] = power * scale
                power *= x
            power = x
            for j in range(DEGREE_Q):
                a[i, DEGREE_P + 1 + j] = -m * power * scale
                power *= x
            b[i] = m * scale
        solution = mp.qr_solve(a, b)[0]
        p = [solution[j] for j in range(DEGREE_P + 1)]
        q = [mp.mpf(1)] + [solution[DEGREE_P + 1 + j] for j in range(DEGREE_Q)]
        q_prev = [horner(q, x) for x in xs]
        errors = [(horner(p, x) / qx - m) / m for x, m, qx in zip(xs, ms, q_prev, strict=True)]
        worst = max(abs(e) for e in errors)
        if iteration >= 5:
            lawson = [w * abs(e) for w, e in zip(lawson, errors, strict=True)]
            total = sum(lawson)
            lawson = [w / total * points for w in lawson]
    return [float(c) for c in p], [float(c) for c in q], float(worst)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1500)
    parser.add_argument("--iterations", type=int, default=40)
    args = parser.parse_args()
    p, q, worst = fit(args.points, args.iterations)
    print(f"max relative error of the rational (exact arithmetic): {worst:.3e}")
    print("P =", p)
    print("Q =", q)


if __name__ == "__main__":
    main()
