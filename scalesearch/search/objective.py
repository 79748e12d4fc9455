"""Training one network of the search: which network a trial is, its seeds, its record.

Every candidate except the baseline is a direction on the surface (Optuna parameters ``u`` and
``v``, see `scalesearch.search.space`), brought to the budget in measured FLOPs
(`scalesearch.search.matching`): one network within the tolerance, or two that bracket the
budget. A trial trains one network; the candidate's first trial enqueues the second network
(``bracket`` "upper") once it has trained its own. Each network is trained `seeds` times (the
baseline at least twice); the trial's value is its mean validation accuracy. Per-seed results,
with per-image correctness, are stored in the trial's user attribute ``runs`` as they finish,
so a re-run trial skips the seeds already trained.

Networks are never trained twice: a trial whose network an earlier trial trains already points
to it (``same_network_as``) and is pruned; a sampled candidate whose networks all equal an
earlier candidate's is a duplicate (``duplicate_of``), dropped and not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from scalesearch.net.family import Spec
from scalesearch.search.config import StudyConfig
from scalesearch.search.costs import CostCounter
from scalesearch.search.matching import Match, match_budget, nominal_match
from scalesearch.search.space import Direction, direction_from_params
from scalesearch.search.training import Reporter, run_seeds, sample_std, train_seed
from scalesearch.search.trials import UPPER, dropped
from scalesearch.store.workers import enqueue_rerun, frozen_with_runs, worker_id


class Surplus(Exception):
    """A worker drew a trial after the plan was complete; the trial is dropped."""


# After this many sampled candidates in a row that duplicate earlier ones a worker stops: the
# surface has no more distinct networks at this base.
MAX_DUPLICATES_IN_A_ROW = 12


@dataclass
class Candidate:
    """What a trial trains: its kind, the network, and the candidate's match."""

    kind: str
    spec: Spec  # the network this trial trains
    bracket: str  # "matched", "lower", "upper", "off budget"
    direction: Direction | None  # None for the baseline
    match: Match | None


def earlier(trial: optuna.Trial, match: Callable[[FrozenTrial], bool]) -> int | None:
    """The lowest-numbered trial below `trial`, trained, training or pruned and not dropped,
    for which `match` holds. Only lower numbers count, so two workers that draw the same
    network at once agree on which one trains it."""
    for t in trial.study.get_trials(deepcopy=False, states=(
            TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED)):
        if t.number < trial.number and not dropped(t.user_attrs) and match(t):
            return t.number
    return None


def same_network(trial: optuna.Trial) -> int | None:
    """The earlier trial that trains (or trained) this trial's network; re-runs never point."""
    if "rerun_of" in trial.user_attrs:
        return None
    network = trial.user_attrs["network"]
    return earlier(trial, lambda t: t.user_attrs.get("network") == network
                   and "same_network_as" not in t.user_attrs)


def same_candidate(trial: optuna.Trial) -> int | None:
    """The earlier candidate with exactly this candidate's networks (sampled trials only)."""
    if "rerun_of" in trial.user_attrs or trial.user_attrs.get("kind") == "baseline":
        return None
    networks = trial.user_attrs["candidate_networks"]
    return earlier(trial, lambda t: t.user_attrs.get("candidate_networks") == networks
                   and t.user_attrs.get("bracket") != UPPER)




def network_attrs(spec: Spec, counts, base_flops: int, num_classes: int) -> dict:
    """What a trial records of the network it trains."""
    return {
        "network": spec.key(num_classes), "depth_mult": spec.depth_mult,
        "width_mult": spec.width_mult, "resolution": spec.resolution, "params": counts.params,
        "flops": counts.flops, "activations": counts.activations,
        "flops_ratio": counts.flops / base_flops,
    }


def set_attrs(trial: optuna.Trial, attrs: dict) -> None:
    """Set the user attributes that differ (a re-run keeps what it had)."""
    for key, value in attrs.items():
        if trial.user_attrs.get(key) != value:
            trial.set_user_attr(key, value)


class Objective:
    """Trains one network per call; the only place that calls `trial.suggest_*`."""

    def __init__(self, config: StudyConfig, data, reporter: Reporter,
                 wanted: Callable[[int], bool]):
        self.config = config
        self.data = data
        self.reporter = reporter
        self.wanted = wanted  # whether sampled trial N is still needed for the target
        self.taken_over = False  # the current trial was failed by another worker
        self.duplicates_in_a_row = 0
        self.costs = CostCounter.for_data(config, data)

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
        primary = candidate.bracket != UPPER
        if primary:
            original = same_candidate(trial)
            if original is not None:
                trial.set_user_attr("duplicate_of", original)
                self.duplicates_in_a_row += 1
                raise optuna.TrialPruned(f"the same networks as trial {original}")
            self.duplicates_in_a_row = 0
            if not self._feasible(trial, candidate):
                raise optuna.TrialPruned()
        pointer = same_network(trial)
        if pointer is not None:  # another trial trains this network; the results use its runs
            trial.set_user_attr("same_network_as", pointer)
            self._enqueue_upper(trial, candidate)
            raise optuna.TrialPruned(f"the same network as trial {pointer}")
        return self._train_network(trial, candidate, runs)

    def _train_network(self, trial: optuna.Trial, candidate: Candidate, runs: list[dict]):
        self.costs.checked(candidate.spec)  # fvcore agrees with the record, or this raises
        seeds = max(2, self.config.seeds) if candidate.kind == "baseline" else self.config.seeds
        self.reporter.trial_started(trial.number, candidate.kind, candidate.spec, seeds)
        prune = (self.config.prune and candidate.kind == "compound"
                 and candidate.bracket != UPPER)

        def train(seed: int) -> dict:
            def on_epoch(epoch: int, accuracy: float) -> None:
                if prune and seed == 0:
                    trial.report(accuracy, epoch)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned at epoch {epoch}")

            return train_seed(candidate.spec, self.data, self.config, seed, trial.number,
                              self.reporter, on_epoch=on_epoch if prune else None)

        good = run_seeds(trial, runs, seeds, train)
        accuracies = [r["val_accuracy"] for r in good]
        trial.set_user_attr("val_accuracy_std", sample_std(accuracies))
        trial.set_user_attr("n_seeds", len(good))
        self._enqueue_upper(trial, candidate)
        return sum(accuracies) / len(accuracies)

    def _candidate(self, trial: optuna.Trial) -> Candidate:
        base = self.costs.base
        if trial.user_attrs.get("kind") == "baseline":
            return Candidate("baseline", base, "matched", None, None)
        direction = direction_from_params(trial.suggest_float("u", 0.0, 1.0),
                                          trial.suggest_float("v", 0.0, 1.0))
        solve = match_budget if self.config.match else nominal_match
        found = solve(direction, self.config.budget, base, self.costs,
                      self.config.tolerance)
        if len(found.networks) == 2:
            upper = trial.user_attrs.get("bracket") == UPPER
            network = found.networks[1 if upper else 0]
            return Candidate(direction.kind, network.spec, UPPER if upper else "lower",
                             direction, found)
        return Candidate(direction.kind, found.spec, found.method, direction, found)

    def _record(self, trial: optuna.Trial, candidate: Candidate) -> None:
        costs = self.costs
        attrs = network_attrs(candidate.spec, costs.counts(candidate.spec), costs.base_flops,
                              costs.num_classes)
        attrs.update(cost=costs.cost, cost_ratio=costs(candidate.spec))
        attrs.update(kind=candidate.kind, bracket=candidate.bracket,
                     candidate=trial.user_attrs.get("candidate", trial.number),
                     budget=self.config.budget)
        if candidate.match is None:
            attrs.update(alpha=1.0, beta=1.0, gamma=1.0, phi=0.0, flops_matched=True,
                         depth_share=0.0, width_share=0.0, resolution_share=0.0,
                         candidate_networks=[attrs["network"]])
        else:
            m, d = candidate.match, candidate.direction
            phi = next(n.phi for n in m.networks if n.spec == candidate.spec)
            attrs.update(alpha=m.alpha, beta=m.beta, gamma=m.gamma, phi=phi,
                         flops_matched=m.method == "matched", depth_share=d.depth,
                         width_share=d.width, resolution_share=d.resolution,
                         method=m.method,
                         candidate_networks=[n.spec.key(costs.num_classes) for n in m.networks],
                         candidate_ratios=[n.ratio for n in m.networks])
        set_attrs(trial, attrs)

    def _enqueue_upper(self, trial: optuna.Trial, candidate: Candidate) -> None:
        """Queue the candidate's second network once; enqueued before it is marked, so an
        interrupt in between queues it twice at worst, and the second copy only points."""
        if candidate.bracket != "lower" or trial.user_attrs.get("upper_enqueued"):
            return
        attrs = {k: trial.user_attrs[k] for k in ("kind", "candidate")}
        trial.study.enqueue_trial(trial.params, user_attrs={**attrs, "bracket": UPPER})
        trial.set_user_attr("upper_enqueued", True)

    def _feasible(self, trial: optuna.Trial, candidate: Candidate) -> bool:
        """Constraints on the candidate's largest network; candidates over them (or, with
        --no-match, off the budget) are recorded, not trained."""
        if candidate.kind == "baseline":
            return True
        networks = [n.spec for n in candidate.match.networks]
        largest = [self.costs.counts(spec) for spec in networks]
        params = max(c.params for c in largest)
        activations = max(c.activations for c in largest)
        reasons = []
        if self.config.max_params is not None:
            trial.set_constraint("params", params - self.config.max_params)
            if params > self.config.max_params:
                reasons.append(f"params {params:,} > {self.config.max_params:,}")
        if self.config.max_activations is not None:
            trial.set_constraint("activations", activations - self.config.max_activations)
            if activations > self.config.max_activations:
                reasons.append(f"activations {activations:,} > "
                               f"{self.config.max_activations:,}")
        if not self.config.match and not candidate.match.within_tolerance:
            reasons.append(f"FLOPs ratio {candidate.match.ratio:.3f} is more than "
                           f"{self.config.tolerance:.0%} from the budget")
        if reasons:
            trial.set_user_attr("infeasible", "; ".join(reasons))
            return False
        return True


