"""What a model costs to run: peak memory of a step, on CPU or CUDA (notebook 09)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

import torch
from torch.profiler import ProfilerActivity, profile


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: the profiler's C++ log lines are noise here."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory_mb(step: Callable[[], object], device: torch.device) -> float:
    """Peak memory (MiB) that `step()` needs on `device` on top of what was allocated before it.

    CUDA: the allocator's peak minus its level before the step, so older blocks freed during the
    step (e.g. last step's gradients, dropped by zero_grad) make room. CPU has no such counter:
    the profiler's allocation events are replayed, counting only blocks the step itself
    allocates (on the calling thread), so the CPU figure can exceed the CUDA one by up to the
    blocks freed early. Only the profiler's C++ log lines are hidden; while the step runs, so is
    anything else written to file descriptor 2 (not Jupyter's own stderr). Exceptions propagate.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    if device.type != "cpu":
        raise ValueError(f"Peak memory is measured on CPU and CUDA only, not on {device.type}.")
    # PyTorch's CPU allocator keeps no peak; its profiler records every allocation and free.
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as rec:
        step()
    live: dict[int, int] = {}  # address -> bytes, for blocks allocated during the step
    in_use = peak = 0
    events = _allocations(rec.profiler.kineto_results.experimental_event_tree())
    for node in sorted(events, key=lambda node: node.start_time_ns):
        size, address = node.extra_fields.alloc_size, node.extra_fields.ptr
        if size > 0:
            live[address] = size
            in_use += size
        elif address in live:  # frees of blocks that existed before the step do not count
            in_use -= live.pop(address)
        peak = max(peak, in_use)
    return peak / 2**20


def _allocations(nodes: list) -> Iterator:
    """The CPU allocation and free events of a profiler event tree, at any depth."""
    for node in nodes:
        fields = node.extra_fields
        if hasattr(fields, "alloc_size") and fields.device.type == "cpu":
            yield node
        yield from _allocations(node.children)
