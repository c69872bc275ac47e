"""``hypergraph bench``: traversals x datasets x seeds at matched gradient-step budgets."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hypergraph.cli._app import app, console, err_console
from hypergraph.cli._checks import check_range
from hypergraph.exceptions import ConfigError

if TYPE_CHECKING:
    from hypergraph.bench import BenchDataset, BenchMethod


@app.command()
def bench(
    datasets: Annotated[str, typer.Option(
        help="Comma-separated dataset presets: noisy (synthetic, 30% flipped train labels), "
        "redundant (synthetic, 80% near-duplicates), clean (synthetic), digits, mnist1d, "
        "mixture (12k synthetic rows: label noise + near-duplicates + class imbalance + hard "
        "points), mixture_large (the same at 60k rows), mnist1d_large (50k signals).")
    ] = "noisy,redundant,digits",
    methods: Annotated[str, typer.Option(
        help="Comma-separated traversals: presets uniform, comprehensive, infobatch, rho_loss, "
        "loss_topk; the same with near-duplicate groups (suffix _dedup: epoch_dedup, "
        "uniform_dedup, infobatch_dedup, ...) or groups and coverage (suffix _dc); ivalue and "
        "its ablations ivalue_cover, ivalue_dedup, ivalue_value; ivalue_loss, ivalue_unc, "
        "ivalue_noise, ivalue_hops1 (the default until 2026-12-03), ivalue_v2, ivalue_v1; any "
        "registered traversal name, or variants "
        "KEY=NAME:p=v;... (use ';' between a variant's parameters).")
    ] = "uniform,comprehensive,infobatch,rho_loss,loss_topk,ivalue,ivalue_loss,ivalue_unc,"
        "ivalue_noise,ivalue_v2,ivalue_v1",
    seeds: Annotated[str, typer.Option(
        help="Report seeds: a range 100-119, a list 100,101,105, or a count N (first-seed .. "
        "first-seed+N-1); default 5. Every headline table uses these only. Not used by "
        "--tune, which runs on --design-seeds.")] = "",
    design_seeds: Annotated[str, typer.Option(
        help="Seeds the methods' settings were chosen or tuned on (e.g. 0-9), recorded in the "
        "results and left out of every table; must not overlap --seeds.")] = "",
    first_seed: Annotated[int, typer.Option(
        help="First seed when --seeds is a count.")] = 0,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for results.json, report.md "
                                      "and plots (rerunning resumes).")] = Path("bench"),
    step_scale: Annotated[float, typer.Option(
        help="Multiply every dataset's step budget (e.g. 0.1 for a smoke run).")] = 1.0,
    evals: Annotated[int, typer.Option(help="Checkpoints evaluated per run.")] = 30,
    batch_size: Annotated[int, typer.Option(help="Samples per gradient step.")] = 64,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "cpu",
    threads: Annotated[int, typer.Option(help="torch threads per run.")] = 1,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    tune: Annotated[int, typer.Option(
        help="Tune instead of benchmarking: for every method and dataset an Optuna study of "
        "exactly N trials (trial 0 = the method's current setting, then seeded TPE) over the "
        "method's tuning space, on --design-seeds only, scored by the mean best validation "
        "accuracy at the full step budget. Writes tuned.json and tune.db (resumes) to --out.")
    ] = 0,
    tuned: Annotated[Path | None, typer.Option(
        help="A tuned.json from --tune: adds an arm METHOD_tuned with the tuned settings for "
        "every method of --methods tuned on the dataset (its tuning design seeds must not "
        "overlap --seeds).")] = None,
    tuned_dataset: Annotated[str, typer.Option(
        help="With --tuned: use the settings tuned on this dataset for every dataset (a "
        "transfer, recorded as such).")] = "",
    tuned_only: Annotated[bool, typer.Option(
        help="With --tuned: leave out the default arm of every method that has a tuned arm.")
    ] = False,
) -> None:
    """Benchmark traversals at matched budgets; write results.json, report.md and plots.

    Every method trains the same model on the same graph for the same number of gradient steps;
    test accuracy (best-on-validation checkpoint) is recorded against steps, total compute
    (forward + backward passes, selection included) and wall time. The report gives, per method,
    the steps and compute needed to reach uniform's final accuracy. Finished cells found in
    results.json are skipped, so an interrupted bench resumes.

    The framework's own speed and memory benchmarks are developer scripts of the source
    checkout: `python benchmarks/run.py` (see docs/benchmarks.md).
    """
    from hypergraph.bench import (
        BenchSpec,
        load_results,
        load_tuned,
        parse_dataset,
        parse_method,
        run_bench,
        tuned_arms,
        write_outputs,
    )
    check_range("--first-seed", first_seed, 0)
    check_range("--tune", tune, 0)
    design = _seeds("--design-seeds", design_seeds, 0) if design_seeds.strip() else []
    check_range("--step-scale", step_scale, 0, low_open=True)
    check_range("--evals", evals, 1)
    check_range("--batch-size", batch_size, 1)
    check_range("--threads", threads, 1)
    bench_datasets = [parse_dataset(d.strip()) for d in datasets.split(",") if d.strip()]
    bench_methods = [parse_method(m.strip().replace(";", ",")) for m in methods.split(",")
                     if m.strip()]
    if tune:
        _tune(bench_datasets, bench_methods, tune, design, seeds, tuned, out,
              dict(batch_size=batch_size, evals=evals, device=device, step_scale=step_scale),
              threads, progress)
        return
    if (tuned_dataset or tuned_only) and tuned is None:
        raise ConfigError("--tuned-dataset and --tuned-only need --tuned (the tuned.json to "
                          "read).")
    report_seeds = _seeds("--seeds", seeds or "5", first_seed)
    extra: dict[str, list[BenchMethod]] = {}
    source: dict[str, object] = {}
    if tuned is not None:
        settings = load_tuned(tuned)
        shared = sorted(set(settings["design_seeds"]) & set(report_seeds))
        if shared:
            raise ConfigError(
                f"--tuned '{tuned}' was tuned on design seeds that include report seeds now "
                f"asked for ({', '.join(map(str, shared[:10]))}); report seeds must never have "
                "been used for tuning. Give other --seeds.")
        extra = tuned_arms(settings, bench_datasets, bench_methods, tuned_dataset or None)
        design = sorted(set(design) | set(settings["design_seeds"]))
        if tuned_only:
            have = {a.key.removesuffix("_tuned") for arms in extra.values() for a in arms}
            bench_methods = [m for m in bench_methods if m.key not in have]
        source = {"file": str(tuned), "design_seeds": settings["design_seeds"],
                  "trials": settings.get("trials"), "sampler": settings.get("sampler"),
                  "objective": settings.get("objective"),
                  "transfer_from": tuned_dataset or None,
                  "untuned": sorted({m.key for m in bench_methods} - {
                      a.key.removesuffix("_tuned") for arms in extra.values() for a in arms})}
    spec = BenchSpec(
        datasets=bench_datasets, methods=bench_methods,
        seeds=report_seeds, design_seeds=design, batch_size=batch_size,
        evals=evals, device=device,
        step_scale=step_scale, tuned=extra, tuned_from=source)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file, expected a folder for the bench results.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a file in the way, no permission...
        raise ConfigError(f"Cannot create the bench folder '{out}': {err.strerror or err}. "
                          "Give another --out.") from None
    # a damaged results file is refused before any work
    old = load_results(out / "results.json").get("spec", {})
    used = sorted(set(old.get("design_seeds") or []) & set(report_seeds))
    if used:
        raise ConfigError(f"--out '{out}' holds results whose design seeds include report seeds "
                          f"now asked for ({', '.join(map(str, used[:10]))}); report seeds must "
                          "never have been used for design. Give another --out or other seeds.")
    total = sum(len(spec.arms(d)) for d in spec.datasets) * len(spec.seeds)
    from rich.progress import Progress

    from hypergraph.cli._progress import bar_columns

    bar = Progress(*bar_columns("bench"), console=err_console, disable=not progress)
    task = bar.add_task("cells", total=total, info="")

    def on_cell(key: str, skipped: bool) -> None:
        bar.update(task, advance=1, info=("skipped " if skipped else "") + key.rsplit("|", 1)[0])

    with bar:
        results = run_bench(spec, out, on_cell=on_cell, threads=threads)
    command = "hypergraph bench " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if len(sys.argv) > 1 and sys.argv[1] == "bench" else ""
    paths = write_outputs(results, out, command=command)
    console.print((out / "report.md").read_text())
    console.print("Wrote " + ", ".join(str(p) for p in [out / "results.json", *paths]))


def _tune(datasets: list[BenchDataset], methods: list[BenchMethod], trials: int,
          design: list[int], seeds: str, tuned: Path | None, out: Path,
          settings: dict[str, Any], threads: int, progress: bool) -> None:
    """``hypergraph bench --tune N``: the equal tuning budget on design seeds."""
    from hypergraph.bench import BenchSpec, load_results, run_tune, tune_space

    if seeds.strip() or tuned is not None:
        raise ConfigError("--tune runs on --design-seeds only; it takes neither --seeds (report "
                          "seeds are for the bench that uses the tuned settings) nor --tuned.")
    if not design:
        raise ConfigError("--tune needs --design-seeds (e.g. 0-4): the seeds it may tune on.")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file, expected a folder for the tuning results.")
    old = load_results(out / "results.json").get("spec", {}) if out.is_dir() else {}
    used = sorted(set(old.get("seeds") or []) & set(design))
    if used:
        raise ConfigError(f"--out '{out}' holds bench results on report seeds "
                          f"{', '.join(map(str, used[:10]))}, now asked for as design seeds; "
                          "never tune on report seeds. Give another --out or other seeds.")
    # design seeds run as the tuning's seeds; none of them is a report seed
    spec = BenchSpec(datasets=datasets, methods=methods, seeds=design, **settings)
    runs = sum((trials if tune_space(m) else 1) for m in methods) * len(design) * len(datasets)
    from rich.progress import Progress

    from hypergraph.cli._progress import bar_columns

    bar = Progress(*bar_columns("tune"), console=err_console, disable=not progress)
    task = bar.add_task("runs", total=runs, info="")

    def on_cell(info: str) -> None:
        bar.update(task, advance=1, info=info)

    with bar:
        result = run_tune(spec, trials, out, on_cell=on_cell, threads=threads)
    lines = [f"Tuned on design seeds {', '.join(map(str, design))}, {trials} trials per method "
             "(objective: mean best validation accuracy at the full budget):"]
    for dkey, block in result["datasets"].items():
        for mkey, entry in block["methods"].items():
            what = entry["note"] or ", ".join(f"{k}={_short(v)}"
                                              for k, v in entry["tuned"].items())
            lines.append(f"  {dkey} {mkey}: {entry['score']:.4f} (default "
                         f"{entry['default_score']:.4f}, {entry['trials']} trials) {what}")
    console.print("\n".join(lines))
    console.print(f"Wrote {out / 'tuned.json'} (studies in {out / 'tune.db'}); run the report "
                  f"seeds with: hypergraph bench --tuned {out / 'tuned.json'} --seeds ...")


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _seeds(option: str, text: str, first: int) -> list[int]:
    from hypergraph.bench import parse_seeds

    try:
        return parse_seeds(text, first)
    except ValueError as err:
        raise ConfigError(f"{option} '{text}': {err}. Give a range such as 100-119, a list "
                          "such as 100,101,105 or a count such as 20.") from None
