"""Where one training step of the default study's base network goes on this machine.

Builds the trainer of the embedded default study (its base network, batch size and proxy
recipe) and times `--steps` steps after 5 warm-up steps, split into the parts of a step:
drawing the batch (gather and augmentation), forward, loss, backward, gradient clip and
optimizer step. Then it profiles the same steps with torch.profiler and prints the operators
that take most of the step's own CPU time. `scalesearch bench` compares the whole step with a
plain DataLoader loop; this says what is left inside it.

    python benchmarks/step_profile.py [--steps 30] [--threads 2] [--top 12]
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)
    import torch
    import torch.nn.functional as F

    from scalesearch.net.scaling import scale_network
    from scalesearch.runs.loading import load_data
    from scalesearch.search.config import build_config
    from scalesearch.train.config import TrainConfig
    from scalesearch.train.trainer import Trainer

    torch.set_num_threads(args.threads)
    config = build_config()
    data = load_data(config)
    spec = scale_network(config.base_depth, config.base_width, config.base_resolution)
    train = TrainConfig(batch_size=config.batch_size, device="cpu")
    trainer = Trainer(spec, data, train, total_steps=args.steps * 3 + 5)
    batches = trainer.batches()
    for _ in range(5):
        trainer.step(next(batches))

    parts = dict.fromkeys(("batch", "forward", "loss", "backward", "clip", "optimizer"), 0.0)

    def timed_step(indices):
        marks = [time.perf_counter()]
        images, labels = trainer.data.batch(indices)
        x = trainer.data.train_transform(images, trainer.resolution, trainer.data.mean,
                                         trainer.data.std, trainer.generator)
        marks.append(time.perf_counter())
        logits = trainer.forward(x)
        marks.append(time.perf_counter())
        loss = F.cross_entropy(logits, labels, label_smoothing=train.label_smoothing)
        trainer.optimizer.zero_grad(set_to_none=True)
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        torch.nn.utils.clip_grad_norm_(trainer.params, train.clip, foreach=True)
        marks.append(time.perf_counter())
        trainer.optimizer.step()
        marks.append(time.perf_counter())
        for name, start, end in zip(parts, marks, marks[1:]):
            parts[name] += end - start

    start = time.perf_counter()
    for _ in range(args.steps):
        timed_step(next(batches))
    total = time.perf_counter() - start
    print(f"base network d {spec.depth_mult} w {spec.width_mult} {spec.resolution} px, batch "
          f"{train.batch_size}, {args.threads} threads: {1000 * total / args.steps:.1f} ms a "
          f"step, {args.steps * train.batch_size / total:.0f} images/s")
    for name, seconds in parts.items():
        print(f"  {name:10} {1000 * seconds / args.steps:7.1f} ms  {100 * seconds / total:5.1f}%")

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        for _ in range(args.steps):
            trainer.step(next(batches))
    events = profile.key_averages()
    whole = sum(event.self_cpu_time_total for event in events)
    print(f"operators by own CPU time ({args.steps} steps):")
    for event in sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:args.top]:
        print(f"  {event.key[:48]:48} {event.count // args.steps:5d} calls a step "
              f"{100 * event.self_cpu_time_total / whole:5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
