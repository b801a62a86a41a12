"""A grouped split of a source without lesion or patient ids warns that lesions may leak."""

import warnings

import numpy as np
import pytest

from course_utils import medmnist_plus
from course_utils.imageset import ImageSet
from course_utils.sample import load_sample

ADVICE = "source='original'"


def _image_set(source: str, groups: np.ndarray) -> ImageSet:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, len(groups))
    images = rng.integers(0, 256, (len(groups), 8, 8, 3), dtype=np.uint8)
    return ImageSet(images, labels, ("a", "b"), groups, source)


def _advice(caught: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in caught if issubclass(w.category, UserWarning) and ADVICE in str(w.message)]


def _split(data: ImageSet, scheme: str) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data.split(scheme, seed=0)
    return _advice(caught)


@pytest.fixture
def dermamnist(monkeypatch, tmp_path) -> ImageSet:
    """load_medmnist's own ImageSet (its source and groups), from a small local .npz file."""
    rng = np.random.default_rng(1)
    arrays = {}
    for split, n in (("train", 70), ("val", 10), ("test", 20)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 7, (n, 1), dtype=np.uint8)
    np.savez(path := tmp_path / "dermamnist.npz", **arrays)
    monkeypatch.setattr(medmnist_plus, "download", lambda remote, folder, **kw: path)
    return medmnist_plus.load_medmnist("derma", 28)


@pytest.mark.parametrize("scheme", ["60/20/20", "80/20"])
def test_splitting_medmnist_warns_once_that_lesions_may_leak(dermamnist, scheme):
    assert "MedMNIST" in dermamnist.source and len(set(dermamnist.groups)) == len(dermamnist)
    with pytest.warns(UserWarning, match="images of one lesion may land in train and test"):
        dermamnist.split(scheme)
    assert len(_split(dermamnist, scheme)) == 1  # once per call
    assert len(_split(dermamnist.resized(16), scheme)) == 1  # its source still says MedMNIST
    assert len(_split(dermamnist.subset(np.arange(60)), scheme)) == 1


def test_a_medmnist_like_image_set_warns_and_a_pneumoniamnist_one_too():
    groups = np.arange(50).astype(str)
    assert len(_split(_image_set("DermaMNIST (MedMNIST+, 64 px file)", groups), "80/20")) == 1
    assert len(_split(_image_set("PneumoniaMNIST (MedMNIST+, 28 px file)", groups), "80/20")) == 1


def test_the_official_split_is_the_sources_own_and_does_not_warn(dermamnist):
    assert not _split(dermamnist, "official")


def test_grouped_data_does_not_warn():
    sample = load_sample("derma", 8, 200)  # its groups hold views of one lesion
    assert len(set(sample.groups)) < len(sample)
    assert not _split(sample, "60/20/20")
    patients = np.repeat(np.arange(25), 2).astype(str)  # two radiographs per child
    xray = _image_set("ChestXRay2017 (Kermany et al.), original archive, 32 px", patients)
    assert not _split(xray, "60/20/20")


def test_real_groups_of_one_image_each_do_not_warn():
    """A small subset of the X-ray archive may hold one image per patient: those are real."""
    one_each = np.array([f"person{i}" for i in range(40)])
    xray = _image_set("ChestXRay2017 (Kermany et al.), original archive, 32 px", one_each)
    assert not _split(xray, "80/20")
