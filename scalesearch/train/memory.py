"""What a training holds of memory: its peak, and giving it back when a training ends early.

A training that ends in an exception (a pruned trial, memory run out) would keep its model,
gradients and optimizer state alive through the traceback's frames until a cyclic garbage
collection; `drop_frames` clears them, `release_memory` then returns the allocator's cache.
"""

from __future__ import annotations

import gc
import resource
import sys
import traceback

import torch

from scalesearch.train.compiling import reset_compiler


def drop_frames(error: BaseException) -> None:
    """Clear the local variables of every finished frame in the tracebacks of ``error`` and of
    the exceptions it was raised from or during (frames still running are left alone)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        pending += [current.__cause__, current.__context__]


def release_memory(compiled: bool = False) -> None:
    """Give back what this process no longer uses: the CUDA graph pools of compiled code
    (``compiled``), unreachable reference cycles, and the CUDA caching allocator's free blocks.
    Call it where no traceback holds tensors any more."""
    if compiled:
        reset_compiler()
    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def peak_memory(device: torch.device, baseline: int = 0) -> int:
    """See TrainResult.peak_memory_bytes: on CUDA the peak allocated since the statistics were
    reset (once the data set was resident) less ``baseline``, what was allocated then; on the
    CPU the process's resident-set high-water mark (``baseline`` does not apply)."""
    if device.type == "cuda":
        return max(0, int(torch.cuda.max_memory_allocated(device)) - int(baseline))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS: bytes; Linux: KiB
