"""Running `scalesearch fidelity` on a stored study, and what it found (``fidelity.json``).

`prepare` checks the flags against the study (a confirmed verdict, schedules longer than the
proxy, a plan that fits in ``--max-hours`` of training estimated from the study's measured
seconds per epoch) before anything is stored, then plans the stage ``<name>.fidelity``
(`scalesearch.stages.fidelity`). `run_fidelity` trains what is missing, here or in worker
processes (`scalesearch worker` picks up waiting fidelity points after the search and the
confirmation), and keeps ``fidelity.csv`` and ``fidelity.json`` current. `summarize` compares
each schedule with the proxy: the rank correlations and the verdict, and whether and from which
schedule on the verdict changes.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from scalesearch.errors import BadInput
from scalesearch.runs.files import Where
from scalesearch.runs.loading import load_data, load_study, stored_config
from scalesearch.runs.processes import Monitor
from scalesearch.runs.runner import Exporting, Interrupted, sigterm_as_interrupt

DEFAULT_SCHEDULES = "2x,4x"
DEFAULT_EXTREMES = 2
ANSWERS = {"compound": "compound wins", "equivalent": "equivalent",
           "inconclusive": "inconclusive", "undecided": "undecided"}


@dataclass
class Fidelity:
    """A fidelity check about to run: where, with what, how much is left."""

    where: Where
    study: object  # the search's Optuna study
    confirmation: object  # <name>.confirm
    stage: object  # <name>.fidelity
    schedules: list[int]  # every longer schedule of the stage
    seeds: int
    extremes: int
    proxy_epochs: int
    seconds: float  # estimated training still to do, one worker

    @property
    def resume(self) -> str:
        epochs = ",".join(str(e) for e in self.schedules)
        return (f"scalesearch fidelity {self.where.name} --epochs {epochs} --seeds {self.seeds} "
                f"--extremes {self.extremes}")


def parse_schedules(text: str, proxy_epochs: int) -> list[int]:
    """'2x,12' -> epochs [2 * proxy_epochs, 12] (sorted, duplicates dropped); each whole and
    longer than the proxy."""
    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise BadInput("--epochs is empty; give longer schedules such as 2x,4x (multiples of "
                       f"the proxy's {proxy_epochs} epochs) or epoch counts such as 12.")
    schedules = []
    for part in parts:
        found = re.fullmatch(r"([0-9]*\.?[0-9]+)[xX]|([0-9]+)", part)
        if found is None:
            raise BadInput(f"--epochs value {part!r} is neither a multiple of the proxy's epochs "
                           "such as 2x nor a whole number of epochs such as 12.")
        epochs = float(found.group(1)) * proxy_epochs if found.group(1) else int(found.group(2))
        if abs(epochs - round(epochs)) > 1e-9:
            raise BadInput(f"--epochs value {part} is {epochs:g} epochs of the proxy's "
                           f"{proxy_epochs}, not a whole number; give one that is.")
        if round(epochs) <= proxy_epochs:
            raise BadInput(f"--epochs value {part} is {round(epochs)} epoch(s), not longer than "
                           f"the proxy's {proxy_epochs}; give schedules above it, such as 2x.")
        schedules.append(round(epochs))
    return sorted(set(schedules))


def seconds_per_epoch(frames) -> tuple[dict[str, float], float]:
    """Each network's measured training seconds per epoch (the `seconds` and `epochs` of its
    complete runs), and their median for networks without runs."""
    import pandas as pd

    rows = pd.concat([f[["network", "seconds", "epochs", "state"]] for f in frames])
    done = rows[(rows["state"] == "complete") & rows["seconds"].notna()
                & (rows["epochs"].fillna(0) > 0)]
    per = (done["seconds"] / done["epochs"]).groupby(done["network"]).mean()
    return per.to_dict(), float(per.median()) if len(per) else math.nan


def estimate_seconds(points: list[dict], seeds: int, frames) -> tuple[float, float]:
    """(training seconds of `points` for one worker, the median seconds per epoch)."""
    per, median = seconds_per_epoch(frames)
    if not math.isfinite(median):
        return 0.0, median
    total = sum(seeds * p["epochs"] * per.get(p["network"], median) for p in points)
    return float(total), median


def _confirmation(study, where: Where):
    """The study's finished confirmation; BadInput when it has no confirmed verdict yet."""
    from scalesearch.stages import confirm, stage

    name = where.name
    confirmation = stage.load_existing(name, confirm.STAGE, study._storage)
    if confirmation is None:
        raise BadInput(f"study {name!r} has no confirmed verdict yet; run it to the end first "
                       f"(scalesearch run --name {name}): the confirmation trains after the "
                       "search.")
    if stage.pending(confirmation):
        raise BadInput(f"the confirmation of study {name!r} is still training, so it has no "
                       f"confirmed verdict yet; finish it first (scalesearch worker --name "
                       f"{name}).")
    summary = confirm.summarize(stage.stage_rows(confirmation), confirmation.user_attrs)
    missing = [k for k in ("compound", "depth", "width", "resolution")
               if not summary["at_budget"].get(k)]
    if missing:
        raise BadInput(f"study {name!r} has no confirmed verdict: its confirmation has no "
                       f"finished {' or '.join(missing)} network at the budget.")
    return confirmation


def _check_flags(seeds: int | None, extremes: int | None, max_hours: float) -> None:
    from scalesearch.stages.fidelity import MAX_SEEDS

    if extremes is not None and extremes < 0:
        raise BadInput(f"--extremes must be 0 or more, got {extremes}.")
    if seeds is not None and not 1 <= seeds <= MAX_SEEDS:
        raise BadInput(f"--seeds must be between 1 and {MAX_SEEDS}, got {seeds}.")
    if not (math.isfinite(max_hours) and max_hours > 0):
        raise BadInput(f"--max-hours must be a number above 0, got {max_hours}.")


def prepare(name: str | None, results_dir: Path, storage: str | None, epochs: str,
            seeds: int | None, extremes: int | None, max_hours: float, heartbeat: int = 30
            ) -> Fidelity:
    """Check the flags and the study, and plan its fidelity stage (nothing is trained yet)."""
    from scalesearch.stages import fidelity as fs
    from scalesearch.stages import stage
    from scalesearch.verdict.results import trial_rows

    _check_flags(seeds, extremes, max_hours)
    study, where, settings = load_study(name, results_dir, storage)
    where.heartbeat = heartbeat
    if not settings:
        raise BadInput(f"study {where.name!r} was not made by scalesearch run.")
    confirmation = _confirmation(study, where)
    proxy_epochs = int(settings["epochs"])
    schedules = parse_schedules(epochs, proxy_epochs)
    existing = stage.load_existing(where.name, fs.STAGE, study._storage)
    trials = existing.get_trials(deepcopy=False) if existing is not None else []
    if seeds is None:
        seeds = (existing.user_attrs["seeds"] if existing is not None
                 else confirmation.user_attrs["seeds"])
    if extremes is None:
        extremes = (existing.user_attrs["extremes"] if existing is not None
                    else DEFAULT_EXTREMES)
    search_frame = trial_rows(study.get_trials(deepcopy=False))
    meta, points = fs.plan(search_frame, fs.confirmation_points(confirmation),
                           confirmation.user_attrs, proxy_epochs, schedules, seeds, extremes,
                           existing.user_attrs.get("selected") if existing is not None else None)
    have = {t.user_attrs.get("point") for t in trials}
    left = [p for p in points if p["point"] not in have] + [
        t.user_attrs for t in trials if t.state.name in ("WAITING", "RUNNING")]
    seconds, per_epoch = estimate_seconds(left, seeds, [search_frame,
                                                        stage.stage_rows(confirmation)])
    if seconds > max_hours * 3600:
        trainings = sum(p["epochs"] for p in left) * seeds
        raise BadInput(f"this plan needs about {seconds / 3600:.1f} h of training ({trainings} "
                       f"network-epochs at the study's measured {per_epoch:.1f} s per epoch), "
                       f"more than --max-hours {max_hours:g}; give shorter schedules, fewer "
                       "--extremes or --seeds, or a larger --max-hours.")
    fstudy = stage.create_or_load(where.name, fs.STAGE, study._storage, meta, points)
    return Fidelity(where, study, confirmation, fstudy, fs.planned_schedules(fstudy.user_attrs),
                    seeds, extremes, proxy_epochs, seconds)


class _StageMonitor(Monitor):
    """Follows the fidelity stage while worker processes train it: `run_processes` watches
    the search study, whose trials are all finished, so its per-trial news is dropped and the
    stage's own finished trials are reported (and exported) on each tick instead."""

    def __init__(self, inner: Monitor, stage_study, write):
        from scalesearch.stages.stage import is_finished

        self.inner, self.stage, self.write, self.finished = inner, stage_study, write, is_finished
        self.seen = {t.number for t in stage_study.get_trials(deepcopy=False) if is_finished(t)}

    def workers_started(self, count, logs):
        self.inner.workers_started(count, logs)

    def tick(self, done, lanes):
        trials = self.stage.get_trials(deepcopy=False)
        new = [t for t in trials if t.number not in self.seen and self.finished(t)]
        for t in new:
            self.seen.add(t.number)
            self.inner.trial_finished(t)
        if new:
            self.write()
        running = sum(t.state.name == "RUNNING" for t in trials)
        self.inner.tick(sum(map(self.finished, trials)), [
            lane if "ended" in lane else f"{lane.split(':')[0]}: fidelity stage, {running} "
            "network(s) training" for lane in lanes])

    def warning(self, text):
        self.inner.warning(text)

    def message(self, text):
        self.inner.message(text)


def run_fidelity(fid: Fidelity, device: str | None, workers: int | None,
                 workers_per_gpu: int, reporter: Monitor) -> dict:
    """Train every point of the stage that is not finished, in this process or in worker
    processes (one per GPU slot by default); returns fidelity.json's content. Ctrl-C or
    SIGTERM: finished networks are kept, `Interrupted` is raised."""
    from scalesearch.runs.processes import WorkersFailed, gpu_slots, run_processes
    from scalesearch.stages import fidelity as fs
    from scalesearch.stages import stage

    config = stored_config(fid.where, device)
    slots = gpu_slots(workers_per_gpu, config.device)
    # On the CPU one process unless --workers says more: the stage's long trainings are few,
    # and its stop-and-resume with several CPU workers is not yet tested.
    count = workers if workers is not None else len(slots)

    def write() -> dict:
        return export(fid.stage, fid.confirmation, fid.where.folder)

    try:
        with sigterm_as_interrupt():
            if stage.pending(fid.stage) and count > 1:
                run_processes(fid.study, fid.where, config, count, slots,
                              _StageMonitor(reporter, fid.stage, write))
                if stage.pending(fid.stage):
                    raise WorkersFailed(f"the workers stopped before the fidelity stage was "
                                        f"complete; see {fid.where.folder}/worker-N.log, then "
                                        "run the same command again to resume.")
            elif stage.pending(fid.stage):
                exporting = Exporting(reporter, write)
                objective = fs.FidelityObjective(config, load_data(config), fid.seeds, exporting)
                stage.run_stage(fid.stage, objective, exporting)
    except KeyboardInterrupt:
        write()
        raise Interrupted() from None
    return write()


# ---------------------------------------------------------------------------------------------
# what it found


def _answer(verdict: dict) -> str:
    answer = verdict["answer"]
    return ANSWERS.get(answer, f"{answer} alone wins")


def _conclusion(summary: dict) -> str:
    from scalesearch.stages import fidelity as fs

    proxy, epochs = summary["proxy"], summary["proxy_epochs"]
    done = [s for s in summary["schedules"] if s["complete"]]
    if not done or not summary["proxy"]["complete"]:
        left = sum(s["planned"] - s["finished"] for s in summary["schedules"])
        return (f"The fidelity check is not finished ({left} network(s) of the longer schedules "
                "left); run scalesearch fidelity again to continue it.")
    last = done[-1]
    rho, tau = last["spearman"], last["kendall"]
    if rho["value"] is None:
        ranking = (f"No rank correlation at {last['epochs']} epochs: fewer than 3 networks, or "
                   "one length gave every network the same accuracy.")
    else:
        ranking = (f"At longer training: proxy ({epochs} epochs) vs {last['epochs']} epochs over "
                   f"{last['networks']} networks: Spearman {rho['value']:.2f} (95% interval "
                   f"{rho['low']:.2f} to {rho['high']:.2f}), Kendall {tau['value']:.2f} "
                   f"({tau['low']:.2f} to {tau['high']:.2f}).")
    shown = ", ".join(str(s["epochs"]) for s in done)
    start = _answer(proxy["verdict"])
    if done[0]["status"] == fs.NOT_INFORMATIVE:
        at = "; ".join(f"{_answer(s['verdict'])} at {s['epochs']}" for s in done)
        return (f"{ranking} Not informative at the proxy: its verdict ({start}) decided "
                f"nothing, so no longer schedule can confirm it ({at} epochs).")
    if not summary["winner_changes"]:
        open_at = [str(s["epochs"]) for s in done if s["status"] != fs.HELD]
        if open_at:
            return (f"{ranking} The verdict ({start}) was not decided at {', '.join(open_at)} "
                    f"epochs, so whether it holds with longer training is not known.")
        return f"{ranking} The verdict ({start}) held at {shown} epochs."
    if summary["changes_from"] is not None:
        return (f"{ranking} The verdict changed from {summary['changes_from']} epochs on: "
                f"{start} at the proxy's {epochs} epochs, {_answer(last['verdict'])} at "
                f"{last['epochs']}.")
    return (f"{ranking} The verdict changed at {summary['first_change']} epochs but is {start} "
            f"again at {last['epochs']}, as at the proxy's {epochs}.")


def summarize(fstudy, confirmation) -> dict:
    """fidelity.json: the proxy's verdict, each longer schedule's correlations with the proxy
    and its verdict, the networks, and the conclusion."""
    from scalesearch.stages import confirm, stage
    from scalesearch.stages import fidelity as fs

    meta = fstudy.user_attrs
    frame, confirm_frame = fs.stage_rows(fstudy), stage.stage_rows(confirmation)
    epochs, schedules = meta["proxy_epochs"], fs.planned_schedules(meta)
    proxies = fs.proxy_runs(frame, confirm_frame, epochs)
    planned = Counter(int(p.split(":", 1)[0]) for p in meta["points"])
    finished = Counter(int(p.split(":", 1)[0]) for p in {
        t.user_attrs["point"] for t in fstudy.get_trials(deepcopy=False)
        if "point" in t.user_attrs and stage.is_finished(t)})
    confirmed = confirm.summarize(confirm_frame, confirmation.user_attrs)
    filler = fs.judge_schedule(frame[frame["schedule"] == epochs], {}, meta)
    per = [{"epochs": s, "multiple": s / epochs, "planned": planned[s],
            "finished": finished[s], "complete": finished[s] == planned[s],
            **fs.judge_schedule(frame[frame["schedule"] == s], proxies, meta, seed=s)}
           for s in schedules]
    summary = {
        "study": fstudy.study_name, "accuracy": "test", "proxy_epochs": epochs,
        "seeds": meta["seeds"], "extremes": meta["extremes"], "opponent": meta["opponent"],
        "proxy_source": "test accuracy at the proxy's epochs: the confirmation's runs where it "
                        "trained the network, otherwise this stage's proxy-length runs",
        "proxy": {"epochs": epochs, "verdict": confirmed["verdict"],
                  "complete": finished[epochs] == planned[epochs],
                  "at_budget": {**confirmed["at_budget"],
                                "baseline": filler["at_budget"]["baseline"]},
                  "others": filler["others"]},
        "schedules": per,
        "networks": fs.network_table(frame, proxies, schedules),
    }
    summary.update(fs.verdict_changes(per, confirmed["verdict"]["answer"]))
    summary["text"] = _conclusion(summary)
    return summary


def export(fstudy, confirmation, folder: Path, write: bool = True) -> dict:
    """Rewrite fidelity.csv and fidelity.json from storage (unless not `write`); returns the
    summary."""
    import json

    from scalesearch.stages import fidelity as fs
    from scalesearch.store.files import write_texts
    from scalesearch.verdict.results import csv_text

    summary = summarize(fstudy, confirmation)
    if write:
        write_texts(folder, {fs.CSV: csv_text(fs.stage_rows(fstudy)),
                             fs.SUMMARY: json.dumps(summary, indent=2) + "\n"})
    return summary


def load_summary(study, where: Where, write: bool = True) -> dict | None:
    """fidelity.json's content of a stored study (rewritten unless not `write`), or None
    before `scalesearch fidelity` has planned its stage."""
    from scalesearch.stages import confirm, stage
    from scalesearch.stages import fidelity as fs

    fstudy = stage.load_existing(where.name, fs.STAGE, study._storage)
    confirmation = stage.load_existing(where.name, confirm.STAGE, study._storage)
    if fstudy is None or confirmation is None:
        return None
    return export(fstudy, confirmation, where.folder, write)


def status_text(study, where: Where, settings: dict, write: bool = False) -> str:
    """What is known of the verdict at longer training: the conclusion once measured, or the
    proxy length it holds at and the command that checks it."""
    summary = load_summary(study, where, write)
    if summary is None:
        return (f"This verdict holds at the proxy's {settings.get('epochs')} training epochs; "
                "whether it holds with longer training is not measured: scalesearch fidelity "
                f"{where.name} --epochs {DEFAULT_SCHEDULES}")
    return summary["text"]


def fidelity_line(where: Where, summary: dict) -> str | None:
    """`status_text` for the end of `run` and `worker`, once the study has a confirmed
    verdict (fidelity.json is rewritten)."""
    if "confirmation" not in summary:
        return None
    study, found, settings = load_study(where.name, where.results_dir, where.storage)
    return status_text(study, found, settings, write=True)
