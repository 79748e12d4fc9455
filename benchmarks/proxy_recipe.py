"""What each choice of the proxy recipe buys: the default study's base network trained with the
recipe of `scalesearch.train.config.TrainConfig`, and with one choice changed at a time.

Each variant trains the base network of the embedded default study on `--seeds` seeds (the
same seeds for every variant) and is judged on the test split; it prints the mean test
accuracy, the standard deviation over seeds, the range (best run minus worst) and the
per-group accuracies. The recipe's comments in `train/config.py` quote these figures.

    python benchmarks/proxy_recipe.py [--seeds 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys

from proxy_noise import train  # noqa: E402 - benchmarks/ is the script's own folder

# name -> the TrainConfig fields it changes (the empty one is the recipe itself)
VARIANTS = {
    "recipe": {},
    "no clip": {"clip": None},
    "random stem": {"whiten": False},
    "lr 0.4 per 256": {"lr": 0.1},
    "lr 1.2 per 256": {"lr": 0.3},
    "batch 128": {"batch_size": 128},
    "average 0.98": {"ema": 0.98},
    "flip at eval": {"flip_eval": True},
    "drop on": {"drop": True},
    "augment off": {"augment": False},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    from scalesearch.data import synthetic
    from scalesearch.search.config import build_config

    config = build_config()
    jobs = [{"study": None, "label": name, "depth_mult": config.base_depth,
             "width_mult": config.base_width, "resolution": config.base_resolution,
             "multiple": 1, "epochs": config.epochs, "seed": k, "changes": changes}
            for name, changes in VARIANTS.items() for k in range(args.seeds)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers, maxtasksperchild=1) as pool:
        records = list(pool.imap(train, jobs))
    groups = list(synthetic.GROUPS)
    print(f"{'variant':16} {'mean %':>7} {'SD':>5} {'range':>6} "
          + " ".join(f"{g:>8}" for g in groups) + f" {'s/run':>6}")
    for name in VARIANTS:
        runs = [r for r in records if r["label"] == name and r["test"] is not None]
        values = [100 * r["test"] for r in runs]
        failed = sum(r["label"] == name and r["test"] is None for r in records)
        if len(values) < 2:
            print(f"{name:16} {len(values)} runs completed, {failed} failed")
            continue
        per_group = " ".join(f"{100 * statistics.mean(r[g] for r in runs):8.1f}"
                             for g in groups)
        print(f"{name:16} {statistics.mean(values):7.1f} {statistics.stdev(values):5.2f} "
              f"{max(values) - min(values):6.1f} {per_group} "
              f"{statistics.mean(r['seconds'] for r in runs):6.1f}"
              + (f"  ({failed} failed)" if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
