"""scalesearch.stages.compare: the phi list, the plan (every strategy at each budget, matched or
bracketed), and `scalesearch compare` end to end (files, seeds, resumption, bad input)."""

import math
import os
import subprocess
import sys

import optuna
import pandas as pd
import pytest

from scalesearch.errors import BadInput
from scalesearch.search.config import StudyConfig
from scalesearch.search.costs import CostCounter
from scalesearch.stages.compare import candidate_id, check_coefficients, parse_phis, plan_points
from scalesearch.verdict.results import COLUMNS

TINY = ["--base-depth", "0.25", "--base-width", "0.25", "--base-resolution", "16",
        "--train-images", "128", "--val-images", "64",
        "--test-images", "200", "--batch-size", "32", "--epochs", "1", "--workers", "1",
        "--device", "cpu"]


def cli(*args, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "scalesearch", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout)


def test_parse_phis():
    assert parse_phis("1,2,3") == [1.0, 2.0, 3.0]
    assert parse_phis(" 2, 1 ,2,0.5") == [0.5, 1.0, 2.0]
    for bad in ("", " , ", "-1", "0", "abc", "1,x", "nan", "9"):
        with pytest.raises(BadInput, match="phi"):
            parse_phis(bad)


def test_check_coefficients():
    assert check_coefficients(1.2, 1.1, 1.15) == (1.2, 1.1, 1.15)
    for bad in ((1, 1, 1), (0.9, 1.1, 1.1), (math.nan, 1.1, 1.1), (math.inf, 1, 1)):
        with pytest.raises(BadInput):
            check_coefficients(*bad)


@pytest.mark.parametrize("base_resolution", [32, 40])
def test_every_strategy_is_planned_at_each_budget(base_resolution):
    config = StudyConfig(base_depth=0.5, base_width=0.5, base_resolution=base_resolution)
    counter = CostCounter(config, 10, 32)
    coefficients = (1.2, 1.1, 1.15)
    growth = 1.2 * 1.1**2 * 1.15**2
    points = plan_points(coefficients, [1.0, 2.0], counter, 0.03)
    assert points[0]["kind"] == "baseline" and points[0]["flops_ratio"] == 1.0
    ids = {p["point"] for p in points}
    assert len(ids) == len(points)  # each point once
    for phi in (1.0, 2.0):
        for kind in ("compound", "depth", "width", "resolution"):
            mine = [p for p in points if p["phi"] == phi and p["kind"] == kind]
            assert {p["candidate"] for p in mine} == {candidate_id(phi, kind)}
            ratios = sorted(p["flops_ratio"] for p in mine)
            target = growth**phi
            assert all(p["budget"] == pytest.approx(target) for p in mine)
            if len(mine) == 1:  # on the budget, within the tolerance
                assert mine[0]["bracket"] == "matched" and abs(ratios[0] / target - 1) <= 0.03
            else:  # two networks around it
                assert [p["bracket"] for p in mine] == ["lower", "upper"]
                assert ratios[0] < target < ratios[1]
            for p in mine:
                # Per-phi factors: depth = base_depth * alpha^phi, and so on.
                assert 0.5 * p["alpha"] ** phi == pytest.approx(p["depth_mult"])
                assert 0.5 * p["beta"] ** phi == pytest.approx(p["width_mult"])
                assert round(base_resolution * p["gamma"] ** phi) == p["resolution"]
                if kind != "compound":  # the other two dimensions stay at the base's
                    assert (p["depth_mult"] == 0.5) == (kind != "depth")


def test_compare_writes_csv_resumes_without_retraining(tmp_path):
    results, data = tmp_path / "results", tmp_path / "data"
    run = cli("run", "--budget", "2x", "--trials", "0", "--name", "tiny", "--results-dir",
              results, "--data-dir", data, *TINY)
    assert run.returncode == 0, run.stderr
    args = ["compare", "tiny", "--results-dir", results, "--phi", "1", "--seeds", "2",
            "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15"]
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr and "phi 1" in first.stderr
    frame = pd.read_csv(results / "tiny" / "compare.csv")
    assert list(frame.columns)[:len(COLUMNS)] == list(COLUMNS)
    assert "test_accuracy" in frame.columns and "test_correct" not in frame.columns
    assert set(frame["kind"]) == {"baseline", "compound", "depth", "resolution", "width"}
    done = frame[frame["state"] == "complete"]
    assert done["test_accuracy"].between(0, 1).all() and set(done["seed"]) == {0, 1}
    assert set(frame["phi"]) == {0.0, 1.0}
    # The comparison's own seeds: none of the search's or the confirmation's.
    search = pd.read_csv(results / "tiny" / "trials.csv")
    seeds = set(done["training_seed"])
    assert not seeds & set(search["training_seed"].dropna())
    assert not (results / "tiny" / "confirm.csv").exists()  # no compound candidate to confirm
    summary = __import__("json").loads((results / "tiny" / "compare.json").read_text())
    for kind, entry in summary["at_budget"]["1"].items():
        assert entry["method"] in ("matched", "interpolated"), kind
        assert {"test_accuracy", "standard_error", "trials"} <= set(entry)
    assert summary["verdicts"][0]["answer"] in ("compound", "depth", "width", "resolution",
                                                "equivalent", "inconclusive", "undecided")
    assert summary["verdicts"][0]["secondary"]

    journal = results / "tiny" / "study.journal"
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal)))
    before = {t.number: t.value for t in optuna.load_study(
        study_name="tiny.compare", storage=storage).get_trials()}
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    after = {t.number: t.value for t in optuna.load_study(
        study_name="tiny.compare", storage=storage).get_trials()}
    assert after == before  # nothing re-trained
    assert "0 network(s) to train" in again.stderr

    # Other coefficients for the same comparison are refused; the search study is untouched.
    count = len(optuna.load_study(study_name="tiny", storage=storage).get_trials())
    other = cli("compare", "tiny", "--results-dir", results, "--phi", "1", "--seeds", "2",
                "--alpha", "1.3", "--beta", "1.1", "--gamma", "1.1")
    assert other.returncode == 2 and "coefficients" in other.stderr
    assert len(optuna.load_study(study_name="tiny", storage=storage).get_trials()) == count


def test_compare_bad_input_is_one_sentence(tmp_path):
    for phi in ("", "-1", "abc"):
        out = cli("compare", "x", "--results-dir", tmp_path, "--phi", phi)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and "phi" in lines[0], out.stderr
    out = cli("compare", "nothing", "--results-dir", tmp_path, "--phi", "1")
    assert out.returncode == 2 and "no study" in out.stderr

    # A study without finished trials (created, never trained).
    import dataclasses

    from scalesearch.search.config import StudyConfig

    folder = tmp_path / "empty"
    folder.mkdir()
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / "study.journal")))
    study = optuna.create_study(study_name="empty", storage=storage)
    study.set_user_attr("settings", dataclasses.asdict(StudyConfig()))
    for command in (["compare", "empty", "--phi", "1"], ["plot", "empty"],
                    ["report", "empty"]):
        out = cli(*command, "--results-dir", tmp_path)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1, out.stderr
        assert "no finished trials" in lines[0]
