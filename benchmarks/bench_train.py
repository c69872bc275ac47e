"""Target 1: the training data path costs nothing over a hand-written PyTorch loop.

Arms, all training the same model (HyperGraph's model: its network and optimiser) on the
same data with the same batch size and the same number of samples (one epoch of the training
rows), with one torch thread, timed over the training steps only (validation excluded on every
side), samples/s:

* ``model``: the model step alone on one fixed pre-gathered batch (no data path at all): the
  floor every arm's per-batch overhead is measured from;
* ``hand``: a loop over pre-loaded tensors with ``randperm`` slicing (the baseline);
* ``dataloader``: ``torch.utils.data.DataLoader`` over a ``TensorDataset`` with shuffle
  (defaults: ``num_workers=0``, default collate);
* HyperGraph's ``StandardTrainer`` with the ``comprehensive``, ``random_walk`` (walkers =
  batch size, so one walk step per batch) and ``ivalue`` traversals (IValue with its defaults,
  value propagation and per-step loss feedback included).

This runs at three model sizes (the default ``mlp``, a small MLP and a linear model), so that
the reader sees how the ratios depend on the share of the model step in a batch's time.

The in-memory arms of one repeat run in turns (:class:`Turns`): each arm in its own thread, one
at a time, ``TURN`` training steps per turn, round robin, the waits left out of every arm's
clock. On a shared machine the noise comes in bursts of seconds; whole-epoch arms one after
another each catch a burst or not by chance (ratios from 0.7 to 1.3 between two identical
arms were seen), while turns of a few dozen milliseconds spread every burst over all arms.

A second part trains on a file-backed image store (PNG files decoded by PIL on every read, no
cache) with the background prefetch thread, and reports the share of training time the model
waited for data, next to the same run with prefetching switched off.

Run alone: ``python benchmarks/bench_train.py [--quick]``.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts src/ on the path)
import numpy as np
import torch
from _common import Row, cli
from torch import nn

from hypergraph import registry
from hypergraph.dataloaders import KNNDataloader
from hypergraph.datasets import DatasetBundle, in_memory
from hypergraph.managers import StaticManager
from hypergraph.models import MLPModel
from hypergraph.registry import load_builtins
from hypergraph.rng import RngStreams
from hypergraph.trainers import Callback, StandardTrainer, TrainContext, TrainState
from hypergraph.traversals import Traversal

load_builtins()  # register every module before names are resolved

BATCH = 64
TURN = 16  # training steps per turn (about 20-40 ms with the MLP on the machines measured)


class Turns:
    """Round-robin turns between arms running in threads, one arm at a time.

    ``run`` starts every arm in its own thread; an arm holds the turn from its start (set-up
    included, untimed) and calls :meth:`tick` after every training step: every ``chunk``
    steps it hands the turn to the next arm still running and waits for its next turn. The
    time an arm spent waiting is kept in ``waited[name]``; arms subtract it from their clock.
    """

    def __init__(self, chunk: int = TURN) -> None:
        self.chunk = chunk
        self.waited: dict[str, float] = {}
        self._cond = threading.Condition()
        self._order: list[str] = []
        self._turn = 0
        self._done: set[str] = set()
        self._steps: dict[str, int] = {}

    def run(self, arms: dict[str, Callable[[str], Any]]) -> dict[str, Any]:
        """Run ``arms[name](name)`` in turns; their results by name."""
        self._order = list(arms)
        results: dict[str, Any] = {}
        errors: list[BaseException] = []

        def body(name: str, fn: Callable[[str], Any]) -> None:
            with self._cond:
                self._cond.wait_for(lambda: self._order[self._turn] == name)
            try:
                results[name] = fn(name)
            except BaseException as exc:  # re-raised in the calling thread
                errors.append(exc)
            finally:
                with self._cond:
                    self._done.add(name)
                    self._hand_over()

        threads = [threading.Thread(target=body, args=item, daemon=True)
                   for item in arms.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return results

    def _hand_over(self) -> None:
        """Give the turn to the next arm still running (the caller holds the lock)."""
        k = len(self._order)
        for i in range(1, k + 1):
            nxt = (self._turn + i) % k
            if self._order[nxt] not in self._done:
                self._turn = nxt
                break
        self._cond.notify_all()

    def tick(self, name: str) -> None:
        """Arm ``name`` finished a training step."""
        steps = self._steps[name] = self._steps.get(name, 0) + 1
        if steps % self.chunk:
            return
        t0 = time.perf_counter()
        with self._cond:
            self._hand_over()
            self._cond.wait_for(lambda: self._order[self._turn] == name)
        self.waited[name] = self.waited.get(name, 0.0) + time.perf_counter() - t0


def _ticker(turns: Turns | None, name: str) -> tuple[Callable[[], None], Callable[[], float]]:
    """``(tick, waited)`` for an arm: no-ops without turns."""
    if turns is None:
        return (lambda: None), (lambda: 0.0)
    return (lambda: turns.tick(name)), (lambda: turns.waited.get(name, 0.0))


class StepTimer(Callback):
    """Times the training steps of each epoch (from epoch start to its last step).

    Also counted: the traversal's ``on_epoch_start`` (the epoch's shuffle, which the hand loop
    times as its ``randperm``) and the trainer's epoch-end ``_flush`` (the bulk loss sum and
    visit count of the steps), which run just outside that window; validation is not counted.
    """

    def __init__(self, turns: Turns | None = None, name: str = "") -> None:
        self.seconds = 0.0
        self.samples = 0
        self._t0 = 0.0
        self._s0 = 0
        self._w0 = 0.0
        self._tick, self._waited = _ticker(turns, name)
        self.prefetch: dict[str, float] = {}

    def on_fit_start(self, ctx: TrainContext, state: TrainState) -> None:
        assert ctx.trainer is not None
        pf = ctx.trainer.gather_.prefetcher  # type: ignore[attr-defined]
        self._pf = pf
        self._pf0 = dict(pf.stats()) if pf is not None else {}
        self._count(ctx.traversal, "on_epoch_start")
        self._count(ctx.trainer, "_flush")

    def _count(self, obj: Any, name: str) -> None:
        """Add the time of every call of ``obj.name`` to ``seconds``."""
        inner = getattr(obj, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        setattr(obj, name, timed)

    def on_epoch_start(self, ctx: TrainContext, state: TrainState) -> None:
        self._t0, self._s0, self._w0 = time.perf_counter(), state.samples_seen, self._waited()

    def on_step_end(self, ctx: TrainContext, state: TrainState, ids: np.ndarray) -> None:
        if state.epoch_step >= state.steps_per_epoch:
            self.seconds += time.perf_counter() - self._t0 - (self._waited() - self._w0)
            self.samples += state.samples_seen - self._s0
        else:
            self._tick()

    def on_fit_end(self, ctx: TrainContext, state: TrainState, result: dict[str, Any]) -> None:
        if self._pf is not None:
            now = self._pf.stats()
            self.prefetch = {k: now[k] - self._pf0.get(k, 0.0) for k in now}


def make_data(n: int, d: int, classes: int, seed: int = 0) -> DatasetBundle:
    """Learnable synthetic classification data: 2 % validation, 2 % test, the rest train."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    w = rng.standard_normal((d, classes)).astype(np.float32)
    y = (X @ w).argmax(1).astype(np.int64)
    split = np.zeros(n, np.int8)
    held = rng.permutation(n)[: max(2, n // 25)]
    split[held[: held.size // 2]], split[held[held.size // 2:]] = 1, 2
    return in_memory("bench", X, y, split, "classification", classes)


#: (label, registered model name, hyperparameters): the model sizes the data path is run with.
MODELS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("MLP 256x2", "mlp", {}),
    ("small MLP 64x1", "mlp", {"width": 64, "depth": 1}),
    ("linear (logreg)", "logreg", {}),
)


def new_model(d: int | tuple[int, ...], classes: int, name: str = "mlp",
              params: dict[str, Any] | None = None) -> Any:
    """A set-up model of registered kind ``name`` (default hyperparameters unless ``params``)."""
    model = MLPModel(**(params or {})) if name == "mlp" else registry.resolve(
        "model", name)(**(params or {}))
    shape = (d,) if isinstance(d, int) else d
    model.setup(shape, classes, "classification", "cpu", seed=0)
    return model


def model_loop(bundle: DatasetBundle, epochs: int, model_name: str = "mlp",
               params: dict[str, Any] | None = None,
               turns: Turns | None = None, name: str = "") -> float:
    """samples/s of the model step alone: the same steps on one fixed batch, no data path."""
    X = bundle.features()
    model = new_model(X.shape[1:], bundle.num_classes, model_name, params)
    net, opt = model.net_, model.opt_
    n = int(np.count_nonzero(bundle.split == 0))
    xb = torch.from_numpy(X[:BATCH]).contiguous()
    yb = torch.from_numpy(bundle.y[:BATCH]).contiguous()
    tick, waited = _ticker(turns, name)
    net.train()
    t0, w0 = time.perf_counter(), waited()
    for _ in range(epochs):
        for i in range(0, n, BATCH):
            size = min(BATCH, n - i)
            loss = nn.functional.cross_entropy(net(xb[:size]), yb[:size])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tick()
    return epochs * n / (time.perf_counter() - t0 - (waited() - w0))


def hand_loop(bundle: DatasetBundle, epochs: int, model_name: str = "mlp",
              params: dict[str, Any] | None = None,
              turns: Turns | None = None, name: str = "") -> float:
    """samples/s of the hand-written loop over pre-loaded tensors."""
    X = bundle.features()
    model = new_model(X.shape[1:], bundle.num_classes, model_name, params)
    net, opt = model.net_, model.opt_
    train = torch.from_numpy(np.flatnonzero(bundle.split == 0))
    Xt = torch.from_numpy(X)[train].contiguous()
    yt = torch.from_numpy(bundle.y)[train].contiguous()
    n = Xt.shape[0]
    tick, waited = _ticker(turns, name)
    net.train()
    t0, w0 = time.perf_counter(), waited()
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, BATCH):
            idx = perm[i:i + BATCH]
            loss = nn.functional.cross_entropy(net(Xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tick()
    return epochs * n / (time.perf_counter() - t0 - (waited() - w0))


def dataloader_loop(bundle: DatasetBundle, epochs: int, model_name: str = "mlp",
                    params: dict[str, Any] | None = None,
                    turns: Turns | None = None, name: str = "") -> float:
    """samples/s of ``DataLoader(TensorDataset, shuffle=True)``."""
    from torch.utils.data import DataLoader, TensorDataset

    X = bundle.features()
    model = new_model(X.shape[1:], bundle.num_classes, model_name, params)
    net, opt = model.net_, model.opt_
    train = torch.from_numpy(np.flatnonzero(bundle.split == 0))
    ds = TensorDataset(torch.from_numpy(X)[train], torch.from_numpy(bundle.y)[train])
    loader = DataLoader(ds, batch_size=BATCH, shuffle=True)
    tick, waited = _ticker(turns, name)
    net.train()
    t0, w0 = time.perf_counter(), waited()
    for _ in range(epochs):
        for xb, yb in loader:
            loss = nn.functional.cross_entropy(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tick()
    return epochs * len(ds) / (time.perf_counter() - t0 - (waited() - w0))


def hypergraph_loop(bundle: DatasetBundle, graph: Any, traversal: Traversal,
                    epochs: int, model_name: str = "mlp", params: dict[str, Any] | None = None,
                    turns: Turns | None = None, name: str = "",
                    ) -> tuple[float, StepTimer]:
    """samples/s of HyperGraph's trainer (training steps only) and the timer callback."""
    model = new_model(bundle.store.item_shape, bundle.num_classes, model_name, params)
    timer = StepTimer(turns, name)
    ctx = TrainContext(bundle, graph, model, traversal, StaticManager(), RngStreams(0),
                       torch.device("cpu"), callbacks=[timer])
    StandardTrainer(epochs=epochs, batch_size=BATCH, patience=0).fit(ctx)
    return timer.samples / timer.seconds, timer


def _trainer_arm(graph: Any, traversal: Traversal, bundle: DatasetBundle, epochs: int,
                 model_name: str, params: dict[str, Any] | None, turns: Turns | None,
                 name: str) -> float:
    """:func:`hypergraph_loop` samples/s with a fresh clone of ``traversal``."""
    return hypergraph_loop(bundle, graph, traversal.clone(), epochs, model_name, params, turns,
                           name)[0]


def traversal_arms() -> dict[str, Traversal | None]:
    """The HyperGraph arms; ``None`` for a traversal not registered in this checkout."""
    arms: dict[str, Traversal | None] = {
        "comprehensive": registry.resolve("traversal", "comprehensive")(),
        "random_walk": registry.resolve("traversal", "random_walk")(walkers=BATCH),
    }
    try:
        arms["ivalue"] = registry.resolve("traversal", "ivalue")()
    except Exception:
        arms["ivalue"] = None
    return arms


def _us(sps: float) -> float:
    """Microseconds per batch of ``BATCH`` at ``sps`` samples/s."""
    return BATCH * 1e6 / sps


def run_memory_path(quick: bool, repeats: int) -> list[Row]:
    """Ratios of the in-memory data path at each model size of ``MODELS``.

    Besides the ratios, every note gives each arm's overhead per batch over the model step
    alone (median over repeats, microseconds), and the DataLoader row the best ratio any data
    path could reach against it: ``(model + DataLoader overhead) / model``.
    """
    n = 1500 if quick else 40_000
    epochs = 1
    bundle = make_data(n, 32, 10)
    graph = KNNDataloader(k=10).build(bundle, np.random.default_rng(0))
    rows: list[Row] = []
    for label, model_name, params in MODELS:
        arms = traversal_arms()
        speed: dict[str, list[float]] = {k: [] for k in ("model", "hand", "dataloader", *arms)}
        model_loop(bundle, epochs, model_name, params)  # warm-up: first steps of a new shape
        for _ in range(repeats):  # every arm of a repeat in turns of TURN steps
            turns = Turns()
            common = (bundle, epochs, model_name, params, turns)
            runs: dict[str, Callable[[str], Any]] = {
                "model": partial(model_loop, *common), "hand": partial(hand_loop, *common),
                "dataloader": partial(dataloader_loop, *common)}
            for name, trav in arms.items():
                if trav is not None:
                    runs[name] = partial(_trainer_arm, graph, trav, *common)
            for name, sps in turns.run(runs).items():
                speed[name].append(sps)
        # overhead per batch over the model step alone, per repeat (same repeat's model run)
        over = {name: statistics.median(_us(a) - _us(m) for a, m in zip(
            v, speed["model"], strict=True)) for name, v in speed.items() if v}
        step = statistics.median(_us(m) for m in speed["model"])
        hand = speed["hand"]
        tag = f"[{label}]"
        rows.append(Row(f"1a {tag}", "hand loop samples/s", hand,
                        note=f"{n} rows x 32 features, 10 classes, batch {BATCH}, 1 torch "
                             f"thread; model step alone {step:.0f} us/batch, hand loop "
                             f"overhead {over['hand']:.0f} us/batch"))
        for name, goal in (("comprehensive", 0.95), ("random_walk", 0.9), ("ivalue", 0.9)):
            if arms[name] is None:
                rows.append(Row(f"1a {tag} {name} / hand", "samples/s ratio", [], f">= {goal}",
                                True, goal, note="traversal 'ivalue' not registered"))
                continue
            ratio = [a / b for a, b in zip(speed[name], hand, strict=True)]
            cost = [_us(a) - _us(b) for a, b in zip(speed[name], hand, strict=True)]
            extra = {"random_walk": "walkers 64 = batch; ",
                     "ivalue": "defaults, loss feedback every step; "}.get(name, "")
            rows.append(Row(f"1a {tag} {name} / hand", "samples/s ratio", ratio, f">= {goal}",
                            True, goal, note=f"{extra}overhead {over[name]:.0f} us/batch "
                            f"({statistics.median(cost):+.0f} vs hand)"))
        ratio = [a / b for a, b in zip(speed["comprehensive"], speed["dataloader"], strict=True)]
        ceiling = (step + over["dataloader"]) / step
        rows.append(Row(f"1b {tag} comprehensive / DataLoader", "samples/s ratio", ratio,
                        ">= 1.5", True, 1.5,
                        note=f"DataLoader(TensorDataset, shuffle=True, num_workers=0): overhead "
                             f"{over['dataloader']:.0f} us/batch vs comprehensive "
                             f"{over['comprehensive']:.0f}; ceiling with a free data path "
                             f"{ceiling:.2f}"))
    return rows


def _write_pngs(folder: Path, X: np.ndarray) -> list[str]:
    from PIL import Image

    paths = []
    for i, img in enumerate(X):
        p = folder / f"{i:06d}.png"
        Image.fromarray((img * 255).astype(np.uint8), mode="L").save(p)
        paths.append(str(p))
    return paths


def run_file_path(quick: bool, repeats: int) -> list[Row]:
    """A file-backed image store: prefetching vs reading in the training thread (CNN)."""
    from hypergraph.data import ArrayStore, FileStore
    from hypergraph.datasets import ImageLoader
    from hypergraph.graph import HyperGraph

    n = 150 if quick else 3000
    side = 28
    rng = np.random.default_rng(0)
    X = rng.random((n, side, side)).astype(np.float32)
    y = (X.reshape(n, -1).mean(1) > 0.5).astype(np.int64)
    split = np.zeros(n, np.int8)
    split[-max(2, n // 25):] = 1
    split[-max(1, n // 50):] = 2
    wait_on: list[float] = []
    wait_off: list[float] = []
    ratio_on: list[float] = []
    ratio_off: list[float] = []
    load_share: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = _write_pngs(Path(tmp), X)
        loader = ImageLoader(side, grayscale=True)
        src = np.repeat(np.arange(n), 5)
        graph = HyperGraph.from_edges(n, src, rng.integers(0, n, src.size), split=split,
                                      label=y)
        memory = DatasetBundle(ArrayStore(np.stack([loader(p) for p in paths])), y, split,
                               "classification", 2)
        for _ in range(repeats):
            trav = registry.resolve("traversal", "comprehensive")()
            mem_sps = hypergraph_loop(memory, graph, trav, 1, "cnn")[0]
            for prefetch in (True, False):
                store = FileStore(paths, loader, loader.shape, cache_size=0)
                bundle = DatasetBundle(store, y, split, "classification", 2)
                trav = registry.resolve("traversal", "comprehensive")()
                sps, timer = _file_run(bundle, graph, trav, prefetch)
                frac = timer.prefetch.get("wait_s", 0.0) / timer.seconds
                (wait_on if prefetch else wait_off).append(frac)
                (ratio_on if prefetch else ratio_off).append(sps / mem_sps)
                if prefetch:
                    load_share.append(timer.prefetch.get("load_s", 0.0) / timer.seconds)
    note = (f"{n} PNG files {side}x{side} read by PIL on every access (no cache), 1 reader "
            "thread, cnn model, comprehensive")
    return [
        Row("1c file store + prefetch", "share of step time waiting for data", wait_on,
            "~0 when disk keeps up", False, 0.05, note=note),
        Row("1c file store, reads inline", "share of step time waiting for data", wait_off,
            note="same trainer, prefetch switched off"),
        Row("1c file store", "reader busy / step time", load_share,
            note="< 1: the disk (decode) keeps up"),
        Row("1c file+prefetch / in-memory", "samples/s ratio", ratio_on, note="same CNN"),
        Row("1c file inline / in-memory", "samples/s ratio", ratio_off, note="same CNN"),
    ]


def _file_run(bundle: DatasetBundle, graph: Any, traversal: Traversal,
              prefetch: bool) -> tuple[float, StepTimer]:
    from hypergraph.trainers import BatchGatherer

    original = BatchGatherer.prefetch
    if not prefetch:  # the same trainer with the background read switched off
        BatchGatherer.prefetch = lambda self, ids, rows=None: None  # type: ignore[method-assign]
    try:
        model = new_model(bundle.store.item_shape, bundle.num_classes, "cnn")
        timer = StepTimer()
        ctx = TrainContext(bundle, graph, model, traversal, StaticManager(), RngStreams(0),
                           torch.device("cpu"), callbacks=[timer])
        StandardTrainer(epochs=1, batch_size=BATCH, patience=0).fit(ctx)
    finally:
        BatchGatherer.prefetch = original  # type: ignore[method-assign]
    return timer.samples / timer.seconds, timer


def run(quick: bool = False, repeats: int | None = None) -> list[Row]:
    """All target-1 rows."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reps = repeats or (2 if quick else 5)
        return run_memory_path(quick, reps) + run_file_path(quick, reps)
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    cli(run, __doc__)
