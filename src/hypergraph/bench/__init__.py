"""Matched-budget benchmarks of traversals: runner, report and plots (``hypergraph bench``)."""

from pathlib import Path
from typing import Any

from hypergraph.bench._report import best_so_far, head_to_head, markdown_report, summarise
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
)

__all__ = [
    "DATASETS",
    "METHODS",
    "BenchDataset",
    "BenchMethod",
    "BenchSpec",
    "CurveRecorder",
    "best_so_far",
    "head_to_head",
    "load_results",
    "markdown_report",
    "parse_dataset",
    "parse_method",
    "run_bench",
    "run_cell",
    "summarise",
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
