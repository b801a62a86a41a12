"""Peak memory of a step: replayed from the profiler's allocation events on CPU."""

import pytest
import torch
from torch import nn

from course_utils.config import get_profile
from course_utils.cost import peak_memory_mb
from course_utils.models import build_model


def test_peak_memory_counts_live_blocks_allocated_by_the_step():
    cpu = torch.device("cpu")
    old = [torch.empty(2**20)]  # 4 MiB that exist before the step

    def step():
        a = torch.empty(10 * 2**18)  # 10 MiB
        b = torch.empty(5 * 2**18)  # 5 MiB: 15 MiB live
        del a
        c = torch.empty(2 * 2**18)  # 7 MiB live
        old.clear()  # a free of an older block does not lower the count
        return b, c

    assert peak_memory_mb(step, cpu) == pytest.approx(15.0)


def test_peak_memory_of_a_training_step_grows_with_the_batch():
    model = build_model("resnet18", 2, weights=None, image_size=64, profile=get_profile())
    optimizer = torch.optim.Adam(model.parameters())

    def step_with(batch: int):
        images, labels = torch.randn(batch, 3, 64, 64), torch.zeros(batch, dtype=torch.long)

        def step():
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        return step

    step_with(2)()  # creates the optimizer state
    small, large = (
        peak_memory_mb(step_with(2), torch.device("cpu")),
        peak_memory_mb(step_with(16), torch.device("cpu")),
    )
    gradients_mb = sum(p.numel() for p in model.parameters()) * 4 / 2**20
    assert gradients_mb < small < large


def test_peak_memory_refuses_other_devices():
    with pytest.raises(ValueError, match="CPU and CUDA"):
        peak_memory_mb(lambda: None, torch.device("meta"))
