"""The standard epoch trainer."""

from __future__ import annotations

import io
import math
import time
from typing import Any, ClassVar

import numpy as np
import torch

from hypergraph.exceptions import TrainingError
from hypergraph.graph import TEST, VAL
from hypergraph.logging import get_logger
from hypergraph.registry import register
from hypergraph.spaces import Int
from hypergraph.trainers._base import BatchGatherer, TrainContext, Trainer
from hypergraph.trainers._callbacks import CallbackList, EarlyStopping, TrainState
from hypergraph.traversals import TraversalContext

__all__ = ["StandardTrainer"]

logger = get_logger(__name__)


@register("trainer", "standard")
class StandardTrainer(Trainer):
    """Epochs of batches gathered from the traversal; validation each epoch; best checkpoint.

    Each epoch runs ``traversal.steps_per_epoch()`` gradient steps, then evaluates on the
    validation nodes, lets the manager update the graph, and calls the callbacks. The model with
    the best validation score (accuracy, or loss for regression) is restored for the final test.
    Training stops early after ``patience`` epochs without improvement (0 disables it), and at
    once on a NaN or infinite loss.
    """

    tags: ClassVar[frozenset[str]] = frozenset({"trainer:epochs"})
    space = {
        "epochs": Int(default=30, low=1, high=100_000, help="passes over the training data"),
        "batch_size": Int(default=64, low=1, high=65536, log=True, help="samples per step"),
        "patience": Int(default=10, low=0, high=100_000,
                        help="epochs without val improvement before stopping (0: never)"),
        "eval_batch_size": Int(default=2048, low=1, high=1_000_000, log=True,
                               help="samples per forward pass when evaluating"),
    }

    def __init__(self, epochs: int = 30, batch_size: int = 64, patience: int = 10,
                 eval_batch_size: int = 2048) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.eval_batch_size = eval_batch_size

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
        gather = BatchGatherer(ctx.graph, ctx.bundle, ctx.device,
                               ctx.streams.generator("gather"))
        val_data = self._eval_set(ctx, gather, VAL)
        test_data = self._eval_set(ctx, gather, TEST)

        def score(ids: np.ndarray) -> np.ndarray:
            x, y = gather(ids)
            state.selection_forward += int(ids.size)
            return ctx.model.losses(x, y).float().cpu().numpy()

        traversal, manager, model = ctx.traversal, ctx.manager, ctx.model
        traversal.setup(ctx.graph, self.batch_size, ctx.streams.generator("traversal"),
                        TraversalContext(score=score, epochs=self.epochs))
        manager.setup(ctx.graph, ctx.streams.generator("manager"))
        callbacks = CallbackList([*ctx.callbacks, EarlyStopping(self.patience)])
        best_state: bytes | None = None
        if ctx.resume_state is not None:
            best_state = self._restore(ctx, state, gather, ctx.resume_state)
        feedback = traversal.needs_feedback or manager.needs_feedback
        callbacks.on_fit_start(ctx, state)

        first_epoch = state.epoch
        for epoch in range(first_epoch, self.epochs):
            state.epoch = epoch
            traversal.on_epoch_start(epoch)
            state.steps_per_epoch = traversal.steps_per_epoch()
            callbacks.on_epoch_start(ctx, state)
            loss_sum = torch.zeros((), device=ctx.device, dtype=torch.float64)
            count = 0
            for _ in range(state.steps_per_epoch):
                sel = traversal.next_batch()
                x, y = gather(sel.ids)
                weights = None if sel.weights is None else torch.from_numpy(
                    np.asarray(sel.weights, np.float32)).to(ctx.device)
                losses = model.train_step(x, y, weights)
                loss_sum += losses.sum()
                count += int(sel.ids.size)
                state.step += 1
                state.samples_seen += int(sel.ids.size)
                if feedback:
                    host = losses.float().cpu().numpy()
                    if traversal.needs_feedback:
                        traversal.feedback(sel.ids, host)
                    if manager.on_step(ctx.graph, model, sel.ids, host):
                        traversal.on_graph_change(ctx.graph)
                callbacks.on_step_end(ctx, state, sel.ids)
            train_loss = float(loss_sum) / max(count, 1)
            if not math.isfinite(train_loss):
                raise TrainingError(
                    f"The training loss became {train_loss} in epoch {epoch + 1}; training "
                    "stopped. Lower the learning rate or check the data for extreme values. "
                    + ("The last good checkpoint is kept in the run folder."
                       if ctx.out_dir else ""))
            val = self.evaluate(ctx, val_data)
            if manager.on_epoch_end(ctx.graph, model, epoch):
                traversal.on_graph_change(ctx.graph)
            improved = state.improved(val)
            if improved:
                state.best, state.best_epoch = dict(val), epoch
                best_state = _serialise(model.state_dict())
            state.wall_s = time.perf_counter() - start
            record = {"epoch": epoch + 1, "step": state.step, "samples_seen": state.samples_seen,
                      "selection_forward": state.selection_forward, "train_loss": train_loss,
                      "val": val, "best": improved, "wall_s": round(state.wall_s, 4)}
            state.history.append(record)
            state.epoch = epoch + 1
            callbacks.on_epoch_end(ctx, state, record)
            if improved and ctx.out_dir is not None:
                model.save(ctx.out_dir / "best.pt")
            if ctx.out_dir is not None:
                self.save_checkpoint(ctx, state, gather, best_state)
            if state.stop:
                break

        if best_state is not None:
            model.load_state_dict(_deserialise(best_state))
        test = self.evaluate(ctx, test_data)
        result = {"val": state.best, "test": test, "samples_seen": state.samples_seen,
                  "selection_forward": state.selection_forward, "steps": state.step,
                  "epochs": len(state.history), "best_epoch": state.best_epoch + 1,
                  "stop_reason": state.stop_reason or "completed",
                  "wall_s": round(time.perf_counter() - start, 4)}
        callbacks.on_fit_end(ctx, state, result)
        return result

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, ctx: TrainContext, state: TrainState, gather: BatchGatherer,
                        best_state: bytes | None) -> None:
        """Write ``last.pt``: everything an exact resume needs, at an epoch boundary."""
        assert ctx.out_dir is not None
        payload = {
            "state": state.to_dict(),
            "model": ctx.model.state_dict(),
            "best_model": best_state,
            "traversal": ctx.traversal.state_dict(),
            "manager": ctx.manager.state_dict(),
            "gather_rng": gather.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "graph": {"indptr": ctx.graph.indptr, "indices": ctx.graph.indices,
                      "weights": ctx.graph.weights, "version": ctx.graph.version},
        }
        path = ctx.out_dir / "last.pt"
        tmp = path.with_name("last.pt.tmp")
        torch.save(payload, tmp)
        tmp.replace(path)

    def _restore(self, ctx: TrainContext, state: TrainState, gather: BatchGatherer,
                 payload: dict[str, Any]) -> bytes | None:
        for key, value in payload["state"].items():
            setattr(state, key, value)
        state.stop = False
        graph = payload["graph"]
        if graph["version"] != ctx.graph.version:
            ctx.graph.indptr, ctx.graph.indices = graph["indptr"], graph["indices"]
            ctx.graph.weights, ctx.graph.version = graph["weights"], graph["version"]
            ctx.traversal.on_graph_change(ctx.graph)
        ctx.model.load_state_dict(payload["model"])
        ctx.traversal.load_state_dict(payload["traversal"])
        ctx.manager.load_state_dict(payload["manager"])
        gather.rng.bit_generator.state = payload["gather_rng"]
        torch.set_rng_state(payload["torch_rng"])
        best: bytes | None = payload["best_model"]
        return best


def _serialise(state: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _deserialise(blob: bytes) -> dict[str, Any]:
    state: dict[str, Any] = torch.load(io.BytesIO(blob), map_location="cpu",
                                       weights_only=False)
    return state
