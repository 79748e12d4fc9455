"""Trials per minute of `scalesearch run` with 1 and with 2 worker processes on one tiny study.

Every measurement is a fresh study of the same settings (a grid of tiny proxies on the
synthetic set, stored in a journal file under a temporary folder), timed from the command's
start to its end, so process start-up counts too. A first, untimed run fills the data set and
FLOP-count caches that the timed runs share.

    python benchmarks/workers.py            # or: make bench-workers
    python benchmarks/workers.py --workers 1 2 4 --trials 6
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Small enough for a laptop CPU, big enough that training, not start-up, dominates.
STUDY = ["--budget", "2x", "--sampler", "grid", "--grid-step", "0.25", "--base-depth", "0.25",
         "--base-width", "0.25", "--base-resolution", "16", "--train-images", "1024",
         "--val-images", "256", "--batch-size", "32", "--epochs", "1", "--device", "cpu",
         "--quiet"]


def run_study(folder: Path, name: str, workers: int, trials: int,
              threads: int | None) -> tuple[float, int]:
    """(wall-clock seconds, trained candidates) of one `scalesearch run --workers N` whose
    workers use `threads` torch threads each (None: cores / workers, as `run` gives them)."""
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    command = [sys.executable, "-m", "scalesearch", "run", "--name", name, "--results-dir",
               str(folder / "results"), "--data-dir", str(folder / "data"), *STUDY,
               "--trials", str(trials), "--workers", str(workers)]
    start = time.perf_counter()
    env = {**os.environ, "SCALESEARCH_CACHE": str(folder / "cache"),
           "OMP_NUM_THREADS": str(threads)}
    subprocess.run(command, check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    with open(folder / "results" / name / "trials.csv", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["state"] == "complete"]
    return seconds, len({row["trial"] for row in rows})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts to measure (default: 1 2)")
    parser.add_argument("--trials", type=int, default=4,
                        help="grid points beyond the baseline and the corners (default 4)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per worker (default: cores / workers)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scalesearch-bench-") as tmp:
        folder = Path(tmp)
        run_study(folder, "warm-up", 1, 1, 1)  # data set and FLOP caches, not timed
        print(f"{'workers':>7}  {'candidates':>10}  {'seconds':>8}  {'trials/min':>10}")
        for workers in args.workers:
            seconds, done = run_study(folder, f"workers-{workers}", workers, args.trials,
                                      args.threads)
            print(f"{workers:>7}  {done:>10}  {seconds:>8.1f}  {done / seconds * 60:>10.2f}")
    threads = args.threads or "cores / workers"
    print(f"({os.cpu_count()} CPU cores, {threads} torch thread(s) per worker)")


if __name__ == "__main__":
    main()
