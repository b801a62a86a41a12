import numpy as np
import pytest
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import balanced_accuracy_score

from course_utils import data

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _rgb(n=10, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((4, 8, 8, 3), np.float32), "uint8"),
        ([[0, 1]], "uint8"),
        (np.zeros((4, 3, 8, 8), np.uint8), r"transpose\(0, 2, 3, 1\)"),
        (np.zeros((8, 8), np.uint8), "N×H×W"),
    ],
)
def test_wrong_shape_or_dtype_says_what_is_expected(images, message):
    with pytest.raises(ValueError, match=message):
        data.ArrayDataset(images, np.zeros(len(images)), MEAN, STD)


def test_labels_must_match_images():
    with pytest.raises(ValueError, match="10 images but 9 labels"):
        data.ArrayDataset(_rgb(), np.zeros(9), MEAN, STD)


def test_dataset_normalises_like_torchvision():
    images = _rgb()
    x, y = data.ArrayDataset(images, np.arange(10).reshape(-1, 1), MEAN, STD)[3]
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    expected = (torch.from_numpy(images[3]).permute(2, 0, 1) / 255 - mean) / std
    torch.testing.assert_close(x, expected)
    assert y.item() == 3 and y.dtype == torch.int64


def test_batch_indexing_equals_single_indexing():
    dataset = data.ArrayDataset(_rgb(), np.arange(10), MEAN, STD)
    batch, labels = dataset[[4, 1, 7]]
    assert batch.shape == (3, 3, 8, 8) and labels.tolist() == [4, 1, 7]
    torch.testing.assert_close(batch[1], dataset[1][0])


@pytest.mark.parametrize("shape", [(5, 8, 8), (5, 8, 8, 1)])
def test_grey_images_become_three_equal_channels(shape):
    images = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    x, _ = data.ArrayDataset(images, np.zeros(5), (0.5,) * 3, (0.5,) * 3)[0]
    assert x.shape == (3, 8, 8)
    torch.testing.assert_close(x[0], x[2])
    torch.testing.assert_close(x[1], torch.from_numpy(images[0].squeeze()) / 255 * 2 - 1)


def test_transform_runs_on_each_batch():
    dataset = data.ArrayDataset(_rgb(), np.zeros(10), MEAN, STD, transform=lambda x: x.flip(-1))
    plain = data.ArrayDataset(_rgb(), np.zeros(10), MEAN, STD)
    torch.testing.assert_close(dataset[[0, 1]][0], plain[[0, 1]][0].flip(-1))


def test_loader_serves_every_image_once_per_epoch_in_batches():
    loader = data.make_loader(
        _rgb(70), np.arange(70), batch_size=32, mean=MEAN, std=STD, shuffle=True, seed=3
    )
    batches = list(loader)
    assert [len(labels) for _, labels in batches] == [32, 32, 6]
    seen = torch.cat([labels for _, labels in batches])
    assert sorted(seen.tolist()) == list(range(70)) and seen.tolist() != list(range(70))
    again = data.make_loader(
        _rgb(70), np.arange(70), batch_size=32, mean=MEAN, std=STD, shuffle=True, seed=3
    )
    assert torch.equal(torch.cat([labels for _, labels in again]), seen)  # same seed, same order
    ordered = data.make_loader(_rgb(70), np.arange(70), batch_size=32, mean=MEAN, std=STD)
    assert torch.cat([labels for _, labels in ordered]).tolist() == list(range(70))


@pytest.mark.parametrize("shape", [(3, 40, 40, 3), (3, 40, 40)])
def test_resize_keeps_layout_and_dtype(shape):
    images = np.full(shape, 200, np.uint8)
    out = data.resize_images(images, 16)
    assert out.shape == (3, 16, 16, *shape[3:]) and out.dtype == np.uint8
    assert (out == 200).all()  # a flat image stays flat
    assert data.resize_images(images, 40) is images


@pytest.mark.parametrize(("name", "channels", "classes"), [("derma", (3,), 7), ("xray", (), 2)])
def test_sample_has_the_medmnist_layout(name, channels, classes):
    sample = data.make_sample(name, image_size=28, num_samples=200)
    keys = ("images", "labels", "groups")  # MedMNIST's keys, plus the lesion/patient groups
    assert set(sample) == {f"{s}_{k}" for s in data.SPLITS for k in keys}
    sizes = [len(sample[f"{s}_images"]) for s in data.SPLITS]
    assert sizes == [140, 20, 40]
    for split in data.SPLITS:
        images, labels = sample[f"{split}_images"], sample[f"{split}_labels"]
        assert images.shape[1:] == (28, 28, *channels) and images.dtype == np.uint8
        assert labels.shape == (len(images), 1) and labels.max() < classes
        assert sample[f"{split}_groups"].shape == (len(images),)
    assert len(data.class_names(name)) == classes


def test_sample_is_reproducible_and_imbalanced_like_ham10000():
    a, b = data.make_sample("derma", 16, 400, seed=5), data.make_sample("derma", 16, 400, seed=5)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    counts = np.bincount(a["train_labels"].ravel(), minlength=7)
    assert counts.argmax() == data.DERMA_CLASSES.index("nv") and counts.min() > 0
    xray = np.bincount(data.make_sample("xray", 16, 400)["train_labels"].ravel())
    assert xray[1] > 2 * xray[0]  # pneumonia outnumbers normal, as in Kermany et al.


@pytest.mark.parametrize(("name", "floor"), [("derma", 0.4), ("xray", 0.75)])
def test_sample_classes_are_learnable_from_pixels(name, floor):
    sample = data.make_sample(name, image_size=24, num_samples=600, seed=1)
    flat = {s: sample[f"{s}_images"].reshape(len(sample[f"{s}_images"]), -1) for s in data.SPLITS}
    forest = RandomForestClassifier(100, random_state=0)
    forest.fit(flat["train"], sample["train_labels"].ravel())
    score = balanced_accuracy_score(sample["test_labels"].ravel(), forest.predict(flat["test"]))
    chance = 1 / len(data.class_names(name))
    assert score > floor > chance


def test_unknown_sample_or_dataset_names_the_valid_ones():
    with pytest.raises(ValueError, match="derma, xray"):
        data.make_sample("retina")
    with pytest.raises(ValueError, match="derma, xray"):
        data.class_names("retina")
    with pytest.raises(ValueError, match="image_size ≥ 8"):
        data.make_sample("derma", image_size=4)


def test_sample_groups_hold_views_of_one_lesion_with_one_label():
    sample = data.make_sample("derma", 16, 600, seed=2)
    groups = np.concatenate([sample[f"{s}_groups"] for s in data.SPLITS])
    labels = np.concatenate([sample[f"{s}_labels"].ravel() for s in data.SPLITS])
    sizes = np.bincount(np.unique(groups, return_inverse=True)[1])
    assert 1.1 < len(groups) / len(sizes) < 1.6 and sizes.max() <= 3  # HAM10000: 1.34 per lesion
    for group in np.unique(groups):
        assert len(set(labels[groups == group])) == 1


def test_each_dataset_is_described_once_and_data_reexports_the_description():
    from course_utils import catalog, synthetic

    assert data.DERMA_CLASSES is catalog.DERMA.class_names
    assert data.XRAY_CLASSES is catalog.XRAY.class_names
    assert list(data.HAM10000_COUNTS) == list(data.DERMA_CLASSES)  # in label order
    assert sum(data.HAM10000_COUNTS.values()) == 10_015  # HAM10000's images
    assert data.XRAY_COUNTS == {"normal": 1583, "pneumonia": 4273}
    assert data.make_sample is synthetic.make_sample and data.SAMPLES == ("derma", "xray")
    for info in catalog.DATASETS.values():  # any of a dataset's names finds its classes
        for alias in (info.name, info.folder, info.medmnist_flag):
            assert data.class_names(alias) == info.class_names
            assert catalog.dataset_info(alias) is info
        assert len(info.counts) == len(info.class_names)
