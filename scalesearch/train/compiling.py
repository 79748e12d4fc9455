"""torch.compile for proxy trainings: when, with which options, and a clean slate per network.

On CUDA the training forward is compiled with CUDA graphs (``mode="reduce-overhead"``, static
shapes): a proxy's step is a thousand tiny kernels, and replaying them as one graph removes the
launch overhead that otherwise leaves the GPU idle. Dynamo's caches are reset before every
network, so a long study of many different networks in one process never reaches the recompile
limit or falls back to dynamic shapes. On the CPU compile is off unless asked for.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch
from torch import nn


def compile_wanted(setting: bool | None, device: torch.device) -> bool:
    """Whether a training on ``device`` compiles, for ``TrainConfig.compile`` = ``setting``:
    True and False as given; None ("auto") compiles on CUDA only (on the CPU compiling a
    network measured 200-280 s, longer than a proxy training)."""
    return device.type == "cuda" if setting is None else bool(setting)


def compile_options(device: torch.device) -> dict:
    """``torch.compile``'s settings for the training forward on ``device``.

    CUDA: mode "reduce-overhead": Inductor's fused kernels, and the forward and the backward
    each replayed as one CUDA graph (CUDA graph trees), which removes the kernel-launch
    overhead that bounds these small networks. Not "max-autotune-no-cudagraphs" with graphs
    captured by hand: autotuning costs minutes per network, paid again for every candidate of
    a study, to speed up kernels that are memory- and launch-bound anyway; and a hand-captured
    whole step would need graph-safe random numbers for the augmentation and a capturable
    optimizer with a tensor learning rate. CPU: the default mode (no graphs on the CPU).
    Both: ``dynamic=False``: one network trains at one batch size and resolution, so its code
    is specialised to them and a changed shape compiles anew instead of turning dynamic.
    """
    if device.type == "cuda":
        return {"mode": "reduce-overhead", "dynamic": False}
    return {"dynamic": False}


def reset_compiler() -> None:
    """Forget everything compiled in this process (``torch._dynamo.reset()``: compiled code,
    guards, recompilation counts, automatic-dynamic shape records) and free the CUDA graph
    trees' memory pools."""
    torch.compiler.reset()  # torch._dynamo.reset()
    trees = sys.modules.get("torch._inductor.cudagraph_trees")
    if trees is not None:  # already part of the reset in recent torch; harmless twice
        trees.reset_cudagraph_trees()


def compile_model(model: nn.Module, device: torch.device) -> Callable:
    """``model`` compiled for training on ``device`` from a clean compiler state.

    A study trains many networks in one process. Without the reset, each new network is a
    recompilation of the same ``forward`` code: past dynamo's recompile limit (8 by default;
    ``recompile_limit``, ``cache_size_limit`` in older torch) it stops compiling and runs
    eagerly, and a shape that changes between networks is made dynamic; the CUDA graphs of
    networks already trained would keep their memory pools too. The reset is per training,
    seeds of one candidate included: Inductor's on-disk cache makes a network compiled
    before cheap to compile again.
    """
    reset_compiler()
    return torch.compile(model, **compile_options(device))
