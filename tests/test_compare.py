"""scalesearch.compare: the phi list, the single-dimension solver on several budgets, the
per-phi models, and `scalesearch compare` end to end (files, resumption, bad input)."""

import math
import os
import subprocess
import sys

import optuna
import pandas as pd
import pytest

from scalesearch.errors import BadInput
from scalesearch.net.scaling import scale_network
from scalesearch.stages.compare import (
    COMPARE_COLUMNS,
    build_model,
    check_coefficients,
    parse_phis,
    solve_single,
)
from scalesearch.verdict.results import COLUMNS

TINY = ["--base-depth", "0.25", "--base-width", "0.25", "--base-resolution", "16",
        "--train-images", "128", "--val-images", "64", "--batch-size", "32", "--epochs", "1",
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


def analytic_ratio(base):
    """Multiply-adds of the convolutions, by hand from the spec's stage table: fast, and it
    moves in the same rounded steps as the real network (ceil of repeats, channels in 8s,
    whole pixels, stride arithmetic)."""
    def flops(spec):
        side = math.ceil(spec.resolution / 2)
        total = 9 * 3 * spec.stem_channels * side**2
        channels = spec.stem_channels
        for stage in spec.stages:
            for block in range(stage.repeats):
                if block == 0 and stage.stride == 2:
                    side = math.ceil(side / 2)
                hidden = channels * stage.expand
                total += side**2 * (channels * hidden * (stage.expand != 1)
                                    + hidden * stage.kernel**2 + hidden * stage.out_channels)
                channels = stage.out_channels
        return total + side**2 * channels * spec.head_channels

    base_flops = flops(base)
    return lambda spec: flops(spec) / base_flops


@pytest.mark.parametrize("target", [1.3, 1.9, 2.6, 3.5, 4.8])
def test_solver_hits_the_target_or_flags_that_rounding_forbids_it(target):
    base = scale_network(0.5, 0.5, 32)
    ratio = analytic_ratio(base)
    for kind in ("depth", "width", "resolution"):
        m = solve_single(kind, target, base, ratio, tolerance=0.03)
        assert m.within_tolerance == (abs(m.flops_ratio / target - 1) <= 0.03)
        assert math.isclose(m.flops_ratio, ratio(m.spec))
        # The other two dimensions stay at the base's.
        assert kind == "depth" or m.spec.depth_mult == base.depth_mult
        assert kind == "width" or m.spec.width_mult == base.width_mult
        assert kind == "resolution" or m.spec.resolution == base.resolution
        # The solver finds the closest network this dimension can reach (brute force).
        if kind == "depth":
            options = [scale_network(0.5 * (1 + i / 200), 0.5, 32) for i in range(0, 1400)]
        elif kind == "width":
            options = [scale_network(0.5, 0.5 * (1 + i / 400), 32) for i in range(0, 1600)]
        else:
            options = [scale_network(0.5, 0.5, r) for r in range(32, 200)]
        closest = min(abs(math.log(ratio(s) / target)) for s in options)
        assert abs(math.log(m.flops_ratio / target)) <= closest + 1e-9
        if kind == "width" and target >= 1.9:  # 8-channel steps are fine enough from 2x on
            assert m.within_tolerance


def test_build_model_per_phi_factors():
    base = scale_network(0.5, 0.5, 32)
    ratio = analytic_ratio(base)
    coefficients = (1.2, 1.1, 1.15)
    growth = 1.2 * 1.1**2 * 1.15**2
    for phi in (1.0, 2.0):
        compound = build_model("compound", phi, coefficients, base, ratio)
        # Scaled like a search candidate: the direction kept, measured FLOPs at growth^phi.
        assert compound.target_ratio == pytest.approx(growth**phi)
        assert compound.flops_matched
        assert abs(compound.flops_ratio / growth**phi - 1) <= 0.03
        assert 0.5 * compound.alpha**phi == pytest.approx(compound.spec.depth_mult)
        shares = [math.log(1.2), 2 * math.log(1.1), 2 * math.log(1.15)]
        assert compound.shares() == pytest.approx([v / sum(shares) for v in shares])
        for kind in ("depth", "width", "resolution"):
            m = build_model(kind, phi, coefficients, base, ratio)
            assert m.target_ratio == pytest.approx(compound.flops_ratio)
            # Per-phi factors: depth = base_depth * alpha^phi, and so on.
            assert 0.5 * m.alpha**phi == pytest.approx(m.spec.depth_mult)
            assert 0.5 * m.beta**phi == pytest.approx(m.spec.width_mult)
            assert round(32 * m.gamma**phi) == m.spec.resolution
            shares = m.shares()
            assert shares[("depth", "width", "resolution").index(kind)] == pytest.approx(1)
    baseline = build_model("baseline", 0.0, coefficients, base, ratio)
    assert baseline.spec == base and baseline.phi == 0.0


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
    assert list(frame.columns) == list(COMPARE_COLUMNS) == [*COLUMNS, "test_accuracy"]
    assert sorted(frame["kind"]) == sorted(["baseline", "compound", "depth", "resolution",
                                            "width"] * 2)
    assert (frame["state"] == "complete").all() and frame["test_accuracy"].between(0, 1).all()
    assert set(frame["phi"]) == {0.0, 1.0}
    compound = frame[frame["kind"] == "compound"]["flops"].iloc[0]
    singles = frame[frame["kind"].isin(["depth", "width", "resolution"])]
    off = (singles["flops"] / compound - 1).abs() > 0.03
    assert (off == ~singles["flops_matched"].astype(bool)).all()  # flagged exactly when off
    assert (results / "tiny" / "compare.json").exists()

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
    other = cli("compare", "tiny", "--results-dir", results, "--phi", "1", "--seeds", "2",
                "--alpha", "1.3", "--beta", "1.1", "--gamma", "1.1")
    assert other.returncode == 2 and "alpha, beta, gamma" in other.stderr
    assert len(optuna.load_study(study_name="tiny", storage=storage).get_trials()) == 4


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


def test_verdicts_count_a_win_only_at_equal_cost():
    from scalesearch.stages.compare import verdicts

    def table(single_acc, single_ratio):
        return pd.DataFrame([
            {"kind": "compound", "phi": 1.0, "test_mean": 0.30, "flops_ratio": 2.0,
             "flops_matched": True, "n_seeds": 2},
            {"kind": "resolution", "phi": 1.0, "test_mean": single_acc,
             "flops_ratio": single_ratio, "flops_matched": single_ratio == 2.0, "n_seeds": 2},
        ])

    assert verdicts(table(0.40, 2.0), noise=0.01)[0]["answer"] == "resolution"
    costly = verdicts(table(0.40, 2.24), noise=0.01)[0]
    assert costly["answer"] == "unequal" and "1.12x" in costly["text"]
    assert verdicts(table(0.20, 2.24), noise=0.01)[0]["answer"] == "compound"
    assert verdicts(table(0.30, 2.0), noise=0.01)[0]["answer"] == "tie"
