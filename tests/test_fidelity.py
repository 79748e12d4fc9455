"""`scalesearch fidelity`: the rank correlations and their bootstrap intervals, the schedules,
the plan, training on the fidelity seeds, resumption after SIGTERM, worker processes, what
`show` and `run` say, and bad input."""

import json
import math
import os
import shutil
import signal
import subprocess
import time

import numpy as np
import optuna
import pandas as pd
import pytest
from conftest import TINY, scalesearch, start, stop_all

from scalesearch.errors import BadInput
from scalesearch.runs.fidelity import parse_schedules
from scalesearch.stages.fidelity import (
    kendall_rows,
    rank_correlations,
    spearman_rows,
    verdict_changes,
)

# Grid at step 0.5 with three searched points: the baseline, three corners and three compound
# candidates, so that two others remain besides the confirmed one.
STUDY = [*TINY, "--sampler", "grid", "--grid-step", "0.5", "--trials", "3"]


# ---------------------------------------------------------------------------------------------
# statistics


def runs(means, spread=0.0):
    """Two seeds per network around each mean."""
    return [[m - spread, m + spread] for m in means]


def test_a_perfect_ranking_and_a_reversed_one():
    up = [0.1, 0.2, 0.3, 0.4, 0.5]
    found = rank_correlations(runs(up), runs([u + 0.05 for u in up]))
    assert found["networks"] == 5
    for name in ("spearman", "kendall"):  # seeds that agree: every resample ranks the same
        assert found[name] == {"value": pytest.approx(1.0), "low": pytest.approx(1.0),
                               "high": pytest.approx(1.0)}
    found = rank_correlations(runs(up), runs(up[::-1]))
    for name in ("spearman", "kendall"):
        assert found[name] == {"value": pytest.approx(-1.0), "low": pytest.approx(-1.0),
                               "high": pytest.approx(-1.0)}
    # With seed noise a network drawn twice may be ordered either way: the interval opens
    # below 1 but not far, while the estimate stays 1.
    found = rank_correlations(runs(up, 0.01), runs(up, 0.01))
    for name in ("spearman", "kendall"):
        assert found[name]["value"] == pytest.approx(1.0)
        assert found[name]["high"] == pytest.approx(1.0) and 0.3 < found[name]["low"] < 1


def test_ties_give_the_tie_corrected_values():
    found = rank_correlations(runs([0.1, 0.2, 0.2, 0.3]), runs([0.1, 0.2, 0.3, 0.4]))
    # Average ranks 1, 2.5, 2.5, 4 against 1, 2, 3, 4: rho = sqrt(4.5 / 5); tau-b: 5 concordant
    # pairs, 1 tied in x only, so 5 / sqrt(5 * 6).
    assert found["spearman"]["value"] == pytest.approx(math.sqrt(0.9))
    assert found["kendall"]["value"] == pytest.approx(5 / math.sqrt(30))
    for name in ("spearman", "kendall"):
        c = found[name]
        assert -1 <= c["low"] <= c["value"] <= c["high"] <= 1
    # One length ranks every network the same: no correlation, and none from 2 networks.
    flat = rank_correlations(runs([0.2, 0.2, 0.2, 0.2]), runs([0.1, 0.2, 0.3, 0.4]))
    assert flat["spearman"]["value"] is None and flat["kendall"]["low"] is None
    assert rank_correlations(runs([0.1, 0.2]), runs([0.1, 0.2]))["spearman"]["value"] is None


def test_the_vectorised_correlations_agree_with_scipy():
    from scipy.stats import kendalltau, spearmanr

    rng = np.random.default_rng(3)
    x = rng.integers(0, 5, size=(200, 9)).astype(float)  # many ties
    y = x + rng.integers(-2, 3, size=x.shape)
    rho, tau = spearman_rows(x, y), kendall_rows(x, y)
    for i in range(len(x)):
        expected = (spearmanr(x[i], y[i]).statistic, kendalltau(x[i], y[i]).statistic)
        if np.ptp(x[i]) == 0 or np.ptp(y[i]) == 0:
            assert np.isnan(rho[i]) and np.isnan(tau[i])
        else:
            assert (rho[i], tau[i]) == pytest.approx(expected)


def test_the_bootstrap_interval_covers_the_true_correlation_at_its_nominal_rate():
    """Networks whose true accuracies at the two lengths are bivariate normal with correlation
    0.6, each measured with 2 seeds of noise half the networks' spread: the true rank
    correlations are Spearman 6/pi asin(0.3) and Kendall 2/pi asin(0.6)."""
    rng = np.random.default_rng(11)
    rho, networks, seeds, noise, cases = 0.6, 10, 2, 0.5, 300
    truth = {"spearman": 6 / math.pi * math.asin(rho / 2), "kendall": 2 / math.pi * math.asin(rho)}
    covered = {"spearman": 0, "kendall": 0}
    for case in range(cases):
        true = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], networks)
        proxy = true[:, :1] + noise * rng.standard_normal((networks, seeds))
        longer = true[:, 1:] + noise * rng.standard_normal((networks, seeds))
        found = rank_correlations(list(proxy), list(longer), resamples=1000, seed=case)
        for name in covered:
            covered[name] += found[name]["low"] <= truth[name] <= found[name]["high"]
    slack = 3 * math.sqrt(0.95 * 0.05 / cases)  # three binomial standard errors
    for name, count in covered.items():
        assert abs(count / cases - 0.95) <= slack, (name, count / cases)


def test_parse_schedules():
    assert parse_schedules("2x,4x", 3) == [6, 12]
    assert parse_schedules(" 12, 2x ,6", 3) == [6, 12]
    assert parse_schedules("1.5x", 2) == [3]
    for bad in ("", " , ", "1x", "3", "0", "abc", "2y", "-2", "x", "1.5x", "2x,,4x", "nan"):
        with pytest.raises(BadInput, match="--epochs"):
            parse_schedules(bad, 3)


def test_verdict_changes():
    def schedule(epochs, answer, complete=True):
        return {"epochs": epochs, "verdict": {"answer": answer}, "complete": complete}

    held = [schedule(6, "compound"), schedule(12, "compound")]
    assert verdict_changes(held, "compound") == {"winner_changes": False, "first_change": None,
                                                 "changes_from": None}
    assert [s["status"] for s in held] == ["held", "held"] and held[0]["held"]
    flips = [schedule(6, "equivalent"), schedule(12, "compound"), schedule(24, "width")]
    assert verdict_changes(flips, "equivalent") == {"winner_changes": True, "first_change": 12,
                                                    "changes_from": 12}
    assert [s["status"] for s in flips] == ["held", "changed", "changed"]
    back = [schedule(6, "width"), schedule(12, "compound"), schedule(24, "compound")]
    assert verdict_changes(back, "compound")["changes_from"] is None
    assert back[0]["reversed"] and back[0]["held"] is False
    late = [schedule(6, "compound"), schedule(12, "inconclusive", complete=False)]
    assert verdict_changes(late, "compound")["winner_changes"] is False


@pytest.mark.parametrize("proxy", ["inconclusive", "undecided"])
def test_an_undecided_proxy_holds_nothing(proxy):
    # Inconclusive followed by inconclusive is not a verdict that held: nothing was decided.
    schedules = [{"epochs": e, "verdict": {"answer": a}, "complete": True}
                 for e, a in ((6, "inconclusive"), (12, "compound"))]
    found = verdict_changes(schedules, proxy)
    assert [s["status"] for s in schedules] == ["not informative at the proxy"] * 2
    assert not any(s["held"] for s in schedules) and not found["winner_changes"]


def test_a_decided_proxy_is_not_said_to_hold_where_the_longer_one_is_undecided():
    schedules = [{"epochs": 6, "verdict": {"answer": "inconclusive"}, "complete": True}]
    verdict_changes(schedules, "compound")
    assert schedules[0]["status"] == "not decided at this length" and not schedules[0]["held"]


def conclusion(proxy: str, answers: list[str]) -> str:
    from scalesearch.runs.fidelity import _conclusion

    schedules = [{"epochs": 6 * (i + 1), "verdict": {"answer": a}, "complete": True,
                  "planned": 2, "finished": 2, "networks": 5,
                  "spearman": {"value": 0.8, "low": 0.1, "high": 0.95},
                  "kendall": {"value": 0.6, "low": 0.0, "high": 0.9}}
                 for i, a in enumerate(answers)]
    summary = {"proxy": {"verdict": {"answer": proxy}, "complete": True}, "proxy_epochs": 3,
               "schedules": schedules, **verdict_changes(schedules, proxy)}
    return _conclusion(summary)


def test_the_fidelity_conclusion_says_held_only_for_decided_verdicts():
    assert "The verdict (compound wins) held at 6, 12 epochs." in conclusion(
        "compound", ["compound", "compound"])
    text = conclusion("inconclusive", ["inconclusive", "inconclusive"])
    assert "held" not in text and "Not informative at the proxy" in text
    text = conclusion("compound", ["compound", "inconclusive"])
    assert "held" not in text and "was not decided at 12 epochs" in text
    assert "changed" in conclusion("compound", ["width", "width"])


def test_each_schedule_judges_the_confirmed_networks_against_every_single_dimension():
    """At a schedule the verdict pits the confirmed compound network against the three
    confirmed single dimensions, even when another compound candidate (an extreme) does better
    there; a missing one leaves it undecided."""
    from scalesearch.stages.fidelity import judge_schedule
    from scalesearch.store.bits import pack

    rng = np.random.default_rng(0)
    images = 400
    accuracy = {0: 0.30, 6: 0.40, 2: 0.70, 3: 0.50, 4: 0.45, 5: 0.80}  # candidate -> accuracy
    kinds = {0: "baseline", 6: "compound", 2: "width", 3: "depth", 4: "resolution",
             5: "compound"}
    rows = []
    for trial, (candidate, p) in enumerate(accuracy.items()):
        for seed in range(3):
            correct = rng.random(images) < p
            rows.append({"trial": trial, "candidate": candidate, "kind": kinds[candidate],
                         "bracket": "matched", "budget": 1.0 if candidate == 0 else 2.0,
                         "flops_ratio": 1.0 if candidate == 0 else 2.0, "seed": seed,
                         "network": f"net{candidate}", "state": "complete",
                         "test_accuracy": correct.mean(), "test_correct": pack(correct),
                         "schedule": 6, "role": "confirmed", "depth_mult": 0.5,
                         "width_mult": 0.5, "resolution": 40, "seconds": 10.0})
    frame = pd.DataFrame(rows)
    meta = {"chosen": {"compound": 6, "depth": 3, "width": 2, "resolution": 4},
            "opponent": "depth", "selected": {"baseline": 0, "best": [5], "worst": []}}
    found = judge_schedule(frame, {}, meta)
    at = found["at_budget"]
    assert at["compound"]["candidate"] == 6 and at["width"]["candidate"] == 2
    assert at["depth"]["candidate"] == 3 and at["resolution"]["candidate"] == 4
    assert at["baseline"]["candidate"] == 0
    assert [o["candidate"] for o in found["others"]] == [5]
    verdict = found["verdict"]
    assert verdict["secondary"] and verdict["single_dimension"] == "width"
    assert verdict["answer"] == "width"  # the search's opponent was depth; width is ahead
    assert verdict["difference"] == pytest.approx(
        at["compound"]["test_accuracy"] - at["width"]["test_accuracy"])
    missing = {**meta, "chosen": {**meta["chosen"], "resolution": None}}
    assert judge_schedule(frame, {}, missing)["verdict"]["answer"] == "undecided"


# ---------------------------------------------------------------------------------------------
# end to end on a tiny study


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, shared_data_dir):
    """results/ holding a finished tiny study 'tiny' with its confirmation, and the stderr of
    its `run`; copy it before changing it."""
    results = tmp_path_factory.mktemp("fidelity")
    run = scalesearch("run", "--name", "tiny", "--results-dir", results, "--data-dir",
                      shared_data_dir, *STUDY, "--workers", "1")  # trains in-process
    assert run.returncode == 0, run.stderr
    return results, run.stderr


def copy(tiny, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(tiny[0], results)
    return results


def stage_study(results, stage="fidelity"):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(results / "tiny" / "study.journal")))
    name = "tiny" if stage is None else f"tiny.{stage}"
    return optuna.load_study(study_name=name, storage=storage)


def complete(study):
    return {t.number: t for t in study.get_trials() if t.state.name == "COMPLETE"}


def test_fidelity_trains_on_its_own_seeds_resumes_after_sigterm_and_reports(tiny, tmp_path):
    assert "not measured: scalesearch fidelity tiny --epochs 2x,4x" in tiny[1]  # run's last lines
    results = copy(tiny, tmp_path)
    folder = results / "tiny"
    args = ["fidelity", "tiny", "--results-dir", results, "--epochs", "2x", "--seeds", "1",
            "--extremes", "1"]
    proc = start(*args)
    try:
        deadline = time.monotonic() + 180
        while not (folder / "fidelity.csv").exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # written once the first network is finished
        finished_one = (folder / "fidelity.csv").exists()
        os.kill(proc.pid, signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            stop_all(proc)
            pytest.fail(f"no exit 120 s after SIGTERM: {proc.communicate()[1]}")
    finally:
        stop_all(proc)
    assert finished_one, err
    assert proc.returncode == 130, err
    assert "Resume with: scalesearch fidelity tiny --epochs 2 --seeds 1 --extremes 1" in err
    before = {n: (t.value, t.user_attrs["runs"]) for n, t in complete(stage_study(results)).items()}
    points = stage_study(results).user_attrs["points"]
    assert 1 <= len(before) < len(points)

    again = scalesearch(*args)
    assert again.returncode == 0, again.stderr
    study = stage_study(results)
    done = complete(study)
    assert {n: (t.value, t.user_attrs["runs"]) for n, t in done.items() if n in before} == before
    assert sorted(t.user_attrs["point"] for t in done.values()) == sorted(points)  # each once
    assert f"{len(points) - len(before)} network(s) to train" in again.stderr
    assert any("rerun_of" in t.user_attrs for t in done.values())  # the interrupted one

    rows = pd.read_csv(folder / "fidelity.csv")
    search, confirm = pd.read_csv(folder / "trials.csv"), pd.read_csv(folder / "confirm.csv")
    seeds = set(rows["training_seed"].dropna())
    assert seeds and seeds <= set(range(3000, 4000))  # the fidelity range of study seed 0
    assert not seeds & set(search["training_seed"].dropna())
    assert not seeds & set(confirm["training_seed"].dropna())
    done_rows = rows[rows["state"] == "complete"]
    assert (done_rows["epochs"] == done_rows["schedule"]).all()
    assert set(done_rows["schedule"]) == {1, 2}  # the proxy-length runs, and 2x of 1 epoch
    by_length = done_rows.groupby("schedule")["training_seed"].apply(set)
    assert not by_length[1] & by_length[2]  # no long run shares a seed with its own proxy
    # The finalists are the confirmation's networks; two other compound candidates.
    assert set(rows[rows["role"] == "confirmed"]["network"]) == set(confirm["network"])
    others = rows[rows["role"].isin(["best", "worst"])]
    chosen = json.loads((folder / "summary.json").read_text())["confirmation"]
    assert set(others["kind"]) == {"compound"} and others["candidate"].nunique() == 2
    assert chosen["at_budget"]["compound"]["candidate"] not in set(others["candidate"])
    assert set(rows[rows["schedule"] == 1]["role"]) == {"baseline", "best", "worst"}

    summary = json.loads((folder / "fidelity.json").read_text())
    assert summary["proxy"]["verdict"] == chosen["verdict"]
    [two] = summary["schedules"]
    assert two["epochs"] == 2 and two["complete"] and two["networks"] >= 8
    for name in ("spearman", "kendall"):
        c = two[name]
        assert -1 <= c["low"] <= c["value"] <= c["high"] <= 1
    # One seed each: no seed noise of its own; both sides were found (else "no finished ...").
    assert two["verdict"]["answer"] == "undecided"
    assert "trained 1 time(s)" in two["verdict"]["text"]
    assert summary["text"] in again.stderr
    shown = scalesearch("show", "tiny", "--results-dir", results)
    assert shown.returncode == 0 and summary["text"] in shown.stdout.replace("\n", " ")

    # A longer schedule later adds its points only; nothing trained is touched.
    from scalesearch.runs.fidelity import prepare

    fid = prepare("tiny", results, None, "2x,3x", None, None, 24.0)
    assert fid.schedules == [2, 3] and fid.seeds == 1 and fid.extremes == 1
    added = fid.stage.user_attrs["points"][len(points):]
    assert added and all(p.startswith("3:") for p in added)
    assert len(added) == len([p for p in points if p.startswith("2:")])
    assert {n: (t.value, t.user_attrs["runs"]) for n, t in complete(stage_study(results)).items()
            } == {n: (t.value, t.user_attrs["runs"]) for n, t in done.items()}


def test_workers_train_the_fidelity_stage(tiny, tmp_path):
    results = copy(tiny, tmp_path)
    out = scalesearch("fidelity", "tiny", "--results-dir", results, "--epochs", "2",
                      "--seeds", "1", "--extremes", "0", "--workers", "2", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "2 workers started" in out.stderr
    study = stage_study(results)
    done = complete(study)
    assert sorted(t.user_attrs["point"] for t in done.values()) == sorted(
        study.user_attrs["points"])
    workers = {t.user_attrs["worker"].split(":")[1] for t in done.values()}
    assert workers and str(os.getpid()) not in workers  # trained by the worker processes
    summary = json.loads((results / "tiny" / "fidelity.json").read_text())
    assert summary["schedules"][0]["complete"] and summary["proxy"]["complete"]
    assert {n["proxy_source"] for n in summary["networks"]} == {"confirm", "fidelity"}
    logs = "".join((results / "tiny" / f"worker-{i}.log").read_text() for i in range(2))
    assert "At longer training" in logs  # a worker's last lines


def test_bad_input_is_one_sentence_and_changes_nothing(tiny, tmp_path):
    results = copy(tiny, tmp_path)
    journal = results / "tiny" / "study.journal"
    cases = [
        (["--epochs", "1x"], "not longer than the proxy"),
        (["--epochs", "1"], "not longer than the proxy"),
        (["--epochs", "two"], "neither a multiple"),
        (["--epochs", ","], "--epochs is empty"),
        (["--epochs", "2x", "--extremes", "-1"], "--extremes"),
        (["--epochs", "2x", "--seeds", "0"], "--seeds"),
        (["--epochs", "100000x", "--max-hours", "1"], "--max-hours"),
    ]
    before = journal.read_bytes()
    for flags, words in cases:
        out = scalesearch("fidelity", "tiny", "--results-dir", results, *flags)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and words in lines[0], (flags, out.stderr)
        assert journal.read_bytes() == before
    assert not (results / "tiny" / "fidelity.json").exists()

    # Without a confirmation (deleted here) there is no confirmed verdict to check.
    optuna.delete_study(study_name="tiny.confirm", storage=stage_study(results, None)._storage)
    before = journal.read_bytes()
    out = scalesearch("fidelity", "tiny", "--results-dir", results, "--epochs", "2x")
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "no confirmed verdict" in lines[0]
    assert journal.read_bytes() == before
