"""Bad arguments get a clear error that says what to do; legitimate ones are accepted."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from course_utils import data, datasets, models, train
from course_utils.config import get_profile

MEAN, STD = (0.5,) * 3, (0.5,) * 3


def _rgb(n: int = 10, size: int = 8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _tiny_cnn(num_classes: int = 2) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, num_classes)),
    )


# build_model


@pytest.mark.parametrize("image_size", [-1, 0, 2.5, "64", True])
def test_image_size_out_of_range_names_the_valid_range(image_size):
    with pytest.raises(ValueError, match=r"image_size must be an integer ≥ 1 \(pixels per side"):
        models.build_model(
            "resnet18", 7, weights=None, image_size=image_size, profile=get_profile()
        )


@pytest.mark.parametrize("num_classes", [np.int64(7), np.int32(7), np.uint8(7)])
def test_any_integral_num_classes_is_accepted_as_an_int(num_classes):
    model = models.build_model("resnet18", num_classes, weights=None, profile=get_profile())
    out_features = model.head[-1].out_features
    assert out_features == 7 and type(out_features) is int
    assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 7)


@pytest.mark.parametrize("num_classes", [7.0, np.float64(7.0), "7", True, np.int64(1)])
def test_num_classes_that_is_not_an_integer_above_one_is_refused(num_classes):
    with pytest.raises(ValueError, match=r"num_classes must be an integer ≥ 2 \(the number of"):
        models.build_model("resnet18", num_classes, weights=None, profile=get_profile())


@pytest.mark.parametrize(
    ("arch", "too_small", "smallest"),
    [("vgg16", 16, 32), ("densenet121", 16, 29), ("squeezenet1_1", 8, 17)],
)
def test_images_too_small_for_an_architecture_name_the_smallest_size(arch, too_small, smallest):
    with pytest.raises(ValueError, match=f"{arch} needs images of at least {smallest} px, not"):
        models.build_model(arch, 7, weights=None, image_size=too_small, profile=get_profile())
    model = models.build_model(arch, 7, weights=None, image_size=smallest, profile=get_profile())
    assert model.eval()(torch.zeros(1, 3, smallest, smallest)).shape == (1, 7)


def test_too_small_images_are_refused_before_any_weights_download(
    http_server, monkeypatch, tmp_path
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setitem(models.WEIGHT_URLS, "vgg16", f"{http_server.url}/vgg16-00000000.pth")
    with pytest.raises(ValueError, match="vgg16 needs images of at least 32 px, not 16 px"):
        models.build_model("vgg16", 1000, image_size=16, profile=get_profile("laptop"))
    assert http_server.requests == []


# make_loader / ArrayDataset


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([0, 1, 0.5, 1]), "label at position 2 is 0.5: .*labels.astype\\(int\\)"),
        (np.array([0, np.nan, 1, 1]), "label at position 1 is NaN \\(a missing label\\)"),
        (np.array(["nv", "mel", "nv", "bcc"]), "dtype <U3: .*return_inverse=True"),
        (np.array([0, 1, -1, 1]), "label at position 2 is -1: number the classes from 0"),
    ],
)
@pytest.mark.parametrize("balanced", [False, True])
def test_labels_that_are_not_class_indices_are_named(labels, message, balanced):
    with pytest.raises(ValueError, match=message):
        data.make_loader(_rgb(4), labels, batch_size=2, mean=MEAN, std=STD, balanced=balanced)


def test_whole_number_float_labels_are_accepted_as_class_indices():
    loader = data.make_loader(
        _rgb(4), np.array([0.0, 2.0, 1.0, 2.0]), batch_size=4, mean=MEAN, std=STD
    )
    _, labels = next(iter(loader))
    assert labels.dtype == torch.int64 and labels.tolist() == [0, 2, 1, 2]


@pytest.mark.parametrize(
    ("mean", "std", "message"),
    [
        ((0.5,), STD, "mean must hold 3 values, one per RGB channel .*got 1"),
        (MEAN, (0.5, 0.5), "std must hold 3 values, one per RGB channel .*got 2"),
        (0.5, STD, "mean must hold 3 values.*input_stats\\(arch\\)"),
        (MEAN, (0.5, 0.0, 0.5), "std must be > 0 in every channel"),
    ],
)
def test_mean_and_std_need_one_value_per_channel(mean, std, message):
    with pytest.raises(ValueError, match=message):
        data.make_loader(_rgb(4), np.arange(4), batch_size=2, mean=mean, std=std)


@pytest.mark.parametrize("size", [0, -3, 16.0])
def test_resize_to_a_size_that_is_not_a_positive_integer_is_refused(size):
    with pytest.raises(ValueError, match="size must be an integer ≥ 1 \\(pixels per side\\)"):
        data.resize_images(_rgb(2), size)


# fit / evaluate


def test_labels_beyond_the_outputs_in_a_later_batch_name_the_batch():
    labels = np.array([0, 1, 0, 1, 1, 0, 0, 1, 0, 5, 1, 0])  # batch 3 holds a 5
    loader = data.make_loader(_rgb(12), labels, batch_size=4, mean=MEAN, std=STD)
    with pytest.raises(ValueError, match="Labels of training batch 3 run from 0 to 5 but the"):
        train.fit(_tiny_cnn(2), loader, epochs=1, progress=False)
    with pytest.raises(ValueError, match="Labels of the evaluated loader run from 0 to 5"):
        train.evaluate(_tiny_cnn(2), loader, device=torch.device("cpu"))


def test_an_empty_train_or_val_loader_is_a_clear_error():
    empty = data.make_loader(_rgb(0), np.zeros(0, int), batch_size=4, mean=MEAN, std=STD)
    for order in ({"shuffle": True}, {"balanced": True}):
        with pytest.raises(ValueError, match="No images to shuffle or balance: the array is empty"):
            data.make_loader(_rgb(0), np.zeros(0, int), batch_size=4, mean=MEAN, std=STD, **order)
    full = data.make_loader(_rgb(8), np.arange(8) % 2, batch_size=4, mean=MEAN, std=STD)
    with pytest.raises(ValueError, match=r"train_loader holds no batches \(0 images\)"):
        train.fit(_tiny_cnn(), empty, epochs=1, progress=False)
    dropped = DataLoader(data.ArrayDataset(_rgb(3), np.arange(3) % 2, MEAN, STD), 4, drop_last=True)
    with pytest.raises(ValueError, match=r"val_loader holds no batches \(3 images\).*drop_last"):
        train.fit(_tiny_cnn(), full, dropped, epochs=1, progress=False)
    with pytest.raises(ValueError, match="loader holds no batches .*max_samples too small"):
        train.predict(_tiny_cnn(), empty, device=torch.device("cpu"))


# load_dataset


@pytest.mark.parametrize("max_samples", [0, -5, 2.5, True, "100"])
def test_max_samples_must_be_a_positive_integer_or_a_sentinel(max_samples):
    with pytest.raises(ValueError, match="max_samples must be an integer ≥ 1 .*-1: the profile's"):
        datasets.load_dataset("derma", "sample", max_samples=max_samples, profile=get_profile())


@pytest.mark.parametrize("image_size", ["64", True, 0, 64.0])
def test_load_dataset_image_size_must_be_an_int(image_size):
    with pytest.raises(ValueError, match="image_size must be an integer ≥ 1 .*got"):
        datasets.load_dataset("derma", "sample", image_size=image_size, profile=get_profile())


def test_legitimate_sizes_and_sentinels_are_accepted():
    smoke = get_profile()
    default = datasets.load_dataset("derma", "sample", max_samples=-1, profile=smoke)
    assert len(default) <= smoke.max_samples and default.images.shape[1] == smoke.image_size
    chosen = datasets.load_dataset(
        "derma", "sample", image_size=np.int64(16), max_samples=np.int64(60), profile=smoke
    )
    assert chosen.images.shape[1] == 16 and len(chosen) <= 60


def test_unknown_on_error_is_refused_before_any_download(tmp_path):
    with pytest.raises(ValueError, match="on_error must be 'stop' .* or 'skip' .*got 'ignore'"):
        datasets.load_dataset("xray", "original", on_error="ignore", profile=get_profile())
    assert not (tmp_path / "data").exists()  # the test's empty data folder: nothing fetched
