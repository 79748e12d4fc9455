"""What the commands print while a study runs: progress bars and one line per trial."""

from __future__ import annotations


class ConsoleReporter:
    """Progress on stderr while a study runs, plus one line per finished trial.

    In this process: a bar over candidates and one over the steps of the current training.
    With worker processes: the bar over candidates and one lane per worker. Bars are drawn only
    on a terminal; `counts` says which finished trials advance the bar over candidates."""

    def __init__(self, console, quiet: bool = False, line=None, counts=None):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = console
        self.quiet = quiet
        self.line = line or trial_line
        self.counts = counts or _counts
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
            console=console, transient=True, disable=quiet or not console.is_terminal,
        )
        self.trials = self.progress.add_task("candidates", total=None, info="")
        self.steps = self.progress.add_task("training", total=1, info="", visible=False)
        self.lanes: list = []
        self.label = ""

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def study_opened(self, header, target, done):
        self.console.print(header)
        self.progress.update(self.trials, total=target, completed=done)

    def trial_started(self, number, kind, spec, seeds):
        self.label = (f"trial {number} {kind}: d {spec.depth_mult:.2f} w {spec.width_mult:.2f} "
                      f"r {spec.resolution}px")

    def seed_started(self, number, seed, total_steps):
        self.progress.update(self.steps, total=total_steps, completed=0, visible=True,
                             description=f"{self.label} seed {seed}", info="")

    def step(self, step, total, loss):
        self.progress.update(self.steps, completed=step, info=f"loss {loss:.3f}")

    def trial_finished(self, trial):
        if trial.user_attrs.get("surplus"):
            return
        self.progress.update(self.steps, visible=False)
        if not self.lanes and self.counts(trial):
            self.progress.advance(self.trials)
        if not self.quiet:
            self.console.print(self.line(trial))

    def message(self, text):
        if not self.quiet:
            self.console.print(text)

    def workers_started(self, count, logs):
        self.console.print(f"{count} workers started; their logs: {logs}/worker-N.log")
        self.lanes = [self.progress.add_task(f"worker {i}: starting", total=None, info="")
                      for i in range(count)]

    def tick(self, done, lanes):
        self.progress.update(self.trials, completed=done)
        for task, text in zip(self.lanes, lanes):
            self.progress.update(task, description=text)

    def warning(self, text):
        self.console.print(f"warning: {text}")


def _counts(trial) -> bool:
    """A search trial advances the bar when it needs no more work, unless it was a duplicate."""
    from optuna.trial import TrialState

    attrs = trial.user_attrs
    done = trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or "failure" in attrs
    return done and "duplicate_of" not in attrs


def _scale_text(attrs: dict, with_coefficients: bool = True) -> str:
    """'alpha .. beta .. gamma ..  d .. w .. r ..px  flops x.. (lower bracket)', what is known."""
    if not all(k in attrs for k in ("depth_mult", "width_mult", "resolution", "flops_ratio")):
        return ""  # a trial whose worker died while recording it may hold only some of these
    head = ""
    if with_coefficients and all(k in attrs for k in ("alpha", "beta", "gamma")):
        head = (f" alpha {attrs['alpha']:.3f} beta {attrs['beta']:.3f} "
                f"gamma {attrs['gamma']:.3f} ")
    bracket = attrs.get("bracket")
    note = {"lower": " (below the budget)", "upper": " (above the budget)",
            "off budget": " (off budget)"}.get(bracket, "")
    return (f"{head} d {attrs['depth_mult']:.2f} w {attrs['width_mult']:.2f} "
            f"r {attrs['resolution']:>3}px  flops x{attrs['flops_ratio']:.2f}{note}")


def trial_line(trial) -> str:
    """One line per finished trial: number, kind, scale, FLOPs, accuracy (validation in the
    search, test in the stages after it)."""
    attrs = trial.user_attrs
    stage = "point" in attrs
    head = f"{'network' if stage else 'trial'} {trial.number:>3} {attrs.get('kind', '?'):<10}"
    budget = str(attrs.get("point", "")).split(":")[0]
    comparison = stage and "schedule" not in attrs  # a fidelity point starts with its epochs
    if comparison and budget.replace(".", "", 1).isdigit():  # a comparison's: "phi:kind:..."
        head = f"phi {budget:<4} {head}"
    head += _scale_text(attrs, with_coefficients=not stage)
    state = trial.state.name.lower()
    if trial.value is not None:
        std = attrs.get("test_accuracy_std" if stage else "val_accuracy_std")
        spread = f" ± {std:.1%}" if std is not None else ""
        return (f"{head}  {'test' if stage else 'val'} {trial.value:.1%}{spread} "
                f"({attrs.get('n_seeds', 1)} seeds)")
    reason = attrs.get("failure") or attrs.get("infeasible") or attrs.get("failure_reason")
    if "duplicate_of" in attrs:
        reason = f"same networks as trial {attrs['duplicate_of']}, not trained"
    if "same_network_as" in attrs:
        reason = f"same network as trial {attrs['same_network_as']}, not trained again"
    return f"{head}  {state}{': ' + reason if reason else ''}"



def trials_table(trials, title: str):
    """The `show` table: one row per trial (surplus ones left out), with a note that names
    duplicates, failures and re-runs."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("trial", "kind", "alpha", "beta", "gamma", "depth", "width", "res",
                   "flops x", "val acc", "seeds", "state", "note"):
        table.add_column(column, justify="left" if column in ("kind", "state", "note")
                         else "right")
    # Failed trials (a dead worker, an interrupt) point to the trial that re-runs them.
    rerun_as = {t.user_attrs["rerun_of"]: t.number for t in trials if "rerun_of" in t.user_attrs}
    for t in trials:
        a = t.user_attrs
        if a.get("surplus"):
            continue

        def num(key: str, fmt: str, a: dict = a) -> str:
            return format(a[key], fmt) if a.get(key) is not None else ""

        acc = f"{t.value:.1%}" if t.value is not None else ""
        if t.value is not None and a.get("val_accuracy_std") is not None:
            acc += f" ± {a['val_accuracy_std']:.1%}"
        note = a.get("failure") or a.get("infeasible") or a.get("failure_reason") or ""
        if "rerun_of" in a:
            note = f"re-run of {a['rerun_of']} {note}".strip()
        if "duplicate_of" in a:
            note = f"same networks as trial {a['duplicate_of']}, not trained"
        if "same_network_as" in a:
            note = f"same network as trial {a['same_network_as']}, not trained again"
        if a.get("bracket") in ("lower", "upper"):
            note = f"{a['bracket']} network of candidate {a.get('candidate')} {note}".strip()
        if t.number in rerun_as:
            note = f"{note}; re-run as {rerun_as[t.number]}".lstrip("; ")
        table.add_row(str(t.number), a.get("kind", ""), num("alpha", ".3f"), num("beta", ".3f"),
                      num("gamma", ".3f"), num("depth_mult", ".2f"), num("width_mult", ".2f"),
                      num("resolution", "d"), num("flops_ratio", ".2f"), acc,
                      str(a.get("n_seeds", "")), t.state.name.lower(), note)
    return table


def strategy_line(entry: dict, split: str) -> str:
    """A strategy at the budget in one line: coefficients, network(s), accuracy."""
    networks = entry.get("networks") or []
    shown = " + ".join(f"{n['weight']:.2f} x (d {n['depth_mult']:.2f}, w {n['width_mult']:.2f}, "
                       f"r {n['resolution']}px, flops x{n['flops_ratio']:.2f})"
                       if len(networks) > 1 else
                       f"d {n['depth_mult']:.2f}, w {n['width_mult']:.2f}, r {n['resolution']}px, "
                       f"flops x{n['flops_ratio']:.2f}" for n in networks)
    head = (f"alpha {entry['alpha']:.3f}, beta {entry['beta']:.3f}, gamma {entry['gamma']:.3f}"
            if entry.get("kind") == "compound" else f"{entry.get('kind')} only")
    return (f"{head} ({shown}; {entry['method']}): {split} {entry[f'{split}_accuracy']:.1%} "
            f"± {entry['standard_error']:.1%}")
