"""Where the search looks next: the samplers of (u, v) and the pruner of compound candidates.

- ``qmc``: scrambled Sobol points of the unit square, drawn by `SobolSampler`. The n-th sampled
  trial of a study (counting only trials the sampler proposed, in trial-number order) takes
  the n-th point of the sequence. Trial numbers are handed out by the storage one at a time,
  so parallel workers never propose the same point, and a resumed study continues the
  sequence instead of replaying it. (Optuna's own QMCSampler infers its search space from the
  first finished trial; in a search that is the baseline, which has no parameters, so it
  never left its random fallback.)
- ``tpe``: Optuna's TPE over (u, v); its seed moves with the study's progress and the process,
  so resumed or parallel workers do not replay the first worker's startup points.
- ``grid``: every point is enqueued by the plan; the sampler is never asked.

Pruning (`CompoundMedianPruner`, with ``--prune``): a compound candidate is stopped when its
accuracy after an epoch is below the median of the finished compound candidates at that
epoch. Not before half the proxy epochs (early epochs favour small, fast-starting networks
inside the learning-rate warm-up), and not before `PRUNE_STARTUP` compound candidates have
finished.
"""

from __future__ import annotations

import math
import os

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from scalesearch.search.config import StudyConfig
from scalesearch.search.space import PARAMS

PRUNE_STARTUP = 4  # compound candidates that finish before any is pruned
SOBOL_BLOCK = 256  # points drawn at a time (a power of two keeps the net's balance)


class SobolSampler(optuna.samplers.BaseSampler):
    """Scrambled Sobol points of (u, v): sampled trial n takes point n (see the module)."""

    def __init__(self, seed: int):
        self.seed = seed
        self._points = np.empty((0, len(PARAMS)))

    def point(self, index: int) -> np.ndarray:
        """The index-th point of this seed's scrambled sequence, (2,) in [0, 1)."""
        if index >= len(self._points):
            from scipy.stats import qmc

            count = SOBOL_BLOCK * (index // SOBOL_BLOCK + 1)
            engine = qmc.Sobol(d=len(PARAMS), scramble=True, seed=self.seed)
            self._points = engine.random(count)
        return self._points[index]

    @staticmethod
    def index(study: optuna.Study, trial: FrozenTrial) -> int:
        """How many trials numbered below `trial` were proposed by the sampler (not enqueued)."""
        return sum(1 for t in study.get_trials(deepcopy=False)
                   if t.number < trial.number and "fixed_params" not in t.system_attrs)

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict:
        return {}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> float:
        if param_name not in PARAMS or not isinstance(param_distribution, FloatDistribution):
            raise ValueError(f"the Sobol sampler draws only {PARAMS}, not {param_name!r}")
        value = float(self.point(self.index(study, trial))[PARAMS.index(param_name)])
        low, high = param_distribution.low, param_distribution.high
        return min(high, low + value * (high - low))


def make_sampler(config: StudyConfig, finished: int) -> optuna.samplers.BaseSampler:
    """The sampler of a worker of a study whose `finished` trials exist already."""
    if config.sampler == "qmc":
        return SobolSampler(config.seed)
    if config.sampler == "tpe":
        return optuna.samplers.TPESampler(
            seed=config.seed * 100_003 + finished * 7919 + os.getpid() % 7919,
            n_startup_trials=4, multivariate=True)
    return optuna.samplers.RandomSampler(seed=config.seed)  # grid: every point is enqueued


class CompoundMedianPruner(optuna.pruners.BasePruner):
    """Median pruning among compound candidates only, after a warm-up (see the module)."""

    def __init__(self, epochs: int, startup: int = PRUNE_STARTUP):
        self.warmup = max(1, math.ceil(epochs / 2))
        self.startup = startup

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.warmup or trial.user_attrs.get("kind") != "compound":
            return False
        others = [t for t in study.get_trials(deepcopy=False)
                  if t.number != trial.number and t.user_attrs.get("kind") == "compound"]
        finished = [t for t in others if t.state == TrialState.COMPLETE]
        if len(finished) < self.startup:
            return False
        reached = [t.intermediate_values[step] for t in finished if step in t.intermediate_values]
        if len(reached) < self.startup:
            return False
        return trial.intermediate_values[step] < float(np.median(reached))
