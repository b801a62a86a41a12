import random

import numpy as np
import pytest
import torch

from course_utils import config, environment


def test_profiles_hold_the_sizes_notebooks_ask_for():
    smoke, full = config.get_profile("smoke"), config.get_profile("full")
    assert smoke.image_size < full.image_size == 224
    assert smoke.max_samples is not None and full.max_samples is None
    assert smoke.allow_offline_sample and not full.allow_offline_sample
    for profile in config.PROFILES.values():
        assert profile.epochs >= 1 and profile.batch_size >= 1 and profile.patience >= 1


def test_profile_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "Full ")
    assert config.get_profile().name == "full"
    assert "COURSE_PROFILE" in config.profile_reason()


def test_unknown_profile_names_the_valid_ones(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "turbo")
    with pytest.raises(ValueError, match="smoke, laptop, workshop, full"):
        config.get_profile()


@pytest.mark.parametrize(("cuda", "expected"), [(True, "workshop"), (False, "laptop")])
def test_default_profile_follows_cuda(monkeypatch, cuda, expected):
    monkeypatch.delenv("COURSE_PROFILE")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert config.get_profile().name == expected
    assert ("CUDA GPU is present" if cuda else "no CUDA GPU") in config.profile_reason()


def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert config.get_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert config.get_device().type == "cpu"


def test_seed_everything_repeats_every_generator():
    def draw():
        legacy = np.random.rand()  # noqa: NPY002 (seed_everything also seeds the legacy generator)
        return random.random(), legacy, torch.rand(3)

    config.seed_everything(7)
    first = draw()
    config.seed_everything(7)
    second = draw()
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])


def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert config.data_dir() == tmp_path
    monkeypatch.delenv("COURSE_DATA_DIR")
    assert config.data_dir().name == "data"  # the checkout's data/ folder


def test_print_env_reports_profile_device_data_and_weights(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    (tmp_path / "dermamnist_64.npz").write_bytes(b"x")
    profile = environment.print_env()
    out = capsys.readouterr().out
    assert profile.name == "smoke"
    for expected in (
        "torch",
        "Device",
        "smoke (set by $COURSE_PROFILE)",
        "dermamnist_64.npz",
        "efficientnet_lite0",
    ):
        assert expected in out
    assert "Hint" not in out  # smoke needs no hint


def test_print_env_hints_at_smoke_on_a_cpu_only_machine(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_PROFILE")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    environment.print_env()
    out = capsys.readouterr().out
    assert "laptop (default because no CUDA GPU was found)" in out
    assert "COURSE_PROFILE=smoke" in out
