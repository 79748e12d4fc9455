"""How often does the verdict name a false winner, with noise as real short trainings make it?

Feeds the real planning and verdict code (`scalesearch.verdict.results`,
`scalesearch.stages.confirm`, `scalesearch.verdict.decision`) simulated studies shaped like the
default one: the baseline with 2 seeds, the three corners (depth and resolution bracketed by
two networks, width matched), compound candidates with one seed (30% of them bracketed), the
search's choice of the best compound candidate on validation, and the confirmation of it and
of all three single dimensions on fresh seeds and the test split.

Every network has a true accuracy at each image (images of varied difficulty, Beta-distributed
around the study's accuracy) and every run draws its per-image correctness from it after a
shift of the whole run on the logit scale (a seed that trains better or worse). The scenarios
change how the noise looks (every one under the null: the compared strategies are equally good
at the budget):

- ``gaussian``: one seed SD for every network (the old benchmark's world);
- ``unequal``: each network's seed SD drawn log-uniform from 0.3 to 10 points;
- ``collapse-compared`` / ``collapse-others``: 25% of runs lose a class group (a tenth of the
  images, all wrong), in the compared networks only / in the search's other networks only;
- ``interaction``: networks differ in which images they get right, not in how many;
- ``curvature``: each bracketed single dimension's networks lie off the truth at the budget
  (concave: the lower network 3 points below, the upper 1 above; non-monotone: the lower 2
  above, the upper 1 below), so the chord is biased while the truth is equal;
- ``misselected``: compound as good as the best single dimension, the other two 5 points
  worse, chosen on one validation seed.

A false win is any win (``compound`` or a single dimension) in these studies; the rule aims at
2.5% on each side. Then the power: with a true compound advantage of 3 points over every single
dimension, at the seed noise of ``benchmarks/proxy_noise.py`` and the default study's images and
seeds, the share of studies that say ``compound``.

    python benchmarks/verdict_calibration.py [--studies 2000] [--seed 0] [--seed-sd 1.0]

The last lines read ``false wins: max X% over N scenarios`` and ``power: ...``.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field

import numpy as np
import optuna
from optuna.trial import TrialState, create_trial

from scalesearch.stages import confirm
from scalesearch.store.bits import pack
from scalesearch.verdict.decision import DECIDED
from scalesearch.verdict.results import SINGLE_DIMENSIONS, trial_rows

BUDGET = 2.0


@dataclass(frozen=True)
class Scenario:
    """One simulated kind of study; accuracies and SDs in points."""

    name: str
    candidates: int = 4  # compound candidates of the search
    confirm_seeds: int = 4  # the default study's
    val_images: int = 1000
    test_images: int = 2000
    accuracy: float = 80.0  # every network's true mean accuracy (before the offsets below)
    concentration: float = 2.0  # of the per-image difficulty Beta (low: images differ a lot)
    seed_sd: tuple[float, float] = (1.0, 1.0)  # a network's seed SD, log-uniform in this range
    collapse: float = 0.0  # share of runs that lose a class group
    # "compared": the confirmation's runs (every network it judges); "others": the search's
    # runs only (they choose, they are not judged)
    collapse_in: str = "compared"
    interaction: float = 0.0  # logit SD of each network's own per-image offsets
    # True offsets of the bracketed single dimensions' networks from the truth at the budget
    # (lower, upper), each a list the simulation cycles through.
    brackets: tuple[tuple[float, float], ...] = ((0.0, 0.0),)
    offsets: dict = field(default_factory=dict)  # kind -> true offset at the budget
    interpolated: float = 0.3  # share of compound candidates that need two networks


SCENARIOS = (
    Scenario("gaussian"),
    Scenario("unequal", seed_sd=(0.3, 10.0)),
    Scenario("collapse-compared", collapse=0.25, collapse_in="compared"),
    Scenario("collapse-others", collapse=0.25, collapse_in="others"),
    Scenario("interaction", interaction=0.8),
    Scenario("curvature", brackets=((-3.0, 1.0), (2.0, -1.0))),
    Scenario("misselected", offsets={"depth": -5.0, "width": -5.0}),
)


class World:
    """The true per-image logits of one study's splits, and runs drawn from them."""

    def __init__(self, rng: np.random.Generator, scenario: Scenario):
        self.rng, self.s = rng, scenario
        self.logits = {split: self._difficulties(n) for split, n in
                       (("val", scenario.val_images), ("test", scenario.test_images))}
        # a class group: the same tenth of the images of each split, lost by a collapsed run
        self.group = {split: rng.random(v.shape[0]) < 0.1 for split, v in self.logits.items()}
        self.networks: dict[str, dict] = {}

    def _difficulties(self, n: int) -> np.ndarray:
        p = self.s.accuracy / 100
        q = np.clip(self.rng.beta(p * self.s.concentration, (1 - p) * self.s.concentration,
                                  size=n), 1e-4, 1 - 1e-4)
        return np.log(q / (1 - q))

    def network(self, key: str, offset: float) -> dict:
        """A network's truth: its accuracy offset (points), seed SD, own image offsets."""
        if key not in self.networks:
            low, high = self.s.seed_sd
            sd = math.exp(self.rng.uniform(math.log(low), math.log(high)))
            own = {split: self.rng.normal(0, self.s.interaction, v.shape[0])
                   for split, v in self.logits.items()} if self.s.interaction else None
            self.networks[key] = {"offset": offset, "sd": sd, "own": own}
        return self.networks[key]

    def runs(self, key: str, split: str, seeds: int) -> list[dict]:
        truth = self.networks[key]
        base = self.logits[split] + (truth["own"][split] if truth["own"] is not None else 0.0)
        slope = _slope(base)
        centre = base + truth["offset"] / 100 / slope  # offset in points, near the mean
        stage = "compared" if split == "test" else "others"
        collapse = self.s.collapse if self.s.collapse_in == stage else 0.0
        out = []
        for seed in range(seeds):
            shift = self.rng.normal(0, truth["sd"] / 100 / slope)
            correct = self.rng.random(base.shape[0]) < 1 / (1 + np.exp(-(centre + shift)))
            if self.rng.random() < collapse:
                correct &= ~self.group[split]
            out.append({"seed": seed, "state": "complete", f"{split}_accuracy":
                        float(correct.mean()), f"{split}_correct": pack(correct),
                        "val_accuracy": float(correct.mean()), "seconds": 20.0})
        return out


def _slope(logits: np.ndarray) -> float:
    """d(mean accuracy) / d(logit shift) at these logits."""
    p = 1 / (1 + np.exp(-logits))
    return float((p * (1 - p)).mean())


def _trial(number: int, attrs: dict, runs: list[dict]):
    value = float(np.mean([r["val_accuracy"] for r in runs]))
    return create_trial(state=TrialState.COMPLETE, value=value, params={}, distributions={},
                        user_attrs={**attrs, "runs": runs})


def _row(kind: str, candidate: int, bracket: str, ratio: float, key: str) -> dict:
    shares = {"depth": (1, 0, 0), "width": (0, 1, 0), "resolution": (0, 0, 1)}.get(
        kind, (0.4, 0.3, 0.3))
    return {"kind": kind, "candidate": candidate, "bracket": bracket, "budget": BUDGET,
            "network": key, "flops_ratio": ratio, "flops": int(ratio * 1e6), "params": 1,
            "activations": 1, "alpha": BUDGET ** shares[0], "beta": BUDGET ** (shares[1] / 2),
            "gamma": BUDGET ** (shares[2] / 2), "phi": 1.0, "depth_share": shares[0],
            "width_share": shares[1], "resolution_share": shares[2], "depth_mult": 0.5,
            "width_mult": 0.5, "resolution": 40, "flops_matched": bracket == "matched"}


def _search(world: World, s: Scenario) -> list:
    """The search's trials (one validation run each, two for the baseline)."""
    trials: list = []
    brackets = iter(s.brackets * 4)

    def add(kind: str, two: bool, seeds: int = 1):
        candidate = len(trials)
        if two:
            ratios = [BUDGET / world.rng.uniform(1.05, 1.4), BUDGET * world.rng.uniform(1.05, 1.4)]
            lower, upper = next(brackets) if kind in SINGLE_DIMENSIONS else (0.0, 0.0)
            parts = [("lower", lower), ("upper", upper)]
        else:
            ratios, parts = [BUDGET], [("matched", 0.0)]
        for ratio, (bracket, off) in zip(ratios, parts):
            key = f"net-{len(trials)}"
            world.network(key, s.offsets.get(kind, 0.0) + off)
            attrs = _row(kind, candidate, bracket, ratio, key)
            trials.append(_trial(len(trials), attrs, world.runs(key, "val", seeds)))

    add("baseline", False, seeds=2)
    trials[-1].user_attrs.update(flops_ratio=1.0)
    add("depth", True)
    add("width", False)
    add("resolution", True)
    for _ in range(s.candidates):
        add("compound", world.rng.random() < s.interpolated)
    for i, t in enumerate(trials):
        t.number = i
    return trials


def simulate(s: Scenario, rng: np.random.Generator) -> str:
    """One study; the verdict's answer."""
    world = World(rng, s)
    search = trial_rows(_search(world, s))
    planned = confirm.plan(search, s.confirm_seeds)
    if planned is None:
        return "undecided"
    meta, points = planned
    trials = []
    for number, point in enumerate(points):
        trials.append(_trial(number, point, world.runs(point["network"], "test",
                                                       s.confirm_seeds)))
        trials[-1].number = number
    summary = confirm.summarize(trial_rows(trials, extra=("test_accuracy",)), meta)
    return summary["verdict"]["answer"]


def calibrate(s: Scenario, studies: int, seed: int) -> dict[str, float]:
    """Shares of each answer over `studies` simulated studies."""
    rng = np.random.default_rng(seed)
    answers: dict[str, int] = {}
    for _ in range(studies):
        answer = simulate(s, rng)
        answers[answer] = answers.get(answer, 0) + 1
    return {k: v / studies for k, v in sorted(answers.items())}


def false_wins(shares: dict[str, float]) -> tuple[float, float, float]:
    """(all wins, compound wins, single-dimension wins) as fractions."""
    compound = shares.get("compound", 0.0)
    single = sum(shares.get(k, 0.0) for k in SINGLE_DIMENSIONS)
    return compound + single, compound, single


def power_scenario(seed_sd: float) -> Scenario:
    """A true 3-point compound advantage at the default study's noise, images and seeds."""
    return Scenario("power", seed_sd=(seed_sd, seed_sd), val_images=5000, test_images=10000,
                    offsets={"compound": 3.0})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seed-sd", type=float, default=1.0,
                        help="seed SD (points) of the power study: proxy_noise.py's median")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    worst = 0.0
    for scenario in SCENARIOS:
        shares = calibrate(scenario, args.studies, args.seed)
        total, compound, single = false_wins(shares)
        margin = 1.96 * math.sqrt(max(total * (1 - total), 1e-9) / args.studies)
        worst = max(worst, total)
        decided = sum(v for k, v in shares.items() if k in DECIDED)
        print(f"{scenario.name}: {args.studies} null studies, false wins {total:.1%} "
              f"(+- {margin:.1%}): compound {compound:.1%}, single dimension {single:.1%}; "
              f"decided {decided:.1%}; answers {shares}", flush=True)
    print(f"false wins: max {worst:.1%} over {len(SCENARIOS)} scenarios")
    power = power_scenario(args.seed_sd)
    shares = calibrate(power, max(200, args.studies // 4), args.seed)
    print(f"power: a true 3-point compound advantage at a seed SD of {args.seed_sd:g} points, "
          f"{power.confirm_seeds} confirmation seeds and {power.test_images:,} test images: "
          f"compound in {shares.get('compound', 0.0):.1%} of studies; answers {shares}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
