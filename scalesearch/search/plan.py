"""A search's Optuna study: created with its plan enqueued once, or loaded and checked.

The plan, enqueued by the process that creates the study: the baseline (the base network, 1x),
the three single-dimension corners (depth, width, resolution only) and, for the grid sampler,
the grid points; workers pop these before the sampler proposes anything. Sampled candidates
(qmc, tpe) follow until `target` candidates are done.
"""

from __future__ import annotations

import dataclasses
import time

import optuna

from scalesearch.errors import BadInput
from scalesearch.net.family import DEFAULT_BASE
from scalesearch.search.config import IDENTITY, StudyConfig
from scalesearch.search.sampling import make_sampler
from scalesearch.search.space import CORNERS, grid_directions, params_from_direction

PLAN_WAIT_SECONDS = 60.0  # how long a joining worker waits for the creator to enqueue the plan


def plan(config: StudyConfig) -> list[tuple[dict, dict]]:
    """(params, user_attrs) of the fixed candidates, in the order they are trained."""
    points: list[tuple[dict, dict]] = [({}, {"kind": "baseline"})]
    for kind, direction in CORNERS.items():
        points.append((params_from_direction(direction), {"kind": kind}))
    if config.sampler == "grid":
        for direction in grid_directions(config.grid_step)[: config.trials]:
            points.append((params_from_direction(direction), {"kind": "compound"}))
    return points


def target_count(config: StudyConfig) -> int:
    """How many candidates the study trains: the baseline, the corners and the searched ones."""
    if config.sampler == "grid":
        return len(plan(config))
    return 1 + len(CORNERS) + config.trials


def create_or_load(name: str, storage: optuna.storages.BaseStorage, config: StudyConfig,
                   create: bool = True) -> optuna.Study:
    """The study `name`; created with its plan enqueued exactly once if it does not exist
    (and `create`), refused if it exists with a different identity (`StudyConfig.IDENTITY`)."""
    sampler = make_sampler(config, 0)
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    except KeyError:
        if not create:
            raise BadInput(f"no study named {name!r} in this storage; start it with "
                           "`scalesearch run --name NAME` first.") from None
        try:
            study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                        direction="maximize")
        except optuna.exceptions.DuplicatedStudyError:  # another worker created it just now
            study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        else:
            study.set_user_attr("config", config.identity())
            study.set_user_attr("settings", dataclasses.asdict(config))
            study.set_user_attr("sampler", config.sampler)
            for params, attrs in plan(config):
                study.enqueue_trial(params, user_attrs=attrs)
            study.set_user_attr("target", target_count(config))
            study.set_user_attr("planned", True)  # joining workers wait for this
            return study
    _wait_for_plan(study)
    _check_identity(name, study, config)
    _extend(study, config)
    return study


def _wait_for_plan(study: optuna.Study) -> None:
    deadline = time.monotonic() + PLAN_WAIT_SECONDS
    while not study.user_attrs.get("planned"):
        if time.monotonic() > deadline:
            raise BadInput(
                f"study {study.study_name!r} exists but was never planned (its creator stopped "
                "while creating it); delete it or choose another --name."
            )
        time.sleep(0.5)


def _check_identity(name: str, study: optuna.Study, config: StudyConfig) -> None:
    # Studies stored before the base became a choice all scaled B0.
    stored = {"base": DEFAULT_BASE, **study.user_attrs.get("config", {})}
    wanted = config.identity()
    differ = [k for k in IDENTITY if stored.get(k) != wanted.get(k)]
    if differ:
        shown = "; ".join(f"{k} is {stored.get(k)!r}, not {wanted.get(k)!r}" for k in differ)
        raise BadInput(
            f"study {name!r} was run with other settings ({shown}); choose another --name or "
            "run it with its own settings."
        )


def _extend(study: optuna.Study, config: StudyConfig) -> None:
    """A re-run with more --trials raises the target (and adds grid points)."""
    wanted = target_count(config)
    if wanted <= study.user_attrs.get("target", 0):
        return
    if config.sampler == "grid":
        for params, attrs in plan(config):
            study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=True)
    study.set_user_attr("target", wanted)
