"""The space ACE searches: named slots, each with its choices, and which combinations are valid.

A combination is one choice per slot (a ``dict`` slot -> choice). Validity comes from, in order:
an explicit list of allowed combinations (:meth:`Space.from_combinations`, used by replay), a list
of forbidden partial assignments, and a callable; :meth:`Space.from_registry` builds the callable
from the tags of registered modules (:func:`hypergraph.tags.problems`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from hypergraph.exceptions import ConfigError, UnknownNameError
from hypergraph.kinds import SEARCHED_KINDS

__all__ = ["Combo", "Space"]

#: One combination: slot name -> choice.
Combo = dict[str, str]

#: Spaces whose full product is at most this big are enumerated (every valid combination known).
MAX_ENUMERATE = 200_000


class Space:
    """Named slots with categorical choices, and the rule saying which combinations are valid.

    Args:
        slots: Slot name -> its choices (strings, distinct, at least one each). Order is kept.
        constraint: ``combo -> bool``; ``False`` marks an invalid combination.
        forbidden: Partial assignments (``{"model": "cnn", "dataset": "wine"}``): a combination
            containing all pairs of any of them is invalid.

    Raises:
        ConfigError: no slot, a slot without choices, or repeated choices.
    """

    def __init__(
        self,
        slots: Mapping[str, Sequence[str]],
        constraint: Callable[[Combo], bool] | None = None,
        forbidden: Iterable[Mapping[str, str]] = (),
    ) -> None:
        if not slots:
            raise ConfigError("An ACE space needs at least one slot.")
        self.slots: dict[str, list[str]] = {}
        for name, choices in slots.items():
            values = [str(c) for c in choices]
            if not values:
                raise ConfigError(f"Slot '{name}' of the ACE space has no choices.")
            if len(set(values)) != len(values):
                raise ConfigError(f"Slot '{name}' of the ACE space repeats a choice: {values}.")
            self.slots[str(name)] = values
        self.constraint = constraint
        self.forbidden: list[dict[str, str]] = [
            {str(k): str(v) for k, v in part.items()} for part in forbidden]
        for part in self.forbidden:
            for k, v in part.items():
                self._check_choice(k, v)
        self._allowed: np.ndarray | None = None  # explicit valid set (codes), from_combinations
        self._registry: dict[str, Any] | None = None  # how from_registry built this space
        self._valid_cache: np.ndarray | None = None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_combinations(cls, slots: Sequence[str],
                          combos: Iterable[Sequence[str] | Mapping[str, str]]) -> Space:
        """The space whose valid combinations are exactly ``combos`` (choices inferred).

        Args:
            slots: Slot names.
            combos: The allowed combinations, as tuples in slot order or dicts.
        """
        rows: list[tuple[str, ...]] = []
        for c in combos:
            if isinstance(c, Mapping):
                rows.append(tuple(str(c[s]) for s in slots))
            else:
                rows.append(tuple(str(v) for v in c))
        if not rows:
            raise ConfigError("An ACE space needs at least one allowed combination.")
        choices = {s: sorted({r[i] for r in rows}) for i, s in enumerate(slots)}
        space = cls(choices)
        codes = np.unique(np.array([space._encode_tuple(r) for r in rows], dtype=np.int64),
                          axis=0)
        space._allowed = codes
        return space

    @classmethod
    def from_registry(
        cls,
        kinds: Sequence[str] = SEARCHED_KINDS,
        allow: Mapping[str, Sequence[str]] | None = None,
        fixed: Mapping[str, str] | None = None,
    ) -> Space:
        """Slots over registered modules, valid when their tags fit (``tags.problems`` empty).

        Args:
            kinds: The module kinds that are slots (default: the searched kinds of
                :data:`hypergraph.kinds.RUN_KINDS`).
            allow: ``kind -> names`` allow-lists (default: every registered module of the kind).
            fixed: ``kind -> name`` modules that are part of every combination (e.g. the dataset)
                and take part in the tag check without being slots.

        Raises:
            UnknownNameError: an unknown kind or module name.
            ConfigError: no valid combination at all.
        """
        from hypergraph import registry, tags

        allow = {k: list(v) for k, v in (allow or {}).items()}
        fixed = dict(fixed or {})
        for kind in [*kinds, *allow, *fixed]:
            if kind not in registry.KINDS:
                raise UnknownNameError("module kind", kind, registry.KINDS)
        for kind in allow:
            if kind not in kinds:
                raise ConfigError(f"allow names kind '{kind}', which is not a slot "
                                  f"(slots: {', '.join(kinds)}).")
        slots: dict[str, list[str]] = {}
        for kind in kinds:
            names = allow.get(kind) or registry.names(kind)
            for name in names:
                registry.resolve(kind, name)  # unknown names fail with choices + closest
            slots[kind] = list(names)
        fixed_classes = {k: registry.resolve(k, v) for k, v in fixed.items()}

        def valid(combo: Combo) -> bool:
            classes = dict(fixed_classes)
            classes.update({k: registry.resolve(k, v) for k, v in combo.items()})
            return not tags.problems(classes)

        space = cls(slots, constraint=valid)
        space._registry = {"kinds": list(kinds), "allow": allow, "fixed": fixed}
        if space.size <= MAX_ENUMERATE and len(space.valid_codes()) == 0:
            raise ConfigError("No combination of the chosen modules is tag-compatible: "
                              + ", ".join(f"{k}={v}" for k, v in slots.items()))
        return space

    # ------------------------------------------------------------------ encoding
    @property
    def names(self) -> list[str]:
        """Slot names in order."""
        return list(self.slots)

    @property
    def sizes(self) -> list[int]:
        """Number of choices per slot."""
        return [len(c) for c in self.slots.values()]

    @property
    def size(self) -> int:
        """Size of the full product (valid or not)."""
        return math.prod(self.sizes)

    def _check_choice(self, slot: str, choice: str) -> int:
        if slot not in self.slots:
            raise UnknownNameError("ACE slot", slot, self.slots)
        try:
            return self.slots[slot].index(choice)
        except ValueError:
            raise UnknownNameError(f"choice of slot '{slot}'", choice, self.slots[slot]) from None

    def _encode_tuple(self, values: Sequence[str]) -> list[int]:
        return [self._check_choice(s, str(v)) for s, v in zip(self.slots, values, strict=True)]

    def encode(self, combo: Mapping[str, Any] | Sequence[Any]) -> np.ndarray:
        """Choice indices of ``combo`` (a dict slot -> choice, or values in slot order)."""
        if isinstance(combo, Mapping):
            missing = [s for s in self.slots if s not in combo]
            extra = [k for k in combo if k not in self.slots]
            if missing or extra:
                raise ConfigError(f"Combination {dict(combo)} does not match the slots "
                                  f"{self.names} (missing {missing}, unknown {extra}).")
            values: Sequence[Any] = [combo[s] for s in self.slots]
        else:
            values = list(combo)
            if len(values) != len(self.slots):
                raise ConfigError(f"Combination {values} has {len(values)} values for "
                                  f"{len(self.slots)} slots {self.names}.")
        return np.array(self._encode_tuple([str(v) for v in values]), dtype=np.int64)

    def decode(self, code: Sequence[int] | np.ndarray) -> Combo:
        """The combination (dict) of choice indices ``code``."""
        return {s: ch[int(i)] for (s, ch), i in zip(self.slots.items(), code, strict=True)}

    # ------------------------------------------------------------------ validity
    def _valid_code(self, code: np.ndarray) -> bool:
        if self._allowed is not None:
            return bool(np.any(np.all(self._allowed == code, axis=1)))
        combo = self.decode(code)
        for part in self.forbidden:
            if all(combo[k] == v for k, v in part.items()):
                return False
        return self.constraint is None or bool(self.constraint(combo))

    def is_valid(self, combo: Mapping[str, Any] | Sequence[Any]) -> bool:
        """Whether ``combo`` is a valid combination of this space."""
        return self._valid_code(self.encode(combo))

    @property
    def enumerable(self) -> bool:
        """Whether every valid combination can be listed (explicit set or a small product)."""
        return self._allowed is not None or self.size <= MAX_ENUMERATE

    def valid_codes(self) -> np.ndarray:
        """Every valid combination as choice indices, ``(n, slots)`` int64 (cached).

        Raises:
            ConfigError: the space is too big to enumerate (see :attr:`enumerable`).
        """
        if self._valid_cache is not None:
            return self._valid_cache
        if self._allowed is not None:
            self._valid_cache = self._allowed
            return self._allowed
        if not self.enumerable:
            raise ConfigError(f"The ACE space has {self.size} combinations, too many to list "
                              f"(limit {MAX_ENUMERATE}).")
        grid = np.array(list(itertools.product(*[range(n) for n in self.sizes])),
                        dtype=np.int64).reshape(-1, len(self.slots))
        mask = np.ones(len(grid), dtype=bool)
        for part in self.forbidden:
            hit = np.ones(len(grid), dtype=bool)
            for k, v in part.items():
                hit &= grid[:, self.names.index(k)] == self.slots[k].index(v)
            mask &= ~hit
        if self.constraint is not None:
            mask &= np.array([bool(m) and bool(self.constraint(self.decode(c)))
                              for c, m in zip(grid, mask, strict=True)], dtype=bool)
        self._valid_cache = grid[mask]
        return self._valid_cache

    def sample_codes(self, rng: np.random.Generator, n: int, max_tries: int = 50) -> np.ndarray:
        """Up to ``n`` valid combinations drawn uniformly (with repeats), as choice indices."""
        if self.enumerable:
            valid = self.valid_codes()
            return valid[rng.integers(0, len(valid), size=n)]
        out: list[np.ndarray] = []
        sizes = np.array(self.sizes)
        for _ in range(max_tries):
            cand = (rng.random((n, len(sizes))) * sizes).astype(np.int64)
            out.extend(c for c in cand if self._valid_code(c))
            if len(out) >= n:
                break
        return np.array(out[:n], dtype=np.int64).reshape(-1, len(self.slots))

    # ------------------------------------------------------------------ state
    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (a ``constraint`` callable is not kept, except the registry's)."""
        out: dict[str, Any] = {"slots": self.slots, "forbidden": self.forbidden}
        if self._allowed is not None:
            out["allowed"] = self._allowed.tolist()
        if self._registry is not None:
            out["registry"] = self._registry
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any],
                  constraint: Callable[[Combo], bool] | None = None) -> Space:
        """Rebuild a space from :meth:`to_dict` (pass the ``constraint`` callable again)."""
        if "registry" in data:
            reg = data["registry"]
            space = cls.from_registry(reg["kinds"], reg.get("allow"), reg.get("fixed"))
            if space.slots != {k: list(v) for k, v in data["slots"].items()}:
                raise ConfigError("The registered modules changed since this ACE state was "
                                  "saved; the saved slots no longer match.")
            return space
        space = cls(data["slots"], constraint=constraint, forbidden=data.get("forbidden", ()))
        if "allowed" in data:
            space._allowed = np.array(data["allowed"], dtype=np.int64).reshape(
                -1, len(space.slots))
        return space

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}[{len(v)}]" for k, v in self.slots.items())
        return f"Space({inner})"
