"""The optimizer and the learning-rate schedule of a proxy training.

SGD (Nesterov) or RMSprop with weight decay on conv and linear weights only; the learning rate
warms up linearly per step, then decays to 0 along a cosine, per step, over the whole training
(a longer schedule stretches both).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from scalesearch.train.config import TrainConfig, default_lr


def make_optimizer(
    model: nn.Module, config: TrainConfig, device: torch.device, fast: bool = True,
    augmentation: str | None = None,
) -> torch.optim.Optimizer:
    """SGD (Nesterov, momentum 0.9) or RMSprop; weight decay only on weights with ndim > 1.
    Without a learning rate in `config`, the default for the data set's `augmentation`.

    ``fast`` picks the fused SGD kernel (CPU and CUDA) or the multi-tensor RMSprop; without it
    torch's default implementation runs (the same arithmetic, as a plain user loop would).
    RMSprop follows the paper (decay 0.9, momentum 0.9, eps 1e-3) with one difference from
    TensorFlow: torch adds eps outside the square root and starts the mean square at 0.
    """
    decay = [p for p in model.parameters() if p.ndim > 1]  # conv and linear weights
    no_decay = [p for p in model.parameters() if p.ndim <= 1]  # batch norm and biases
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    lr = config.lr if config.lr is not None else default_lr(config.optimizer, config.batch_size,
                                                            augmentation)
    if config.optimizer == "sgd":
        kind = {"fused": True} if fast else {}
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, **kind)
    kind = {"foreach": True} if fast else {}
    return torch.optim.RMSprop(groups, lr=lr, alpha=0.9, momentum=0.9, eps=1e-3, **kind)


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Multiplier of the base learning rate for 0-based ``step`` of ``total_steps``.

    Linear warm-up from 1/warmup_steps to 1 over the first ``warmup_steps`` steps, then a
    cosine from 1 towards 0 (reached just after the last step).
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))
