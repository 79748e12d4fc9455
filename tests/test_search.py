"""`scalesearch run` / `show` / `plot` end to end on a tiny study: results, resumption,
interruption, refusal of a mismatched re-run, and bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

TINY = ["--base-depth", "0.25", "--base-width", "0.25", "--base-resolution", "16",
        "--train-images", "128", "--val-images", "64",
        "--test-images", "200", "--batch-size", "32", "--epochs", "1",
        "--device", "cpu", "--workers", "1"]  # trains in-process


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def cli(*args, cwd=None, env_extra=None, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "scalesearch", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def run_tiny(results, data_dir, *extra):
    return cli("run", "--budget", "2x", "--results-dir", results, "--data-dir", data_dir,
               "--name", "tiny", *TINY, *extra)


def load(results):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(results / "tiny" / "study.journal")))
    return optuna.load_study(study_name="tiny", storage=storage)


def complete_kinds(study):
    return sorted(t.user_attrs["kind"] for t in study.get_trials()
                  if t.state == optuna.trial.TrialState.COMPLETE)


def networks_of(frame):
    """Candidate -> its networks' FLOPs ratios (one matched, or two bracketing)."""
    return {c: sorted(g.drop_duplicates("trial")["flops_ratio"])
            for c, g in frame.groupby("candidate")}


def test_run_writes_results_confirms_resumes_and_refuses_other_settings(tmp_path, data_dir):
    results = tmp_path / "results"
    first = run_tiny(results, data_dir, "--trials", "1")
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    folder = results / "tiny"
    frame = pd.read_csv(folder / "trials.csv")
    assert (frame["state"].isin(["complete", "reused"])).all()
    kinds = frame.drop_duplicates("candidate")["kind"].tolist()
    assert sorted(kinds) == ["baseline", "compound", "depth", "resolution", "width"]
    assert (frame[frame["kind"] == "baseline"]["seed"].tolist()) == [0, 1]  # two seeds
    assert (frame[["alpha", "beta", "gamma"]] >= 1.0).all().all()
    nominal = frame["alpha"] * frame["beta"] ** 2 * frame["gamma"] ** 2
    scaled = frame["kind"] != "baseline"
    assert ((nominal[scaled] - 2.0).abs() <= 1e-6).all()
    for candidate, ratios in networks_of(frame[scaled]).items():
        # Every candidate is on the budget, or bracketed by the two networks around it.
        assert (len(ratios) == 1 and abs(ratios[0] / 2.0 - 1) <= 0.03) or (
            len(ratios) == 2 and ratios[0] < 2.0 < ratios[1]), (candidate, ratios)
    assert frame["val_accuracy"].dropna().between(0, 1).all()
    summary = json.loads((folder / "summary.json").read_text())
    assert {"budget", "best", "baseline", "at_budget", "noise", "verdict",
            "confirmation"} <= set(summary)
    for kind, entry in summary["at_budget"].items():
        assert entry["method"] in ("matched", "interpolated"), kind
        assert {"val_accuracy", "standard_error", "method", "trials"} <= set(entry)
    verdict = summary["verdict"]
    assert verdict["answer"] in ("compound", "depth", "width", "resolution", "equivalent",
                                 "inconclusive")
    assert {"difference", "standard_error", "degrees_of_freedom", "p_value", "interval",
            "margin", "opponents", "claim", "detectable_difference"} <= set(verdict)
    assert set(verdict["opponents"]) == {"depth", "width", "resolution"}
    assert verdict["margin"] == 0.01
    assert verdict["text"] in first.stderr
    # The confirmation trained the choices again, on seeds no search run used, on test.
    confirmed = pd.read_csv(folder / "confirm.csv")
    assert confirmed["test_accuracy"].notna().all() and (confirmed["seed"].max() == 3)
    assert not set(confirmed["training_seed"]) & set(frame["training_seed"].dropna())
    assert summary["confirmation"]["opponent"] in ("depth", "width", "resolution")
    assert (folder / "config.toml").exists() and (folder / "environment.json").exists()

    # Plain Optuna opens the study.
    study = load(results)
    values = {t.number: t.value for t in study.get_trials()}

    # Same settings, one more searched candidate: only that one is trained.
    again = run_tiny(results, data_dir, "--trials", "2")
    assert again.returncode == 0, again.stderr
    study = load(results)
    assert {n: v for n, v in ((t.number, t.value) for t in study.get_trials())
            if n in values} == values
    candidates = [t for t in study.get_trials() if t.user_attrs.get("bracket") != "upper"
                  and "duplicate_of" not in t.user_attrs]
    assert len(candidates) == 6  # baseline, three corners, two compound
    # Every trained network is distinct.
    networks = [t.user_attrs["network"] for t in study.get_trials()
                if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(set(networks)) == len(networks)
    # Nothing left: a third run trains nothing.
    count = len(study.get_trials())
    third = run_tiny(results, data_dir, "--trials", "2")
    assert third.returncode == 0 and len(load(results).get_trials()) == count

    # show and plot read the stored study.
    shown = cli("show", "tiny", "--results-dir", results)
    assert shown.returncode == 0
    rows = [line for line in shown.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == count
    assert verdict_text_start(summary) in shown.stdout.replace("\n", " ")
    plotted = cli("plot", "tiny", "--results-dir", results)
    assert plotted.returncode == 0, plotted.stderr
    assert (folder / "plots" / "frontier.png").stat().st_size > 0

    # Another budget under the same name is refused, and nothing stored changes.
    before = (folder / "study.journal").read_bytes()
    refused = run_tiny(results, data_dir, "--trials", "2", "--budget", "3x")
    assert refused.returncode == 2
    assert "other settings" in refused.stderr and "budget" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert (folder / "study.journal").read_bytes() == before


def verdict_text_start(summary):
    return summary["verdict"]["text"][:40]


def test_sigterm_during_a_trial_leaves_a_study_that_resumes(tmp_path, data_dir):
    results = tmp_path / "results"
    args = [sys.executable, "-m", "scalesearch", "run", "--budget", "2x", "--results-dir",
            str(results), "--data-dir", str(data_dir), "--name", "tiny", *TINY, "--trials", "1",
            "--train-images", "1024", "--epochs", "2", "--workers", "1"]  # trains in-process
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 240
    csv = results / "tiny" / "trials.csv"
    while not csv.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)  # trials.csv appears after the first finished trial
    time.sleep(1.0)  # now inside the next trial
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Resume with" in err and "Traceback" not in err
    study = load(results)
    failed = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.FAIL]
    assert failed, "the interrupted trial is marked failed"
    waiting = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.WAITING]
    assert any(t.user_attrs.get("rerun_of") == failed[0].number for t in waiting)

    resumed = subprocess.run([*args], capture_output=True, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    study = load(results)
    # Every kind complete (a corner between two steps of FLOPs trains both networks), the
    # interrupted trial's rerun among them, and nothing left to train.
    assert sorted(set(complete_kinds(study))) == ["baseline", "compound", "depth", "resolution",
                                                  "width"]
    reruns = [t for t in study.get_trials() if t.user_attrs.get("rerun_of") == failed[0].number]
    assert [t.state for t in reruns] == [optuna.trial.TrialState.COMPLETE]
    assert not [t for t in study.get_trials() if t.state in (optuna.trial.TrialState.WAITING,
                                                             optuna.trial.TrialState.RUNNING)]


@pytest.mark.parametrize("budget", ["abc", "0", "-2x", "1x", "nan", "inf"])
def test_bad_budget_is_one_sentence(tmp_path, budget):
    out = cli("run", "--budget", budget, "--results-dir", tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and budget in lines[0]
    assert not (tmp_path / "synthetic-2x").exists()


def test_other_bad_input(tmp_path):
    out = cli("run", "--sampler", "random", "--results-dir", tmp_path)
    assert out.returncode == 2 and "sampler" in out.stderr and "qmc" in out.stderr

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = cli("run", "--results-dir", blocker)
    assert out.returncode == 2 and "results folder" in out.stderr

    corrupt = tmp_path / "res" / "broken"
    corrupt.mkdir(parents=True)
    (corrupt / "study.journal").write_bytes(b"\x00garbage{{{\n")
    out = cli("run", "--name", "broken", "--results-dir", tmp_path / "res")
    assert out.returncode == 2 and "corrupted" in out.stderr, out.stderr
    assert (corrupt / "study.journal").read_bytes() == b"\x00garbage{{{\n"

    study = tmp_path / "s.toml"
    study.write_text('dataset = "synthetic"\nepochz = 3\n')
    out = cli("run", "--study", study, "--results-dir", tmp_path)
    assert out.returncode == 2 and "'epochz'" in out.stderr
    study.write_text("epochs = = 3\n")
    out = cli("run", "--study", study, "--results-dir", tmp_path)
    assert out.returncode == 2 and "not valid TOML" in out.stderr
    study.write_text("epochs = 0\n")
    out = cli("run", "--study", study, "--results-dir", tmp_path)
    assert out.returncode == 2 and "epochs" in out.stderr

    out = cli("show", "nothing", "--results-dir", tmp_path)
    assert out.returncode == 2 and "no study" in out.stderr
    for result in (out,):
        assert "Traceback" not in result.stderr


def test_shipped_synthetic_study_is_the_built_in_default():
    from scalesearch.search.config import StudyConfig, build_config

    root = Path(__file__).resolve().parents[1]
    assert build_config(root / "studies" / "synthetic.toml") == build_config()
    assert build_config() == StudyConfig(budget=2.0)
    for name in ("cifar10", "cifar100"):
        config = build_config(root / "studies" / f"{name}.toml")
        assert config.dataset == name and config.base_depth == config.base_width == 1.0
