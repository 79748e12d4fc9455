"""What a network costs, relative to the study's base network: FLOPs, activations or time.

- ``flops``: multiply-adds of one image, fvcore's convention (the paper's cost);
- ``activations``: output elements of the convolutions and linear layers of one image,
  fvcore's convention (what Dollar et al. found to predict runtime on memory-bound devices);
- ``time``: measured training seconds per image on the study's device and batch size
  (`scalesearch.train.timing`), so a time budget of 2x means twice the base network's step.

The study's cost (`StudyConfig.cost`) is what its budget and its matching are expressed in;
every trained network records all three. FLOPs and activations are analytic counts
(microseconds); time is measured once per network and device and cached.
"""

from __future__ import annotations

from scalesearch.net.family import Spec, get_family
from scalesearch.search.config import COSTS, StudyConfig


class CostCounter:
    """A study's base network and the costs of networks relative to it. Calling it gives a
    spec's ratio in the study's cost (for matching); `checked` counts a network that is about
    to be trained with fvcore too, and a disagreement with the analytic count is an error."""

    def __init__(self, config: StudyConfig, num_classes: int, data_base_resolution: int):
        from scalesearch.net import complexity

        self.config = config
        self.cost = config.cost
        self.num_classes = num_classes
        self.base = get_family(config.base).scale(
            config.base_depth, config.base_width, config.base_resolution or data_base_resolution)
        self._complexity = complexity
        self.base_counts = complexity.counts(self.base, self.num_classes)
        self.base_flops = self.base_counts.flops

    @classmethod
    def for_data(cls, config: StudyConfig, data) -> CostCounter:
        return cls(config, data.num_classes, data.base_resolution)

    def counts(self, spec: Spec):
        return self._complexity.counts(spec, self.num_classes)

    def checked(self, spec: Spec):
        return self._complexity.checked_counts(spec, self.num_classes)

    def seconds_per_image(self, spec: Spec) -> float:
        """Measured training seconds per image on the study's device (cached)."""
        from scalesearch.train.config import TrainConfig
        from scalesearch.train.timing import time_per_image

        config = TrainConfig(batch_size=self.config.batch_size, device=self.config.device,
                             optimizer=self.config.optimizer, lr=self.config.lr,
                             compile=self.config.compile)
        return time_per_image(spec, self.num_classes, config).seconds_per_image

    def ratio(self, spec: Spec, cost: str | None = None) -> float:
        """`spec`'s cost over the base network's, in `cost` (default: the study's)."""
        cost = cost or self.cost
        if cost == "flops":
            return self.counts(spec).flops / self.base_flops
        if cost == "activations":
            return self.counts(spec).activations / self.base_counts.activations
        if cost == "time":
            return self.seconds_per_image(spec) / self.seconds_per_image(self.base)
        raise ValueError(f"unknown cost {cost!r}; one of {COSTS}")

    def __call__(self, spec: Spec) -> float:
        return self.ratio(spec)
