"""Matched-budget benchmarks of traversals: runner, report and plots (``hypergraph bench``)."""

from pathlib import Path
from typing import Any

from hypergraph.bench._report import (
    FRACTIONS,
    best_so_far,
    head_to_head,
    markdown_report,
    paired_fractions,
    report_cells,
    steps_to_target,
    summarise,
    timings_table,
)
from hypergraph.bench._runner import (
    DATASETS,
    METHODS,
    BenchDataset,
    BenchMethod,
    BenchSpec,
    CurveRecorder,
    load_results,
    parse_dataset,
    parse_method,
    run_bench,
    run_cell,
    threads_for,
)
from hypergraph.bench._stats import Interval, bootstrap_interval, paired_interval, parse_seeds
from hypergraph.bench._tune import (
    TUNE_SPACES,
    TUNED_SUFFIX,
    apply_params,
    current_params,
    load_tuned,
    run_tune,
    tune_space,
    tuned_arms,
)

__all__ = [
    "DATASETS",
    "FRACTIONS",
    "METHODS",
    "TUNED_SUFFIX",
    "TUNE_SPACES",
    "BenchDataset",
    "BenchMethod",
    "BenchSpec",
    "CurveRecorder",
    "Interval",
    "apply_params",
    "best_so_far",
    "bootstrap_interval",
    "current_params",
    "head_to_head",
    "load_results",
    "load_tuned",
    "markdown_report",
    "paired_fractions",
    "paired_interval",
    "parse_dataset",
    "parse_method",
    "parse_seeds",
    "report_cells",
    "run_bench",
    "run_cell",
    "run_tune",
    "steps_to_target",
    "summarise",
    "threads_for",
    "timings_table",
    "tune_space",
    "tuned_arms",
    "write_outputs",
]


def write_outputs(results: dict[str, Any], out_dir: str | Path, command: str = "",
                  ) -> list[Path]:
    """Write ``report.md`` and the plots next to ``results.json``; returns the paths."""
    out = Path(out_dir)
    report = out / "report.md"
    report.write_text(markdown_report(results, command))
    from hypergraph.plots import plot_bench_curves

    return [report, *plot_bench_curves(summarise(results), out)]
