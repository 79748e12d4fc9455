"""What a stored trial of a search is: dropped, done, or still needed for the target."""

from __future__ import annotations

from optuna.trial import FrozenTrial, TrialState


def dropped(attrs: dict) -> bool:
    """A trial drawn but never a candidate: surplus (drawn after the target was reached) or a
    duplicate (its network was already trained)."""
    return bool(attrs.get("surplus")) or "duplicate_of" in attrs


def done_count(trials: list[FrozenTrial]) -> int:
    """Candidates that need no more work: complete, pruned or infeasible, or failed for good."""
    return sum(_is_done(t) for t in trials)


def _is_done(t: FrozenTrial) -> bool:
    if dropped(t.user_attrs):
        return False
    return t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        t.state == TrialState.FAIL and "failure" in t.user_attrs)


def sampled_wanted(trials: list[FrozenTrial], number: int, target: int) -> bool:
    """Whether sampled trial `number` is needed to reach `target` candidates.

    Ahead of it count the candidates that are done, running or waiting: every enqueued one
    (the plan, re-runs) and the sampled ones with a lower number. Deciding by number makes two
    workers that sample at the same moment agree: the later trial is the surplus one.
    """
    ahead = 0
    for t in trials:
        if t.number == number or dropped(t.user_attrs):
            continue
        counts = t.state in (TrialState.RUNNING, TrialState.WAITING) or _is_done(t)
        if counts and ("fixed_params" in t.system_attrs or t.number < number):
            ahead += 1
    return ahead < target
