"""``ACESampler``: ACE chooses the module slots of each Optuna trial, an inner sampler the rest.

The study's trials are the state: at the start of every trial the sampler rebuilds ACE from the
finished trials (their slot parameters and values; repeats of a combination, e.g. with other
hyperparameters, are noisy observations of it) and the running ones (pending), asks for one
combination and hands it to the trial as relative parameters. Every other parameter (the
hyperparameters of the chosen modules, conditional on them) is left to the inner sampler (TPE by
default). The surrogate's fitted hyperparameters are kept in the study's system attributes
(``ace:theta``) and the chosen combination in the trial's (``ace:combo``), so many workers on
one storage share the campaign and a restarted worker carries on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hypergraph.ace._engine import ACE
from hypergraph.ace._space import Combo, Space
from hypergraph.exceptions import ConfigError
from hypergraph.logging import get_logger

__all__ = ["ACESampler"]

logger = get_logger(__name__)

_COMBO_ATTR = "ace:combo"
_THETA_ATTR = "ace:theta"


class ACESampler(BaseSampler):
    """An Optuna sampler whose categorical slot parameters are chosen by ACE.

    Use it in any single-objective study whose objective calls
    ``trial.suggest_categorical(slot, choices)`` with the same choices as given here::

        sampler = ACESampler({"model": ["mlp", "logreg"], "traversal": ["uniform", "ivalue"]})
        study = optuna.create_study(sampler=sampler, direction="maximize")

    Args:
        slots: Slot parameter name -> its choices (as passed to ``suggest_categorical``).
        constraint: ``combo -> bool``; invalid combinations are never proposed.
        forbidden: Forbidden partial assignments (see :class:`~hypergraph.ace.Space`).
        space: A ready :class:`~hypergraph.ace.Space` instead of ``slots``/``constraint``/
            ``forbidden`` (e.g. ``Space.from_registry(...)``).
        inner: Sampler of every other parameter (default ``TPESampler(seed=seed)``).
        seed: Seed (the draw of trial ``k`` uses ``seed + k``: reproducible per study).
        repeats: Let ACE propose a combination again (with other hyperparameters) while
            untried ones remain; default ``True``, as scores of a combination vary with them.
        **ace_options: Further keyword arguments of :class:`~hypergraph.ace.ACE`
            (``acquisition``, ``n_init``, ``interactions``, ...).
    """

    def __init__(
        self,
        slots: Mapping[str, Sequence[str]] | None = None,
        *,
        constraint: Callable[[Combo], bool] | None = None,
        forbidden: Sequence[Mapping[str, str]] = (),
        space: Space | None = None,
        inner: BaseSampler | None = None,
        seed: int | None = None,
        repeats: bool = True,
        **ace_options: Any,
    ) -> None:
        if space is None:
            if slots is None:
                raise ConfigError("ACESampler needs slots (name -> choices) or a space.")
            space = Space(slots, constraint=constraint, forbidden=forbidden)
        self.space = space
        self.seed = seed
        self.repeats = repeats
        self.ace_options = ace_options
        self.inner = inner if inner is not None else TPESampler(seed=seed)
        ACE(space, seed=0, repeats=repeats, **ace_options)  # validate the options now
        self._rng = np.random.default_rng(seed)

    # ------------------------------------------------------------------ search space
    def infer_relative_search_space(self, study: Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        space: dict[str, BaseDistribution] = {
            name: CategoricalDistribution(choices) for name, choices in self.space.slots.items()}
        for name, dist in self.inner.infer_relative_search_space(study, trial).items():
            if name not in space:
                space[name] = dist
        return space

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if study._is_multi_objective():
            raise ConfigError("ACESampler supports single-objective studies only.")
        combo = self._ask(study, trial)
        rest = {k: v for k, v in search_space.items() if k not in self.space.slots}
        params: dict[str, Any] = dict(combo)
        if rest:
            params.update(self.inner.sample_relative(study, trial, rest))
        return params

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        if param_name in self.space.slots:
            logger.warning("Parameter '%s' is an ACE slot but was suggested with other "
                           "choices than the sampler's (%s); the inner sampler picks it.",
                           param_name, param_distribution)
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
        self._rng = np.random.default_rng()

    # ------------------------------------------------------------------ ACE
    def engine(self, study: Study, exclude_trial: int | None = None) -> ACE:
        """ACE rebuilt from the study's trials (finished: told; running: pending)."""
        maximize = study.direction == StudyDirection.MAXIMIZE
        seed = None if self.seed is None else self.seed + (exclude_trial or 0)
        ace = ACE(self.space, seed=seed, maximize=maximize, repeats=self.repeats,
                  **self.ace_options)
        theta = study._storage.get_study_system_attrs(study._study_id).get(_THETA_ATTR)
        if theta is not None and len(theta) == len(ace.model_.theta):
            ace.model_.theta = np.array(theta, dtype=float)
        states = (TrialState.COMPLETE, TrialState.RUNNING)
        for t in study.get_trials(deepcopy=False, states=states):
            if t.number == exclude_trial:
                continue
            combo = self._combo_of(t)
            if combo is None:
                continue
            if t.state == TrialState.COMPLETE and t.value is not None:
                if np.isfinite(t.value):
                    ace.tell(combo, float(t.value))
            elif t.state == TrialState.RUNNING:
                ace.pending_.append(tuple(int(v) for v in self.space.encode(combo)))
        return ace

    def report(self, study: Study, top: int = 20, max_candidates: int = 20000
               ) -> dict[str, Any]:
        """ACE's view of the study, for dashboards: untried combinations and the effects.

        Rebuilds ACE from the study's trials (as at a trial's start), fits it and predicts every
        valid combination (``max_candidates`` sampled ones when the space is too big to
        enumerate). Reads the study only: nothing is written back.

        Args:
            study: The study this sampler samples.
            top: Untried combinations to return, best predicted first.
            max_candidates: Combinations scored when the space is not enumerable.

        Returns:
            ``{"n_observations", "maximize", "slots": {slot: [choices]}, "n_untried",
            "untried": [{"combo", "mean", "std", "running"}], "best_observed": {"combo",
            "value"} | None, "effects": ACE.effects()}``. ``n_untried`` counts the valid
            (or, for a big space, sampled) combinations never scored; ``running`` marks an
            untried combination a running trial is scoring now.
        """
        ace = self.engine(study)
        effects = ace.effects()  # fits the surrogate
        space = self.space
        if space.enumerable:
            codes = space.valid_codes()
        else:
            rng = np.random.default_rng(self.seed)
            codes = np.unique(space.sample_codes(rng, max_candidates), axis=0)
        scored = {tuple(int(v) for v in x) for x in ace.X_}
        keep = np.array([tuple(int(v) for v in c) not in scored for c in codes], dtype=bool)
        codes = codes[keep]
        mean, std = ace.model_.predict(codes)
        if not ace.maximize:
            mean = -mean
        order = np.argsort(-mean if ace.maximize else mean, kind="stable")[:max(top, 0)]
        pending = set(ace.pending_)
        untried = [{"combo": space.decode(codes[i]), "mean": float(mean[i]),
                    "std": float(std[i]),
                    "running": tuple(int(v) for v in codes[i]) in pending} for i in order]
        best = None
        if ace.scores_:
            y = np.asarray(ace.scores_)
            i = int(np.argmax(y) if ace.maximize else np.argmin(y))
            best = {"combo": space.decode(ace.X_[i]), "value": float(y[i])}
        return {"n_observations": ace.n_observations, "maximize": ace.maximize,
                "slots": {k: list(v) for k, v in space.slots.items()},
                "n_untried": len(codes), "untried": untried, "best_observed": best,
                "effects": effects}

    def _combo_of(self, trial: FrozenTrial) -> Combo | None:
        names = self.space.names
        if all(n in trial.params for n in names):
            values = [str(trial.params[n]) for n in names]
        else:
            saved = trial.system_attrs.get(_COMBO_ATTR)
            if not isinstance(saved, dict) or not all(n in saved for n in names):
                return None
            values = [str(saved[n]) for n in names]
        try:
            combo = dict(zip(names, values, strict=True))
            self.space.encode(combo)
        except (ConfigError, KeyError):
            return None
        return combo

    def _ask(self, study: Study, trial: FrozenTrial) -> Combo:
        ace = self.engine(study, exclude_trial=trial.number)
        combo = ace.ask(1)[0]
        storage = study._storage
        storage.set_trial_system_attr(trial._trial_id, _COMBO_ATTR, combo)
        if ace.n_observations >= 2:
            storage.set_study_system_attr(study._study_id, _THETA_ATTR,
                                          [float(v) for v in ace.model_.theta])
        return combo
