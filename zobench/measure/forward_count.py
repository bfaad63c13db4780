"""Forward passes counted as they happen, and the extra training batches methods may ask for.

A method declares how many forwards its last step cost (``forwards_last_step``), but some spend
a number that varies (AdaZeta's Q, MeZO-SVRG's anchor steps, HiZOO's logging forward), so the
worker counts the forwards its closures actually run: every call of the step closure is one
forward of the step's batch, every chunk an ``ExtraBatches`` closure runs is one forward of a
``batch_size`` mini-batch. Records report the mean per step (forwards_total / steps).
Usage: ``counter = ForwardCounter(); loss = counter.run(closure, n_tokens)``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from zobench.api import Closure


class ForwardCounter:
    def __init__(self) -> None:
        self.forwards = 0
        self.tokens = 0

    def run(self, closure: Closure, n_tokens: int) -> torch.Tensor:
        self.forwards += 1
        self.tokens += n_tokens
        return closure()


class TrainBatches:
    """The ``ExtraBatches`` a cell offers: closures over its training split, counted by ``counter``.

    ``load(indices)`` returns a device batch for those examples; ``loss(batch)`` runs one forward.
    Random mini-batches come from a generator of their own (seeded from the cell seed), so asking
    for them does not shift the step batches' order.
    """

    def __init__(self, n_examples: int, batch_size: int, seed: int, load: Callable[[list[int]], Any],
                 loss: Callable[[Any], torch.Tensor], counter: ForwardCounter):
        self.n_examples, self.batch_size = n_examples, batch_size
        self.load, self.loss, self.counter = load, loss, counter
        self.generator = torch.Generator().manual_seed(seed + 7919)  # any fixed offset from the step sampler's seed

    def anchor(self, batches: int = 0) -> Closure:
        if batches:
            chunks = [torch.randperm(self.n_examples, generator=self.generator)[: self.batch_size].tolist()
                      for _ in range(batches)]
        else:  # the whole split in order; the last chunk may be short (MeZO-SVRG's full batch holds all n)
            order = list(range(self.n_examples))
            chunks = [order[i : i + self.batch_size] for i in range(0, self.n_examples, self.batch_size)]
        loaded = [self.load(c) for c in chunks]

        def closure() -> torch.Tensor:
            # Mean of the chunk means, as MeZO-SVRG's chunked full-batch loss (zo_forward_memory_eff).
            total = None
            for batch in loaded:
                value = self.counter.run(lambda: self.loss(batch), batch.n_tokens)
                total = value if total is None else total + value
            return total / len(loaded)

        return closure
