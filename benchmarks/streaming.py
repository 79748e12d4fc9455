"""Training throughput with an image folder streamed from its memory-mapped cache, against the
same folder resident in memory (on a GPU: on the device).

Writes a folder of JPEGs (10 classes), decodes it once, then trains the same network on it with
`scalesearch train` in alternating pairs: resident (the default) and streamed
(`--max-resident-gb 0`). Prints each run's training images per second, the ratio streamed /
resident per pair, and whether both gave the same record (the same seed must give the same
accuracies and loss on the CPU).

    python benchmarks/streaming.py                       # 1,500 images at 128 px, CPU
    python benchmarks/streaming.py --image-size 256 --device cuda --pairs 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

SAME = ("val_accuracy", "test_accuracy", "loss", "state")


def write_folder(root: Path, classes: int, per_class: int, side: int) -> None:
    """`classes` folders of noisy JPEGs, each class a colour and a stripe frequency."""
    rng = np.random.default_rng(0)
    y = np.arange(side)[:, None, None]
    for c in range(classes):
        folder = root / f"class{c:02d}"
        folder.mkdir(parents=True)
        colour = rng.integers(40, 216, 3)
        for i in range(per_class):
            stripes = 40 * np.sin(y * (c + 1) * np.pi / side + rng.uniform(0, 6.3))
            pixels = colour + stripes + rng.normal(0, 25, (side, side + 32, 3))
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(
                folder / f"{i}.jpg", quality=90)


def train(args, folder: Path, data_dir: Path, streamed: bool) -> dict:
    command = [sys.executable, "-m", "scalesearch", "train", "--dataset", f"imagefolder:{folder}",
               "--data-dir", str(data_dir), "--image-size", str(args.image_size),
               "--depth", str(args.depth), "--width", str(args.width),
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
               "--device", args.device, "--test", "--json"]
    if streamed:
        command += ["--max-resident-gb", "0"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(done.stderr.strip().splitlines()[-1])
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--depth", type=float, default=0.5)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pairs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, data_dir = Path(tmp) / "pictures", Path(tmp) / "data"
        write_folder(folder, args.classes, args.per_class, args.image_size + 32)
        train(args, folder, data_dir, streamed=False)  # decodes the folder into its cache
        print(f"{args.classes * args.per_class} JPEGs stored at {args.image_size} px; "
              f"d {args.depth} w {args.width}, batch {args.batch_size}, {args.device}, "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
        for pair in range(args.pairs):
            order = (False, True) if pair % 2 == 0 else (True, False)
            runs = {streamed: train(args, folder, data_dir, streamed) for streamed in order}
            resident, streamed = runs[False], runs[True]
            same = all(resident[k] == streamed[k] for k in SAME)
            print(f"pair {pair + 1}: resident {resident['images_per_second']:.1f} images/s, "
                  f"streamed {streamed['images_per_second']:.1f} images/s, ratio "
                  f"{streamed['images_per_second'] / resident['images_per_second']:.3f}, "
                  f"same record: {same}")


if __name__ == "__main__":
    main()
