"""Console logger: one short rich line per epoch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console

from hypergraph.trainers import Callback, TrainState

if TYPE_CHECKING:
    from hypergraph.trainers import TrainContext

__all__ = ["ConsoleLogger"]


class ConsoleLogger(Callback):
    """Prints ``epoch  3/30  train_loss 0.5624  val loss 0.3802 accuracy 0.9071  best  1.6s``.

    Args:
        console: Where to print (default: a rich console on stderr, so that stdout stays
            clean for the results).
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console

    def _out(self) -> Console:
        if self.console is None:
            self.console = Console(stderr=True)
        return self.console

    def on_fit_start(self, ctx: TrainContext, state: TrainState) -> None:
        if state.step > 0:
            self._out().print(f"Resuming at epoch {state.epoch + 1}, step {state.step}.",
                              highlight=False)

    def on_epoch_end(self, ctx: TrainContext, state: TrainState, record: dict[str, Any]) -> None:
        width = len(str(state.epochs))
        val = " ".join(f"{k} {v:.4f}" for k, v in record["val"].items())
        best = "  [green]best[/]" if record.get("best") else ""
        self._out().print(
            f"epoch {record['epoch']:>{width}}/{state.epochs}  train_loss "
            f"{record['train_loss']:.4f}  val {val}{best}  {record['wall_s']:.1f}s",
            highlight=False)

    def on_fit_end(self, ctx: TrainContext, state: TrainState, result: dict[str, Any]) -> None:
        test = " ".join(f"{k} {v:.4f}" for k, v in result["test"].items())
        self._out().print(f"test {test}  ({result['stop_reason']}, best epoch "
                          f"{result['best_epoch']})", highlight=False)
