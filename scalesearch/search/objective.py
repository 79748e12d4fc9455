"""Training one candidate of the search: its network, its seeds, its record in the trial.

Every candidate except the baseline is a direction on the surface (Optuna parameters
``depth_share`` and ``width_fraction``, see `scalesearch.search.space`), brought to the budget in
measured FLOPs (`scalesearch.search.matching`) before training, and trained `seeds` times (the
baseline at least twice); the trial's value is the mean validation accuracy. Per-seed results
are stored in the trial's user attribute ``runs`` as they finish, so a re-run trial skips the
seeds already trained.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from scalesearch.net.scaling import NetworkSpec, scale_network
from scalesearch.search.config import StudyConfig
from scalesearch.search.matching import Match, match_budget, nominal_match
from scalesearch.search.space import Direction, direction_from_params
from scalesearch.search.trials import dropped
from scalesearch.store.workers import enqueue_rerun, frozen_with_runs, worker_id


class TrainingFailed(Exception):
    """Every seed of a candidate failed (diverged or ran out of memory); not re-run."""


class Surplus(Exception):
    """A worker drew a trial after the plan was complete; the trial is dropped."""

# A sampled point whose matched network equals one already trained or training is not trained
# again (on small proxies many directions round to the same network); it is pruned with
# ``duplicate_of`` and does not count towards the target. After this many in a row a worker
# stops: the surface has no more distinct networks at this base.
MAX_DUPLICATES_IN_A_ROW = 12


@dataclass
class Candidate:
    """What a trial trains: its kind, network and where it sits on the surface."""

    kind: str
    spec: NetworkSpec
    direction: Direction | None  # None for the baseline
    match: Match | None


class Reporter:
    """What a worker tells its user; the CLI subclasses it. All methods may be no-ops."""

    def study_opened(self, header: str, target: int, done: int) -> None: ...

    def trial_started(self, number: int, kind: str, spec: NetworkSpec, seeds: int) -> None: ...

    def seed_started(self, number: int, seed: int, total_steps: int) -> None: ...

    def step(self, step: int, total: int, loss: float) -> None: ...

    def trial_finished(self, trial: FrozenTrial) -> None: ...

    def message(self, text: str) -> None: ...


def same_network(trial: optuna.Trial) -> int | None:
    """The lowest-numbered other trial, trained or training, with this trial's network.

    Only lower numbers count, so two workers that draw the same network at once agree on which
    one trains it; the baseline and re-runs are never duplicates."""
    if trial.user_attrs.get("kind") == "baseline" or "rerun_of" in trial.user_attrs:
        return None
    network = trial.user_attrs["network"]
    for t in trial.study.get_trials(deepcopy=False,
                                    states=(TrialState.COMPLETE, TrialState.RUNNING)):
        if (t.number < trial.number and t.user_attrs.get("network") == network
                and not dropped(t.user_attrs)):
            return t.number
    return None


class BaseCounter:
    """A study's base network and the measured FLOPs of networks relative to it (counts go
    through `scalesearch.complexity`'s cache). Calling it gives the FLOPs ratio of a spec."""

    def __init__(self, config: StudyConfig, data):
        from scalesearch.net.complexity import counts

        self.num_classes = data.num_classes
        self.base = scale_network(config.base_depth, config.base_width,
                                  config.base_resolution or data.base_resolution)
        self._counts = counts
        self.base_flops = counts(self.base, self.num_classes).flops

    def counts(self, spec: NetworkSpec):
        return self._counts(spec, self.num_classes)

    def __call__(self, spec: NetworkSpec) -> float:
        return self.counts(spec).flops / self.base_flops


def train_seed(spec: NetworkSpec, data, config: StudyConfig, seed: int, number: int,
               reporter: Reporter, on_epoch=None, evaluate_test: bool = False) -> dict:
    """One proxy training of `spec` with the study's settings, seed `seed` of trial `number`;
    returns the run record stored in the trial's ``runs`` (with ``test_accuracy`` when
    `evaluate_test`)."""
    from scalesearch.train.config import TrainConfig
    from scalesearch.train.trainer import train_model

    train_config = TrainConfig(epochs=config.epochs, batch_size=config.batch_size,
                               optimizer=config.optimizer, lr=config.lr,
                               seed=config.seed * 1000 + seed, device=config.device,
                               evaluate_test=evaluate_test)
    reporter.seed_started(number, seed, config.epochs * (len(data.train) // config.batch_size))
    result = train_model(spec, data, train_config, on_epoch=on_epoch, on_step=reporter.step)
    record = {"seed": seed, "state": result.state, "val_accuracy": result.val_accuracy}
    if evaluate_test:
        record["test_accuracy"] = result.test_accuracy
    return {
        **record,
        "loss": result.loss,
        "epochs": result.epochs,
        "seconds": round(result.seconds, 3),
        "images_per_second": round(result.images_per_second, 1),
        "peak_memory_bytes": result.peak_memory_bytes,
        "error": result.error,
    }


class Objective:
    """Trains one candidate per call; the only place that calls `trial.suggest_*`."""

    def __init__(self, config: StudyConfig, data, reporter: Reporter,
                 wanted: Callable[[int], bool]):
        self.config = config
        self.data = data
        self.reporter = reporter
        self.wanted = wanted  # whether sampled trial N is still needed for the target
        self.taken_over = False  # the current trial was failed by another worker
        self.duplicates_in_a_row = 0
        self.flops_ratio = BaseCounter(config, data)

    def __call__(self, trial: optuna.Trial) -> float:
        enqueued = "fixed_params" in trial.storage.get_trial_system_attrs(trial._trial_id)
        if not enqueued and not self.wanted(trial.number):
            trial.set_user_attr("surplus", True)
            raise Surplus()
        runs: list[dict] = list(trial.user_attrs.get("runs", []))
        self.taken_over = False
        try:
            return self._run(trial, runs)
        except optuna.exceptions.UpdateFinishedTrialError:
            # Another worker failed this trial (our heartbeats came late) and re-queued it.
            self.taken_over = True
            raise
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: queue the re-run, then let Optuna fail it
            enqueue_rerun(trial.study, frozen_with_runs(trial, runs))
            raise

    def _run(self, trial: optuna.Trial, runs: list[dict]) -> float:
        trial.set_user_attr("worker", worker_id())
        candidate = self._candidate(trial)
        self._record(trial, candidate)
        original = same_network(trial)
        if original is not None:
            trial.set_user_attr("duplicate_of", original)
            self.duplicates_in_a_row += 1
            raise optuna.TrialPruned(f"the same network as trial {original}")
        self.duplicates_in_a_row = 0
        if not self._feasible(trial, candidate):
            raise optuna.TrialPruned()
        seeds = max(2, self.config.seeds) if candidate.kind == "baseline" else self.config.seeds
        self.reporter.trial_started(trial.number, candidate.kind, candidate.spec, seeds)
        for seed in range(seeds):
            if any(r["seed"] == seed for r in runs):
                continue  # trained before this trial was interrupted
            runs.append(self._train(trial, candidate, seed, prunable=not runs))
            trial.set_user_attr("runs", runs)
        good = [r["val_accuracy"] for r in runs if r["state"] == "complete" and r["seed"] < seeds]
        if not good:
            trial.set_user_attr("failure", runs[-1]["error"] or "training failed")
            raise TrainingFailed(runs[-1]["error"])
        trial.set_user_attr("val_accuracy_std", sample_std(good))
        trial.set_user_attr("n_seeds", len(good))
        return sum(good) / len(good)

    def _candidate(self, trial: optuna.Trial) -> Candidate:
        if trial.user_attrs.get("kind") == "baseline":
            return Candidate("baseline", self.flops_ratio.base, None, None)
        direction = direction_from_params(
            trial.suggest_float("depth_share", 0.0, 1.0),
            trial.suggest_float("width_fraction", 0.0, 1.0),
        )
        solve = match_budget if self.config.match else nominal_match
        found = solve(direction, self.config.budget, self.flops_ratio.base, self.flops_ratio,
                      self.config.tolerance)
        return Candidate(direction.kind, found.spec, direction, found)

    def _record(self, trial: optuna.Trial, candidate: Candidate) -> None:
        c = self.flops_ratio.counts(candidate.spec)
        attrs = {
            "kind": candidate.kind,
            "network": candidate.spec.key(self.data.num_classes),
            "depth_mult": candidate.spec.depth_mult,
            "width_mult": candidate.spec.width_mult,
            "resolution": candidate.spec.resolution,
            "params": c.params,
            "flops": c.flops,
            "activations": c.activations,
            "flops_ratio": c.flops / self.flops_ratio.base_flops,
        }
        if candidate.direction is None:
            attrs.update(alpha=1.0, beta=1.0, gamma=1.0, phi=0.0, flops_matched=True,
                         depth_share=0.0, width_share=0.0, resolution_share=0.0)
        else:
            m, d = candidate.match, candidate.direction
            attrs.update(alpha=m.alpha, beta=m.beta, gamma=m.gamma, phi=m.phi,
                         flops_matched=m.within_tolerance, depth_share=d.depth,
                         width_share=d.width, resolution_share=d.resolution)
        for key, value in attrs.items():
            if trial.user_attrs.get(key) != value:
                trial.set_user_attr(key, value)

    def _feasible(self, trial: optuna.Trial, candidate: Candidate) -> bool:
        attrs = trial.user_attrs
        reasons = []
        if self.config.max_params is not None:
            trial.set_constraint("params", attrs["params"] - self.config.max_params)
            if attrs["params"] > self.config.max_params:
                reasons.append(f"params {attrs['params']:,} > {self.config.max_params:,}")
        if self.config.max_activations is not None:
            trial.set_constraint("activations",
                                 attrs["activations"] - self.config.max_activations)
            if attrs["activations"] > self.config.max_activations:
                reasons.append(f"activations {attrs['activations']:,} > "
                               f"{self.config.max_activations:,}")
        if candidate.match is not None and not candidate.match.within_tolerance \
                and not self.config.match:
            reasons.append(f"FLOPs ratio {candidate.match.flops_ratio:.3f} is more than "
                           f"{self.config.tolerance:.0%} from the budget")
        if reasons and candidate.kind != "baseline":
            trial.set_user_attr("infeasible", "; ".join(reasons))
            return False
        return True

    def _train(self, trial: optuna.Trial, candidate: Candidate, seed: int,
               prunable: bool) -> dict:
        prune = self.config.prune and prunable and candidate.kind == "compound"

        def on_epoch(epoch: int, accuracy: float) -> None:
            if prune:
                trial.report(accuracy, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        return train_seed(candidate.spec, self.data, self.config, seed, trial.number,
                          self.reporter, on_epoch=on_epoch)


def sample_std(values: list[float]) -> float | None:
    """Standard deviation with ddof 1; None for fewer than two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
