"""The ACE engine: ask which combinations to score next, tell it their scores.

``ACE`` keeps the observations (a combination can be scored several times: repeats are noisy
observations of one value), the combinations handed out and not yet told (pending), the
surrogate (:class:`~hypergraph.ace._surrogate.AdditiveGP`) and the random generator; its whole
state is JSON-able (:meth:`ACE.to_dict`), so a campaign can be saved and resumed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import norm

from hypergraph.ace._space import Combo, Space
from hypergraph.ace._surrogate import AdditiveGP
from hypergraph.exceptions import ConfigError, DataError, InvalidParameterError
from hypergraph.logging import get_logger

__all__ = ["ACE", "ACQUISITIONS"]

logger = get_logger(__name__)

#: Acquisition functions ``ask`` can use.
ACQUISITIONS = ("thompson", "ucb", "ei", "greedy")
_OBJECTIVES = ("score", "score_per_cost")
_STATE_VERSION = 1

ComboLike = Mapping[str, Any] | Sequence[Any]


class ACE:
    """Adaptive Combination Engine: predicts every combination's score and proposes the next.

    Args:
        space: The slots and the valid combinations.
        seed: Seed of every random draw (same seed, same calls -> same proposals).
        acquisition: ``"ucb"`` (default: mean + ``beta`` std), ``"thompson"`` (a joint
            posterior sample per proposal), ``"ei"`` (expected improvement) or ``"greedy"``
            (best predicted mean, a random untried combination with probability ``epsilon``).
        maximize: Larger scores are better (``False``: smaller, e.g. a loss).
        n_init: Proposals made before the surrogate is used: spread out so that every choice of
            every slot appears early (default ``min(5, number of valid combinations)``).
        interactions: Model pairwise interactions between slots (``False``: main effects only).
        beta: Exploration weight of ``"ucb"``.
        epsilon: Probability of a random proposal under ``"greedy"``.
        objective: ``"score"``, or ``"score_per_cost"``: the acquisition's gain over the best
            score so far divided by the predicted cost (from the ``cost`` given to :meth:`tell`).
        repeats: Allow proposing combinations already scored (re-scoring noisy ones) while
            untried ones remain. Without it, scored combinations come back only once every valid
            combination has been scored.
        max_candidates: Candidates scored per proposal when the space is too big to enumerate.

    Raises:
        ConfigError: an unknown acquisition or objective.
        InvalidParameterError: a negative ``n_init``, ``beta`` or ``epsilon`` out of range.
    """

    def __init__(
        self,
        space: Space,
        seed: int | None = None,
        *,
        acquisition: str = "ucb",
        maximize: bool = True,
        n_init: int | None = None,
        interactions: bool = True,
        beta: float = 2.0,
        epsilon: float = 0.1,
        objective: str = "score",
        repeats: bool = False,
        max_candidates: int = 20000,
    ) -> None:
        if acquisition not in ACQUISITIONS:
            raise ConfigError(f"Unknown ACE acquisition '{acquisition}'. Valid choices: "
                              f"{', '.join(ACQUISITIONS)}.")
        if objective not in _OBJECTIVES:
            raise ConfigError(f"Unknown ACE objective '{objective}'. Valid choices: "
                              f"{', '.join(_OBJECTIVES)}.")
        if n_init is not None and n_init < 0:
            raise InvalidParameterError(f"n_init must be >= 0. Got {n_init} instead.")
        if not 0.0 <= epsilon <= 1.0:
            raise InvalidParameterError(f"epsilon must be in [0, 1]. Got {epsilon} instead.")
        if beta < 0:
            raise InvalidParameterError(f"beta must be >= 0. Got {beta} instead.")
        self.space = space
        self.seed = seed
        self.acquisition = acquisition
        self.maximize = maximize
        self.n_init = n_init
        self.interactions = interactions
        self.beta = beta
        self.epsilon = epsilon
        self.objective = objective
        self.repeats = repeats
        self.max_candidates = max_candidates
        self.rng_ = np.random.default_rng(seed)
        self.X_ = np.zeros((0, len(space.slots)), dtype=np.int64)
        self.scores_: list[float] = []
        self.costs_: list[float | None] = []
        self.pending_: list[tuple[int, ...]] = []
        self.model_ = AdditiveGP(space.sizes, interactions)
        self.cost_model_: AdditiveGP | None = None
        self._fitted_n = -1
        self._opt_n = 0

    # ------------------------------------------------------------------ observations
    def tell(self, combo: ComboLike, score: float, cost: float | None = None) -> None:
        """Record the score of a combination (and, optionally, what it cost, e.g. seconds).

        Telling removes one pending copy of the combination. Scoring a combination again adds
        an observation: the surrogate treats repeats as noisy measurements of one value.

        Raises:
            DataError: a NaN or infinite score, or a cost that is not a positive number.
        """
        code = self.space.encode(combo)
        score = float(score)
        if not math.isfinite(score):
            raise DataError(f"The score of {self.space.decode(code)} is {score}; ACE needs a "
                            "finite number (drop failed runs, or give them a bad finite score).")
        if cost is not None and (not math.isfinite(float(cost)) or float(cost) <= 0):
            raise DataError(f"The cost of {self.space.decode(code)} is {cost}; it must be a "
                            "positive number.")
        self.X_ = np.concatenate([self.X_, code[None, :]])
        self.scores_.append(score)
        self.costs_.append(None if cost is None else float(cost))
        self.forget(code)

    def forget(self, combo: ComboLike | np.ndarray) -> None:
        """Drop one pending copy of ``combo`` (a run that failed or was cancelled)."""
        key = tuple(int(i) for i in (combo if isinstance(combo, np.ndarray)
                                     else self.space.encode(combo)))
        if key in self.pending_:
            self.pending_.remove(key)

    @property
    def n_observations(self) -> int:
        """Number of scores told."""
        return len(self.scores_)

    def _y(self) -> np.ndarray:
        y = np.asarray(self.scores_, dtype=float)
        return y if self.maximize else -y

    def _fit(self) -> None:
        n = len(self.scores_)
        if self._fitted_n == n:
            return
        # hyperparameters: re-fitted at every observation while few, then every ~10% more data
        optimise = n <= 30 or n >= self._opt_n + max(1, n // 10)
        self._refit(optimise=optimise, restart=(n <= 30 and n % 5 == 0) or n > 30)
        if optimise:
            self._opt_n = n

    def _refit(self, optimise: bool, restart: bool = True) -> None:
        self.model_.fit(self.X_, self._y(), optimise=optimise, restart=restart)
        costs = [(x, c) for x, c in zip(self.X_, self.costs_, strict=True) if c is not None]
        if costs:
            if self.cost_model_ is None:
                self.cost_model_ = AdditiveGP(self.space.sizes, self.interactions)
            self.cost_model_.fit(np.array([x for x, _ in costs]),
                                 np.log([c for _, c in costs]), optimise=optimise,
                                 restart=restart)
        self._fitted_n = len(self.scores_)

    # ------------------------------------------------------------------ predictions
    def predict(self, combos: Sequence[ComboLike]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted score (posterior mean) and its uncertainty (std) for each combination.

        The std is that of the combination's true mean score (observation noise excluded).
        """
        codes = np.array([self.space.encode(c) for c in combos], dtype=np.int64).reshape(
            -1, len(self.space.slots))
        self._fit()
        mean, std = self.model_.predict(codes)
        return (mean if self.maximize else -mean), std

    def predict_cost(self, combos: Sequence[ComboLike]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted cost (median, ``exp`` of the log-cost mean) and the log-cost std.

        Raises:
            DataError: no cost has been told yet.
        """
        self._fit()
        if self.cost_model_ is None:
            raise DataError("No cost was told to ACE yet (tell(combo, score, cost=...)).")
        codes = np.array([self.space.encode(c) for c in combos], dtype=np.int64).reshape(
            -1, len(self.space.slots))
        mean, std = self.cost_model_.predict(codes)
        return np.exp(mean), std

    def effects(self) -> dict[str, Any]:
        """Which slot and which choice matters, with uncertainty.

        Returns:
            ``{"main": {slot: {choice: {"mean": m, "std": s}}}, "importance": {slot: v},
            "interactions": {"a x b": v}, "noise_std": n}``. A choice's effect is how much
            it moves the expected score from the average (over all combinations of the full
            product, interactions averaged in), in score units; a slot's importance is the std
            of its choices' effects; an interaction's value is the learned prior std of that
            pair's interaction terms (how much the model lets the pair interact).
        """
        self._fit()
        sign = 1.0 if self.maximize else -1.0
        main: dict[str, dict[str, dict[str, float]]] = {}
        importance: dict[str, float] = {}
        for (slot, choices), (mean, std) in zip(self.space.slots.items(),
                                                self.model_.main_effects(), strict=True):
            main[slot] = {c: {"mean": float(sign * m), "std": float(s)}
                          for c, m, s in zip(choices, mean, std, strict=True)}
            importance[slot] = float(np.std(mean))
        names = self.space.names
        inter = {f"{names[s]} x {names[t]}": float(v)
                 for (s, t), v in self.model_.pair_scales().items()}
        return {"main": main, "importance": importance, "interactions": inter,
                "noise_std": float(self.model_.noise_std) if self.scores_ else None}

    def ranking(self, k: int | None = None, untried_only: bool = False) -> list[dict[str, Any]]:
        """Valid combinations by predicted score, best first (enumerable spaces only).

        Each entry: ``combo``, ``mean``, ``std``, ``n`` (times scored) and ``observed`` (mean of
        its scores, or ``None``).
        """
        codes = self.space.valid_codes()
        self._fit()
        mean, std = self.model_.predict(codes)
        seen: dict[tuple[int, ...], list[float]] = {}
        for x, s in zip(self.X_, self.scores_, strict=True):
            seen.setdefault(tuple(int(i) for i in x), []).append(s)
        order = np.argsort(-mean, kind="stable")
        sign = 1.0 if self.maximize else -1.0
        out = []
        for i in order:
            key = tuple(int(v) for v in codes[i])
            if untried_only and key in seen:
                continue
            obs = seen.get(key)
            out.append({"combo": self.space.decode(codes[i]), "mean": float(sign * mean[i]),
                        "std": float(std[i]), "n": len(obs or []),
                        "observed": float(np.mean(obs)) if obs else None})
            if k is not None and len(out) >= k:
                break
        return out

    # ------------------------------------------------------------------ proposals
    def _candidates(self, taken: set[tuple[int, ...]]) -> np.ndarray:
        """Valid codes not in ``taken`` (all of them if the space is enumerable)."""
        if self.space.enumerable:
            codes = self.space.valid_codes()
        else:
            parts = [self.space.sample_codes(self.rng_, self.max_candidates)]
            if len(self.X_):  # one-slot moves around the best observed
                y = self._y()
                for i in np.argsort(-y)[:10]:
                    for s, n in enumerate(self.space.sizes):
                        moved = np.repeat(self.X_[i][None, :], n, axis=0)
                        moved[:, s] = np.arange(n)
                        parts.append(np.array([m for m in moved if self.space._valid_code(m)],
                                              dtype=np.int64).reshape(-1, len(self.space.sizes)))
            codes = np.unique(np.concatenate(parts), axis=0)
        if not taken:
            return codes
        keep = np.array([tuple(int(v) for v in c) not in taken for c in codes], dtype=bool)
        return codes[keep]

    def ask(self, n: int = 1) -> list[Combo]:
        """Propose ``n`` combinations to score next, as a diverse batch.

        Combinations still pending (asked, not told) and those already scored are not proposed
        while untried ones remain (unless ``repeats``); within a batch each pick is conditioned
        on the previous picks and the pending ones as if they had scored their predicted mean
        (kriging believer), so a batch spreads out. Proposals are marked pending until told.

        Raises:
            InvalidParameterError: ``n < 1``.
        """
        if n < 1:
            raise InvalidParameterError(f"ask needs n >= 1. Got {n} instead.")
        out: list[Combo] = []
        picked: list[tuple[int, ...]] = []
        for _ in range(n):
            code = self._ask_one(picked)
            if code is None:
                break
            key = tuple(int(v) for v in code)
            picked.append(key)
            self.pending_.append(key)
            out.append(self.space.decode(code))
        return out

    def _ask_one(self, picked: list[tuple[int, ...]]) -> np.ndarray | None:
        scored = {tuple(int(v) for v in x) for x in self.X_}
        busy = set(self.pending_) | set(picked)
        taken = busy if self.repeats else busy | scored
        cands = self._candidates(taken)
        if len(cands) == 0:  # every valid combination scored or busy: re-score
            cands = self._candidates(busy)
            if len(cands) == 0:
                cands = self._candidates(set())
            if len(cands) == 0:
                return None
        n_init = self.n_init if self.n_init is not None else 5
        if len(self.scores_) < n_init or len(self.scores_) < 2:
            return self._spread_pick(cands)
        self._fit()
        model = self.model_
        fantasies = [*self.pending_, *[p for p in picked if p not in self.pending_]]
        if fantasies:
            model = model.with_fantasies(np.array(fantasies, dtype=np.int64))
        if self.acquisition == "greedy":
            if self.rng_.random() < self.epsilon:
                return cands[self.rng_.integers(len(cands))]
            value = model.predict(cands)[0]
        elif self.acquisition == "thompson":
            value = model.sample(cands, self.rng_)
        else:
            mean, std = model.predict(cands)
            if self.acquisition == "ucb":
                value = mean + self.beta * std
            else:
                best = float(np.max(self._y()))
                z = (mean - best) / np.maximum(std, 1e-12)
                value = (mean - best) * norm.cdf(z) + std * norm.pdf(z)
        if self.objective == "score_per_cost" and self.cost_model_ is not None:
            cost = np.exp(self.cost_model_.predict(cands)[0])
            gain = value if self.acquisition == "ei" else value - float(np.max(self._y()))
            if np.any(gain > 0):
                value = np.maximum(gain, 0.0) / cost
        return cands[int(np.argmax(value))]

    def _spread_pick(self, cands: np.ndarray) -> np.ndarray:
        """A candidate far (in shared choices) from everything scored or pending; ties random."""
        others = [*(tuple(int(v) for v in x) for x in self.X_), *self.pending_]
        if not others:
            return cands[self.rng_.integers(len(cands))]
        prev = np.array(others, dtype=np.int64)
        # prefer candidates using choices seen least so far, then far from the others
        counts = [np.bincount(prev[:, s], minlength=n) for s, n in enumerate(self.space.sizes)]
        rarity = -sum(counts[s][cands[:, s]] for s in range(len(self.space.sizes)))
        shared = np.zeros(len(cands))
        for chunk in range(0, len(prev), 256):
            block = prev[chunk:chunk + 256]
            same = (cands[:, None, :] == block[None, :, :]).sum(axis=2)
            shared = np.maximum(shared, same.max(axis=1))
        value = rarity * 10.0 - shared + self.rng_.random(len(cands)) * 0.5
        return cands[int(np.argmax(value))]

    # ------------------------------------------------------------------ state
    def to_dict(self) -> dict[str, Any]:
        """The whole state, JSON-able (a ``constraint`` callable of the space is not kept)."""
        return {
            "version": _STATE_VERSION,
            "space": self.space.to_dict(),
            "config": {"seed": self.seed, "acquisition": self.acquisition,
                       "maximize": self.maximize, "n_init": self.n_init,
                       "interactions": self.interactions, "beta": self.beta,
                       "epsilon": self.epsilon, "objective": self.objective,
                       "repeats": self.repeats, "max_candidates": self.max_candidates},
            "observations": [{"combo": self.space.decode(x), "score": s, "cost": c}
                             for x, s, c in zip(self.X_, self.scores_, self.costs_,
                                                strict=True)],
            "pending": [self.space.decode(p) for p in self.pending_],
            "theta": self.model_.theta.tolist(),
            "fitted": self._fitted_n == len(self.scores_),
            "opt_n": self._opt_n,
            "cost_theta": None if self.cost_model_ is None else self.cost_model_.theta.tolist(),
            "rng": self.rng_.bit_generator.state,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any],
                  constraint: Callable[[Combo], bool] | None = None) -> ACE:
        """Rebuild an engine from :meth:`to_dict` (give the space's ``constraint`` again).

        Raises:
            ConfigError: a state of another version or a malformed state.
        """
        try:
            if data.get("version") != _STATE_VERSION:
                raise ConfigError(f"ACE state version {data.get('version')} is not supported "
                                  f"(this HyperGraph reads version {_STATE_VERSION}).")
            space = Space.from_dict(data["space"], constraint=constraint)
            ace = cls(space, **data["config"])
            for obs in data["observations"]:
                ace.tell(obs["combo"], obs["score"], obs.get("cost"))
            ace.pending_ = [tuple(int(v) for v in space.encode(p)) for p in data["pending"]]
            ace.model_.theta = np.array(data["theta"], dtype=float)
            if data.get("cost_theta") is not None:
                ace.cost_model_ = AdditiveGP(space.sizes, ace.interactions)
                ace.cost_model_.theta = np.array(data["cost_theta"], dtype=float)
            if data.get("fitted") and ace.scores_:  # same fit as when saved, no re-optimising
                ace._refit(optimise=False)
                ace._fitted_n = len(ace.scores_)
            ace._opt_n = int(data.get("opt_n", 0))
            ace.rng_.bit_generator.state = data["rng"]
        except (KeyError, TypeError) as err:
            raise ConfigError(f"Malformed ACE state: missing or bad field {err}.") from None
        return ace

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: str | Path, constraint: Callable[[Combo], bool] | None = None) -> ACE:
        """Read an engine saved by :meth:`save`.

        Raises:
            ConfigError: the file is missing or not an ACE state.
        """
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(f"Cannot read the ACE state '{path}': {err}.") from None
        return cls.from_dict(data, constraint=constraint)
