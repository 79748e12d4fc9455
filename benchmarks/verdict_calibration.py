"""How often does the verdict name a winner when every network is equally good?

Feeds the real verdict code (`scalesearch.verdict.results`, `scalesearch.stages.confirm`,
`scalesearch.verdict.decision`) simulated studies in which every network has the same true
accuracy, with both noise sources as a real study has them:

- evaluation images: each split (val for the search, test for the confirmation) is a finite
  sample of images with their own difficulty (the probability that a trained network gets the
  image right, Beta-distributed around the true accuracy);
- training seeds: each run draws its per-image correctness from those difficulties (image-by-
  image flips), after a shift of the whole run on the logit scale (a seed that trains better
  or worse overall).

Each simulated study is shaped like a real one: the baseline with 2 seeds, the three corners
(depth and resolution interpolated between two networks, width matched, as on the default
base), compound candidates with one seed (some interpolated), the search's choice of the best
compound candidate and best single dimension on validation, and the confirmation on fresh
seeds and the test split. A 5% test should name a winner in about 5% of these studies, half
for compound and half for the single dimension.

    python benchmarks/verdict_calibration.py [--studies 2000] [--seed 0]

The last line reads: false wins: X% (default), Y% (20 candidates).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from scalesearch.stages import confirm
from scalesearch.store.bits import pack
from scalesearch.verdict.results import trial_rows

BUDGET = 2.0


@dataclass(frozen=True)
class Setting:
    """One simulated kind of study."""

    name: str
    candidates: int  # compound candidates of the search
    confirm_seeds: int = 2
    val_images: int = 1000
    test_images: int = 1000
    accuracy: float = 0.45  # every network's true accuracy
    concentration: float = 2.0  # of the per-image difficulty Beta (low: images differ a lot)
    seed_shift: float = 0.15  # std of a run's logit shift
    interpolated: float = 0.3  # share of compound candidates that need two networks


DEFAULT = Setting("default", candidates=4)
MANY = Setting("20 candidates", candidates=20)


def _difficulties(rng: np.random.Generator, setting: Setting, n: int) -> np.ndarray:
    a = setting.accuracy * setting.concentration
    b = (1 - setting.accuracy) * setting.concentration
    return np.clip(rng.beta(a, b, size=n), 1e-4, 1 - 1e-4)


def _runs(rng: np.random.Generator, setting: Setting, difficulty: np.ndarray, seeds: int,
          split: str) -> list[dict]:
    logit = np.log(difficulty / (1 - difficulty))
    runs = []
    for seed in range(seeds):
        shifted = 1 / (1 + np.exp(-(logit + rng.normal(0, setting.seed_shift))))
        correct = rng.random(difficulty.shape[0]) < shifted
        runs.append({"seed": seed, "state": "complete", f"{split}_accuracy": float(correct.mean()),
                     f"{split}_correct": pack(correct), "val_accuracy": float(correct.mean())})
    return runs


def _trial(number: int, attrs: dict, runs: list[dict], params: dict | None = None):
    value = float(np.mean([r["val_accuracy"] for r in runs]))
    distributions = {k: FloatDistribution(0.0, 1.0) for k in (params or {})}
    return create_trial(state=TrialState.COMPLETE, value=value, params=params or {},
                        distributions=distributions, user_attrs={**attrs, "runs": runs})


def _network(kind: str, candidate: int, bracket: str, ratio: float, key: str) -> dict:
    shares = {"depth": (1, 0, 0), "width": (0, 1, 0), "resolution": (0, 0, 1)}.get(
        kind, (0.4, 0.3, 0.3))
    return {"kind": kind, "candidate": candidate, "bracket": bracket, "budget": BUDGET,
            "network": key, "flops_ratio": ratio, "flops": int(ratio * 1e6), "params": 1,
            "activations": 1, "alpha": BUDGET ** shares[0], "beta": BUDGET ** (shares[1] / 2),
            "gamma": BUDGET ** (shares[2] / 2), "phi": 1.0, "depth_share": shares[0],
            "width_share": shares[1], "resolution_share": shares[2], "depth_mult": 0.5,
            "width_mult": 0.5, "resolution": 40, "flops_matched": bracket == "matched"}


def _search(rng: np.random.Generator, setting: Setting, val: np.ndarray) -> list:
    """The search's trials: baseline, corners, compound candidates."""
    trials, number = [], 0

    def add(kind, brackets, seeds=1):
        nonlocal number
        candidate = number
        ratios = ([BUDGET] if brackets == 1 else
                  [BUDGET / rng.uniform(1.05, 1.4), BUDGET * rng.uniform(1.05, 1.4)])
        names = ["matched"] if brackets == 1 else ["lower", "upper"]
        for ratio, bracket in zip(ratios, names):
            attrs = _network(kind, candidate, bracket, ratio, f"net-{number}")
            trials.append(_trial(number, attrs, _runs(rng, setting, val, seeds, "val")))
            number += 1

    add("baseline", 1, seeds=2)
    trials[-1].user_attrs.update(flops_ratio=1.0, budget=BUDGET)
    add("depth", 2)
    add("width", 1)
    add("resolution", 2)
    for _ in range(setting.candidates):
        add("compound", 2 if rng.random() < setting.interpolated else 1)
    for i, t in enumerate(trials):
        t.number = i
    return trials


def simulate(setting: Setting, rng: np.random.Generator) -> str:
    """One study under the null; the verdict's answer."""
    val = _difficulties(rng, setting, setting.val_images)
    test = _difficulties(rng, setting, setting.test_images)
    search = trial_rows(_search(rng, setting, val))
    planned = confirm.plan(search, setting.confirm_seeds)
    if planned is None:
        return "undecided"
    meta, points = planned
    trials = []
    for number, point in enumerate(points):
        runs = _runs(rng, setting, test, setting.confirm_seeds, "test")
        trials.append(_trial(number, point, runs))
        trials[-1].number = number
    summary = confirm.summarize(trial_rows(trials, extra=("test_accuracy",)), meta)
    return summary["verdict"]["answer"]


def calibrate(setting: Setting, studies: int, seed: int) -> dict[str, float]:
    """Shares of each answer over `studies` simulated null studies."""
    rng = np.random.default_rng(seed)
    answers: dict[str, int] = {}
    for _ in range(studies):
        answer = simulate(setting, rng)
        answers[answer] = answers.get(answer, 0) + 1
    return {k: v / studies for k, v in sorted(answers.items())}


def false_wins(shares: dict[str, float]) -> tuple[float, float, float]:
    """(all wins, compound wins, single-dimension wins) as fractions."""
    compound = shares.get("compound", 0.0)
    single = sum(shares.get(k, 0.0) for k in ("depth", "width", "resolution"))
    return compound + single, compound, single


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rates = {}
    for setting in (DEFAULT, MANY):
        shares = calibrate(setting, args.studies, args.seed)
        total, compound, single = false_wins(shares)
        margin = 1.96 * math.sqrt(max(total * (1 - total), 1e-9) / args.studies)
        rates[setting.name] = total
        print(f"{setting.name}: {args.studies} null studies, false wins {total:.1%} "
              f"(+- {margin:.1%}): compound {compound:.1%}, single dimension {single:.1%}; "
              f"answers {shares}")
    print(f"false wins: {rates['default']:.1%} (default), {rates['20 candidates']:.1%} "
          "(20 candidates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
