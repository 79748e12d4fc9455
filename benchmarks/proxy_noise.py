"""How noisy is the default study's proxy, and how much does it leave to learn?

Trains the default study's finalist networks, with the study's own settings and recipe (the
embedded default study, `scalesearch.search.config.StudyConfig`, and the proxy recipe,
`scalesearch.train.config.TrainConfig`): the base network, every network of the three corners
at the budget (a bracketed corner has two), and the compound network at the middle of the
triangle (equal shares of log(budget) on depth, width and resolution). Each trains on
`--seeds` seeds at the proxy's epochs; the base and each corner's network nearest the budget
train again on `--long-seeds` seeds at `--long` times the epochs. Every run is judged on the
test split, with the accuracy of each group of classes of the synthetic set.

It prints one row per network and length: mean and standard deviation over seeds of test
accuracy, the range (best run minus worst), the per-group accuracies, and the mean wall time of
a run; then, as its last line:

    proxy noise: median seed SD X points, largest Y points, widest range R points,
    base at 8x B%, best 2x gain at 8x G points

(the median and largest SD and the widest range over the proxy-length networks; the gain is the
best corner at the long schedule minus the base there).

    python benchmarks/proxy_noise.py [--seeds 6] [--long 8] [--long-seeds 2] [--workers 2]
        [--changes '{"flip_eval": true}']

Runs are spread over `--workers` processes of one torch thread each (the default study's own
layout on a 2-core machine); a training's seeds are the benchmark's own (not the study's).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

SEED_BASE = 7000  # training seeds of this benchmark: 7000 + k, no stage of a study uses them


def networks(config) -> list[tuple[str, dict]]:
    """(label, {depth_mult, width_mult, resolution, ratio, nearest}) of the finalists."""
    from scalesearch.runs.loading import load_data
    from scalesearch.search.costs import CostCounter
    from scalesearch.search.matching import match_budget
    from scalesearch.search.space import CORNERS, Direction

    data = load_data(config)
    counter = CostCounter.for_data(config, data)
    base = counter.base
    out = [("base", {"depth_mult": base.depth_mult, "width_mult": base.width_mult,
                     "resolution": base.resolution, "ratio": 1.0, "nearest": True})]
    middle = Direction(1 / 3, 1 / 3, 1 / 3)
    for kind, direction in {**CORNERS, "compound": middle}.items():
        match = match_budget(direction, config.budget, base, counter, config.tolerance)
        for network in match.networks:
            spec = network.spec
            nearest = network is match.nearest
            out.append((f"{kind} {network.ratio:.2f}x", {
                "depth_mult": spec.depth_mult, "width_mult": spec.width_mult,
                "resolution": spec.resolution, "ratio": network.ratio,
                "nearest": nearest and kind != "compound"}))
    return out


def train(job: dict) -> dict:
    """One run of one network (in a worker process): its test accuracy, per group, seconds.
    ``job["changes"]``, when given, overrides fields of the training's TrainConfig."""
    import torch

    torch.set_num_threads(1)
    from scalesearch.data import synthetic
    from scalesearch.net.scaling import scale_network
    from scalesearch.runs.loading import load_data
    from scalesearch.search.config import build_config
    from scalesearch.train.config import TrainConfig
    from scalesearch.train.trainer import train_model

    config = build_config(job["study"])
    data = load_data(config)
    spec = scale_network(job["depth_mult"], job["width_mult"], job["resolution"])
    settings = {"epochs": config.epochs * job["multiple"], "batch_size": config.batch_size,
                "optimizer": config.optimizer, "lr": config.lr, "seed": SEED_BASE + job["seed"],
                "device": "cpu", "evaluate_test": True, "evaluate_val": False}
    train_config = TrainConfig(**{**settings, **job.get("changes", {})})
    start = time.perf_counter()
    result = train_model(spec, data, train_config)
    record = {**job, "seconds": time.perf_counter() - start, "state": result.state,
              "test": result.test_accuracy}
    if result.test_correct is not None:
        labels = data.test.labels
        for group, classes in synthetic.GROUPS.items():
            mask = torch.isin(labels, torch.tensor(classes))
            record[group] = result.test_correct[mask].float().mean().item()
    return record


def table(records: list[dict]) -> tuple[list[str], dict]:
    """The printed rows, and per (label, multiple): mean, SD and range in points."""
    from scalesearch.data import synthetic

    groups = list(synthetic.GROUPS)
    rows = [f"{'network':24} {'epochs':>6} {'runs':>4} {'mean %':>7} {'SD':>5} {'range':>6} "
            + " ".join(f"{g:>8}" for g in groups) + f" {'s/run':>6}"]
    stats = {}
    keys = dict.fromkeys((r["label"], r["multiple"]) for r in records)
    for label, multiple in keys:
        runs = [r for r in records if (r["label"], r["multiple"]) == (label, multiple)
                and r["test"] is not None]
        if not runs:
            rows.append(f"{label:24} {multiple:>5}x  all runs failed")
            continue
        values = [100 * r["test"] for r in runs]
        sd = statistics.stdev(values) if len(values) > 1 else float("nan")
        spread = max(values) - min(values)
        stats[(label, multiple)] = {"mean": statistics.mean(values), "sd": sd, "range": spread}
        per_group = " ".join(f"{100 * statistics.mean(r[g] for r in runs):8.1f}" for g in groups)
        seconds = statistics.mean(r["seconds"] for r in runs)
        rows.append(f"{label:24} {runs[0]['epochs']:>6} {len(runs):>4} "
                    f"{statistics.mean(values):7.1f} {sd:5.2f} {spread:6.1f} {per_group} "
                    f"{seconds:6.1f}")
    return rows, stats


def summary_line(stats: dict, long: int) -> str:
    proxy = [s for (_, multiple), s in stats.items() if multiple == 1] or [
        {"sd": float("nan"), "range": float("nan")}]  # --seeds 0: the long runs alone
    sds = [s["sd"] for s in proxy]
    base = stats.get(("base", long), {}).get("mean", float("nan"))
    corners = [s["mean"] for (label, multiple), s in stats.items()
               if multiple == long and label != "base"]
    gain = max(corners) - base if corners else float("nan")
    return (f"proxy noise: median seed SD {statistics.median(sds):.2f} points, largest "
            f"{max(sds):.2f} points, widest range {max(s['range'] for s in proxy):.1f} points, "
            f"base at {long}x {base:.1f}%, best 2x gain at {long}x {gain:.1f} points")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6, help="runs per network at the proxy")
    parser.add_argument("--long", type=int, default=8, help="multiple of the proxy's epochs")
    parser.add_argument("--long-seeds", type=int, default=2, help="runs at the long schedule")
    parser.add_argument("--workers", type=int, default=2, help="processes, one thread each")
    parser.add_argument("--study", default=None, help="a study file (default: the embedded "
                        "default study)")
    parser.add_argument("--json", type=Path, default=None, help="also write every run here")
    parser.add_argument("--changes", type=json.loads, default={}, help="TrainConfig fields to "
                        "change for every run, as JSON (say '{\"flip_eval\": true}')")
    args = parser.parse_args(argv)
    from scalesearch.search.config import build_config

    config = build_config(args.study)
    finalists = networks(config)
    print(f"{len(finalists)} networks of the default study at {config.budget:g}x: "
          + ", ".join(label for label, _ in finalists), flush=True)
    jobs = []
    for label, net in finalists:
        base = {"study": args.study, "label": label, "depth_mult": net["depth_mult"],
                "width_mult": net["width_mult"], "resolution": net["resolution"],
                "changes": args.changes}
        jobs += [{**base, "multiple": 1, "epochs": config.epochs, "seed": k}
                 for k in range(args.seeds)]
        if net["nearest"]:
            jobs += [{**base, "multiple": args.long, "epochs": config.epochs * args.long,
                      "seed": k} for k in range(args.long_seeds)]
    jobs.sort(key=lambda j: -j["multiple"])  # the long runs first: the pool ends evenly
    start = time.perf_counter()
    records = []
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers, maxtasksperchild=1) as pool:
        for record in pool.imap_unordered(train, jobs):
            records.append(record)
            print(f"  {record['label']} x{record['multiple']} seed {record['seed']}: "
                  f"{100 * (record['test'] or 0):.1f}% in {record['seconds']:.0f} s",
                  flush=True)
    records.sort(key=lambda r: (r["multiple"], r["label"], r["seed"]))
    rows, stats = table(records)
    print("\n".join(rows))
    print(f"{len(records)} runs in {(time.perf_counter() - start) / 60:.1f} min on "
          f"{args.workers} worker(s)")
    if args.json:
        args.json.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
    print(summary_line(stats, args.long))
    return 0


if __name__ == "__main__":
    sys.exit(main())
