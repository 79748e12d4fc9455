# Every target creates .venv on first use; nothing is installed outside it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-proxy bench-verdict bench-workers bench-gpu mutation clean

# --no-compile: pip would byte-compile every file of torch and its companions (about two of
# the three minutes an install takes on 2 cores); the modules scalesearch imports are compiled
# instead, once, by importing them with bytecode writing on.
WARM := scalesearch.runs.runner, scalesearch.runs.comparison, scalesearch.runs.fidelity, \
	scalesearch.train.trainer, scalesearch.train.bench, scalesearch.net.complexity, \
	scalesearch.report.document, scalesearch.report.figures, scalesearch.cli, fvcore.nn, \
	matplotlib.pyplot, scipy.stats, scipy.stats.qmc, optuna.storages, pytest, hypothesis

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-compile -e '.[dev]'
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -W ignore -c "import $(WARM)"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/scalesearch run --budget 2x
	$(BIN)/scalesearch plot

# Two test processes (one per core of the development machine), whole files to each, so a
# file's fixtures are built once; TEST_JOBS=0 runs everything in this process.
TEST_JOBS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check scalesearch tests benchmarks
	$(BIN)/lint-imports

# On the default study's base network (quarter-depth, half-width B0 at the synthetic set's 36 px).
bench: $(STAMP)
	$(BIN)/scalesearch bench --depth 0.25 --width 0.5 --dataset synthetic

# The default study's proxy: seed noise of its finalists, headroom at 8x the epochs (~30 min).
bench-proxy: $(STAMP)
	$(BIN)/python benchmarks/proxy_noise.py $(BENCH_ARGS)

# The verdict's false wins under seven kinds of null noise, 2,000 studies each, and its power.
bench-verdict: $(STAMP)
	$(BIN)/python benchmarks/verdict_calibration.py $(BENCH_ARGS)

bench-workers: $(STAMP)
	$(BIN)/python benchmarks/workers.py

# On a GPU machine, with the Python that has torch (no venv: GPU machines may be offline; see
# benchmarks/gpu.py for what must import). make bench-gpu PY=.venv/bin/python uses the venv.
bench-gpu:
	SCALESEARCH_REQUIRE_CUDA=1 $(PY) benchmarks/gpu.py $(BENCH_ARGS)

# Mutation testing of the pure modules that decide the study's answer, with their fast unit tests
# (pyproject.toml, [tool.mutmut]); a few minutes, not run in CI. Always a fresh run (mutants/ is
# removed first), MUTATION_CHILDREN mutants at a time (one per core here) at low priority; then
# the score per module and overall, and a failure when the overall score is below
# MUTATION_FLOOR percent. A timeout counts as killed.
MUTATION_CHILDREN ?= 2
MUTATION_FLOOR ?= 85

define MUTATION_SUMMARY
import json, sys
from pathlib import Path
from mutmut.stats import status_by_exit_code

floor = float(sys.argv[1])
rows = []
for meta in sorted(Path("mutants").rglob("*.py.meta")):
    codes = json.loads(meta.read_text())["exit_code_by_key"].values()
    status = [status_by_exit_code[c] for c in codes]
    rows.append((str(meta.relative_to("mutants"))[:-5], len(status), status.count("killed"),
                 status.count("timeout"), status.count("survived")))
print(f"{'module':34} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} {'score':>6}")
for name, total, killed, timeout, survived in rows:
    score = 100 * (killed + timeout) / total if total else 0.0
    print(f"{name:34} {total:7} {killed:6} {timeout:7} {survived:8} {score:5.1f}%")
s = json.loads(Path("mutants/mutmut-cicd-stats.json").read_text())
judged = s["total"] - s["skipped"]
caught = s["killed"] + s["timeout"]
score = 100 * caught / judged if judged else 0.0
rest = {k: s[k] for k in ("no_tests", "suspicious", "segfault", "check_was_interrupted_by_user")
        if s[k]}
unchecked = judged - caught - s["survived"] - sum(rest.values())
if unchecked:
    rest["not_checked"] = unchecked
others = "".join(f", {n} {k.replace('_', ' ')}" for k, n in rest.items())
print(f"mutation score: {score:.1f}% ({caught} of {judged} killed, {s['timeout']} of them by "
      f"timeout; {s['survived']} survived{others})")
if score < floor:
    sys.exit(f"mutation score {score:.1f}% is below the floor of {floor:g}%")
endef
export MUTATION_SUMMARY

mutation: $(STAMP)
	rm -rf mutants
	SCALESEARCH_HYPOTHESIS_PROFILE=mutation OMP_NUM_THREADS=1 \
		nice -n 10 $(BIN)/mutmut run --max-children $(MUTATION_CHILDREN)
	$(BIN)/mutmut export-cicd-stats
	$(BIN)/python -c "$$MUTATION_SUMMARY" $(MUTATION_FLOOR)

clean:
	rm -rf $(VENV) .pytest_cache
