"""Small-sample inference helpers for the impact designs (issue 18 item 9).

* :func:`hc2_bm` — an OLS coefficient with its HC2 standard error and Bell–McCaffrey degrees of
  freedom (Imbens & Kolesár 2016).
* :func:`prais_winsten` — the feasible-GLS transform for AR(1) errors (Prais & Winsten 1954).
* :func:`wild_cluster_bootstrap` — the restricted wild cluster bootstrap p-value of one
  coefficient (Cameron, Gelbach & Miller 2008) with Rademacher or Webb (2014) weights.

References
----------
Bell, R. M. & McCaffrey, D. F. (2002), "Bias reduction in standard errors for linear regression
with multi-stage samples", Survey Methodology 28(2). Imbens, G. W. & Kolesár, M. (2016), REStat
98(4). Prais, S. J. & Winsten, C. B. (1954), Cowles Commission Discussion Paper 383. Cameron,
A. C., Gelbach, J. B. & Miller, D. L. (2008), "Bootstrap-based improvements for inference with
clustered errors", REStat 90(3). Webb, M. D. (2014), "Reworking wild bootstrap based inference for
clustered errors", Queen's Economics Department WP 1315. MacKinnon, J. G. & Webb, M. D. (2017),
"Wild bootstrap inference for wildly different cluster sizes", J. Applied Econometrics 32(2).
"""

from __future__ import annotations

import itertools
import math

from cxmetrics.core import lazy

np = lazy.module("numpy")


def hc2_bm(X: np.ndarray, y: np.ndarray, j: int) -> tuple[float, float, float]:
    """OLS coefficient ``j`` with its HC2 standard error and Bell–McCaffrey degrees of freedom.

    HC2: Var(c'β) = Σ_i a_i² e_i² / (1 − h_ii) with a = c'(X'X)⁻¹X' (MacKinnon & White 1985).
    The degrees of freedom are Satterthwaite's for that quadratic form under homoskedastic errors,
    (Σλ)² / Σλ² with λ the eigenvalues of G'G, G = (I − H)·diag(a/√(1 − h)) (Bell & McCaffrey
    2002), the small-sample interval Imbens & Kolesár (2016) recommend.
    """
    XtXi = np.linalg.pinv(X.T @ X)
    A = XtXi @ X.T
    beta = A @ y
    e = y - X @ beta
    H = X @ A
    h = np.clip(np.diag(H), 0.0, 1 - 1e-9)
    a = A[j]
    se = math.sqrt(float(np.sum(a ** 2 * e ** 2 / (1 - h))))
    G = (np.eye(len(y)) - H) * (a / np.sqrt(1 - h))[None, :]
    lam = np.linalg.eigvalsh(G.T @ G)
    df = float(lam.sum() ** 2 / (lam ** 2).sum()) if (lam ** 2).sum() > 0 else float(len(y) - X.shape[1])
    return float(beta[j]), se, df


def prais_winsten(X: np.ndarray, y: np.ndarray, iters: int = 3) -> tuple[np.ndarray, np.ndarray, float]:
    """Iterated Prais–Winsten transform for AR(1) errors; returns (X*, y*, ρ).

    ρ is the lag-1 autocorrelation of the current residuals plus Kendall's (1954) small-sample bias
    correction (1 + 3ρ)/T, bounded to [0, 0.95]: negative autocorrelation is not modelled, which
    can only widen the interval. With ρ = 0 the transform is the identity.
    """
    T = len(y)
    rho = 0.0
    for _ in range(iters):
        Xs, ys = _pw_transform(X, y, rho)
        beta = np.linalg.lstsq(Xs, ys, rcond=None)[0]
        e = y - X @ beta
        ee = float(e @ e)
        if ee <= 1e-12 * max(float(y @ y), 1.0):  # an exact fit: no residual autocorrelation to estimate
            return X, y, 0.0
        r = float(e[1:] @ e[:-1]) / ee
        rho = float(np.clip(r + (1 + 3 * r) / T, 0.0, 0.95))
    Xs, ys = _pw_transform(X, y, rho)
    return Xs, ys, rho


def _pw_transform(X: np.ndarray, y: np.ndarray, rho: float) -> tuple[np.ndarray, np.ndarray]:
    if rho == 0.0:
        return X, y
    c = math.sqrt(1 - rho ** 2)
    return np.vstack([c * X[:1], X[1:] - rho * X[:-1]]), np.concatenate([c * y[:1], y[1:] - rho * y[:-1]])


#: Webb's (2014) six-point weights: ±√(1/2), ±1, ±√(3/2), each with probability 1/6.
WEBB = (-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5))
RADEMACHER = (-1.0, 1.0)


def _cluster_t(A: np.ndarray, j: int, X: np.ndarray, Y: np.ndarray, codes: np.ndarray, G: int, c: float):
    """Coefficient j and its CR1 t-statistic for every column of ``Y`` (one regression per column).
    ``A`` = (X'X)⁺X', the least-squares (minimum-norm) solution operator, computed once: every
    bootstrap column's coefficients are one matrix product, not a new factorisation."""
    B = A @ Y
    E = Y - X @ B
    beta_j = B[j]
    scores = np.zeros((G, Y.shape[1]))
    np.add.at(scores, codes, A[j][:, None] * E)
    se = np.sqrt(c * (scores ** 2).sum(axis=0))
    ok = se > 1e-10 * (np.abs(beta_j) + 1.0)  # an exact fit (rounding-level SE) has no t
    return beta_j, np.divide(beta_j, se, out=np.full_like(beta_j, np.nan), where=ok)


def wild_cluster_bootstrap(X: np.ndarray, y: np.ndarray, clusters, j: int, *, weights: str = "webb",
                           reps: int = 999, seed: int = 18, max_enumerate: int = 9999) -> dict:
    """Restricted wild cluster bootstrap (WCR) p-value for H0: β_j = 0 (Cameron, Gelbach & Miller 2008).

    ``X`` and ``y`` are already weighted (√w·X, √w·y for WLS). The restricted model (β_j = 0) gives
    fitted values ỹ and residuals ũ; each bootstrap sample is y* = ỹ + v_g·ũ with one weight v_g
    per cluster, Rademacher (±1) or Webb's six-point weights; the statistic is the CR1
    cluster-robust t of β_j. When the number of distinct weight vectors (2^G or 6^G) is at most
    ``max_enumerate`` every one is used (the exact bootstrap distribution); otherwise ``reps`` are
    drawn with the given seed. Returns p, the t statistic, the number of clusters and draws.

    With few clusters, and in particular one treated cluster, no cluster-robust method is reliable:
    the WCR test then under-rejects badly (MacKinnon & Webb 2017), so its p-value is evidence
    about the design rather than a usable test.
    """
    codes = np.unique(np.asarray(clusters), return_inverse=True)[1]
    G = int(codes.max()) + 1
    N, K = X.shape
    c = G / max(G - 1, 1) * (N - 1) / max(N - K, 1)
    A = np.linalg.pinv(X.T @ X) @ X.T
    b0, t0 = _cluster_t(A, j, X, y[:, None], codes, G, c)
    Xr = np.delete(X, j, axis=1)
    yr = Xr @ np.linalg.lstsq(Xr, y, rcond=None)[0]
    ur = y - yr
    pts = WEBB if weights == "webb" else RADEMACHER
    if len(pts) ** G <= max_enumerate:
        V = np.array(list(itertools.product(pts, repeat=G)))  # every weight vector, each equally likely
        how = f"all {len(V):,} weight vectors"
    else:
        V = np.random.default_rng(seed).choice(pts, size=(reps, G))
        how = f"{reps:,} draws, seed {seed}"
    Ystar = yr[:, None] + ur[:, None] * V.T[codes]
    _, tstar = _cluster_t(A, j, X, Ystar, codes, G, c)
    # an undefined t (zero cluster-robust SE) gives no p-value rather than p = 0
    p = float(np.mean(np.abs(tstar) >= abs(t0[0]) - 1e-12)) if np.isfinite(t0[0]) else float("nan")
    return {"p": p, "t": float(t0[0]), "estimate": float(b0[0]), "clusters": G, "draws": len(V),
            "weights": "Webb six-point" if weights == "webb" else "Rademacher", "how": how}
