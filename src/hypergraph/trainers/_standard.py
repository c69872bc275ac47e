"""The standard epoch trainer."""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from hypergraph.exceptions import DataError, TrainingError
from hypergraph.graph import TEST, VAL
from hypergraph.logging import get_logger
from hypergraph.registry import register
from hypergraph.spaces import Int
from hypergraph.trainers._base import BatchGatherer, TrainContext, Trainer
from hypergraph.trainers._callbacks import (
    Callback,
    CallbackList,
    Checkpoint,
    EarlyStopping,
    TrainState,
)
from hypergraph.traversals import Selection, TraversalContext

__all__ = ["CHECKPOINT_FORMAT", "StandardTrainer"]

logger = get_logger(__name__)

#: Version of the ``last.pt`` payload written by :meth:`StandardTrainer.checkpoint_state`.
CHECKPOINT_FORMAT = 1

#: Steps of losses buffered before they are summed into the epoch loss (bounds the buffer).
_LOSS_FLUSH = 1024


@register("trainer", "standard")
class StandardTrainer(Trainer):
    """Epochs of batches gathered from the traversal; validation each epoch; best checkpoint.

    Each epoch runs ``traversal.steps_per_epoch()`` gradient steps, then evaluates on the
    validation nodes, lets the manager update the graph, and calls the callbacks. The model with
    the best validation score (accuracy, or loss for regression) is restored for the final test.
    Training stops early after ``patience`` epochs without improvement (0 disables it), after
    ``max_steps`` gradient steps when that is positive (the last epoch is cut short there, then
    evaluated as usual: comparisons of traversals give every arm the same number of steps), and
    with a :class:`~hypergraph.exceptions.TrainingError` on a NaN or infinite training or
    validation loss (the last good checkpoint stays in the run folder).

    With a run folder, a :class:`~hypergraph.trainers.Checkpoint` callback writes ``best.pt``,
    ``last.pt`` (at epoch ends and every ``checkpoint_every`` steps) and ``visits.npy``
    (training visits per node). Given ``ctx.resume_state`` (a ``last.pt`` payload), training
    continues exactly where that checkpoint was taken, mid-epoch included.
    """

    tags: ClassVar[frozenset[str]] = frozenset({"trainer:epochs"})
    space = {
        "epochs": Int(low=1, high=100_000, help="passes over the training data"),
        "batch_size": Int(low=1, high=65536, log=True, help="samples per step"),
        "patience": Int(low=0, high=100_000,
                        help="epochs without val improvement before stopping (0: never)"),
        "eval_batch_size": Int(low=1, high=1_000_000, log=True,
                               help="samples per forward pass when evaluating"),
        "checkpoint_every": Int(low=0, high=10_000_000,
                                help="also write last.pt every N steps inside an epoch "
                                     "(0: only at epoch ends)"),
        "max_steps": Int(low=0, high=1_000_000_000,
                         help="stop after this many gradient steps (0: no limit)"),
    }

    def __init__(self, epochs: int = 30, batch_size: int = 64, patience: int = 10,
                 eval_batch_size: int = 2048, checkpoint_every: int = 0,
                 max_steps: int = 0) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.eval_batch_size = eval_batch_size
        self.checkpoint_every = checkpoint_every
        self.max_steps = max_steps

    # ------------------------------------------------------------------ helpers
    def _eval_set(self, ctx: TrainContext, gather: BatchGatherer, split: int,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        ids = ctx.graph.ids_in_split(split)
        rows = ctx.graph.node_rows(ids, ctx.streams.generator(f"eval-rows-{split}"))
        if ctx.graph.members is not None:  # clusters: evaluate on every member point
            ptr, members = ctx.graph.members
            cluster = ctx.graph.store_row[ids] < 0
            extra = [members[ptr[i]:ptr[i + 1]] for i in ids[cluster]]
            rows = np.concatenate([rows[~cluster], *extra]) if extra else rows
        return gather.gather_rows(rows)

    def evaluate(self, ctx: TrainContext, data: tuple[torch.Tensor, torch.Tensor],
                 ) -> dict[str, float]:
        """Metrics of the current model on prepared ``(x, y)``."""
        return ctx.model.evaluate(data[0], data[1], batch_size=self.eval_batch_size)

    # ------------------------------------------------------------------ main loop
    def fit(self, ctx: TrainContext) -> dict[str, Any]:
        start = time.perf_counter()
        task = ctx.bundle.task
        monitor, mode = ("accuracy", "max") if task == "classification" else ("loss", "min")
        state = TrainState(epochs=self.epochs, monitor=monitor, mode=mode)
        state.visits = np.zeros(ctx.graph.num_nodes, np.int64)
        gather = BatchGatherer(ctx.graph, ctx.bundle, ctx.device,
                               ctx.streams.generator("gather"))
        self.gather_ = gather
        self.best_state_: bytes | None = None
        self.loss_buf_: list[torch.Tensor] = []  # per-step losses, summed at the next flush
        self.visit_buf_: list[np.ndarray] = []
        self.lookahead_: Selection | None = None  # next batch, drawn early to prefetch
        ctx.trainer = self
        val_data = self._eval_set(ctx, gather, VAL)
        test_data = self._eval_set(ctx, gather, TEST)

        def score(ids: np.ndarray) -> np.ndarray:
            x, y = gather(ids)
            state.selection_forward += int(ids.size)
            return ctx.model.losses(x, y).float().cpu().numpy()

        traversal, manager = ctx.traversal, ctx.manager
        t0 = time.perf_counter()
        traversal.setup(ctx.graph, self.batch_size, ctx.streams.generator("traversal"),
                        TraversalContext(score=score, epochs=self.epochs,
                                         max_steps=self.max_steps))
        manager.setup(ctx.graph, ctx.streams.generator("manager"))
        timings = ctx.timings
        timings["setup_s"] = timings.get("setup_s", 0.0) + time.perf_counter() - t0
        for phase in ("selection_s", "step_s", "eval_s"):
            timings.setdefault(phase, 0.0)
        own: list[Callback] = [EarlyStopping(self.patience)]
        if ctx.out_dir is not None:
            own.append(Checkpoint(ctx.out_dir, self.checkpoint_every))
        callbacks = CallbackList([*ctx.callbacks, *own])
        if ctx.resume_state is not None:
            self._restore(ctx, state, ctx.resume_state)
            logger.info("Resuming at epoch %d, step %d", state.epoch + 1, state.step)
        wall_before = state.wall_s
        try:
            callbacks.on_fit_start(ctx, state)
            self._epochs(ctx, state, callbacks, val_data,
                         lambda: wall_before + time.perf_counter() - start)
            if self.best_state_ is not None:
                ctx.model.load_state_dict(_deserialise(self.best_state_))
            test = self.evaluate(ctx, test_data)
            result = {"val": state.best, "test": test, "samples_seen": state.samples_seen,
                      "selection_forward": state.selection_forward, "steps": state.step,
                      "epochs": len(state.history), "best_epoch": state.best_epoch + 1,
                      "stop_reason": state.stop_reason or "completed",
                      "wall_s": round(wall_before + time.perf_counter() - start, 4),
                      "timings": {k: round(v, 4) for k, v in ctx.timings.items()}}
            callbacks.on_fit_end(ctx, state, result)
        except BaseException as err:
            callbacks.on_exception(ctx, state, err)
            raise
        finally:
            ctx.trainer = None
            gather.close()
        return result

    def _epochs(self, ctx: TrainContext, state: TrainState, callbacks: CallbackList,
                val_data: tuple[torch.Tensor, torch.Tensor], clock: Callable[[], float],
                ) -> None:
        traversal, manager, model, gather = ctx.traversal, ctx.manager, ctx.model, self.gather_
        feedback = traversal.needs_feedback or manager.needs_feedback
        # Stores not held in memory are read one batch ahead on a background thread, when the
        # next batch does not depend on this step's losses (never across an epoch boundary).
        ahead = gather.prefetcher is not None and not feedback
        timings, clock_ = ctx.timings, time.perf_counter
        limit = self.max_steps if self.max_steps > 0 else math.inf
        while state.epoch < self.epochs and not state.stop and state.step < limit:
            epoch = state.epoch
            if state.epoch_step == 0:  # a fresh epoch (not one resumed mid-way)
                traversal.on_epoch_start(epoch)
                state.steps_per_epoch = traversal.steps_per_epoch()
                state.epoch_loss, state.epoch_count = 0.0, 0
            callbacks.on_epoch_start(ctx, state)
            step_hooks = callbacks.implementing("on_step_end")  # the rest are no-ops per step
            while state.epoch_step < state.steps_per_epoch and state.step < limit:
                t0 = clock_()
                sel = self.lookahead_ if self.lookahead_ is not None else traversal.next_batch()
                self.lookahead_ = None
                t1 = clock_()
                x, y = gather(sel.ids)
                if ahead and state.epoch_step + 1 < state.steps_per_epoch:
                    self.lookahead_ = traversal.next_batch()
                    gather.prefetch(self.lookahead_.ids)
                weights = None if sel.weights is None else torch.from_numpy(
                    np.asarray(sel.weights, np.float32)).to(ctx.device)
                losses = model.train_step(x, y, weights)
                t2 = clock_()
                self.loss_buf_.append(losses)  # summed in bulk (one reduction, no device sync)
                if len(self.loss_buf_) >= _LOSS_FLUSH:
                    self._flush_losses(state)
                self.visit_buf_.append(sel.ids)
                state.epoch_count += int(sel.ids.size)
                state.step += 1
                state.epoch_step += 1
                state.samples_seen += int(sel.ids.size)
                if feedback:
                    host = losses.float().cpu().numpy()
                    t2 = clock_()
                    if traversal.needs_feedback:
                        traversal.feedback(sel.ids, host)
                    if manager.on_step(ctx.graph, model, sel.ids, host):
                        traversal.on_graph_change(ctx.graph)
                timings["selection_s"] += t1 - t0 + clock_() - t2
                timings["step_s"] += t2 - t1
                for cb in step_hooks:
                    cb.on_step_end(ctx, state, sel.ids)
            self._flush(state)
            train_loss = state.epoch_loss / max(state.epoch_count, 1)
            if not math.isfinite(train_loss):
                self._diverged(ctx, f"The training loss became {train_loss}", epoch)
            t0 = clock_()
            val = self.evaluate(ctx, val_data)
            timings["eval_s"] += clock_() - t0
            if not math.isfinite(val.get("loss", 0.0)):
                self._diverged(ctx, f"The validation loss became {val['loss']}", epoch)
            if manager.on_epoch_end(ctx.graph, model, epoch):
                traversal.on_graph_change(ctx.graph)
            improved = state.improved(val)
            if improved:
                state.best, state.best_epoch = dict(val), epoch
                self.best_state_ = _serialise(model.state_dict())
            state.wall_s = clock()
            record = {"epoch": epoch + 1, "step": state.step, "samples_seen": state.samples_seen,
                      "selection_forward": state.selection_forward, "train_loss": train_loss,
                      "val": val, "best": improved, "wall_s": round(state.wall_s, 4)}
            state.history.append(record)
            state.epoch, state.epoch_step = epoch + 1, 0
            state.epoch_loss, state.epoch_count = 0.0, 0
            if state.step >= limit and not state.stop:
                state.stop, state.stop_reason = True, f"max_steps ({self.max_steps}) reached"
            callbacks.on_epoch_end(ctx, state, record)

    def _diverged(self, ctx: TrainContext, what: str, epoch: int) -> None:
        kept = ""
        if ctx.out_dir is not None:  # name only the checkpoints that were really written
            found = [n for n in ("last.pt", "best.pt") if (Path(ctx.out_dir) / n).is_file()]
            many = len(found) > 1
            kept = (f" The last good checkpoint{'s' if many else ''} ({', '.join(found)}) "
                    f"{'are' if many else 'is'} kept in {ctx.out_dir}." if found else
                    f" No checkpoint had been written to {ctx.out_dir} yet.")
        raise TrainingError(
            f"{what} in epoch {epoch + 1}; training stopped. Lower the learning rate "
            "(--set model.lr=...) or check the data for extreme values." + kept)

    def _flush_losses(self, state: TrainState) -> None:
        """Add the buffered per-step losses to ``state.epoch_loss``.

        Each step's losses are summed on their device (one reduction per run of equal-shaped
        steps) and added to the running float64 total one step at a time, in step order: the
        same arithmetic as a per-step ``total += losses.sum()``, so the result does not depend
        on when flushes happen (a resumed run ends with the same epoch loss).
        """
        buf = self.loss_buf_
        if not buf:
            return
        self.loss_buf_ = []
        total = state.epoch_loss
        shapes = [losses.shape for losses in buf]
        if shapes.count(shapes[0]) == len(shapes):  # the usual case: one batch size
            groups = [buf]
        else:
            groups, start = [], 0
            for stop in range(1, len(buf) + 1):
                if stop == len(buf) or shapes[stop] != shapes[start]:
                    groups.append(buf[start:stop])
                    start = stop
        for group in groups:
            rows = torch.stack(group)
            for value in (rows.flatten(1).sum(1) if rows.dim() > 1 else rows).tolist():
                total += value
        state.epoch_loss = total

    def _flush(self, state: TrainState) -> None:
        """Bring buffered accumulators (losses, visit ids) into ``state``."""
        self._flush_losses(state)
        if self.visit_buf_:
            assert state.visits is not None
            ids = np.concatenate(self.visit_buf_)
            state.visits += np.bincount(ids, minlength=state.visits.size)
            self.visit_buf_ = []

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_state(self, ctx: TrainContext, state: TrainState) -> dict[str, Any]:
        """Everything an exact resume needs: model, optimiser, traversal, manager, RNGs, graph."""
        self._flush(state)
        graph = ctx.graph
        payload: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "state": state.to_dict(),
            "model": ctx.model.state_dict(),
            "best_model": self.best_state_,
            "traversal": ctx.traversal.state_dict(),
            "manager": ctx.manager.state_dict(),
            "gather_rng": self.gather_.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": (torch.cuda.get_rng_state_all() if torch.cuda.is_initialized()
                         else None),
            "lookahead": None if self.lookahead_ is None else {
                "ids": self.lookahead_.ids, "weights": self.lookahead_.weights,
                "rows": None if self.gather_.ahead is None else self.gather_.ahead[1]},
            # Only a graph changed by the manager is saved; the built one is rebuilt exactly.
            "graph": None if graph.version == 0 else {
                "indptr": graph.indptr, "indices": graph.indices, "weights": graph.weights,
                "attrs": graph.attrs, "version": graph.version},
        }
        return payload

    def _restore(self, ctx: TrainContext, state: TrainState, payload: dict[str, Any]) -> None:
        if payload.get("format") != CHECKPOINT_FORMAT:
            raise DataError(f"The checkpoint to resume from has format {payload.get('format')!r}"
                            f"; this version of HyperGraph reads format {CHECKPOINT_FORMAT}.")
        for key, value in payload["state"].items():
            setattr(state, key, value)
        graph = payload["graph"]
        if graph is not None and graph["version"] != ctx.graph.version:
            ctx.graph.restore_edges(graph["indptr"], graph["indices"], graph["weights"],
                                    graph["attrs"], graph["version"])
            ctx.traversal.on_graph_change(ctx.graph)
        ctx.model.load_state_dict(payload["model"])
        ctx.traversal.load_state_dict(payload["traversal"])
        ctx.manager.load_state_dict(payload["manager"])
        self.gather_.rng.bit_generator.state = payload["gather_rng"]
        torch.set_rng_state(payload["torch_rng"])
        if payload.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["cuda_rng"])
        self.best_state_ = payload["best_model"]
        ahead = payload.get("lookahead")
        if ahead is not None:  # the next batch was drawn (and being read) at the checkpoint
            self.lookahead_ = Selection(ahead["ids"], ahead["weights"])
            self.gather_.prefetch(self.lookahead_.ids, ahead["rows"])


def _serialise(state: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _deserialise(blob: bytes) -> dict[str, Any]:
    state: dict[str, Any] = torch.load(io.BytesIO(blob), map_location="cpu",
                                       weights_only=False)
    return state
