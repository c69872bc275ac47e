"""The contract checks: named, chosen by kind and tags, each on fresh instances and tiny data.

:func:`check_module` yields :class:`Check` objects; calling one runs it and raises
:class:`ContractError` (an ``AssertionError``) whose message starts with
``"<kind> '<name>' breaks rule '<rule>': "``, or :class:`SkipCheck` when the module cannot be
built inside the kit (for example a dataset that needs a real file). Checks are registered with
:func:`contract` (in ``_checks_data``, ``_checks_store`` and ``_checks_train``); the kind and
tags of a module decide which apply, so a module added later is checked without anyone listing
it.
"""

from __future__ import annotations

import hypergraph.testing._checks_data
import hypergraph.testing._checks_store
import hypergraph.testing._checks_train  # noqa: F401  (importing registers the checks)
from hypergraph.testing._core import (
    BEHAVIOUR_TAGS,
    Check,
    CheckEnv,
    CheckResult,
    ContractError,
    SkipCheck,
    build_module,
    check_module,
    contract,
    contract_params,
    ensure,
    fail,
    graph_problems,
    rule_names,
    run_check,
)

__all__ = [
    "BEHAVIOUR_TAGS",
    "Check",
    "CheckEnv",
    "CheckResult",
    "ContractError",
    "SkipCheck",
    "build_module",
    "check_module",
    "contract",
    "contract_params",
    "ensure",
    "fail",
    "graph_problems",
    "rule_names",
    "run_check",
]
