"""Write tests/data/fvcore_counts.json: fvcore's counts of B0-B7 and of random networks.

tests/test_analytic.py checks the analytic count (`scalesearch.net.analytic`) against this
file, so that counts which take fvcore seconds to minutes (B7 at 600 px, width 3) are checked
in milliseconds. Each entry is `scalesearch.net.complexity.measure` of one network: parameters,
FLOPs and activations of `build_model(spec, classes)` on one image in eval mode. The random
networks are drawn by `random_cases(SEED, CASES)`; the file records the seed and the fvcore and
torch versions, and the test draws the cases again from the seed to check they are the file's.

    nice -n 5 python benchmarks/golden_counts.py     # about half an hour on one CPU core

Run it again when the model or fvcore changes (and bump complexity.CACHE_VERSION then).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path

from scalesearch.net.scaling import PRESETS, NetworkSpec, preset_spec, scale_network

SEED = 1905
CASES = 200
OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "fvcore_counts.json"


def random_cases(seed: int = SEED, n: int = CASES) -> list[dict]:
    """`n` networks drawn uniformly: depth and width multipliers in [0.25, 3] (three decimals),
    resolution 16-600 px, 2-1000 classes."""
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        depth = round(rng.uniform(0.25, 3.0), 3)
        width = round(rng.uniform(0.25, 3.0), 3)
        resolution = rng.randint(16, 600)
        classes = rng.randint(2, 1000)
        cases.append({"depth_mult": depth, "width_mult": width, "resolution": resolution,
                      "classes": classes})
    return cases


def case_spec(case: dict) -> NetworkSpec:
    return scale_network(case["depth_mult"], case["width_mult"], case["resolution"])


def preset_cases() -> list[dict]:
    """B0-B7 at their official resolutions, 1000 classes."""
    return [{"preset": name, "resolution": preset.resolution, "classes": 1000}
            for name, preset in PRESETS.items()]


def _measured(case: dict, spec: NetworkSpec) -> dict:
    from scalesearch.net.complexity import measure

    start = time.perf_counter()
    counts = measure(spec, case["classes"])
    print(f"{spec.key(case['classes'])[:60]}...  {time.perf_counter() - start:.1f} s",
          file=sys.stderr, flush=True)
    return {**case, "key": spec.key(case["classes"]), **asdict(counts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (batch 1 gains little from more; default 1)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    presets = [_measured(c, preset_spec(c["preset"])) for c in preset_cases()]
    randoms = [_measured(c, case_spec(c)) for c in random_cases()]
    header = {
        "about": "fvcore counts of build_model(spec, classes), one image, eval mode; "
                 "written by benchmarks/golden_counts.py",
        "fvcore": version("fvcore"), "torch": torch.__version__, "seed": SEED, "cases": CASES,
    }
    # One network per line, so that a change shows as a readable diff.
    lines = [json.dumps(header)[:-1] + ","]
    for name, entries in (("presets", presets), ("random", randoms)):
        rows = ",\n".join(f"  {json.dumps(entry)}" for entry in entries)
        lines.append(f' "{name}": [\n{rows}\n ]' + ("," if name == "presets" else ""))
    text = "\n".join(lines) + "\n}\n"
    json.loads(text)  # the layout above must stay valid JSON
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.output.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; this file is for everyone
    os.replace(tmp, args.output)
    print(f"wrote {len(presets)} presets and {len(randoms)} random networks to {args.output}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
