"""Model selection on dev only: keep the best-on-dev trainable tensors, restore them for one test pass.

MeZO and the papers after it keep the checkpoint with the best dev score
(``--load_best_model_at_end``, whose default criterion is the dev loss) and report its
test score. ZO-Bench passed its test subset as the trainer's eval set, so it selected on
test (see shared/reference/mezo-and-zo-bench.md); here selection sees dev figures only,
and test is evaluated once for the selected checkpoint and once for the final one.
Candidates are the evaluations made during and after training, as the HF trainer's
(step 0 is the zero-shot baseline, not a candidate).

The copy goes to a temporary file, not to memory: a second copy of θ in RAM or on the
GPU would count against the method's own memory figures (full fine-tuning's θ is the
whole model). Only the method's ``params`` are saved: nothing else may change.
Usage: ``best = BestOnDev("dev_loss", method.params)``; ``best.offer(step, acc, loss)``
after every dev evaluation; ``best.restore()`` before the selected checkpoint's test pass.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import torch

SELECT_ON = ("dev_loss", "dev_accuracy")


class BestOnDev:
    def __init__(self, select_on: str, params: list[torch.Tensor]):
        if select_on not in SELECT_ON:
            raise ValueError(f"unknown select_on {select_on!r}; valid: {', '.join(SELECT_ON)}")
        self.select_on = select_on
        self.params = list({id(p): p for p in params}.values())
        self.step: int | None = None
        self.dev_accuracy = float("nan")
        self.dev_loss = float("nan")
        self._dir = tempfile.TemporaryDirectory(prefix="zobench-best-")
        self._file = Path(self._dir.name) / "best.pt"
        self._saved_step: int | None = None

    def _better(self, accuracy: float, loss: float) -> bool:
        """Lower dev loss or higher dev accuracy; a non-finite figure never wins, ties keep the earlier."""
        value = loss if self.select_on == "dev_loss" else accuracy
        if not math.isfinite(value):
            return False
        if self.step is None:
            return True
        best = self.dev_loss if self.select_on == "dev_loss" else self.dev_accuracy
        return value < best if self.select_on == "dev_loss" else value > best

    def offer(self, step: int, accuracy: float, loss: float, final: bool = False) -> bool:
        """Record a dev evaluation; save the tensors if it is the best so far. The final
        evaluation is not saved: the model in memory is that checkpoint."""
        if not self._better(accuracy, loss):
            return False
        self.step, self.dev_accuracy, self.dev_loss = step, accuracy, loss
        if not final:
            torch.save([p.detach().to("cpu", copy=True) for p in self.params], self._file)
            self._saved_step = step
        return True

    def restore(self) -> None:
        """Load the selected checkpoint's tensors into the model (after the final test pass)."""
        if self._saved_step != self.step:
            raise RuntimeError(f"the best checkpoint (step {self.step}) was never saved")
        saved = torch.load(self._file, weights_only=True)
        with torch.no_grad():
            for param, value in zip(self.params, saved):
                param.copy_(value.to(param.device))

    def close(self) -> None:
        self._dir.cleanup()
