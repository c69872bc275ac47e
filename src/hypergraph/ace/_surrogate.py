"""The surrogate: a Gaussian process over categorical combinations, main effects + pairs.

In weight space the model is Bayesian linear regression on one-hot features::

    f(x) = b + sum_s w[s, x_s] + sum_{s<t} v[s, t, x_s, x_t]
    b ~ N(0, bias),  w[s, .] ~ N(0, main * r_s / S),  v[s, t, ., .] ~ N(0, pair * r_s r_t / P)

with ``S`` slots and ``P = S(S-1)/2`` pairs, ``r_s`` a relevance per slot, and Gaussian noise.
Its kernel only depends on which slots two combinations share (``m_s = [x_s == x'_s]``)::

    k(x, x') = bias + main / S * sum_s r_s m_s + pair / P * e2(r * m)

(``e2`` is the second elementary symmetric polynomial, ``((sum z)^2 - sum z^2) / 2``), so the
model fits and predicts in function space (cost grows with observations, not with features),
while posterior samples and effects come from the weight view. The group variances, the
relevances and the noise are set by maximising the marginal likelihood (with weak log-normal
priors, i.e. empirical Bayes / MAP-II) on standardised scores.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import minimize

__all__ = ["AdditiveGP"]

# Log-normal priors on the hyperparameters (mean, std of the log), scores standardised.
_PRIORS: dict[str, tuple[float, float]] = {
    "bias": (math.log(0.1), 1.5),
    "main": (math.log(1.0), 1.0),
    "pair": (math.log(0.2), 1.5),
    "noise": (math.log(0.05), 1.5),
    "rel": (0.0, 1.0),
}
_NOISE_FLOOR = 1e-6


class AdditiveGP:
    """GP regression on categorical codes with a main-effects + pairwise-interactions kernel.

    Args:
        sizes: Number of choices per slot.
        interactions: Model pairwise interactions (``False``: main effects only).
    """

    def __init__(self, sizes: list[int], interactions: bool = True) -> None:
        self.sizes = list(sizes)
        self.interactions = interactions
        S = len(sizes)
        self.n_pairs = max(1, S * (S - 1) // 2)
        # log hyperparameters: bias, main, pair, noise, rel_1..rel_S
        self.theta = np.array([_PRIORS["bias"][0], _PRIORS["main"][0], _PRIORS["pair"][0],
                               _PRIORS["noise"][0], *([0.0] * S)])
        self.X = np.zeros((0, S), dtype=np.int64)
        self.y = np.zeros(0)
        self.y_mean = 0.0
        self.y_std = 1.0
        self._chol: Any = None
        self._alpha = np.zeros(0)

    # ------------------------------------------------------------------ kernel
    def _parts(self, theta: np.ndarray) -> tuple[float, float, float, float, np.ndarray]:
        e = np.exp(theta)
        S = len(self.sizes)
        pair = e[2] / self.n_pairs if self.interactions and S > 1 else 0.0
        return e[0], e[1] / S, pair, e[3] + _NOISE_FLOOR, e[4:]

    def cross(self, A: np.ndarray, B: np.ndarray, theta: np.ndarray | None = None) -> np.ndarray:
        """Kernel matrix between codes ``A`` (n, S) and ``B`` (m, S), noise excluded."""
        bias, main, pair, _, rel = self._parts(self.theta if theta is None else theta)
        Z = np.zeros((len(A), len(B)))
        Q = np.zeros((len(A), len(B)))
        for s in range(len(self.sizes)):
            M = (A[:, s, None] == B[None, :, s]).astype(float)
            Z += rel[s] * M
            Q += rel[s] ** 2 * M
        return bias + main * Z + pair * 0.5 * (Z * Z - Q)

    def prior_var(self, theta: np.ndarray | None = None) -> float:
        """Prior variance of f at any combination (standardised scale)."""
        bias, main, pair, _, rel = self._parts(self.theta if theta is None else theta)
        return float(bias + main * rel.sum() + pair * 0.5 * (rel.sum() ** 2 - (rel**2).sum()))

    # ------------------------------------------------------------------ fitting
    def _nlp(self, theta: np.ndarray, Ms: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Negative log posterior of the hyperparameters and its gradient.

        ``Ms`` holds the match matrices of the observations, ``(S, n, n)``.
        """
        bias, main, pair, noise, rel = self._parts(theta)
        S, n, _ = Ms.shape
        Z = np.tensordot(rel, Ms, axes=1)
        Q = np.tensordot(rel * rel, Ms, axes=1)
        E2 = 0.5 * (Z * Z - Q)
        K = bias + main * Z + pair * E2 + noise * np.eye(n)
        try:
            cf = cho_factor(K, lower=True)
        except np.linalg.LinAlgError:
            return 1e10, np.zeros_like(theta)
        alpha = cho_solve(cf, y)
        logdet = 2.0 * np.log(np.diag(cf[0])).sum()
        nll = 0.5 * y @ alpha + 0.5 * logdet + 0.5 * n * math.log(2 * math.pi)
        W = np.outer(alpha, alpha) - cho_solve(cf, np.eye(n))  # d nll = -0.5 tr(W dK)
        grads = np.zeros_like(theta)
        grads[0] = -0.5 * bias * W.sum()
        grads[1] = -0.5 * main * (W * Z).sum()
        grads[2] = -0.5 * pair * (W * E2).sum() if pair > 0 else 0.0
        grads[3] = -0.5 * (noise - _NOISE_FLOOR) * np.trace(W)
        for s in range(S):
            dK = rel[s] * Ms[s] * (main + pair * (Z - rel[s] * Ms[s]))
            grads[4 + s] = -0.5 * (W * dK).sum()
        # priors
        means = np.array([_PRIORS["bias"][0], _PRIORS["main"][0], _PRIORS["pair"][0],
                          _PRIORS["noise"][0], *([_PRIORS["rel"][0]] * S)])
        stds = np.array([_PRIORS["bias"][1], _PRIORS["main"][1], _PRIORS["pair"][1],
                         _PRIORS["noise"][1], *([_PRIORS["rel"][1]] * S)])
        z = (theta - means) / stds
        nll += 0.5 * float(z @ z)
        grads += z / stds
        if not self.interactions:
            grads[2] = 0.0
        return float(nll), grads

    def fit(self, X: np.ndarray, y: np.ndarray, optimise: bool = True,
            restart: bool = True) -> None:
        """Condition on codes ``X`` (n, S) and scores ``y`` (larger is better or not: any).

        Args:
            X: Observed combinations as choice indices.
            y: Their scores (repeats of a combination are separate noisy observations).
            optimise: Re-fit the hyperparameters (warm-started from the current ones).
            restart: Also start the fit from the prior's centre and keep the better.
        """
        self.X = np.asarray(X, dtype=np.int64).reshape(-1, len(self.sizes))
        y = np.asarray(y, dtype=float)
        self.y_mean = float(y.mean()) if len(y) else 0.0
        std = float(y.std()) if len(y) > 1 else 0.0
        self.y_std = std if std > 1e-12 else 1.0
        self.y = (y - self.y_mean) / self.y_std
        if optimise and len(y) >= 2:
            starts = [self.theta.copy()]
            default = self.theta.copy()
            default[:4] = [_PRIORS[k][0] for k in ("bias", "main", "pair", "noise")]
            default[4:] = 0.0
            if restart and not np.allclose(default, starts[0]):
                starts.append(default)
            Ms = np.stack([(self.X[:, s, None] == self.X[None, :, s]).astype(float)
                           for s in range(len(self.sizes))])
            best: tuple[float, np.ndarray] | None = None
            for start in starts:
                res = minimize(self._nlp, start, args=(Ms, self.y), jac=True,
                               method="L-BFGS-B", bounds=[(-12.0, 5.0)] * len(start),
                               options={"maxiter": 50})
                if best is None or res.fun < best[0]:
                    best = (float(res.fun), np.asarray(res.x))
            assert best is not None
            self.theta = best[1]
        self._factor()

    def _factor(self) -> None:
        n = len(self.y)
        if n == 0:
            self._chol = None
            self._alpha = np.zeros(0)
            return
        noise = self._parts(self.theta)[3]
        K = self.cross(self.X, self.X) + noise * np.eye(n)
        self._chol = cho_factor(K + 1e-9 * np.eye(n), lower=True)
        self._alpha = cho_solve(self._chol, self.y)

    def with_fantasies(self, Xf: np.ndarray) -> AdditiveGP:
        """A copy also conditioned on ``Xf`` observed at their posterior mean (kriging believer).

        Keeps hyperparameters and the score scale; used for batches and pending combinations.
        """
        other = AdditiveGP(self.sizes, self.interactions)
        other.theta = self.theta.copy()
        other.y_mean, other.y_std = self.y_mean, self.y_std
        if len(Xf) == 0:
            other.X, other.y, other._chol, other._alpha = self.X, self.y, self._chol, self._alpha
            return other
        mean = self._mean_std_scaled(Xf, with_std=False)[0]
        other.X = np.concatenate([self.X, Xf])
        other.y = np.concatenate([self.y, mean])
        other._factor()
        return other

    # ------------------------------------------------------------------ prediction
    def _mean_std_scaled(self, Xs: np.ndarray, with_std: bool = True
                         ) -> tuple[np.ndarray, np.ndarray]:
        prior = self.prior_var()
        if len(self.y) == 0:
            return np.zeros(len(Xs)), np.full(len(Xs), math.sqrt(prior))
        Ks = self.cross(Xs, self.X)
        mean = Ks @ self._alpha
        if not with_std:
            return mean, np.zeros(len(Xs))
        V = solve_triangular(self._chol[0], Ks.T, lower=True)
        var = np.maximum(prior - (V * V).sum(axis=0), 1e-12)
        return mean, np.sqrt(var)

    def predict(self, Xs: np.ndarray, chunk: int = 20000) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std of f (noise excluded) at codes ``Xs``, in score units."""
        Xs = np.asarray(Xs, dtype=np.int64).reshape(-1, len(self.sizes))
        means, stds = [], []
        for i in range(0, len(Xs), chunk):
            m, s = self._mean_std_scaled(Xs[i:i + chunk])
            means.append(m)
            stds.append(s)
        if not means:
            return np.zeros(0), np.zeros(0)
        mean = np.concatenate(means) * self.y_std + self.y_mean
        return mean, np.concatenate(stds) * self.y_std

    @property
    def noise_std(self) -> float:
        """Learned observation noise std, in score units."""
        return math.sqrt(self._parts(self.theta)[3]) * self.y_std

    def sample(self, Xs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One joint posterior sample of f at codes ``Xs`` (score units), by Matheron's rule.

        Draws the weights from the prior, evaluates them at ``Xs`` and at the observations,
        and corrects with the posterior update of the residual: exact, and linear in ``len(Xs)``.
        """
        Xs = np.asarray(Xs, dtype=np.int64).reshape(-1, len(self.sizes))
        bias, main, pair, noise, rel = self._parts(self.theta)
        S = len(self.sizes)
        Xall = np.concatenate([Xs, self.X]) if len(self.X) else Xs
        f = np.full(len(Xall), rng.normal() * math.sqrt(bias))
        for s, n in enumerate(self.sizes):
            w = rng.normal(size=n) * math.sqrt(main * rel[s])
            f += w[Xall[:, s]]
        if pair > 0:
            for s in range(S):
                for t in range(s + 1, S):
                    v = rng.normal(size=(self.sizes[s], self.sizes[t])) * math.sqrt(
                        pair * rel[s] * rel[t])
                    f += v[Xall[:, s], Xall[:, t]]
        fs = f[:len(Xs)]
        if len(self.X):
            fo = f[len(Xs):]
            resid = self.y - fo - rng.normal(size=len(fo)) * math.sqrt(noise)
            fs = fs + self.cross(Xs, self.X) @ cho_solve(self._chol, resid)
        return fs * self.y_std + self.y_mean

    # ------------------------------------------------------------------ effects
    def main_effects(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per slot: mean and std of each choice's main effect, in score units.

        The effect of choice ``c`` of slot ``s`` is ``E[f | x_s = c] - E[f]`` under the uniform
        distribution over the full product (interactions averaged in), centred over choices.
        """
        _, main, pair, _, rel = self._parts(self.theta)
        out: list[tuple[np.ndarray, np.ndarray]] = []
        S = len(self.sizes)
        for s, C in enumerate(self.sizes):
            others = sum(rel[t] / self.sizes[t] for t in range(S) if t != s)
            A = rel[s] * (main + pair * others)
            if len(self.y) == 0:
                out.append((np.zeros(C), np.full(C, math.sqrt(A * (1 - 1 / C)))))
                continue
            U = A * ((self.X[:, s, None] == np.arange(C)[None, :]).astype(float) - 1.0 / C)
            mean = U.T @ self._alpha
            V = solve_triangular(self._chol[0], U, lower=True)
            var = np.maximum(A * (1 - 1 / C) - (V * V).sum(axis=0), 0.0)
            out.append((mean * self.y_std, np.sqrt(var) * self.y_std))
        return out

    def pair_scales(self) -> dict[tuple[int, int], float]:
        """Prior std of each slot pair's interaction (score units): which pairs the data uses."""
        _, _, pair, _, rel = self._parts(self.theta)
        S = len(self.sizes)
        return {(s, t): math.sqrt(pair * rel[s] * rel[t]) * self.y_std
                for s in range(S) for t in range(s + 1, S)}

    def hyper(self) -> dict[str, Any]:
        """The hyperparameters (natural scale, standardised scores) for reports and state."""
        bias, main, pair, noise, rel = self._parts(self.theta)
        return {"bias": float(bias), "main": float(main), "pair": float(pair),
                "noise": float(noise),
                "relevance": rel.tolist(), "theta": self.theta.tolist()}
