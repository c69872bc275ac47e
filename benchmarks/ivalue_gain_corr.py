"""Does IValue's value predict the gain of unvisited nodes? Can it tell noisy from hard?

Issue 15, item 4. Trains the bench's cells (same model, graph, batch size and budget as
``hypergraph bench``) with an IValue traversal and a probe callback that only reads:

* **Gain correlation.** Training is cut into windows of ``--window`` steps (a multiple of the
  traversal's ``refresh``, so a window starts right after a refresh and reading the values
  changes nothing). At the start of a window the probe reads, for every training node, IValue's
  propagated estimate (``values()``) and three plain predictors: the node's own loss at its
  last visit (stale), the mean of its graph neighbours' last losses, and its current loss from
  a forward pass (an oracle the traversal does not have). For the nodes **not visited in the
  window** it then correlates each predictor (Spearman and Pearson) with two realised gains:
  ``drop``, the node's own loss drop over the window (forward passes at both ends), and
  ``visit``, the drop of its loss across the training step of its next visit after the window
  (loss fed back at that step minus a forward pass right after it), and ``valgain``, the
  first-order drop of the validation loss from one gradient step on the node at the window's
  start (through the output layer: the gain to the task, which is negative for a flipped
  label, where the node's own loss drop rewards memorising it). A correlation is averaged
  over the windows of a run; the interval is a bootstrap over seeds, then windows.
* **Noisy vs hard.** Every visit's fed-back loss is logged; at 1/4, 1/2 and the full budget
  per-node scores are computed from what the traversal could know then (loss at the last
  visit, mean loss over visits, mean loss drop between visits, forgetting events, kNN label
  disagreement, the model-confirmed disagreement of ``model_agreement()``, and rank averages of
  them) and scored as classifiers against the generator's ground truth (``bundle.attrs``):
  AUC for flipped vs clean labels, and on sets with hard points for flipped (not hard) vs hard
  (not flipped) rows.

The measurement forward passes run under ``torch.no_grad`` and draw no random numbers, so the
run trains exactly as the bench cell does.

Run: ``python benchmarks/ivalue_gain_corr.py --datasets noisy mixture digits --seeds 0 1 2 3 4
--hops 0 1 2 -o /tmp/gaincorr.json`` (then ``--report /tmp/gaincorr.json`` reprints the
tables). ``--set key=value`` passes extra traversal parameters.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts src/ on the path)
import numpy as np
import torch
from scipy.stats import pearsonr, rankdata, spearmanr
from sklearn.metrics import roc_auc_score

from hypergraph.bench._runner import DATASETS, BenchSpec, _cached_dataset
from hypergraph.config import RunConfig, parse_value
from hypergraph.graph import VAL
from hypergraph.run import train
from hypergraph.trainers import Callback, TrainContext, TrainState
from hypergraph.traversals import IValueTraversal
from hypergraph.traversals._irreducible import graph_irreducible_losses

PREDICTORS = ("value", "own_last", "nbr_last", "current")
UNSEEN = ("value_unseen", "nbr_unseen")  # the same, over nodes never observed before
TARGETS = ("drop", "visit", "valgain")
CHECKPOINTS = (0.25, 0.5, 1.0)


class GainProbe(Callback):
    """Reads IValue's values and the model's losses at window boundaries (see module doc)."""

    def __init__(self, window: int, budget: int) -> None:
        self.window = window
        self.budget = budget
        self.windows: list[dict[str, Any]] = []
        self.visits: list[tuple[int, np.ndarray, np.ndarray]] = []  # step, positions, loss
        self.post: list[np.ndarray] = []  # loss right after each step, per visit
        self.model_agree: dict[int, np.ndarray] = {}
        self.at_checkpoints = {max(1, round(f * budget)) for f in CHECKPOINTS}

    def _all_losses(self, ctx: TrainContext) -> np.ndarray:
        with torch.no_grad():
            return ctx.model.losses(self.x, self.y).float().cpu().numpy().astype(np.float64)

    def _valgain(self, ctx: TrainContext) -> np.ndarray:
        """First-order drop of the validation loss from one gradient step on each training
        node, through the output layer only: ``r_i . (G h_i + g)`` with ``r_i`` the node's
        output residual (softmax minus one-hot), ``h_i`` its penultimate features and ``G``,
        ``g`` the mean validation gradient of the output weights and bias (positive: a step
        on the node helps the validation loss)."""
        net = ctx.model.net_  # type: ignore[attr-defined]
        with torch.no_grad():
            net.eval()
            res = []
            for x, y in ((self.x, self.y), (self.vx, self.vy)):
                h = net.body(x)
                p = torch.softmax(net.head(h), dim=1)
                p[torch.arange(y.numel()), y] -= 1.0
                res.append((p.double(), h.double()))
            (r, h), (rv, hv) = res
            big_g = rv.T @ hv / rv.shape[0]
            g = rv.mean(0)
            out = ((r @ big_g) * h).sum(1) + r @ g
        return out.cpu().numpy()

    def on_fit_start(self, ctx: TrainContext, state: TrainState) -> None:
        trav = ctx.traversal
        if not isinstance(trav, IValueTraversal):
            raise TypeError(f"the probe reads IValue's state; got {type(trav).__name__}")
        vrows = ctx.graph.node_rows(ctx.graph.ids_in_split(VAL), np.random.default_rng(0))
        self.vx = torch.from_numpy(np.asarray(ctx.bundle.store.get(vrows), np.float32))
        self.vy = torch.from_numpy(ctx.bundle.y[vrows].astype(np.int64))
        self.trav = trav
        ids = trav.train_ids_
        rows = ctx.graph.node_rows(ids, np.random.default_rng(0))
        self.x = torch.from_numpy(np.asarray(ctx.bundle.store.get(rows), np.float32))
        self.y = torch.from_numpy(ctx.bundle.y[rows].astype(np.int64))
        attrs = getattr(ctx.bundle, "attrs", None) or {}
        self.flipped = (np.asarray(attrs["noise_flipped"])[rows].astype(bool)
                        if "noise_flipped" in attrs else None)
        self.hard = np.asarray(attrs["hard"])[rows].astype(bool) if "hard" in attrs else None
        self.graph_disagree = graph_irreducible_losses(ctx.graph.subgraph(ids))
        self.classes = int(trav.classes_)
        original = trav.feedback

        def logged(batch_ids: np.ndarray, losses: np.ndarray) -> None:
            self.visits.append((trav.step_, trav.position_[np.asarray(batch_ids)],
                                np.array(losses, np.float64)))
            original(batch_ids, losses)

        trav.feedback = logged  # type: ignore[method-assign,assignment]
        self._open(ctx, 0)

    def _open(self, ctx: TrainContext, step: int) -> None:
        trav = self.trav
        vals = trav.values()  # right after a refresh: changes nothing
        last = trav.last_loss_.copy()
        seen = np.isfinite(last)
        filled = np.where(seen, last, 0.0)
        num = trav.adj_ @ filled
        den = trav.adj_ @ seen.astype(np.float64)
        nbr = np.where(den > 0, num / np.maximum(den, 1e-300), np.nan)
        self.cur = {"start": step, "value": vals["value"], "own_last": last, "nbr_last": nbr,
                    "current": self._all_losses(ctx), "valgain": self._valgain(ctx),
                    "visits0": vals["visits"].copy()}

    def on_step_end(self, ctx: TrainContext, state: TrainState, ids: np.ndarray) -> None:
        trav = self.trav
        gather = ctx.trainer.gather_  # type: ignore[union-attr]
        x, y = gather(ids)
        with torch.no_grad():
            self.post.append(ctx.model.losses(x, y).float().cpu().numpy().astype(np.float64))
        if state.step in self.at_checkpoints:
            self.model_agree[state.step] = trav.model_agreement()
        if state.step % self.window == 0 or state.step == self.budget:
            cur = self.cur
            end = self._all_losses(ctx)
            visited = trav.values()["visits"] > cur["visits0"]
            self.windows.append({"start": cur["start"], "end": state.step,
                                 "unvisited": np.flatnonzero(~visited),
                                 "drop": cur["current"] - end, "valgain": cur["valgain"],
                                 **{p: cur[p] for p in PREDICTORS}})
            if state.step < self.budget:
                self._open(ctx, state.step)


def _corr(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 20 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return math.nan, math.nan
    return float(spearmanr(a[ok], b[ok])[0]), float(pearsonr(a[ok], b[ok])[0])


def gain_table(probe: GainProbe) -> dict[str, list[list[float]]]:
    """Per predictor and target, the (spearman, pearson) of every window."""
    steps = np.concatenate([np.full(p.size, s) for s, p, _ in probe.visits])
    pos = np.concatenate([p for _, p, _ in probe.visits])
    pre = np.concatenate([loss for _, _, loss in probe.visits])
    post = np.concatenate(probe.post)
    big = int(steps.max()) + 2
    key = pos * big + steps
    order = np.argsort(key, kind="stable")
    key, pre_s, post_s, pos_s = key[order], pre[order], post[order], pos[order]
    out: dict[str, list[list[float]]] = {f"{p}|{t}": [] for p in PREDICTORS for t in TARGETS}
    for w in probe.windows:
        u = w["unvisited"]
        at = np.searchsorted(key, u * big + w["end"])
        found = (at < key.size) & (pos_s[np.minimum(at, key.size - 1)] == u)
        visit = np.full(u.size, np.nan)
        visit[found] = pre_s[at[found]] - post_s[at[found]]
        targets = {"drop": w["drop"][u], "visit": visit, "valgain": w["valgain"][u]}
        for p in PREDICTORS:
            for t in TARGETS:
                out[f"{p}|{t}"].append(list(_corr(w[p][u], targets[t])))
        # nodes never observed before the window: their value comes from neighbours only
        never = ~np.isfinite(w["own_last"][u])
        for t in TARGETS:
            out.setdefault(f"value_unseen|{t}", []).append(
                list(_corr(w["value"][u][never], targets[t][never])))
            out.setdefault(f"nbr_unseen|{t}", []).append(
                list(_corr(w["nbr_last"][u][never], targets[t][never])))
    return out


def noise_table(probe: GainProbe) -> dict[str, dict[str, dict[str, float]]]:
    """AUCs of per-node noisy-label scores at each checkpoint."""
    n = probe.x.shape[0]
    res: dict[str, dict[str, dict[str, float]]] = {}
    chance = math.log(probe.classes)
    for cp in sorted(probe.at_checkpoints):
        vis = [(s, p, loss) for s, p, loss in probe.visits if s < cp]
        pos = np.concatenate([p for _, p, _ in vis])
        loss = np.concatenate([x for _, _, x in vis])
        order = np.argsort(pos, kind="stable")  # visits by node, in time order per node
        pos, loss = pos[order], loss[order]
        count = np.bincount(pos, minlength=n).astype(np.float64)
        total = np.bincount(pos, loss, minlength=n)
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        same = np.zeros(pos.size, bool)
        same[1:] = pos[1:] == pos[:-1]
        prev = np.roll(loss, 1)
        drop = np.where(same, prev - loss, 0.0)
        drops = np.bincount(pos, drop, minlength=n)
        revisits = np.bincount(pos, same.astype(np.float64), minlength=n)
        mean_drop = np.where(revisits > 0, drops / np.maximum(revisits, 1), 0.0)
        learnt = loss < math.log(2.0)  # p(label) > 1/2: predicted
        forgot = same & np.roll(learnt, 1) & ~learnt
        forgets = np.bincount(pos, forgot.astype(np.float64), minlength=n)
        ever = np.bincount(pos, learnt.astype(np.float64), minlength=n) > 0
        last = np.full(n, np.nan)
        last[pos] = loss  # the last write per node is its latest visit
        first = np.full(n, np.nan)
        first[pos[::-1]] = loss[::-1]
        agree = probe.model_agree.get(cp)
        model_dis = -np.log(np.maximum(agree, 1e-12)) if agree is not None else np.zeros(n)
        scores = {
            "last_loss": last, "mean_loss": mean, "no_drop": -mean_drop,
            "first_minus_last": -(first - last), "forgets": forgets,
            "never_learnt": (~ever).astype(np.float64) + 1e-3 * mean,
            "above_chance": (mean > chance).astype(np.float64) + 1e-3 * mean,
            "graph_disagree": probe.graph_disagree, "model_disagree": model_dis,
        }
        r = {k: rankdata(np.nan_to_num(v, nan=np.nanmean(v))) / n for k, v in scores.items()}
        scores["rank_mean_graph"] = r["mean_loss"] + r["graph_disagree"]
        scores["rank_mean_graph_model"] = r["mean_loss"] + r["graph_disagree"] + r["model_disagree"]
        scores["rank_mean_model"] = r["mean_loss"] + r["model_disagree"]
        scores["rank_all"] = sum(r[k] for k in ("mean_loss", "graph_disagree", "model_disagree",
                                                "no_drop", "forgets"))
        scores["mean_loss_x_graph"] = np.nan_to_num(mean) * probe.graph_disagree
        scores["sum_mean_graph"] = np.nan_to_num(mean) + probe.graph_disagree
        # calibrated flags (no ranks, no noise rate): both the model, on average over the
        # node's visits, and the kNN labels give the label less than chance
        flag = (np.nan_to_num(mean) > chance) & (probe.graph_disagree > chance)
        scores["flag_and"] = flag + 1e-3 * scores["sum_mean_graph"]
        flip = probe.flipped
        res[str(cp)] = {"_flags": {"flag_and_share": float(flag.mean()),
                                   "above_chance_share": float(np.mean(mean > chance))}}
        if flip is None or not flip.any():
            continue
        res[str(cp)]["_flags"].update({
            "flag_and_precision": float(flip[flag].mean()) if flag.any() else math.nan,
            "flag_and_recall": float(flag[flip].mean()),
            "flag_and_hard_share": (float(flag[probe.hard & ~flip].mean())
                                    if probe.hard is not None else math.nan)})
        for name, s in scores.items():
            s = np.nan_to_num(s, nan=float(np.nanmean(s)) if np.isfinite(s).any() else 0.0)
            row = {"flip_vs_clean": float(roc_auc_score(flip, s))}
            if probe.hard is not None:
                sel = flip ^ probe.hard  # flipped-not-hard and hard-not-flipped
                row["flip_vs_hard"] = float(roc_auc_score(flip[sel], s[sel]))
            res[str(cp)][name] = row
    return res


def run_one(dataset: str, seed: int, hops: int, window: int, extra: dict[str, Any],
            ) -> dict[str, Any]:
    spec = BenchSpec(datasets=[DATASETS[dataset]], methods=[], seeds=[seed])
    ds = DATASETS[dataset]
    budget = spec.budget(ds)
    params = {**extra, "hops": hops}
    cfg = RunConfig.model_validate({
        "seed": seed, "device": "cpu", "dataset": {"name": ds.name, "params": dict(ds.params)},
        "dataloader": spec.dataloader, "model": spec.model,
        "traversal": {"name": "ivalue", "params": params},
        "trainer": {"name": "standard", "params": {
            "epochs": 100_000, "max_steps": budget, "patience": 0,
            "batch_size": spec.batch_size}}})
    probe = GainProbe(window, budget)
    t0 = time.perf_counter()
    result = train(cfg, None, callbacks=[probe], dataset=_cached_dataset(ds, seed))
    return {"dataset": dataset, "seed": seed, "hops": hops, "params": params,
            "window": window, "budget": budget, "steps": result["steps"],
            "test_acc": result["test"].get("accuracy"), "wall_s": time.perf_counter() - t0,
            "gain": gain_table(probe),
            "noise": noise_table(probe) if hops == 1 else {},
            "unvisited_share": float(np.mean([w["unvisited"].size / probe.x.shape[0]
                                              for w in probe.windows]))}


def _boot(per_seed: list[np.ndarray], rng: np.random.Generator, reps: int = 2000,
          ) -> tuple[float, float, float]:
    """Mean over seeds of the window mean; 95% bootstrap over seeds, then windows."""
    per_seed = [x[np.isfinite(x)] for x in per_seed]
    per_seed = [x for x in per_seed if x.size]
    if not per_seed:
        return math.nan, math.nan, math.nan
    mean = float(np.mean([x.mean() for x in per_seed]))
    stats = np.empty(reps)
    for i in range(reps):
        pick = rng.integers(0, len(per_seed), len(per_seed))
        stats[i] = np.mean([per_seed[j][rng.integers(0, per_seed[j].size,
                                                      per_seed[j].size)].mean() for j in pick])
    lo, hi = np.quantile(stats, [0.025, 0.975])
    return mean, float(lo), float(hi)


def report(runs: list[dict[str, Any]]) -> None:
    rng = np.random.default_rng(0)
    datasets = sorted({r["dataset"] for r in runs})
    for ds in datasets:
        mine = [r for r in runs if r["dataset"] == ds]
        print(f"\n## {ds}: seeds {sorted({r['seed'] for r in mine})}, window {mine[0]['window']}"
              f" steps, unvisited share per window "
              f"{np.mean([r['unvisited_share'] for r in mine]):.2f}")
        print("| hops | predictor | target | Spearman [95%] | Pearson [95%] | windows |")
        print("|---|---|---|---|---|---|")
        for hops in sorted({r["hops"] for r in mine}):
            group = [r for r in mine if r["hops"] == hops]
            for t in TARGETS:
                for p in PREDICTORS + UNSEEN:
                    if f"{p}|{t}" not in group[0]["gain"]:
                        continue
                    cells = []
                    for k in (0, 1):
                        per = [np.array([w[k] for w in r["gain"][f"{p}|{t}"]], float)
                               for r in group]
                        m, lo, hi = _boot(per, rng)
                        cells.append(f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]")
                    wins = sum(int(np.isfinite([w[0] for w in r["gain"][f"{p}|{t}"]]).sum())
                               for r in group)
                    print(f"| {hops} | {p} | {t} | {cells[0]} | {cells[1]} | {wins} |")
        flagged = [r for r in mine if r["noise"]]
        if flagged:
            cps = sorted(flagged[0]["noise"], key=int)
            for c in cps:
                keys = list(flagged[0]["noise"][c]["_flags"])
                print(f"{ds} @{c}: " + ", ".join(
                    f"{k} {np.nanmean([r['noise'][c]['_flags'][k] for r in flagged]):.3f}"
                    for k in keys))
        noisy = [r for r in mine if r["noise"] and len(r["noise"][next(iter(r["noise"]))]) > 1]
        if noisy:
            print(f"\n{ds}: noisy-label scores, AUC (mean over seeds {[r['seed'] for r in noisy]},"
                  " min-max), checkpoints in steps")
            cps = sorted(noisy[0]["noise"], key=int)
            names = [k for k in noisy[0]["noise"][cps[0]] if k != "_flags"]
            kinds = list(noisy[0]["noise"][cps[0]][names[0]])
            print("| score | " + " | ".join(f"{k} @{c}" for k in kinds for c in cps) + " |")
            print("|---|" + "---|" * (len(kinds) * len(cps)))
            for name in names:
                cells = []
                for k in kinds:
                    for c in cps:
                        v = np.array([r["noise"][c][name][k] for r in noisy])
                        cells.append(f"{v.mean():.3f} ({v.min():.2f}-{v.max():.2f})")
                print(f"| {name} | " + " | ".join(cells) + " |")
        acc = {h: np.mean([r["test_acc"] for r in mine if r["hops"] == h])
               for h in sorted({r["hops"] for r in mine})}
        print(f"\n{ds}: test accuracy by hops (mean): "
              + ", ".join(f"{h}: {a:.4f}" for h, a in acc.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["noisy", "mixture", "digits"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--hops", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--set", nargs="*", default=[], help="traversal key=value")
    parser.add_argument("-o", "--out", default="gain_corr.json")
    parser.add_argument("--report", help="reprint the tables of this results file and stop")
    args = parser.parse_args()
    if args.report:
        report(json.loads(Path(args.report).read_text())["runs"])
        return
    extra = {k: parse_value(v) for k, v in (s.split("=", 1) for s in args.set)}
    torch.set_num_threads(1)
    out = Path(args.out)
    runs: list[dict[str, Any]] = json.loads(out.read_text())["runs"] if out.exists() else []
    done = {(r["dataset"], r["seed"], r["hops"]) for r in runs}
    for ds in args.datasets:
        for seed in args.seeds:
            for hops in args.hops:
                if (ds, seed, hops) in done:
                    continue
                runs.append(run_one(ds, seed, hops, args.window, extra))
                out.write_text(json.dumps({"runs": runs, "load": os.getloadavg()}))
                r = runs[-1]
                print(f"{ds} seed {seed} hops {hops}: acc {r['test_acc']:.4f}, "
                      f"{r['wall_s']:.1f} s, load {os.getloadavg()[0]:.2f}", flush=True)
    report(runs)


if __name__ == "__main__":
    main()
