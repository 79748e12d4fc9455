"""`scalesearch plot` and `scalesearch report` on a small stored study with a comparison:
every supported figure is drawn, and the report carries the numbers of the CSVs."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.test_compare import TINY

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def cli(*args, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "scalesearch", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    data = tmp_path_factory.mktemp("data")
    run = cli("run", "--budget", "2x", "--trials", "1", "--name", "tiny", "--results-dir",
              results, "--data-dir", data, *TINY)
    assert run.returncode == 0, run.stderr
    out = cli("compare", "tiny", "--results-dir", results, "--phi", "1", "--seeds", "2",
              "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15")
    assert out.returncode == 0, out.stderr
    return results / "tiny"


def test_plot_draws_every_supported_figure(study):
    out = cli("plot", "tiny", "--results-dir", study.parent)
    assert out.returncode == 0, out.stderr
    for name in ("frontier", "scaling", "surface", "history", "timeline"):
        png, svg = study / "plots" / f"{name}.png", study / "plots" / f"{name}.svg"
        assert png.read_bytes().startswith(PNG_MAGIC), name
        assert "<svg" in svg.read_text()
        assert str(png) in out.stdout
    # Importances need four finished candidates with parameters: the three corners and the
    # compound one. Optuna's computation must work, not be skipped.
    assert (study / "plots" / "importances.png").read_bytes().startswith(PNG_MAGIC)
    assert "importances" not in out.stderr
    assert "synthetic" in (study / "plots" / "scaling.svg").read_text()


def test_report_holds_the_numbers_of_the_csvs(study):
    out = cli("report", "tiny", "--results-dir", study.parent)
    assert out.returncode == 0, out.stderr
    md = (study / "report.md").read_text()
    html = (study / "report.html").read_text()
    compare = json.loads((study / "compare.json").read_text())
    for entry in compare["at_budget"]["1"].values():  # each strategy at the budget, on test
        shown = f"{entry['test_accuracy'] * 100:.1f} ± {entry['standard_error'] * 100:.1f}"
        assert shown in md and shown in html
    trials = pd.read_csv(study / "trials.csv")
    for _, rows in trials[trials["state"] == "complete"].groupby("trial"):
        assert f"{rows['val_accuracy'].mean() * 100:.1f}" in md
    summary = json.loads((study / "summary.json").read_text())
    assert f"alpha {summary['best']['alpha']:.3f}" in md
    assert summary["verdict"]["text"] in md  # the confirmed verdict
    for entry in summary["confirmation"]["at_budget"].values():
        assert f"{entry['test_accuracy'] * 100:.1f}" in md
    assert "on the test split" in md and "ever saw" in md  # the test numbers were not selected on
    assert "phi 1 (" in md  # the verdict per budget
    assert "](plots/scaling.png)" in md and "](plots/frontier.png)" in md
    assert html.count("data:image/png;base64,") >= 5  # figures embedded: opens offline
    assert "## Environment" in md and "torch" in md


def test_the_report_opens_with_the_answer_and_ends_with_the_settings(study):
    out = cli("report", "tiny", "--results-dir", study.parent)
    assert out.returncode == 0, out.stderr
    md = (study / "report.md").read_text()
    sections = md.split("\n## ")
    first = sections[1]  # the first section after the title
    verdict = json.loads((study / "summary.json").read_text())["verdict"]
    assert first.startswith("The answer\n")
    assert verdict["text"] in first  # the answer, its interval and what would decide it
    if "interval" in verdict:
        assert verdict["claim"] in first and "95% interval" in first
        assert f"Answer: {verdict['answer']}." in first
    assert sections[-1].startswith("Configuration\n")
    html = (study / "report.html").read_text()
    assert html.index("The answer") < html.index("Found coefficients") < html.index(
        "Configuration")
