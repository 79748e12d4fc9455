"""What a stored trial of a search is: a candidate or a second network of one, dropped, done.

A *candidate* is a point of the search (the baseline, a corner, a compound direction) and the
trial that first trains it (its ``candidate`` attribute is its own number). A candidate whose
budget falls between two networks has a second trial, ``bracket`` "upper", enqueued by the
first; it does not count towards the target. A candidate drawn after the target was reached
(``surplus``) or whose networks equal an earlier candidate's (``duplicate_of``) is dropped.
"""

from __future__ import annotations

from optuna.trial import FrozenTrial, TrialState

UPPER = "upper"  # the bracket of a candidate's second network


def dropped(attrs: dict) -> bool:
    """A trial drawn but never a candidate: surplus (drawn after the target was reached) or a
    duplicate (an earlier candidate has the same networks)."""
    return bool(attrs.get("surplus")) or "duplicate_of" in attrs


def is_candidate(t: FrozenTrial) -> bool:
    """The first trial of a candidate that was not dropped."""
    return not dropped(t.user_attrs) and t.user_attrs.get("bracket") != UPPER


def is_done(t: FrozenTrial) -> bool:
    """Needs no more work: complete, pruned or infeasible, or failed for good."""
    return t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        t.state == TrialState.FAIL and "failure" in t.user_attrs)


def done_count(trials: list[FrozenTrial]) -> int:
    """Candidates that need no more work."""
    return sum(is_candidate(t) and is_done(t) for t in trials)


def open_count(trials: list[FrozenTrial]) -> int:
    """Candidates done, running or waiting: what counts against the target."""
    return sum(is_candidate(t) and (is_done(t) or t.state in (TrialState.RUNNING,
                                                               TrialState.WAITING))
               for t in trials)


def sampled_wanted(trials: list[FrozenTrial], number: int, target: int) -> bool:
    """Whether sampled trial `number` is needed to reach `target` candidates.

    Ahead of it count the candidates that are done, running or waiting: every enqueued one
    (the plan, re-runs) and the sampled ones with a lower number. Deciding by number makes two
    workers that sample at the same moment agree: the later trial is the surplus one.
    """
    ahead = 0
    for t in trials:
        if t.number == number or not is_candidate(t):
            continue
        counts = t.state in (TrialState.RUNNING, TrialState.WAITING) or is_done(t)
        if counts and ("fixed_params" in t.system_attrs or t.number < number):
            ahead += 1
    return ahead < target
