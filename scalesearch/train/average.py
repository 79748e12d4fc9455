"""An exponential moving average of a model's weights, and evaluating with it.

The average is updated after every optimizer step with TensorFlow's warm-up
(ExponentialMovingAverage with num_updates): the decay is min(decay, (1 + step) / (10 + step)),
so the early steps weigh more and the initial weights do not linger. `swapped_in` puts the
average into the model for an evaluation and the trained weights back afterwards, so training
can go on. Batch-norm statistics are not averaged: the trainer recomputes them for whatever
weights it evaluates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


class WeightAverage:
    """The moving average of ``params`` (the model's parameters, in a fixed order)."""

    def __init__(self, params: list[torch.nn.Parameter], decay: float):
        self.params = params
        self.decay = decay
        self.values = [p.detach().clone() for p in params]

    @torch.no_grad()
    def update(self, steps_done: int) -> None:
        """Fold in the weights after ``steps_done`` optimizer steps (1 after the first)."""
        decay = min(self.decay, (1 + steps_done) / (10 + steps_done))
        torch._foreach_lerp_(self.values, self.params, 1.0 - decay)

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The model holds the average inside the block, its trained weights after it."""
        with torch.no_grad():
            trained = [p.detach().clone() for p in self.params]
            torch._foreach_copy_(self.params, self.values)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.params, trained)
