"""The contract-test kit: checks that every module keeps its kind's contract and its tags' promises.

Modelled on scikit-learn's ``check_estimator`` / ``parametrize_with_checks``:

* :func:`check_module` yields named :class:`Check` objects chosen by the module's kind and tags;
  calling one builds fresh instances on tiny deterministic data and raises
  :class:`ContractError` (``"<kind> '<name>' breaks rule '<rule>': ..."``) on a broken rule, or
  :class:`SkipCheck` when the module cannot be built in the kit (``needs input: ...``).
* :func:`parametrize_with_checks` turns those into pytest cases with readable ids.
* :func:`check_modules` runs the checks plus a one-epoch smoke training of combinations covering
  every tag-compatible partner (what ``hypergraph check`` prints).
* :func:`run_stages` is the staged smoke run behind ``hypergraph test``.

Modules that need real input (a file, a folder) define the classmethod
``_contract_params(tmp_dir) -> dict`` returning parameters that point at tiny input written
under ``tmp_dir``; see ``docs/contract-tests.md``.
"""

from hypergraph.testing._checks import (
    BEHAVIOUR_TAGS,
    Check,
    CheckResult,
    ContractError,
    SkipCheck,
    build_module,
    check_module,
    contract_params,
    graph_problems,
    rule_names,
    run_check,
)
from hypergraph.testing._fixtures import fixture_graph, knn_graph, subsample_bundle, tiny_bundle
from hypergraph.testing._matrix import (
    PairResult,
    SmokeResult,
    combination_id,
    covering_combinations,
    smoke_combinations,
    smoke_run,
)
from hypergraph.testing._pytest import parametrize_with_checks
from hypergraph.testing._session import CheckReport, check_modules, resolve_module
from hypergraph.testing._stages import StageResult, run_stages

__all__ = [
    "BEHAVIOUR_TAGS",
    "Check",
    "CheckReport",
    "CheckResult",
    "ContractError",
    "PairResult",
    "SkipCheck",
    "SmokeResult",
    "StageResult",
    "build_module",
    "check_module",
    "check_modules",
    "combination_id",
    "contract_params",
    "covering_combinations",
    "fixture_graph",
    "graph_problems",
    "knn_graph",
    "parametrize_with_checks",
    "resolve_module",
    "rule_names",
    "run_check",
    "run_stages",
    "smoke_combinations",
    "smoke_run",
    "subsample_bundle",
    "tiny_bundle",
]
