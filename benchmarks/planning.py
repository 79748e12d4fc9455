"""Time cold planning of a comparison: every strategy matched to the budget at each phi.

Planning `scalesearch compare --phi 1,2,3` on the default study brings compound, depth, width
and resolution to (alpha beta^2 gamma^2)^phi times the base network's FLOPs; the matcher counts
a dozen or more networks per strategy and phi. This benchmark plans it twice in one process on
an empty count cache: with the analytic counter (what `compare` uses) and with every count
traced by fvcore (what matching cost before the analytic counter), and prints both times, the
number of distinct networks counted and the ratio.

    python benchmarks/planning.py                  # phi 1,2,3 at the paper's coefficients
    python benchmarks/planning.py --phi 1,2 --alpha 1.4 --beta 1.1 --gamma 1.1
"""

from __future__ import annotations

import argparse
import time

from scalesearch.net import complexity
from scalesearch.search.config import StudyConfig
from scalesearch.search.costs import CostCounter
from scalesearch.stages.compare import plan_points

CLASSES = 10  # the synthetic set's


class Traced(CostCounter):
    """A counter whose every count is an fvcore trace (memoised within the run, as the disk
    cache did on a cold start)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.traced: dict = {}

    def counts(self, spec):
        key = spec.key(self.num_classes)
        if key not in self.traced:
            self.traced[key] = complexity.measure(spec, self.num_classes)
        return self.traced[key]


class Counted(CostCounter):
    """The analytic counter, counting the distinct networks it was asked about."""

    def __init__(self, *args):
        super().__init__(*args)
        self.seen: set = set()

    def counts(self, spec):
        self.seen.add(spec.key(self.num_classes))
        return super().counts(spec)


def plan_seconds(counter: CostCounter, coefficients, phis, tolerance) -> tuple[float, list]:
    start = time.perf_counter()
    points = plan_points(coefficients, phis, counter, tolerance)
    return time.perf_counter() - start, points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phi", default="1,2,3")
    parser.add_argument("--alpha", type=float, default=1.2)
    parser.add_argument("--beta", type=float, default=1.1)
    parser.add_argument("--gamma", type=float, default=1.15)
    args = parser.parse_args()
    phis = [float(p) for p in args.phi.split(",")]
    config = StudyConfig()
    coefficients = (args.alpha, args.beta, args.gamma)
    complexity.clear_memory_cache()
    analytic = Counted(config, CLASSES, config.base_resolution)
    fast, fast_points = plan_seconds(analytic, coefficients, phis, config.tolerance)
    traced = Traced(config, CLASSES, config.base_resolution)
    slow, slow_points = plan_seconds(traced, coefficients, phis, config.tolerance)
    same = [p["network"] for p in fast_points] == [p["network"] for p in slow_points]
    print(f"planning compare --phi {args.phi} on the default study ({len(fast_points)} "
          f"networks planned)")
    print(f"analytic counts: {fast:.3f} s ({len(analytic.seen)} networks counted)")
    print(f"fvcore counts:   {slow:.1f} s ({len(traced.traced)} networks traced)")
    print(f"ratio: {slow / fast:.0f}x; the same plan: {same}")


if __name__ == "__main__":
    main()
