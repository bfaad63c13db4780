"""Random-token inputs at fixed sequence lengths, for memory and time benchmarks. SYNTHETIC.

``random-tokens-<N>``: every sequence the model sees is exactly N tokens (special prefix,
random prompt ids and a one-token option), drawn from the tokenizer's own vocabulary,
whatever the tokenizer; see ``RandomTokens`` and ``zobench.scoring.causal_lm.encode``. Labels are
random too, so accuracy means nothing: memory and step time depend on shapes only, which
is what lets ``random:`` models with real shapes stand in for downloads (issue #9).
Two options per example, as SST-2, so a batch of B examples is 2B sequences.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zobench.api import Task
from zobench.tasks import Example, RandomTokens, Splits

LENGTHS = (64, 128, 256, 512, 1024, 2048)
OPTIONS = ("option 0", "option 1")  # names only: each option is one random token
SPLIT_OFFSETS = {"train": 0, "dev": 1, "test": 2}  # disjoint draws per split


class RandomTokenTask(Task):
    version = "1"
    synthetic = True
    default_sizes = {"train": 64, "dev": 16, "test": 16}

    def __init__(self, length: int):
        self.sequence_length = length
        self.name = f"random-tokens-{length}"
        self.description = (f"SYNTHETIC random token ids, {length} tokens per sequence: "
                            f"memory and time only, accuracy meaningless")

    def split(self, split: str, size: int, data_seed: int) -> list[Example]:
        rng = np.random.default_rng([data_seed, SPLIT_OFFSETS[split], self.sequence_length])
        seeds = rng.integers(0, 2**62, size=size)
        labels = rng.integers(0, len(OPTIONS), size=size)
        return [Example(RandomTokens(self.sequence_length, int(s)), OPTIONS, int(y)) for s, y in zip(seeds, labels)]

    def load(self, data_dir: Path | None, sizes: dict[str, int], data_seed: int) -> Splits:
        return Splits(
            train=self.split("train", sizes["train"], data_seed),
            dev=self.split("dev", sizes["dev"], data_seed),
            test=self.split("test", sizes["test"], data_seed),
            # The source is what records and reports show about the inputs: say it plainly.
            source=f"embedded: random token ids, {self.sequence_length} tokens per sequence "
                   f"(memory and time only; accuracy meaningless)",
        )


TASKS = [RandomTokenTask(n) for n in LENGTHS]
