"""Batches of a CPU uint8 tensor (a memory-mapped image cache) brought to the device ahead.

``prefetch(source, device, indices)`` yields ``source[i]`` on ``device`` for each index tensor
(or slice) ``i`` in order, gathered by a background thread ``DEPTH`` batches ahead of the
consumer: on CUDA into pinned memory and copied with ``non_blocking`` on a side stream (the
consumer's stream waits on the copy's event, never on the gather), on the CPU into plain
memory. The gather (torch's index_select, reading the memory map) and the copy release the GIL,
so they overlap the training step. Only bytes move: what the consumer gets equals
``source[i].to(device)`` exactly.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

import torch

DEPTH = 2  # batches ready ahead of the one in use
_DONE = object()


def _gather(source: torch.Tensor, index, out: torch.Tensor | None) -> torch.Tensor:
    """``source[index]`` as a contiguous tensor, into ``out`` when given (pinned memory)."""
    if isinstance(index, slice):
        part = source[index]
        if out is None:  # a copy, so that the pages are read here, not in the step
            return part.clone(memory_format=torch.contiguous_format)
        return out[: part.shape[0]].copy_(part)
    if out is None:
        return torch.index_select(source, 0, index)
    return torch.index_select(source, 0, index, out=out[: index.shape[0]])


class _Worker(threading.Thread):
    """Gathers and copies batches into a bounded queue until told to stop."""

    def __init__(self, source: torch.Tensor, device: torch.device, indices: Iterable):
        super().__init__(daemon=True, name="scalesearch-prefetch")
        self.source, self.device, self.indices = source, device, indices
        self.queue: queue.Queue = queue.Queue(maxsize=DEPTH)
        self.stop = threading.Event()

    def put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            cuda = self.device.type == "cuda"
            if cuda:
                torch.cuda.set_device(self.device)
                stream = torch.cuda.Stream(self.device)
            pinned: dict[int, torch.Tensor] = {}  # batch length -> pinned buffer
            for index in self.indices:
                if self.stop.is_set():
                    return
                if not cuda:
                    if not self.put((_gather(self.source, index, None), None)):
                        return
                    continue
                length = _length(index, self.source.shape[0])
                if length not in pinned:
                    if len(pinned) >= 2:  # a full batch and one last partial one at most
                        pinned.pop(next(iter(pinned)))
                    pinned[length] = torch.empty((length, *self.source.shape[1:]),
                                                 dtype=self.source.dtype, pin_memory=True)
                host = _gather(self.source, index, pinned[length])
                with torch.cuda.stream(stream):
                    moved = host.to(self.device, non_blocking=True)
                    ready = torch.cuda.Event()
                    ready.record(stream)
                ready.synchronize()  # the pinned buffer is free again once the copy is done
                if not self.put((moved, ready)):
                    return
            self.put(_DONE)
        except BaseException as error:  # handed to the consumer, raised there
            self.put(error)


def _length(index, total: int) -> int:
    if isinstance(index, slice):
        return len(range(*index.indices(total)))
    return int(index.shape[0])


def prefetch(source: torch.Tensor, device: torch.device, indices: Iterable) -> Iterator:
    """``source[i]`` on ``device`` for each ``i`` of ``indices`` (CPU index tensors or
    slices), gathered ahead by a background thread; closing the iterator stops it."""
    worker = _Worker(source, device, indices)
    worker.start()
    try:
        while True:
            item = worker.queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            moved, ready = item
            if ready is not None:
                current = torch.cuda.current_stream(device)
                current.wait_event(ready)
                moved.record_stream(current)  # its memory is not reused before the step ends
            yield moved
    finally:
        worker.stop.set()
        worker.join()
